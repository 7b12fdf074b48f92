/*
 * sidecar.h - internals of tsi-sidecar (CONTRACT "Sidecar").
 *
 * The sidecar gets the workload's identity JWT from the node's tsi-issuer
 * (HTTP over a Unix socket), logs in to tsi-vault with it, reads the secrets
 * the pod asked for (TSI_SECRETS) and writes each to a file under one
 * destination directory. The pieces, one file each:
 *
 *   spec.c     TSI_SECRETS: the shared rule (tsi/secrets_spec.h) plus run state
 *   render.c   field extraction and output formats (json | raw | env)
 *   writer.c   atomic, symlink-safe file writes and removals in a directory fd
 *   backoff.c  the retry schedule
 *   fetch.c    libcurl: issuer token, login, KV read
 *   settings.c flags, environment and --config into one settings struct
 *   run.c      the --once and refresh loops
 *   wipe.c     installs the wiping allocators (lib/wipe.c) for jansson, curl
 *
 * Not a public interface: only tsi-sidecar and its tests include it.
 */
#ifndef TSI_SIDECAR_H
#define TSI_SIDECAR_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "tsi/secrets_spec.h"

struct tsi_buf;
struct tsi_config;

/* Limits on untrusted or operator-supplied input. */
/* The TSI_SECRETS rule is shared with tsi-injector (tsi/secrets_spec.h). */
#define TSI_SIDECAR_SPEC_MAX_BYTES TSI_SECRETS_SPEC_MAX_BYTES
#define TSI_SIDECAR_MAX_SECRETS TSI_SECRETS_MAX
#define TSI_SIDECAR_RESPONSE_MAX (1024 * 1024) /* any HTTP response body */

enum tsi_sidecar_format {
	TSI_SIDECAR_FMT_JSON = TSI_SECRETS_FMT_JSON,
	TSI_SIDECAR_FMT_RAW = TSI_SECRETS_FMT_RAW,
	TSI_SIDECAR_FMT_ENV = TSI_SECRETS_FMT_ENV,
};

/* One requested secret. The strings are borrowed from the spec's shared
 * part (the validated entries) for the spec's life. */
struct tsi_sidecar_secret {
	char *name;  /* unique, names the secret in logs */
	char *path;  /* KV path below secret/data/, e.g. "medical/record" */
	char *dest;  /* file path relative to the destination directory */
	char *field; /* NULL: whole data object */
	enum tsi_sidecar_format format;
	/* Run state, used by run.c. */
	int on_disk;              /* a file we wrote is in place */
	unsigned char digest[32]; /* SHA-256 of what is on disk */
	int done;                 /* --once: settled (written or final error) */
	int last_err;             /* TSI_OK or the last error code */
	char reason[256];         /* last error, for the final message */
};

struct tsi_sidecar_spec {
	struct tsi_sidecar_secret *v;
	size_t n;
	struct tsi_secrets_spec *shared; /* owned: the strings of v */
};

/*
 * Parses and validates a TSI_SECRETS JSON array (text of len bytes, not
 * necessarily NUL-terminated). dest_dir is the destination directory: an
 * absolute dest is accepted only when it lies below it (and is then made
 * relative). src names the input in messages ("TSI_SECRETS", "file:line").
 * The rule is tsi_secrets_spec_parse (shared with tsi-injector).
 * On failure returns TSI_ERR_TOO_LARGE, TSI_ERR_PARSE or TSI_ERR_INVALID_ARG
 * with a one-line reason in err, and *out is untouched.
 * *out: caller frees with tsi_sidecar_spec_free.
 */
int tsi_sidecar_spec_parse(const char *src, const char *text, size_t len,
    const char *dest_dir, struct tsi_sidecar_spec **out, char *err,
    size_t errlen);

/* Same, from an already decoded JSON array (borrowed). */
int tsi_sidecar_spec_from_json(const char *src, const json_t *arr,
    const char *dest_dir, struct tsi_sidecar_spec **out, char *err,
    size_t errlen);

void tsi_sidecar_spec_free(struct tsi_sidecar_spec *s);

/* "json" | "raw" | "env" -> format; TSI_ERR_INVALID_ARG otherwise. */
int tsi_sidecar_format_parse(const char *s, enum tsi_sidecar_format *out);
const char *tsi_sidecar_format_name(enum tsi_sidecar_format f);

/*
 * Renders the KV data object (borrowed) as the file content of secret sec.
 * json: the object (or, with field, the field's value) as JSON plus "\n";
 * raw: the field's string value as is (other JSON types as JSON);
 * env: KEY=VALUE lines for every member (or only the field), keys must be
 * shell variable names and values may not contain a newline or NUL.
 * TSI_ERR_NOT_FOUND when the field is absent, TSI_ERR_PARSE when the data
 * does not fit the format; err then says why without quoting any value.
 * *out: a new buffer, caller frees with tsi_buf_free (wipes).
 */
int tsi_sidecar_render(const struct tsi_sidecar_secret *sec, const json_t *data,
    struct tsi_buf **out, char *err, size_t errlen);

