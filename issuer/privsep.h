/*
 * privsep.h - tsi-issuer split in two processes (docs/issuer.md,
 * "Privilege separation").
 *
 * The signer (signer.c) is the process tsi-issuer starts as: it holds the
 * TPM context and the session key, binds the API socket, identifies callers
 * and mints, and parses nothing but the fixed requests of priv_proto.h. It
 * runs the front end (front.c, api.c, the kubelet client) as a new program
 * image (`tsi-issuer front`, so no key is in its memory) and starts it
 * again when it dies.
 *
 * The front end finds its descriptors at fixed numbers:
 *   TSI_PRIV_FD_LISTEN    the API socket, bound and listening
 *   TSI_PRIV_FD_NOTIFY    signer -> front end: WAKE messages only
 *   TSI_PRIV_FD_CHAN0...  request channels, one request in flight on each
 */
#ifndef TSI_ISSUER_PRIVSEP_H
#define TSI_ISSUER_PRIVSEP_H

#include <signal.h>
#include <stdint.h>

#include "issuer/config.h"
#include "issuer/mint.h"
#include "issuer/tpm.h"
#include "issuer/monitor.h"
#include "issuer/peer.h"
#include "issuer/resolve.h"

#define TSI_PRIV_FD_LISTEN 3
#define TSI_PRIV_FD_NOTIFY 4
#define TSI_PRIV_FD_CHAN0 5
#define TSI_PRIV_CHAN_MAX 18

/* A front end that dies is started again after this back-off, doubled at
 * each death in a row up to the maximum; one that served for
 * TSI_PRIV_STABLE_MS starts the count again. */
#define TSI_PRIV_BACKOFF_MIN_MS 100
#define TSI_PRIV_BACKOFF_MAX_MS 5000
#define TSI_PRIV_STABLE_MS 30000
/* How long a stopping front end gets after SIGTERM before SIGKILL. */
#define TSI_PRIV_STOP_MS 5000
/* How long an enrolling front end (enroll_only) may take in all: two
 * requests to tsi-attest of at most 30 s each, and the TPM's work. */
#define TSI_PRIV_ENROLL_MS 120000

/* What the signer runs with. Everything is borrowed for the run. minter
 * and monitor are read at every request: renew may replace them; while
 * *minter is NULL (not enrolled yet) SIGN, JWKS and HEALTH answer
 * TSI_ERR_AGAIN. */
struct tsi_privsep_signer {
	const struct tsi_issuer_config *cfg;
	const char *exe;         /* the program run as the front end */
	const char *config_path; /* given to it */
	struct tsi_tpm *tpm;     /* enrollment's evidence */
	/* Run the front end once, as `front --enroll`, to enroll with
	 * tsi-attest, and return when it ends: TSI_OK when it exited 0 after
	 * a node certificate was installed. No API socket then. */
	int enroll_only;
	int listen_fd; /* the API socket (tsi_api_bind); -1 with enroll_only */
	struct tsi_minter *const *minter;
	struct tsi_monitor *const *monitor;
	const volatile sig_atomic_t *stop;
	volatile sig_atomic_t *renew_flag;
	/* On renew_flag, which the signer also raises itself when it has
	 * installed a node certificate; failure stops. NULL with enroll_only. */
	int (*renew)(void *arg);
	void *renew_arg;
	/* The mask during the wait (SIGTERM, SIGINT, SIGUSR1 and SIGCHLD
	 * unblocked); all four blocked otherwise, in every thread. */
	const sigset_t *wait_mask;
};

/* Runs the front end and answers it until *stop; stops it (SIGTERM, then
 * SIGKILL after TSI_PRIV_STOP_MS) and reaps it. TSI_OK, or the error that
 * ended the run (renew failed, out of descriptors). */
int tsi_privsep_signer_run(const struct tsi_privsep_signer *s);

/* The front end's client of the signer. */
struct tsi_front;

/* Takes the request channels and the notify channel at their fixed numbers
 * and starts the thread that reads WAKE messages. *out: tsi_front_free. */
int tsi_front_new(struct tsi_front **out);
void tsi_front_free(struct tsi_front *f);

/* Hands the connection sock (borrowed; the signer keeps its own copy) to
 * the signer, which identifies its peer. *peer gets the facts (pid, uid,
 * gid, container id; stat_fd -1) and *handle the signer's name for it.
 * TSI_ERR_UNIDENTIFIED when the signer could not identify it. */
int tsi_front_identify(struct tsi_front *f, int sock, struct tsi_peer *peer,
    uint32_t *handle);

/* The connection is closed: the signer forgets the handle. */
void tsi_front_release(struct tsi_front *f, uint32_t handle);

/* A token for the caller behind handle. w: the Kubernetes workload the
 * front end resolved for container (borrowed), NULL for a host workload
 * (the signer resolves those itself). TSI_ERR_AGAIN: the signer is hashing
 * the caller's executable; wake comes once (from another thread) and the
 * same call then answers. On failure reason says why (for the log).
 * *token: tsi_strfree. */
int tsi_front_sign(struct tsi_front *f, uint32_t handle, const char *aud,
    const char *container, const struct tsi_workload *w,
    const struct tsi_wake *wake, char **token, long long *exp, char *reason,
    size_t reasonlen);

/* The JWKS (*out: json_decref). */
int tsi_front_jwks(struct tsi_front *f, json_t **out);

/* The signer's health: TSI_OK with kid, cluster and datacenter, or the
 * TPM's error with reason. */
int tsi_front_health(struct tsi_front *f, char *reason, size_t reasonlen,
    char kid[44], char cluster[129], char datacenter[129]);

/* Enrollment's node operations (enroll.h) as requests to the signer: the
 * front end runs the protocol with tsi-attest, the signer the TPM and the
 * files. out->ctx is f (borrowed for out's use). */
struct tsi_enroll_node;
void tsi_front_enroll_node(struct tsi_front *f, struct tsi_enroll_node *out);

#endif /* TSI_ISSUER_PRIVSEP_H */
