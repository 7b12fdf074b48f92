/*
 * resolve.h - who is calling: from the peer credentials of the accepted
 * Unix socket (pid, uid) to a workload, never from anything in the request.
 *
 * kubelet: pid -> <proc_root>/<pid>/cgroup -> container id -> the kubelet's
 * pod list -> namespace, pod, service account, images. A container that is
 * unknown or not running is TSI_ERR_UNIDENTIFIED.
 * unix: pid -> uid, executable path and the SHA-256 of the executable that
 * runs (read through <proc_root>/<pid>/exe).
 *
 * The parsers are separate functions so that tests drive them with real
 * file contents.
 */
#ifndef TSI_ISSUER_RESOLVE_H
#define TSI_ISSUER_RESOLVE_H

#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#include "issuer/config.h"
#include "issuer/peer.h"
#include "issuer/proc.h"
#include "issuer/workload.h"

/* The pod list is read as a stream (tsi_podlist_*): its size costs time,
 * not memory. Bounds no node reaches: a pod is at most 1.5 MiB (etcd's
 * default request limit) and a node runs at most a few hundred. */
#define TSI_PODLIST_MAX_BYTES ((size_t)1024 * 1024 * 1024)
#define TSI_PODLIST_POD_MAX_BYTES ((size_t)16 * 1024 * 1024)

/* Finds the running container with id in a kubelet PodList (borrowed) and
 * describes its pod. sidecars: digests left out of images. node_name: when
 * not NULL, the pod must be scheduled on this node. TSI_ERR_UNIDENTIFIED when
 * no running container has that id, or when more than one status in the
 * list claims it (logged: ambiguous, whichever comes first); TSI_ERR_PARSE
 * when the pod's data is unusable. *out: tsi_workload_free. */
int tsi_kubelet_pod_lookup(const json_t *podlist, const char *id,
    char *const *sidecars, size_t n_sidecars, const char *node_name,
    struct tsi_workload **out);

/* The kubelet's pod list, parsed as it arrives, keeping of each pod only
 * what tsi_kubelet_pod_lookup reads (names, service account, node, the
 * containers' names and images, the statuses' names, ids, image ids and
 * whether running): memory is one pod's text plus those fields. Every
 * byte is checked as jansson checks a whole text (duplicate keys refused).
 * feed: TSI_ERR_PARSE when the bytes cannot be a pod list, TSI_ERR_TOO_LARGE
 * past TSI_PODLIST_MAX_BYTES in all, TSI_PODLIST_POD_MAX_BYTES for one pod, a
 * key over 256 bytes or nesting over 512; once failed, every later call
 * returns the same. finish: *out = {"items": [kept pods]} (json_decref),
 * TSI_ERR_PARSE when the text ended early. */
struct tsi_podlist_parser;
int tsi_podlist_parser_new(struct tsi_podlist_parser **out);
int tsi_podlist_parser_feed(struct tsi_podlist_parser *p, const char *data,
    size_t len);
int tsi_podlist_parser_finish(struct tsi_podlist_parser *p, json_t **out);
void tsi_podlist_parser_free(struct tsi_podlist_parser *p);

/* The same over a whole text. */
int tsi_podlist_parse(const char *text, size_t len, json_t **out);

/* The fields of one pod object that the lookup reads (a new object,
 * json_decref; NULL when out of memory). */
json_t *tsi_podlist_prune_pod(const json_t *pod);

/* Kubelet client with a short-lived cache of the pod list. */
struct tsi_kubelet;

/* cfg is borrowed for the client's life. *out: tsi_kubelet_free. */
int tsi_kubelet_new(const struct tsi_issuer_config *cfg,
    struct tsi_kubelet **out);
void tsi_kubelet_free(struct tsi_kubelet *k);

/* GET <kubelet_url>/pods now (bearer token and CA from the files named in
 * the config). *out: json_decref. */
int tsi_kubelet_fetch(struct tsi_kubelet *k, json_t **out);

/* pid -> workload, refreshing the cached pod list on a miss.
 * TSI_ERR_UNIDENTIFIED: not a running container of this node's pods (403);
 * TSI_ERR_IO: the pod list could not be had (unreachable, refused,
 * malformed or truncated: 503, retry). */
int tsi_kubelet_resolve(struct tsi_kubelet *k, pid_t pid,
    struct tsi_workload **out);

/* The same for a connection's peer: the container must still be the one
 * taken at accept (TSI_ERR_UNIDENTIFIED otherwise, or when it was in
 * none). A container the list lacks needs a fetch: with wake (and st),
 * the fetch runs on the client's own thread and TSI_ERR_AGAIN says so;
 * wake comes once it is done and the same call with the same st answers.
 * Without wake, the caller waits for the fetch. */