/*
 * Opens the destination directory (creating it, mode 0700, when missing).
 * *dirfd: caller closes.
 */
int tsi_sidecar_dir_open(const char *path, int *dirfd, char *err,
    size_t errlen);

/*
 * Writes len bytes to rel (relative to dirfd) atomically: a temporary file in
 * the same directory, written, fchmod 0400, fsync'd, renamed over rel, then
 * the directory fsync'd. Intermediate directories are created (0700) and
 * opened with O_NOFOLLOW: a symlink anywhere on the way fails with
 * TSI_ERR_IO; a symlink planted at rel itself is replaced, never followed.
 * Readers see the old content or the new, never a partial file. On failure
 * the temporary file is removed and rel is unchanged. A directory created
 * on the way is made durable in its parent too.
 */
int tsi_sidecar_write_file(int dirfd, const char *rel, const void *data,
    size_t len, char *err, size_t errlen);

/*
 * A file written under a temporary name in its directory and not yet in
 * place. Lets a batch of files share the expensive part of a durable write:
 * every file is fsync'd, but each directory only once, after all the renames.
 * Owns parent and fd (-1: none); rel is borrowed and must outlive it.
 */
struct tsi_sidecar_staged {
	int parent;       /* the destination's directory */
	int fd;           /* the temporary file, written and 0400 */
	const char *rel;  /* the destination, relative to the dirfd */
	const char *base; /* into rel: the file name */
	char tmp[32];     /* the temporary name in parent */
};

/*
 * First half of tsi_sidecar_write_file: walks to rel's directory (as
 * described there), writes len bytes to a fresh temporary file, makes it
 * 0400 and starts its writeback (not yet durable, not yet visible under
 * rel). On failure nothing is left behind and *st is empty. *st: finish it
 * with tsi_sidecar_commit_files or tsi_sidecar_stage_drop.
 */
int tsi_sidecar_stage_file(int dirfd, const char *rel, const void *data,
    size_t len, struct tsi_sidecar_staged *st, char *err, size_t errlen);

/*
 * Second half, for n staged files at once: fsyncs each file, renames each
 * over its destination, then fsyncs each distinct directory once. res[i]
 * gets TSI_OK or TSI_ERR_IO, and errs + i * errlen the reason of a failure
 * (errs: n strings of errlen bytes). A file whose own fsync fails is
 * removed and its destination unchanged. Every entry is emptied.
 */
void tsi_sidecar_commit_files(struct tsi_sidecar_staged *v, size_t n, int *res,
    char *errs, size_t errlen);

/* Discards a staged file (removes the temporary). Accepts an empty one. */
void tsi_sidecar_stage_drop(struct tsi_sidecar_staged *st);

/* Removes rel below dirfd (no symlink followed); absent is success. */
int tsi_sidecar_remove_file(int dirfd, const char *rel, char *err,
    size_t errlen);

/*
 * Delay before retry number attempt (0-based): d = min(cap, base * 2^attempt),
 * result in [d/2, d] chosen with rnd ("equal jitter"). Never above cap_ms.
 */
long tsi_sidecar_backoff_ms(unsigned attempt, long base_ms, long cap_ms,
    uint32_t rnd);

/* A refresh delay: interval_ms scaled by a factor in [0.8, 1.2) from rnd. */
long tsi_sidecar_jitter_ms(long interval_ms, uint32_t rnd);

/* Settings after flags, environment and --config are merged. */
struct tsi_sidecar_settings {
	const char *issuer_socket; /* TSI_ISSUER_SOCKET / issuer_socket */
	const char *vault_addr;    /* VAULT_ADDR / vault_addr */
	const char *role;          /* TSI_ROLE / role */
	const char *cacert;   /* VAULT_CACERT / vault_cacert; NULL: system */
	const char *audience; /* TSI_AUDIENCE / audience */
	const char *dest_dir; /* --dest-dir / TSI_SECRETS_DIR / dest_dir */
	int once;             /* --once / TSI_ONCE / once */
	long refresh_ms;      /* TSI_REFRESH_INTERVAL (s) / refresh_interval */
	int retry_max;        /* TSI_RETRY_MAX / retry_max: attempts */
	long retry_base_ms;   /* TSI_RETRY_BASE_MS / retry_base_ms */
	long retry_cap_ms;    /* TSI_RETRY_MAX_MS / retry_max_ms */
	long http_timeout_ms; /* TSI_HTTP_TIMEOUT_MS / http_timeout_ms */
	struct tsi_sidecar_spec *spec; /* owned */
	struct tsi_config *cfg;        /* owned; strings above may borrow it */
};

/*
 * Builds settings from argv and the environment. Returns TSI_OK, or
 * TSI_ERR_CONFIG / TSI_ERR_INVALID_ARG with the reason in err (exit 2), or
 * TSI_ERR_EXISTS when --help/--version was handled (exit 0).
 * *st: caller releases with tsi_sidecar_settings_clear.
 */
int tsi_sidecar_settings_load(int argc, char **argv,
    struct tsi_sidecar_settings *st, char *err, size_t errlen);
