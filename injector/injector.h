/*
 * injector.h - tsi-injector, the mutating admission webhook that adds the
 * tsi-sidecar to pods that ask for secrets (annotation tsi.secrets).
 *
 * The decision core (tsi_injector_review) is a pure function of the
 * configuration and one AdmissionReview: it does no I/O, so it is tested on
 * data files and fuzzed without a server. server.c puts it behind HTTPS.
 *
 * Invariants (docs/injector.md):
 *  - a pod without tsi.secrets is never patched;
 *  - a pod that mounts the issuer's host directory, a directory above it or
 *    a path below it is refused, injected or not;
 *  - the tsi.* annotations and the sidecar image of an injected pod do not
 *    change after creation;
 *  - TSI_SECRETS given to the sidecar is the validated, re-serialised
 *    annotation, never the raw text.
 */
#ifndef TSI_INJECTOR_H
#define TSI_INJECTOR_H

#include <stddef.h>

#include "tsi/secrets_spec.h"

/* Limits on untrusted input. */
/* tsi.secrets: the rule shared with tsi-sidecar (tsi/secrets_spec.h). */
#define TSI_INJECTOR_SECRETS_MAX_BYTES TSI_SECRETS_SPEC_MAX_BYTES
#define TSI_INJECTOR_SECRETS_MAX_ITEMS TSI_SECRETS_MAX
#define TSI_INJECTOR_PATH_MAX 1024 /* any path we look at */

/* Names the injector reserves in a pod. */
#define TSI_INJECTOR_INIT_NAME "tsi-sidecar-init"
#define TSI_INJECTOR_SIDECAR_NAME "tsi-sidecar"
#define TSI_INJECTOR_VOL_SECRETS "tsi-secrets"
#define TSI_INJECTOR_VOL_ISSUER "tsi-issuer"
#define TSI_INJECTOR_VOL_CA "tsi-vault-ca"

/* Annotations. */
#define TSI_ANN_SECRETS "tsi.secrets"
#define TSI_ANN_ROLE "tsi.role"
#define TSI_ANN_REFRESH "tsi.refresh"
#define TSI_ANN_INJECTED "tsi.injected"

struct tsi_injector_conf {
	/* All strings are owned by the struct; freed by tsi_injector_conf_free. */
	char *listen;   /* "host:port" or "[v6]:port" */
	char *tls_cert; /* PEM file: certificate (chain) */
	char *tls_key;  /* PEM file: private key */
	char *sidecar_image;
	char *sidecar_pull_policy;
	char *sidecar_memory_limit;
	long long sidecar_run_as_user; /* 0: inherit from the pod */
	char *vault_addr;
	char *vault_ca_configmap; /* NULL: no CA volume (VAULT_CACERT unset) */
	char *vault_ca_key;
	char *audience;
	char *default_role;      /* NULL: tsi.role is required */
	char *issuer_host_path;  /* normalised, absolute */
	char *issuer_mount_path; /* where the pod sees it */
	char *issuer_socket_name;
	char *secrets_mount_path; /* normalised, absolute */
	char *secrets_size_limit;
	char **protected; /* normalised host paths no pod may overlap */
	size_t nprotected;
	long long max_request_bytes;
};

/* Loads a libconfig file. On failure returns TSI_ERR_CONFIG or TSI_ERR_IO and
 * writes "file:line: reason" into err. *out: caller frees with
 * tsi_injector_conf_free. */
int tsi_injector_conf_load(const char *path, struct tsi_injector_conf **out,
    char *err, size_t errlen);

/* Same from text (name is used in messages). */
int tsi_injector_conf_load_string(const char *name, const char *text,
    struct tsi_injector_conf **out, char *err, size_t errlen);

void tsi_injector_conf_free(struct tsi_injector_conf *c);

/*
 * Lexically normalises an absolute path ("//", ".", ".." and a trailing "/"
 * removed; ".." above "/" stays at "/") into out (outlen bytes).
 * TSI_ERR_INVALID_ARG when in is not absolute, TSI_ERR_TOO_LARGE when it does
 * not fit.
 */
int tsi_injector_path_normalise(const char *in, char *out, size_t outlen);

/* Nonzero when normalised paths a and b are equal or one contains the other. */
int tsi_injector_path_overlaps(const char *a, const char *b);

/*
 * Validates a tsi.secrets annotation with tsi_secrets_spec_parse, the rule
 * tsi-sidecar applies (dest under secrets_mount_path). On success *canon receives the
 * compact re-serialised JSON (caller frees with free()). On failure returns
 * TSI_ERR_PARSE, TSI_ERR_TOO_LARGE or TSI_ERR_INVALID_ARG and writes a reason
 * fit for the pod's author into why.
 */
int tsi_injector_secrets_validate(const struct tsi_injector_conf *c,
    const char *annotation, char **canon, char *why, size_t whylen);

/*
 * Decides on one AdmissionReview (JSON text of len bytes, borrowed).
 * On TSI_OK *resp is the AdmissionReview response text (caller frees with
 * free()), whether the pod is allowed, patched or refused; *status is the HTTP
 * status to send (200). On TSI_ERR_PARSE (not an AdmissionReview v1) *resp is
 * an error body and *status 400. Reasons go to the log; the response carries
 * only what the pod's author may see.
 */
int tsi_injector_review(const struct tsi_injector_conf *c, const char *body,
    size_t len, char **resp, int *status);

struct tsi_injector_server;

/* Starts the HTTPS server on c->listen (c borrowed until stop).
 * *out: stop and free with tsi_injector_server_stop. */
int tsi_injector_server_start(const struct tsi_injector_conf *c,
    struct tsi_injector_server **out);

/* The bound TCP port (useful when listen asked for port 0). */
/* SIGHUP: reads tls_cert and tls_key again; a pair that fails the checks
 * is logged and the current one kept. */
int tsi_injector_server_reload_tls(struct tsi_injector_server *s);
unsigned tsi_injector_server_port(const struct tsi_injector_server *s);

/* Stops serving, waits for running requests, frees. Accepts NULL. */
void tsi_injector_server_stop(struct tsi_injector_server *s);

#endif /* TSI_INJECTOR_H */