struct tsi_resolve_state;
struct tsi_wake;
int tsi_kubelet_resolve_peer(struct tsi_kubelet *k, const struct tsi_peer *p,
    struct tsi_resolve_state *st, const struct tsi_wake *wake,
    struct tsi_workload **out);

/* Wakes every waiting request, cuts a fetch in flight short, and makes
 * callers wait no more. */
void tsi_kubelet_stop(struct tsi_kubelet *k);

/* How a request that had to wait is woken: fn(arg), called once, from
 * another thread, when the resolution may be asked for again. */
struct tsi_wake {
	void (*fn)(void *arg);
	void *arg;
};

/* Executables hashed off the threads that serve requests: a few hashing
 * threads, at most TSI_EXE_HASH_PER_UID files of one uid at a time, at
 * most TSI_EXE_HASH_QUEUE waiting in all, nothing over max_size bytes; a
 * request for a file being hashed waits for that hashing. */
#define TSI_EXE_HASH_THREADS 2
#define TSI_EXE_HASH_PER_UID 1
#define TSI_EXE_HASH_QUEUE 32
/* Requests waiting for a file already being hashed (they hold no thread
 * and no slot of their uid: it is the same file). */
#define TSI_EXE_HASH_FOLLOWERS 1024
struct tsi_exe_hasher;
struct tsi_hash_job;

/* *out: tsi_exe_hasher_free. */
int tsi_exe_hasher_new(long long max_size, struct tsi_exe_hasher **out);

/* Refuses new work, cuts short the hashing in progress, wakes every
 * waiting request (whose resolution then fails); safe to call twice. */
void tsi_exe_hasher_stop(struct tsi_exe_hasher *h);

/* Stops (as above), joins the threads, frees. Accepts NULL. */
void tsi_exe_hasher_free(struct tsi_exe_hasher *h);

/* One request's progress through a resolution that had to wait. Owned by
 * the caller, zeroed before a request's first resolve; cleared with
 * tsi_resolve_state_clear once the request is answered (never while a
 * resolve returned TSI_ERR_AGAIN and its wake has not come). */
struct tsi_resolve_state {
	struct tsi_hash_job *job; /* unix: the hashing asked for */
	/* kubelet: waiting for a pod-list fetch (linked in the client's
	 * list of waiters until woken), and whether it has waited. */
	struct tsi_resolve_state *next_waiter;
	struct tsi_wake wake;
	int kubelet_waited;
};
void tsi_resolve_state_clear(struct tsi_resolve_state *st);

/* pid -> host workload: uid (from the peer credentials), exe path, and the
 * executable's SHA-256 as the one image. bind (may be NULL, borrowed): the
 * snapshot taken at accept; the executable must be the file it recorded
 * (TSI_ERR_UNIDENTIFIED otherwise). h (may be NULL: hash here, no size
 * limit): an executable whose digest is not cached is hashed there;
 * st and wake are then required. Returns TSI_ERR_AGAIN when it is: wake
 * comes once the digest (or a failure) is known, and the same call with
 * the same st gives the answer. An executable over h's max_size is
 * TSI_ERR_UNIDENTIFIED (logged resolve.exe_too_large); hashing busy for
 * this uid or in all, TSI_ERR_IO (logged resolve.hash_busy: 503, retry).
 * *out: tsi_workload_free. */
int tsi_unix_resolve(const char *proc_root, pid_t pid, uid_t uid,
    const struct tsi_peer *bind, struct tsi_exe_hasher *h,
    struct tsi_resolve_state *st, const struct tsi_wake *wake,
    struct tsi_workload **out);

/* The configured resolver. */
struct tsi_resolver;

int tsi_resolver_new(const struct tsi_issuer_config *cfg,
    struct tsi_resolver **out);
void tsi_resolver_free(struct tsi_resolver *r);
/* The workload of the process behind a connection (p: the snapshot taken
 * at accept, borrowed). The caller checks tsi_peer_check afterwards.
 * TSI_ERR_AGAIN: the answer needs slow work done elsewhere (see
 * tsi_unix_resolve); wake comes once, then ask again with the same st. */
int tsi_resolver_resolve(struct tsi_resolver *r, const struct tsi_peer *p,
    struct tsi_resolve_state *st, const struct tsi_wake *wake,
    struct tsi_workload **out);

/* Before the server stops: every request waiting in the resolver is woken
 * and no request waits any more. */
void tsi_resolver_stop(struct tsi_resolver *r);

#endif /* TSI_ISSUER_RESOLVE_H */
