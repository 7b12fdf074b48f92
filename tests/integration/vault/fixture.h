/*
 * fixture.h - a real tsi-vault for integration tests: a temporary directory
 * with an identity CA (made by the core's tsi_ca_init), a TLS CA and server
 * certificate for 127.0.0.1, a KV key file, policies, a config file; the
 * server started as a child process on a free loopback port and stopped by
 * PID; libcurl as the client, verifying the server certificate.
 */
#ifndef TSI_TEST_VAULT_FIXTURE_H
#define TSI_TEST_VAULT_FIXTURE_H

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/x509.h>
#include <sys/types.h>

#include "tsi/signer.h"

struct vfx {
	char dir[256];
	char ca_dir[300]; /* identity CA: ca.pem, ca.key */
	char tls_ca[300]; /* CA file the client trusts */
	char tls_cert[300];
	char tls_key[300];
	char key_file[300];
	char policy_dir[300];
	char data_dir[300];
	char conf[300];
	char root_file[300];
	char revoked[300];
	char log[300];
	char addr[64];  /* https://127.0.0.1:PORT */
	char root[128]; /* the root token */
	int port;
	int dev;
	pid_t pid;
	const char
	    *content_type; /* of request bodies; NULL: application/json */
};

/* Makes the directory, CAs, certificates, key, policy and config.
 * policy: text of policies/test.conf (NULL: none). extra_conf: appended to
 * the config file (NULL: nothing). Returns 0 on success. */
int vfx_init(struct vfx *f, const char *policy, const char *extra_conf);
/* Starts tsi-vault --config (or --dev when f->dev) and waits until
 * /v1/sys/health answers. Returns 0 on success. */
int vfx_start(struct vfx *f);
/* SIGTERM, then waitpid; returns the exit status (or -1). */
int vfx_stop(struct vfx *f);
/* Stops if running, removes the directory. */
void vfx_cleanup(struct vfx *f);
/* Sends SIGHUP and waits until the server's log reports the reload done
 * ("reload.done", whatever its result). Returns 0 then, -1 when it was
 * not reported within 30 s. */
int vfx_reload(struct vfx *f);
/* Prints the server's log (for failures). */
void vfx_dump_log(const struct vfx *f);
/* Writes text to policy_dir/name. */
int vfx_write_policy(struct vfx *f, const char *name, const char *text);

/* A node: its key, its certificate from the identity CA (location bound as
 * URI SANs by tsi_ca_sign_csr), and a software signer. */
struct vfx_node {
	EVP_PKEY *key;
	struct tsi_signer *signer;
	X509 *cert;
	char cluster[64], region[64], dc[64], node[64];
};
int vfx_node_new(struct vfx *f, const char *cluster, const char *region,
    const char *dc, const char *node, struct vfx_node *n);
void vfx_node_free(struct vfx_node *n);

/* An identity JWT for a workload on node n, signed by a session key that
 * the node certified (the delegated mode), minted with tsi_jwt_mint.
 * image: the workload's one image digest; ns: namespace. extra (may be
 * NULL) is merged over the claims. ttl in seconds. Caller frees (free). */
char *vfx_jwt(struct vfx_node *n, const char *image, const char *ns,
    const json_t *extra, long ttl);

struct vresp {
	long status;
	char *body;    /* NUL-terminated */
	json_t *json;  /* parsed body or NULL */
	long connects; /* CURLINFO_NUM_CONNECTS */
};
void vresp_clear(struct vresp *r);

/* One request. c may be a reused handle (keep-alive) or NULL. body may be
 * NULL. Returns 0 when an HTTP answer came back. */
int vfx_http(struct vfx *f, CURL *c, const char *method, const char *path,
    const char *token, const char *body, struct vresp *out);
/* Logs in; returns the client token (free) or NULL, *status set. */
char *vfx_login(struct vfx *f, const char *role, const char *jwt, long *status);
/* Mints a JWT for image in namespace ns on node n (300 s) and logs in with
 * it; returns the client token (free) or NULL, *status set (0 when no JWT
 * could be minted). */
char *vfx_login_as(struct vfx *f, struct vfx_node *n, const char *image,
    const char *ns, const char *role, long *status);

/* KV v2 on the "secret" mount. path is below secret/data/. Each returns the
 * HTTP status, or -1 when no answer came back. vfx_kv_get: *out (may be
 * NULL) receives the response (vresp_clear). */
long vfx_kv_put(struct vfx *f, const char *token, const char *path,
    const char *body);
long vfx_kv_get(struct vfx *f, const char *token, const char *path,
    struct vresp *out);

/* A free TCP port on 127.0.0.1. */
int vfx_free_port(void);
/* hex SHA-256 of s, "sha256:<hex>" form into out[72]. */
void vfx_image(const char *s, char out[72]);

#endif