void tsi_sidecar_settings_clear(struct tsi_sidecar_settings *st);

/* HTTP side (fetch.c). */
struct tsi_sidecar_http;

/* stop is polled during transfers; a nonzero value aborts them. */
int tsi_sidecar_http_new(const struct tsi_sidecar_settings *st,
    volatile sig_atomic_t *stop, struct tsi_sidecar_http **out);
void tsi_sidecar_http_free(struct tsi_sidecar_http *h);

/*
 * Error classes returned by the three calls below: TSI_OK; TSI_ERR_AGAIN
 * (transport failure, 429, 5xx: retry); TSI_ERR_UNIDENTIFIED (issuer 403),
 * TSI_ERR_DENIED (403), TSI_ERR_NOT_FOUND (404), TSI_ERR_PARSE,
 * TSI_ERR_TOO_LARGE: final. err gets a one-line reason without secrets.
 */
int tsi_sidecar_is_final(int r);

/*
 * Asks for n requests (at most 16) that open connections to tsi-vault
 * (GET /v1/sys/health, answers ignored). They start right after the next
 * request (the issuer's token) has left, and connect, and over TLS shake
 * hands, while the issuer and the login are waited for, so that the n
 * reads after the login (which borrows one of them) all leave at the same
 * moment on ready connections. Once per process; a failure only makes it
 * slower.
 */
void tsi_sidecar_warm_up(struct tsi_sidecar_http *h, size_t n);

/* *jwt: caller frees with tsi_strfree. */
int tsi_sidecar_get_token(struct tsi_sidecar_http *h, char **jwt,
    long long *expires_at, char *err, size_t errlen);
/* The longest client token accepted, as tsi-vault's own bound. */
#define TSI_SIDECAR_TOKEN_MAX 256
/* 1 when tok is a Vault token: 1 to TSI_SIDECAR_TOKEN_MAX characters of
 * A-Z a-z 0-9 '.' '_' '-' (tsi-vault: "hvs." and base64url; Vault: its
 * "hvs."/"hvb."/"s." tokens). Anything else, CR and LF first, is refused
 * before it can reach a header. */
int tsi_sidecar_token_ok(const char *tok);
/* *client_token: caller frees with tsi_strfree. *lease_s: 0 = no expiry.
 * A client_token that fails tsi_sidecar_token_ok is TSI_ERR_PARSE. */
int tsi_sidecar_login(struct tsi_sidecar_http *h, const char *jwt,
    char **client_token, long long *lease_s, char *err, size_t errlen);
/* *data: the KV data object, caller frees with json_decref (wiping
 * allocator installed by tsi_sidecar_wipe_install). *version may be NULL. */
int tsi_sidecar_read(struct tsi_sidecar_http *h, const char *client_token,
    const char *path, json_t **data, long long *version, char *err,
    size_t errlen);

/* One read of a batch. path is borrowed; the rest is filled in. */
struct tsi_sidecar_read_req {
	const char *path;
	int r;        /* error class, as tsi_sidecar_read */
	json_t *data; /* on TSI_OK: caller frees with json_decref */
	long long version;
	char err[512]; /* on failure: the reason */
};

/* Called by tsi_sidecar_read_many as soon as reqs[i] has its result (in
 * the order the answers arrive); may take q->data (then set it NULL). */
typedef void (
    *tsi_sidecar_read_fn)(void *arg, size_t i, struct tsi_sidecar_read_req *q);

/*
 * Reads n secrets concurrently (at most 16 connections): tsi-vault then
 * commits their audit records in one group instead of one by one. done
 * (may be NULL) is called for each request as its answer arrives, so the
 * caller can write files while the other reads are still under way.
 * Returns TSI_OK when every request has its result in reqs[i].r (and data),
 * or TSI_ERR_ALLOC / TSI_ERR_INTERNAL when the batch itself failed: then
 * done was called only for the requests that finished, the others keep
 * r = TSI_ERR_INTERNAL (no data then needs freeing beyond what
 * reqs[i].data holds).
 */
int tsi_sidecar_read_many(struct tsi_sidecar_http *h, const char *client_token,
    struct tsi_sidecar_read_req *reqs, size_t n, tsi_sidecar_read_fn done,
    void *arg);

/* Installs wiping allocators for jansson and OpenSSL (OpenSSL's only when
 * still possible). Call first in main, before either allocates. */
void tsi_sidecar_wipe_install(void);

/* Initialises OpenSSL (its configuration file read only when tls is
 * nonzero, i.e. VAULT_ADDR is https://; no exit handler) and libcurl with
 * the wiping allocators. Call once, after tsi_sidecar_wipe_install and
 * before any libcurl call. TSI_OK, or TSI_ERR_INTERNAL when libcurl cannot
 * be initialised. */
int tsi_sidecar_curl_init(int tls);

/* run.c: notes the time main started (the first thing main does), from
 * which --once's summary line measures its phases. */
void tsi_sidecar_mark_main(void);

/* run.c: returns the process exit code. */
int tsi_sidecar_run(struct tsi_sidecar_settings *st);

#endif /* TSI_SIDECAR_H */
