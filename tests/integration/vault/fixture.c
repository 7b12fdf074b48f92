/* fixture.c - see fixture.h. */
#include "fixture.h"

#include "tests/support/pki.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/x509.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define P(dst, ...) snprintf((dst), sizeof(dst), __VA_ARGS__)

static int
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ssize_t w;

	if (fd < 0)
		return -1;
	w = write(fd, data, len);
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

int
vfx_write_policy(struct vfx *f, const char *name, const char *text)
{
	char path[600];

	P(path, "%s/%s", f->policy_dir, name);
	return write_file(path, text, strlen(text), 0644);
}

int
vfx_free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) != 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	port = ntohs(a.sin_port);
	close(s);
	return port;
}

void
vfx_image(const char *s, char out[72])
{
	unsigned char h[32];
	int i;

	SHA256((const unsigned char *)s, strlen(s), h);
	memcpy(out, "sha256:", 7);
	for (i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", h[i]);
}

/* A TLS CA and a server certificate for 127.0.0.1 / localhost. */
static int
make_tls(struct vfx *f)
{
	EVP_PKEY *cakey = pki_key(), *key = pki_key();
	struct pki_spec ca = { .cn = "tsi test TLS CA",
		.key = cakey,
		.ca = 1,
		.pathlen = -1,
		.ku = "critical,keyCertSign,cRLSign",
		.not_before = -3600,
		.not_after = 86400 };
	X509 *cacert = NULL, *cert = NULL;
	int r = -1;

	if (cakey == NULL || key == NULL)
		goto out;
	if ((cacert = pki_cert(&ca)) == NULL)
		goto out;
	{
		struct pki_spec s = { .cn = "127.0.0.1",
			.issuer = cacert,
			.issuer_key = cakey,
			.key = key,
			.ca = 0,
			.pathlen = -1,
			.ku = "critical,digitalSignature",
			.san = "IP:127.0.0.1,DNS:localhost",
			.not_before = -3600,
			.not_after = 86400 };
		if ((cert = pki_cert(&s)) == NULL)
			goto out;
	}
	if (pki_write_cert(f->tls_ca, cacert) != 0 ||
	    pki_write_cert(f->tls_cert, cert) != 0 ||
	    pki_write_key(f->tls_key, key) != 0)
		goto out;
	chmod(f->tls_key, 0600);
	r = 0;
out:
	X509_free(cacert);
	X509_free(cert);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	return r;
}

int
vfx_init(struct vfx *f, const char *policy, const char *extra_conf)
{
	unsigned char key[32];
	char hex[65], conf[4096];
	int i;

	memset(f, 0, sizeof(*f));
	P(f->dir, "/tmp/tsi-vault-test.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	P(f->ca_dir, "%s/ca", f->dir);
	P(f->tls_ca, "%s/tls-ca.pem", f->dir);
	P(f->tls_cert, "%s/tls.pem", f->dir);
	P(f->tls_key, "%s/tls.key", f->dir);
	P(f->key_file, "%s/kv.key", f->dir);
	P(f->policy_dir, "%s/policies", f->dir);
	P(f->data_dir, "%s/data", f->dir);
	P(f->conf, "%s/vault.conf", f->dir);
	P(f->root_file, "%s/root-token", f->dir);
	P(f->revoked, "%s/revoked.txt", f->dir);
	P(f->log, "%s/server.log", f->dir);
	if (tsi_ca_init(f->ca_dir, "tsi test identity CA", 30) != TSI_OK)
		return -1;
	if (make_tls(f) != 0)
		return -1;
	if (RAND_bytes(key, sizeof(key)) != 1)
		return -1;
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	if (write_file(f->key_file, hex, 64, 0600) != 0)
		return -1;
	if (write_file(f->revoked, "# revoked certificates\n", 23, 0644) != 0)
		return -1;
	if (mkdir(f->policy_dir, 0755) != 0)
		return -1;
	if (policy != NULL && vfx_write_policy(f, "test.conf", policy) != 0)
		return -1;
	if ((f->port = vfx_free_port()) < 0)
		return -1;
	P(f->addr, "https://127.0.0.1:%d", f->port);
	P(conf,
	    "# written by the vault integration test\n"
	    "listen = \"127.0.0.1:%d\";\n"
	    "tls_cert = \"%s\";\n"
	    "tls_key = \"%s\";\n"
	    "data_dir = \"%s\";\n"
	    "policy_dir = \"%s\";\n"
	    "trust_ca = [ \"%s/ca.pem\" ];\n"
	    "kv_key_file = \"%s\";\n"
	    "root_token_file = \"%s\";\n"
	    "revocation_file = \"%s\";\n"
	    "threads = 4;\n"
	    "kv_map_size = 16777216;\n"
	    "%s"
	    "%s",
	    f->port, f->tls_cert, f->tls_key, f->data_dir, f->policy_dir,
	    f->ca_dir, f->key_file, f->root_file, f->revoked,
	    extra_conf && strstr(extra_conf, "audit_map_size")
	        ? ""
	        : "audit_map_size = 16777216;\n",
	    extra_conf ? extra_conf : "");
	return write_file(f->conf, conf, strlen(conf), 0644);
}

static const char *
bin_dir(void)
{
	const char *d = getenv("TSI_BIN_DIR");
	return d ? d : "build/bin";
}

void
vfx_dump_log(const struct vfx *f)
{
	char buf[4096];
	FILE *fp = fopen(f->log, "r");
	size_t n;

	if (fp == NULL)
		return;
	fprintf(stderr, "---- tsi-vault log ----\n");
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(fp);
}

int
vfx_start(struct vfx *f)
{
	char exe[512], listen[64], outp[320], ca[400];
	struct vresp r;
	int i, fd, ofd;

	P(exe, "%s/tsi-vault", bin_dir());
	P(listen, "127.0.0.1:%d", f->port);
	P(outp, "%s/server.out", f->dir);
	P(ca, "%s/ca.pem", f->ca_dir);
	if (f->dev)
		P(f->addr, "http://127.0.0.1:%d", f->port);
	f->pid = fork();
	if (f->pid < 0)
		return -1;
	if (f->pid == 0) {
		/* A test that fails half-way does not leave a server behind. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		ofd = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		if (ofd >= 0)
			dup2(ofd, 1);
		if (f->dev)
			execl(exe, exe, "--dev", "--dev-listen", listen,
			    "--dev-root-token-id", "dev-root-token-0123456789",
			    "--policy-dir", f->policy_dir, "--trust-ca", ca,
			    (char *)NULL);
		else
			execl(exe, exe, "--config", f->conf, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 300; i++) {
		int st;
		if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
			f->pid = 0;
			vfx_dump_log(f);
			return -1;
		}
		memset(&r, 0, sizeof(r));
		if (vfx_http(f, NULL, "GET", "/v1/sys/health", NULL, NULL,
		        &r) == 0 &&
		    r.status > 0) {
			vresp_clear(&r);
			break;
		}
		vresp_clear(&r);
		usleep(50 * 1000);
	}
	if (i == 300) {
		vfx_dump_log(f);
		return -1;
	}
	if (f->dev)
		P(f->root, "dev-root-token-0123456789");
	else {
		FILE *fp = fopen(f->root_file, "r");
		if (fp == NULL || fgets(f->root, sizeof(f->root), fp) == NULL) {
			if (fp)
				fclose(fp);
			return -1;
		}
		fclose(fp);
		f->root[strcspn(f->root, "\r\n")] = '\0';
	}
	return 0;
}

int
vfx_stop(struct vfx *f)
{
	int st, i;

	if (f->pid <= 0)
		return -1;
	kill(f->pid, SIGTERM);
	for (i = 0; i < 200; i++) {
		if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
			f->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		usleep(50 * 1000);
	}
	kill(f->pid, SIGKILL);
	waitpid(f->pid, &st, 0);
	f->pid = 0;
	return -1;
}

/* How many times the server's log reports a finished reload. */
static int
reloads_logged(const struct vfx *f)
{
	char line[8192];
	FILE *fp = fopen(f->log, "r");
	int n = 0;

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strstr(line, "\"reload.done\"") != NULL)
			n++;
	fclose(fp);
	return n;
}

int
vfx_reload(struct vfx *f)
{
	int before, i;

	if (f->pid <= 0 || (before = reloads_logged(f)) < 0)
		return -1;
	if (kill(f->pid, SIGHUP) != 0)
		return -1;
	/* Until the log says the reload finished: up to 30 s on a loaded
	 * machine. */
	for (i = 0; i < 3000; i++) {
		if (reloads_logged(f) > before)
			return 0;
		usleep(10 * 1000);
	}
	vfx_dump_log(f);
	return -1;
}

static int
rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

void
vfx_cleanup(struct vfx *f)
{
	if (f->pid > 0)
		vfx_stop(f);
	if (f->dir[0] != '\0')
		nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int
vfx_node_new(struct vfx *f, const char *cluster, const char *region,
    const char *dc, const char *node, struct vfx_node *n)
{
	struct tsi_location loc;
	char cap[400], kp[400], *csr = NULL, *pem = NULL;
	BIO *b = NULL;
	int r = -1;

	memset(n, 0, sizeof(*n));
	P(n->cluster, "%s", cluster);
	P(n->region, "%s", region);
	P(n->dc, "%s", dc);
	P(n->node, "%s", node);
	if ((n->key = pki_key()) == NULL ||
	    tsi_signer_new_soft(n->key, &n->signer) != TSI_OK ||
	    tsi_x509_make_csr(n->signer, node, &csr) != TSI_OK)
		goto out;
	loc.cluster_name = n->cluster;
	loc.region = n->region;
	loc.datacenter = n->dc;
	loc.node = n->node;
	P(cap, "%s/ca.pem", f->ca_dir);
	P(kp, "%s/ca.key", f->ca_dir);
	if (tsi_ca_sign_csr(cap, kp, csr, strlen(csr), &loc, 30, &pem) !=
	    TSI_OK)
		goto out;
	if ((b = BIO_new_mem_buf(pem, -1)) == NULL ||
	    (n->cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL)
		goto out;
	r = 0;
out:
	BIO_free(b);
	free(csr);
	free(pem);
	return r;
}

void
vfx_node_free(struct vfx_node *n)
{
	tsi_signer_free(n->signer);
	EVP_PKEY_free(n->key);
	X509_free(n->cert);
	memset(n, 0, sizeof(*n));
}

char *
vfx_jwt(struct vfx_node *n, const char *image, const char *ns,
    const json_t *extra, long ttl)
{
	EVP_PKEY *skey = NULL;
	struct tsi_signer *ss = NULL;
	X509 *scert = NULL;
	STACK_OF(X509) *chain = NULL;
	json_t *claims = NULL;
	char *tok = NULL, sub[256], jti[33];
	unsigned char rnd[16];
	time_t now = time(NULL);
	int i;

	if ((skey = pki_key()) == NULL ||
	    tsi_signer_new_soft(skey, &ss) != TSI_OK ||
	    tsi_x509_issue_session_cert(n->signer, n->cert, skey, 3600,
	        &scert) != TSI_OK)
		goto out;
	chain = sk_X509_new_null();
	sk_X509_push(chain, scert);
	sk_X509_push(chain, n->cert);
	RAND_bytes(rnd, sizeof(rnd));
	for (i = 0; i < 16; i++)
		snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
	P(sub, "spiffe://tsi.example/ns/%s/sa/default", ns);
	claims = json_pack("{sssss[s]sIsIsIsss[s]s[s]ssssssssssssss}", "iss",
	    "tsi-issuer", "sub", sub, "aud", "tsi-vault", "iat",
	    (json_int_t)now, "nbf", (json_int_t)now, "exp",
	    (json_int_t)(now + ttl), "jti", jti, "images", image,
	    "images-names", "registry.example/app:1", "cluster-name",
	    n->cluster, "region", n->region, "datacenter", n->dc, "node",
	    n->node, "namespace", ns, "pod", "app-0", "service-account",
	    "default");
	if (claims == NULL)
		goto out;
	if (extra != NULL)
		json_object_update(claims, (json_t *)extra);
	if (tsi_jwt_mint(ss, chain, claims, &tok) != TSI_OK)
		tok = NULL;
out:
	sk_X509_free(chain);
	X509_free(scert);
	tsi_signer_free(ss);
	EVP_PKEY_free(skey);
	json_decref(claims);
	return tok;
}

void
vresp_clear(struct vresp *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

static size_t
collect(char *p, size_t sz, size_t n, void *arg)
{
	struct tsi_buf *b = arg;

	return tsi_buf_put(b, p, sz * n) == TSI_OK ? sz * n : 0;
}

int
vfx_http(struct vfx *f, CURL *c, const char *method, const char *path,
    const char *token, const char *body, struct vresp *out)
{
	struct curl_slist *h = NULL;
	struct tsi_buf *b = tsi_buf_new(8 << 20);
	char url[1024], th[512];
	CURL *own = NULL;
	CURLcode rc;
	json_error_t jerr;

	memset(out, 0, sizeof(*out));
	if (b == NULL)
		return -1;
	if (c == NULL)
		c = own = curl_easy_init();
	else
		curl_easy_reset(c);
	P(url, "%s%s", f->addr, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, f->tls_ca);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	if (token != NULL) {
		P(th, "X-Vault-Token: %s", token);
		h = curl_slist_append(h, th);
	}
	if (body != NULL) {
		char cth[128];
		P(cth, "Content-Type: %s",
		    f->content_type ? f->content_type : "application/json");
		h = curl_slist_append(h, cth);
		/* Large bodies wait for the server's go-ahead, so a 413 sent
		 * before the body is read reaches the client (as curl does
		 * on its own from 1 MiB). */
		if (strlen(body) > 16 * 1024)
			h = curl_slist_append(h, "Expect: 100-continue");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
		curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &out->connects);
		out->body = tsi_buf_take(b, NULL);
		if (out->body != NULL && out->body[0] != '\0')
			out->json = json_loads(out->body, 0, &jerr);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	tsi_buf_free(b);
	if (own != NULL)
		curl_easy_cleanup(own);
	return rc == CURLE_OK ? 0 : -1;
}

char *
vfx_login(struct vfx *f, const char *role, const char *jwt, long *status)
{
	struct vresp r;
	json_t *req = json_pack("{ssss}", "role", role, "jwt", jwt);
	char *body = json_dumps(req, JSON_COMPACT), *tok = NULL;
	const char *t;

	json_decref(req);
	*status = 0;
	if (vfx_http(f, NULL, "POST", "/v1/auth/trusted-identity/login", NULL,
	        body, &r) == 0) {
		*status = r.status;
		t = json_string_value(
		    json_object_get(json_object_get(r.json, "auth"),
		        "client_token"));
		if (r.status == 200 && t != NULL)
			tok = strdup(t);
	}
	free(body);
	vresp_clear(&r);
	return tok;
}

char *
vfx_login_as(struct vfx *f, struct vfx_node *n, const char *image,
    const char *ns, const char *role, long *status)
{
	char *jwt = vfx_jwt(n, image, ns, NULL, 300), *tok;

	*status = 0;
	if (jwt == NULL)
		return NULL;
	tok = vfx_login(f, role, jwt, status);
	free(jwt);
	return tok;
}

static long
kv_request(struct vfx *f, const char *method, const char *token,
    const char *path, const char *body, struct vresp *out)
{
	struct vresp r;
	char p[1024];
	long status;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if ((size_t)snprintf(p, sizeof(p), "/v1/secret/data/%s", path) >=
	        sizeof(p) ||
	    vfx_http(f, NULL, method, p, token, body, &r) != 0)
		return -1;
	status = r.status;
	if (out != NULL)
		*out = r;
	else
		vresp_clear(&r);
	return status;
}

long
vfx_kv_put(struct vfx *f, const char *token, const char *path, const char *body)
{
	return kv_request(f, "POST", token, path, body, NULL);
}

long
vfx_kv_get(struct vfx *f, const char *token, const char *path,
    struct vresp *out)
{
	return kv_request(f, "GET", token, path, NULL, out);
}
