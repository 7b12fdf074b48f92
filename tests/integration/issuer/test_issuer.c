/*
 * test_issuer.c - tsi-issuer end to end: a real swtpm, the node enrolled
 * with the CA functions, the daemon serving its Unix socket, libcurl as the
 * client, tokens checked with tsi_jwt_verify and independently with PyJWT.
 * The unix resolver identifies this test process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "issuer/priv_proto.h"
#include "issuer/privsep.h"
#include "swtpm_ek.h"
#include "tests/support/swtpm.h"
#include "tests/support/pki.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/log.h"
#include "tsi/signer.h"
#include "tsi/x509.h"

struct ifx {
	struct test_swtpm tpm;
	char dir[256];
	char state[320], conf[320], sock[320], ca[320], node[320], log[320];
	char signing[16];
	char resolver[16];
	char node_name[32]; /* empty: worker-1 */
	pid_t issuer;
};

static const char *
bin_dir(void)
{
	const char *b = getenv("TSI_BIN_DIR");
	return b ? b : "build/bin";
}

static const char *
src_dir(void)
{
	const char *s = getenv("TSI_SOURCE_DIR");
	return s ? s : ".";
}

static void
write_text(const char *path, const char *text)
{
	assert_int_equal(test_write_text(path, text), 0);
}

static void
write_config(struct ifx *f, const char *extra)
{
	char text[4096];

	snprintf(text, sizeof(text),
	    "tcti = \"%s\";\nstate_dir = \"%s\";\nnode_cert = \"%s\";\n"
	    "socket = \"%s\";\nsigning = \"%s\";\nresolver = \"%s\";\n"
	    "trust_domain = \"tsi.example\";\ntoken_ttl = 300;\n"
	    "node_name = \"%s\";\n%s",
	    f->tpm.tcti, f->state, f->node, f->sock, f->signing,
	    f->resolver[0] ? f->resolver : "unix",
	    f->node_name[0] ? f->node_name : "worker-1", extra ? extra : "");
	write_text(f->conf, text);
}

/* Runs argv, returns its exit status; stdout into *out (free) if asked. */
static int
run(char *const argv[], char **out)
{
	struct tsi_buf *b = tsi_buf_new(1 << 20);
	char chunk[4096];
	int pfd[2], status = -1;
	ssize_t n;
	pid_t pid;

	assert_non_null(b);
	assert_int_equal(pipe(pfd), 0);
	if ((pid = fork()) == 0) {
		int dn = open("/dev/null", O_WRONLY);
		dup2(pfd[1], 1);
		if (dn >= 0)
			dup2(dn, 2);
		close(pfd[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], chunk, sizeof(chunk))) > 0)
		assert_int_equal(tsi_buf_put(b, chunk, (size_t)n), TSI_OK);
	close(pfd[0]);
	waitpid(pid, &status, 0);
	if (out != NULL)
		*out = tsi_buf_take(b, NULL);
	tsi_buf_free(b);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static struct tsi_location test_loc = { "c1", "eu-de", "fra02", "worker-1" };

/* tsi-issuer csr, then the CA signs it into node_cert. */
static void
enroll(struct ifx *f)
{
	char exe[512], *csr = NULL, *cert = NULL, cap[400], keyp[400];
	char *argv[] = { exe, "csr", "--config", f->conf, NULL };

	snprintf(exe, sizeof(exe), "%s/tsi-issuer", bin_dir());
	assert_int_equal(run(argv, &csr), 0);
	assert_non_null(strstr(csr, "BEGIN CERTIFICATE REQUEST"));
	snprintf(cap, sizeof(cap), "%s/ca.pem", f->ca);
	snprintf(keyp, sizeof(keyp), "%s/ca.key", f->ca);
	if (access(cap, F_OK) != 0)
		assert_int_equal(tsi_ca_init(f->ca, "test cluster CA", 1),
		    TSI_OK);
	assert_int_equal(tsi_ca_sign_csr(cap, keyp, csr, strlen(csr), &test_loc,
	                     1, &cert),
	    TSI_OK);
	write_text(f->node, cert);
	free(cert);
	free(csr);
}

struct resp {
	long status;
	char body[65536];
	size_t len;
};

static size_t
collect(char *p, size_t sz, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t k = sz * n;

	if (k > sizeof(r->body) - 1 - r->len)
		return 0;
	memcpy(r->body + r->len, p, k);
	r->len += k;
	r->body[r->len] = '\0';
	return k;
}

/* GET over the issuer socket. Returns the curl result. */
static CURLcode
get(struct ifx *f, const char *path, struct curl_slist *hdrs, struct resp *r,
    const char *method)
{
	char url[16384];
	CURLcode cc;
	CURL *c = curl_easy_init();

	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, f->sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	if (hdrs != NULL)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (method != NULL)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(c);
	return cc;
}

static void
start_issuer(struct ifx *f)
{
	char exe[512];
	struct resp r;
	long long deadline;
	pid_t pid;

	snprintf(exe, sizeof(exe), "%s/tsi-issuer", bin_dir());
	if ((pid = fork()) == 0) {
		int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		execl(exe, exe, "run", "--config", f->conf, (char *)NULL);
		_exit(127);
	}
	f->issuer = pid;
	deadline = test_now_ms() + 10000;
	while (test_now_ms() < deadline) {
		if (access(f->sock, F_OK) == 0 &&
		    get(f, "/v1/health", NULL, &r, NULL) == CURLE_OK)
			return;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			f->issuer = 0;
			fail_msg("tsi-issuer exited at start (log %s)", f->log);
		}
		usleep(20000);
	}
	fail_msg("tsi-issuer did not start");
}

static int
stop_issuer(struct ifx *f)
{
	int status = -1;

	int i;

	if (f->issuer > 0) {
		kill(f->issuer, SIGTERM);
		/* Bounded: an issuer that ignores SIGTERM fails the test instead
		 * of hanging it. */
		for (i = 0; i < 1000; i++) {
			if (waitpid(f->issuer, &status, WNOHANG) == f->issuer)
				break;
			usleep(10000);
		}
		if (i == 1000) {
			print_error(
			    "tsi-issuer did not stop within 10 s of SIGTERM\n");
			kill(f->issuer, SIGKILL);
			waitpid(f->issuer, &status, 0);
			status = -1;
		}
		f->issuer = 0;
	}
	return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int
setup_mode(void **state, const char *signing)
{
	struct ifx *f = calloc(1, sizeof(*f));

	if (f == NULL || test_swtpm_start(&f->tpm) != 0 ||
	    test_mkdtemp(f->dir, sizeof(f->dir), "issuer-it") != 0)
		return -1;
	/* The front end reads the kubelet token and CA as front_user (nobody),
	 * as from a pod's projected volume: the directory must let it in. */
	if (chmod(f->dir, 0755) != 0)
		return -1;
	snprintf(f->signing, sizeof(f->signing), "%s", signing);
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(f->conf, sizeof(f->conf), "%s/issuer.conf", f->dir);
	snprintf(f->sock, sizeof(f->sock), "%s/issuer.sock", f->dir);
	snprintf(f->ca, sizeof(f->ca), "%s/ca", f->dir);
	snprintf(f->node, sizeof(f->node), "%s/node.pem", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/issuer.log", f->dir);
	write_config(f, NULL);
	*state = f;
	return 0;
}

static int
setup_delegated(void **state)
{
	return setup_mode(state, "delegated");
}

static int
setup_tpm(void **state)
{
	return setup_mode(state, "tpm");
}

static int
teardown(void **state)
{
	struct ifx *f = *state;

	stop_issuer(f);
	test_swtpm_cleanup(&f->tpm);
	test_rmtree(f->dir);
	free(f);
	return 0;
}

/* A token for aud over the socket; *exp from the response. */
static char *
get_token(struct ifx *f, const char *aud, long long *exp)
{
	char path[512];
	struct resp r;
	json_t *j;
	char *tok;

	snprintf(path, sizeof(path), "/v1/token?aud=%s", aud);
	assert_int_equal(get(f, path, NULL, &r, NULL), CURLE_OK);
	if (r.status != 200)
		fail_msg("status %ld: %s", r.status, r.body);
	j = json_loads(r.body, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_string(json_object_get(j, "token")));
	tok = strdup(json_string_value(json_object_get(j, "token")));
	if (exp != NULL)
		*exp = json_integer_value(json_object_get(j, "expires_at"));
	json_decref(j);
	return tok;
}

static json_t *
verify(struct ifx *f, const char *tok, const char *aud,
    struct tsi_verify_result *res)
{
	struct tsi_trust *t = NULL;
	struct tsi_verify_opts o = { aud, 0, -1 };
	json_t *claims = NULL;
	char cap[400];

	snprintf(cap, sizeof(cap), "%s/ca.pem", f->ca);
	assert_int_equal(tsi_trust_new(&t), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_file(t, cap), TSI_OK);
	memset(res, 0, sizeof(*res));
	if (tsi_jwt_verify(t, tok, &o, &claims, res) != TSI_OK)
		fail_msg("tsi_jwt_verify: %s", res->detail);
	tsi_trust_free(t);
	return claims;
}

/* PyJWT's verdict; returns its JSON output (json_decref). */
static json_t *
pyjwt(struct ifx *f, const char *tok, const char *aud)
{
	char script[512], tokp[400], cap[400], *out = NULL;
	char *argv[] = { "/usr/bin/python3", script, tokp, cap, (char *)aud,
		NULL };
	json_t *j;

	snprintf(script, sizeof(script),
	    "%s/tests/integration/issuer/verify_pyjwt.py", src_dir());
	snprintf(tokp, sizeof(tokp), "%s/token.jwt", f->dir);
	snprintf(cap, sizeof(cap), "%s/ca.pem", f->ca);
	write_text(tokp, tok);
	assert_int_equal(run(argv, &out), 0);
	j = json_loads(out, 0, NULL);
	free(out);
	assert_non_null(j);
	return j;
}

static void
self_digest(char out[72], char exe[4096])
{
	unsigned char md[32], buf[65536];
	unsigned int mdlen;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ssize_t n = readlink("/proc/self/exe", exe, 4095);
	FILE *in;
	size_t k;
	int i;

	assert_true(n > 0);
	exe[n] = '\0';
	assert_non_null(in = fopen(exe, "rb"));
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((k = fread(buf, 1, sizeof(buf), in)) > 0)
		EVP_DigestUpdate(ctx, buf, k);
	fclose(in);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	memcpy(out, "sha256:", 7);
	for (i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static const char *
cstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	if (v == NULL)
		fail_msg("claim %s missing", k);
	return v;
}

static void
check_claims(json_t *c, const char *aud, long long exp)
{
	char sub[128], uid[32], digest[72], exe[4096];
	json_t *images;

	self_digest(digest, exe);
	snprintf(sub, sizeof(sub), "spiffe://tsi.example/uid/%lu",
	    (unsigned long)getuid());
	snprintf(uid, sizeof(uid), "%lu", (unsigned long)getuid());
	assert_string_equal(cstr(c, "sub"), sub);
	assert_string_equal(cstr(c, "aud"), aud);
	assert_string_equal(cstr(c, "uid"), uid);
	assert_string_equal(cstr(c, "exe"), exe);
	assert_string_equal(cstr(c, "cluster-name"), "c1");
	assert_string_equal(cstr(c, "region"), "eu-de");
	assert_string_equal(cstr(c, "datacenter"), "fra02");
	assert_string_equal(cstr(c, "node"), "worker-1");
	assert_int_equal(strlen(cstr(c, "jti")), 22); /* 128 bits base64url */
	images = json_object_get(c, "images");
	assert_int_equal(json_array_size(images), 1);
	assert_string_equal(json_string_value(json_array_get(images, 0)),
	    digest);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), exp);
	assert_int_equal(exp - json_integer_value(json_object_get(c, "iat")),
	    300);
}

static void
test_delegated_token(void **state)
{
	struct ifx *f = *state;
	struct tsi_verify_result res;
	json_t *claims, *py, *hdr = NULL, *cl2 = NULL, *jwks;
	struct resp r;
	long long exp = 0;
	char *tok;

	enroll(f);
	start_issuer(f);
	tok = get_token(f, "tsi-vault", &exp);
	claims = verify(f, tok, "tsi-vault", &res);
	check_claims(claims, "tsi-vault", exp);

	/* x5c = [session cert, node cert], kid of the session key */
	assert_int_equal(tsi_jwt_decode_unverified(tok, &hdr, &cl2), TSI_OK);
	assert_int_equal(json_array_size(json_object_get(hdr, "x5c")), 2);
	assert_string_equal(cstr(hdr, "kid"), res.kid);

	/* Another implementation agrees. */
	py = pyjwt(f, tok, "tsi-vault");
	assert_int_equal(json_integer_value(json_object_get(py, "x5c_len")), 2);
	assert_string_equal(cstr(json_object_get(py, "claims"), "sub"),
	    cstr(claims, "sub"));

	/* The JWKS publishes that key. */
	assert_int_equal(get(f, "/v1/jwks", NULL, &r, NULL), CURLE_OK);
	assert_int_equal(r.status, 200);
	jwks = json_loads(r.body, 0, NULL);
	assert_non_null(jwks);
	assert_string_equal(cstr(json_array_get(json_object_get(jwks, "keys"),
	                             0),
	                        "kid"),
	    res.kid);
	assert_string_equal(cstr(json_array_get(json_object_get(jwks, "keys"),
	                             0),
	                        "use"),
	    "sig");
	json_decref(jwks);

	/* Health says ok. */
	assert_int_equal(get(f, "/v1/health", NULL, &r, NULL), CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"tpm\":\"ok\""));

	/* A token for one audience is refused for another. */
	{
		struct tsi_trust *t = NULL;
		struct tsi_verify_opts o = { "other", 0, -1 };
		json_t *c = NULL;
		char cap[400];
		snprintf(cap, sizeof(cap), "%s/ca.pem", f->ca);
		assert_int_equal(tsi_trust_new(&t), TSI_OK);
		assert_int_equal(tsi_trust_add_ca_file(t, cap), TSI_OK);
		assert_int_equal(tsi_jwt_verify(t, tok, &o, &c, &res),
		    TSI_ERR_BAD_TOKEN);
		tsi_trust_free(t);
	}
	json_decref(hdr);
	json_decref(cl2);
	json_decref(py);
	json_decref(claims);
	free(tok);
	assert_int_equal(stop_issuer(f), 0);
}

static void
test_caller_sets_only_aud(void **state)
{
	struct ifx *f = *state;
	struct curl_slist *h = NULL;
	struct tsi_verify_result res;
	struct resp r;
	json_t *claims;
	char *tok;
	int i;
	static const char *bad[] = {
		"/v1/token?aud=a&sub=spiffe://tsi.example/ns/kube-system/sa/"
		"admin",
		"/v1/token?aud=a&namespace=kube-system",
		"/v1/token?aud=a&images=sha256:00",
		"/v1/token?aud=a&aud=b",
		"/v1/token",
		"/v1/token?aud=",
		"/v1/token?aud=two%20words",
		"/v1/token?aud=%0a",
	};

	enroll(f);
	start_issuer(f);
	for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
		assert_int_equal(get(f, bad[i], NULL, &r, NULL), CURLE_OK);
		if (r.status != 400)
			fail_msg("%s: status %ld", bad[i], r.status);
		assert_null(strstr(r.body, "token\""));
	}
	/* Headers naming claims change nothing. */
	h = curl_slist_append(h,
	    "Sub: spiffe://tsi.example/ns/kube-system/sa/admin");
	h = curl_slist_append(h, "X-Tsi-Namespace: kube-system");
	h = curl_slist_append(h, "Images: sha256:0000");
	h = curl_slist_append(h, "X-Forwarded-For: 10.0.0.1");
	h = curl_slist_append(h, "Authorization: Bearer whatever");
	{
		char path[64];
		long long exp;
		json_t *j;
		snprintf(path, sizeof(path), "/v1/token?aud=tsi-vault");
		assert_int_equal(get(f, path, h, &r, NULL), CURLE_OK);
		assert_int_equal(r.status, 200);
		j = json_loads(r.body, 0, NULL);
		tok = strdup(json_string_value(json_object_get(j, "token")));
		exp = json_integer_value(json_object_get(j, "expires_at"));
		json_decref(j);
		claims = verify(f, tok, "tsi-vault", &res);
		check_claims(claims, "tsi-vault", exp);
		assert_null(json_object_get(claims, "namespace"));
		json_decref(claims);
		free(tok);
	}
	curl_slist_free_all(h);
	/* Other methods and paths. */
	assert_int_equal(get(f, "/v1/token?aud=a", NULL, &r, "POST"), CURLE_OK);
	assert_int_equal(r.status, 405);
	assert_int_equal(get(f, "/v1/tokens?aud=a", NULL, &r, NULL), CURLE_OK);
	assert_int_equal(r.status, 404);
	assert_int_equal(stop_issuer(f), 0);
}

/*
 * libmicrohttpd keeps a request's line and headers in a fixed pool per
 * connection (issuer/api_mhd.h, kept small because it is wiped for every
 * request). The longest legitimate request still gets its token; longer
 * headers or URLs get a clear 4xx, and the issuer keeps serving.
 */
static void
test_request_sizes(void **state)
{
	struct ifx *f = *state;
	struct curl_slist *h = NULL;
	struct tsi_verify_result res;
	struct resp r;
	char path[8192], aud[257], big[6000];
	json_t *j, *claims;
	size_t i, off;
	long long exp;

	enroll(f);
	start_issuer(f);
	/* aud at its 256-character maximum, every character percent-encoded,
	 * with the headers a client sends. */
	memset(aud, 'A', 256);
	aud[256] = '\0';
	off = (size_t)snprintf(path, sizeof(path), "/v1/token?aud=");
	for (i = 0; i < 256; i++)
		off += (size_t)snprintf(path + off, sizeof(path) - off, "%%41");
	h = curl_slist_append(h,
	    "User-Agent: tsi-sidecar/1.0 (libcurl; a usual client)");
	h = curl_slist_append(h, "Accept: application/json");
	h = curl_slist_append(h,
	    "X-Request-Id: 0123456789abcdef0123456789abcdef");
	assert_int_equal(get(f, path, h, &r, NULL), CURLE_OK);
	if (r.status != 200)
		fail_msg("256-character aud: status %ld: %s", r.status, r.body);
	j = json_loads(r.body, 0, NULL);
	assert_non_null(j);
	exp = json_integer_value(json_object_get(j, "expires_at"));
	claims = verify(f, json_string_value(json_object_get(j, "token")), aud,
	    &res);
	check_claims(claims, aud, exp);
	json_decref(claims);
	json_decref(j);
	curl_slist_free_all(h);

	/* One 5,000-byte header: more than the pool holds. */
	memcpy(big, "X-Long: ", 8);
	memset(big + 8, 'a', 5000);
	big[5008] = '\0';
	h = curl_slist_append(NULL, big);
	assert_int_equal(get(f, "/v1/token?aud=tsi-vault", h, &r, NULL),
	    CURLE_OK);
	curl_slist_free_all(h);
	if (r.status != 431 && r.status != 400)
		fail_msg("5,000-byte header: status %ld", r.status);
	assert_null(strstr(r.body, "\"token\""));

	/* A 5,000-character URL. */
	off = (size_t)snprintf(path, sizeof(path), "/v1/token?aud=");
	memset(path + off, 'b', 5000);
	path[off + 5000] = '\0';
	assert_int_equal(get(f, path, NULL, &r, NULL), CURLE_OK);
	if (r.status != 414 && r.status != 431 && r.status != 400)
		fail_msg("5,000-character URL: status %ld", r.status);
	assert_null(strstr(r.body, "\"token\""));

	/* Still serving. */
	free(get_token(f, "tsi-vault", NULL));
	assert_int_equal(stop_issuer(f), 0);
}

static void
test_tpm_mode_restart_keeps_kid(void **state)
{
	struct ifx *f = *state;
	struct tsi_verify_result res;
	json_t *claims, *py;
	X509 *node = NULL;
	char kid1[44], kid_node[44];
	long long exp;
	char *tok;

	enroll(f);
	start_issuer(f);
	tok = get_token(f, "tsi-vault", &exp);
	claims = verify(f, tok, "tsi-vault", &res);
	check_claims(claims, "tsi-vault", exp);
	json_decref(claims);
	snprintf(kid1, sizeof(kid1), "%s", res.kid);
	/* Signed by the TPM key itself: kid is the node key's thumbprint. */
	assert_int_equal(tsi_x509_load_file(f->node, &node), TSI_OK);
	assert_int_equal(tsi_key_thumbprint(X509_get0_pubkey(node), kid_node),
	    TSI_OK);
	assert_string_equal(kid1, kid_node);
	py = pyjwt(f, tok, "tsi-vault");
	assert_int_equal(json_integer_value(json_object_get(py, "x5c_len")), 1);
	json_decref(py);
	free(tok);

	/* Restart the issuer: same key, same kid, same node certificate. */
	assert_int_equal(stop_issuer(f), 0);
	start_issuer(f);
	tok = get_token(f, "tsi-vault", &exp);
	claims = verify(f, tok, "tsi-vault", &res);
	assert_string_equal(res.kid, kid1);
	json_decref(claims);
	free(tok);

	/* Restart the TPM too (same state dir): still the same key. */
	assert_int_equal(stop_issuer(f), 0);
	test_swtpm_kill(&f->tpm, SIGTERM);
	assert_int_equal(test_swtpm_restart(&f->tpm), 0);
	start_issuer(f);
	tok = get_token(f, "tsi-vault", &exp);
	claims = verify(f, tok, "tsi-vault", &res);
	assert_string_equal(res.kid, kid1);
	json_decref(claims);
	free(tok);
	X509_free(node);
	assert_int_equal(stop_issuer(f), 0);
}

static void
tpm_loss(struct ifx *f)
{
	struct resp r;
	long long t0, t1, deadline, worst = 0, detect = -1;
	char *tok;

	enroll(f);
	start_issuer(f);
	tok = get_token(f, "tsi-vault", NULL);
	free(tok);

	test_swtpm_kill(&f->tpm, SIGKILL);
	t0 = test_now_ms();
	deadline = t0 + 3000;
	while (test_now_ms() < deadline) {
		t1 = test_now_ms();
		assert_int_equal(get(f, "/v1/token?aud=tsi-vault", NULL, &r,
		                     NULL),
		    CURLE_OK);
		if (test_now_ms() - t1 > worst)
			worst = test_now_ms() - t1;
		if (r.status == 503) {
			detect = test_now_ms() - t0;
			break;
		}
		assert_int_equal(r.status, 200);
		usleep(20000);
	}
	print_message("%s: TPM loss -> 503 after %lld ms (slowest request "
	              "%lld ms)\n",
	    f->signing, detect, worst);
	assert_true(detect >= 0 && detect < 1000);
	assert_true(worst < 1000);
	assert_null(strstr(r.body, "\"token\""));
	/* Stays 503, answered quickly, and health says why. */
	t1 = test_now_ms();
	assert_int_equal(get(f, "/v1/token?aud=tsi-vault", NULL, &r, NULL),
	    CURLE_OK);
	assert_int_equal(r.status, 503);
	assert_int_equal(get(f, "/v1/health", NULL, &r, NULL), CURLE_OK);
	assert_true(test_now_ms() - t1 < 1000);
	assert_int_equal(r.status, 503);
	assert_non_null(strstr(r.body, "\"tpm\":\"unavailable\""));
	assert_non_null(strstr(r.body, "reason"));

	/* The TPM comes back on the same state: served again, no restart. */
	assert_int_equal(test_swtpm_restart(&f->tpm), 0);
	t0 = test_now_ms();
	deadline = t0 + 5000;
	do {
		assert_int_equal(get(f, "/v1/token?aud=tsi-vault", NULL, &r,
		                     NULL),
		    CURLE_OK);
		if (r.status == 200)
			break;
		usleep(50000);
	} while (test_now_ms() < deadline);
	print_message("%s: TPM back -> 200 after %lld ms\n", f->signing,
	    test_now_ms() - t0);
	assert_int_equal(r.status, 200);
	assert_int_equal(get(f, "/v1/health", NULL, &r, NULL), CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_true(kill(f->issuer, 0) == 0); /* the same process */
	assert_int_equal(stop_issuer(f), 0);
}

static void
test_tpm_loss_delegated(void **state)
{
	tpm_loss(*state);
}

static void
test_tpm_loss_tpm(void **state)
{
	tpm_loss(*state);
}

static int
log_has(struct ifx *f, const char *s)
{
	return test_count(f->log, s) > 0;
}

static int
run_issuer_status(struct ifx *f)
{
	char exe[512];
	int status = -1;
	pid_t pid;

	snprintf(exe, sizeof(exe), "%s/tsi-issuer", bin_dir());
	if ((pid = fork()) == 0) {
		int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		execl(exe, exe, "run", "--config", f->conf, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A node certificate's fields as `tsi ca sign` makes them (a CA for
 * delegated signing, the location SANs) for key, signed by ca. */
static void
node_cert_params(struct pki_spec *sp, X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key)
{
	memset(sp, 0, sizeof(*sp));
	sp->cn = "worker-1";
	sp->issuer = ca;
	sp->issuer_key = ca_key;
	sp->key = key;
	sp->ca = 1;
	sp->pathlen = 0;
	sp->ku = "critical,digitalSignature,keyCertSign";
	sp->san = pki_loc_san();
}

static void
test_refuses_bad_node_cert(void **state)
{
	struct ifx *f = *state;
	struct tsi_signer *soft = NULL;
	EVP_PKEY *other = EVP_EC_gen("P-256"), *ca_key = NULL, *tpm_pub;
	X509 *ca = NULL, *good = NULL, *expired;
	char *csr = NULL, *cert = NULL, cap[400], keyp[400];
	struct pki_spec sp;
	FILE *in;

	/* No node certificate yet. */
	assert_int_equal(run_issuer_status(f), 1);
	assert_true(log_has(f, "node_cert.unreadable"));

	/* A certificate from the right CA for another key. */
	enroll(f);
	assert_int_equal(tsi_x509_load_file(f->node, &good), TSI_OK);
	snprintf(cap, sizeof(cap), "%s/ca.pem", f->ca);
	snprintf(keyp, sizeof(keyp), "%s/ca.key", f->ca);
	assert_int_equal(tsi_signer_new_soft(other, &soft), TSI_OK);
	assert_int_equal(tsi_x509_make_csr(soft, "worker-1", &csr), TSI_OK);
	assert_int_equal(tsi_ca_sign_csr(cap, keyp, csr, strlen(csr), &test_loc,
	                     1, &cert),
	    TSI_OK);
	write_text(f->node, cert);
	assert_int_equal(run_issuer_status(f), 1);
	assert_true(log_has(f, "node_cert.wrong_key"));

	/* The right key, but expired. */
	assert_int_equal(tsi_x509_load_file(cap, &ca), TSI_OK);
	assert_non_null(in = fopen(keyp, "r"));
	ca_key = PEM_read_PrivateKey(in, NULL, NULL, NULL);
	fclose(in);
	assert_non_null(ca_key);
	tpm_pub = X509_get0_pubkey(good);
	node_cert_params(&sp, ca, ca_key, tpm_pub);
	sp.not_before = -7200;
	sp.not_after = -3600;
	assert_non_null(expired = pki_cert(&sp));
	assert_int_equal(pki_write_cert(f->node, expired), 0);
	assert_int_equal(run_issuer_status(f), 1);
	assert_true(log_has(f, "node_cert.expired"));

	/* And a good one works again. */
	assert_int_equal(pki_write_cert(f->node, good), 0);
	start_issuer(f);
	assert_int_equal(stop_issuer(f), 0);

	X509_free(expired);
	X509_free(good);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other);
	tsi_signer_free(soft);
	free(csr);
	free(cert);
}

/* --- the kubelet resolver through the daemon ---------------------------- */

#define ID_A "c5db4e65cf90b61747fa2bf1b37295a021bb47b46fedd8263c85736f17668f0d"
#define ID_B "0b3c6f1e2d4a59687f0e1d2c3b4a5968778695a4b3c2d1e0f0e1d2c3b4a59687"
#define IMG_APP \
	"sha256:" \
	"4eafe76675ab94d8c303323cfa4ec605f5d0a9a3b24a1b8db03f8f4e89c127f4"
#define IMG_SIDECAR \
	"sha256:" \
	"2c758e98d175d61c757efc1ab35d10c954167294462fb00c6d26c148df4c7580"
#define IMG_INIT \
	"sha256:" \
	"8bce96250e4a1c418a4d329f66312c880cf565127d6229c6d58442c78d486908"

static void
copy_file(const char *from, const char *to)
{
	char buf[8192];
	size_t n;
	FILE *a = fopen(from, "r"), *b = fopen(to, "w");

	assert_non_null(a);
	assert_non_null(b);
	while ((n = fread(buf, 1, sizeof(buf), a)) > 0)
		assert_int_equal(fwrite(buf, 1, n, b), n);
	fclose(a);
	assert_int_equal(fclose(b), 0);
}

/* Starts the stand-in kubelet (HTTPS on loopback); returns its port. */
static int
start_kubelet(struct ifx *f, pid_t *pid)
{
	char cert[400], key[400], pods[400], script[512], src[512], line[32];
	EVP_PKEY *k = pki_key();
	struct pki_spec sp;
	X509 *x;
	int pfd[2];
	FILE *in;

	snprintf(cert, sizeof(cert), "%s/kubelet.pem", f->dir);
	snprintf(key, sizeof(key), "%s/kubelet.key", f->dir);
	snprintf(pods, sizeof(pods), "%s/pods.json", f->dir);
	memset(&sp, 0, sizeof(sp));
	sp.cn = "kubelet";
	sp.key = k;
	sp.ca = -1;
	sp.pathlen = -1;
	sp.san = "IP:127.0.0.1";
	sp.not_before = -60;
	sp.not_after = 3600;
	assert_non_null(x = pki_cert(&sp));
	assert_int_equal(pki_write_cert(cert, x), 0);
	assert_int_equal(pki_write_key(key, k), 0);
	X509_free(x);
	EVP_PKEY_free(k);
	snprintf(src, sizeof(src), "%s/tests/data/issuer/pods.json", src_dir());
	copy_file(src, pods);
	snprintf(script, sizeof(script),
	    "%s/tests/data/issuer/kubelet_server.py", src_dir());
	assert_int_equal(pipe(pfd), 0);
	if ((*pid = fork()) == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl("/usr/bin/python3", "python3", script, cert, key, pods,
		    "node-token", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	assert_non_null(in = fdopen(pfd[0], "r"));
	assert_non_null(fgets(line, sizeof(line), in));
	fclose(in);
	return atoi(line);
}

static void
test_kubelet_workload(void **state)
{
	struct ifx *f = *state;
	struct tsi_verify_result res;
	char proc[400], p[600], extra[2048], tokp[400];
	json_t *claims, *images, *names, *py;
	pid_t kubelet = 0;
	struct resp r;
	long long exp;
	char *tok;
	int port;

	/* This process, as a fake /proc shows it: in container ID_A. */
	snprintf(proc, sizeof(proc), "%s/proc", f->dir);
	mkdir(proc,
	    0755); /* world-readable, as /proc: the front end reads it */
	snprintf(p, sizeof(p), "%s/%ld", proc, (long)getpid());
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/%ld/stat", proc, (long)getpid());
	copy_file("/proc/self/stat", p);
	snprintf(p, sizeof(p), "%s/%ld/cgroup", proc, (long)getpid());
	write_text(p,
	    "0::/kubepods.slice/kubepods-besteffort.slice/"
	    "kubepods-besteffort-pod4f6a.slice/cri-containerd-" ID_A
	    ".scope\n");
	snprintf(tokp, sizeof(tokp), "%s/kubelet-token", f->dir);
	write_text(tokp, "node-token\n");
	port = start_kubelet(f, &kubelet);
	assert_true(port > 0);
	snprintf(extra, sizeof(extra),
	    "proc_root = \"%s\";\nkubelet_url = \"https://127.0.0.1:%d\";\n"
	    "kubelet_token_file = \"%s\";\nkubelet_ca_file = "
	    "\"%s/kubelet.pem\";\n"
	    "sidecar_images = [ \"" IMG_SIDECAR "\" ];\n",
	    proc, port, tokp, f->dir);
	snprintf(f->resolver, sizeof(f->resolver), "kubelet");
	snprintf(f->node_name, sizeof(f->node_name),
	    "node-1"); /* as the pods */
	write_config(f, extra);
	enroll(f);
	start_issuer(f);
	tok = get_token(f, "tsi-vault", &exp);
	claims = verify(f, tok, "tsi-vault", &res);
	assert_string_equal(cstr(claims, "sub"),
	    "spiffe://tsi.example/ns/medical/sa/records-sa");
	assert_string_equal(cstr(claims, "namespace"), "medical");
	assert_string_equal(cstr(claims, "pod"), "records-7d9f8b6c5-x2x4q");
	assert_string_equal(cstr(claims, "service-account"), "records-sa");
	assert_null(json_object_get(claims, "uid"));
	images = json_object_get(claims, "images");
	assert_int_equal(json_array_size(images), 2);
	assert_string_equal(json_string_value(json_array_get(images, 0)),
	    IMG_APP);
	assert_string_equal(json_string_value(json_array_get(images, 1)),
	    IMG_INIT);
	names = json_object_get(claims, "images-names");
	assert_int_equal(json_array_size(names), 2);
	assert_string_equal(json_string_value(json_array_get(names, 1)),
	    "registry.example/medical/app:1.2");
	assert_string_equal(cstr(claims, "datacenter"), "fra02");
	py = pyjwt(f, tok, "tsi-vault");
	assert_string_equal(cstr(json_object_get(py, "claims"), "namespace"),
	    "medical");
	json_decref(py);
	json_decref(claims);
	free(tok);

	/* The same process outside any container: 403, no token. */
	write_text(p, "0::/user.slice/user-0.slice/session-1.scope\n");
	assert_int_equal(get(f, "/v1/token?aud=tsi-vault", NULL, &r, NULL),
	    CURLE_OK);
	assert_int_equal(r.status, 403);
	assert_null(strstr(r.body, "token\""));
	/* In a terminated container: 403. */
	write_text(p,
	    "0::/kubepods.slice/cri-containerd-"
	    "5f148eb03ef10a862e575a6ac16c8e18ebb61bcd9d94b6930219a08136368f49."
	    "scope\n");
	usleep(150000);
	assert_int_equal(get(f, "/v1/token?aud=tsi-vault", NULL, &r, NULL),
	    CURLE_OK);
	assert_int_equal(r.status, 403);

	assert_int_equal(stop_issuer(f), 0);
	kill(kubelet, SIGTERM);
	waitpid(kubelet, NULL, 0);
}

/* --- the process behind a connection ------------------------------------ */

/* One GET on a connected socket: the status, the body in buf (NUL ended).
 * Bounded: 5 s per read. -1 on any failure. */
static int
raw_get(int fd, const char *path, char *buf, size_t cap)
{
	char req[512];
	size_t got = 0, want = 0;
	const char *hend, *cl;
	struct pollfd pf;
	int n, status;
	ssize_t k;

	n = snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: localhost\r\n"
	    "\r\n",
	    path);
	if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n)
		return -1;
	for (;;) {
		buf[got] = '\0';
		if ((hend = strstr(buf, "\r\n\r\n")) != NULL &&
		    (cl = strcasestr(buf, "Content-Length:")) != NULL &&
		    cl < hend) {
			want = (size_t)(hend + 4 - buf) +
			    strtoul(cl + 15, NULL, 10);
			if (got >= want)
				break;
		}
		pf.fd = fd;
		pf.events = POLLIN;
		if (got + 1 >= cap || poll(&pf, 1, 5000) != 1 ||
		    (k = read(fd, buf + got, cap - 1 - got)) <= 0)
			return -1;
		got += (size_t)k;
	}
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		return -1;
	memmove(buf, hend + 4, got - (size_t)(hend + 4 - buf));
	buf[got - (size_t)(hend + 4 - buf)] = '\0';
	return status;
}

enum race {
	RACE_NONE,
	RACE_EXEC,
	RACE_EXIT
};

/*
 * The attack of the exec race, on the real socket: a process connects (the
 * issuer takes its identity at accept: its first request is answered, so
 * the snapshot was taken), forks, and then runs another executable (EXEC)
 * or exits (EXIT) or stays as it was (NONE), while its child asks for a
 * token on the connection it inherited. SO_PEERCRED keeps naming the
 * connector. Returns the status the child got; its body in body.
 */
static int
race(struct ifx *f, enum race mode, char *body, size_t cap)
{
	int res[2], go[2], status = -1, fd, st;
	struct sockaddr_un sa;
	pid_t p, c = 0;
	char line[64];
	FILE *in;

	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	assert_int_equal(pipe(res), 0);
	assert_int_equal(pipe(go), 0);
	if ((p = fork()) == 0) {
		char buf[8192];

		close(res[0]);
		close(go[1]);
		/* No SOCK_CLOEXEC: the connection survives exec. */
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
			_exit(2);
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    raw_get(fd, "/v1/health", buf, sizeof(buf)) != 200)
			_exit(3);
		if ((c = fork()) == 0) {
			char ex[64], resp[65536];
			long long deadline = test_now_ms() + 10000;
			ssize_t n;
			int sc;

			/* Until the connector is what the mode makes it. */
			if (mode == RACE_EXEC) {
				snprintf(ex, sizeof(ex), "/proc/%ld/exe",
				    (long)getppid());
				while (test_now_ms() < deadline &&
				    ((n = readlink(ex, buf, sizeof(buf) - 1)) <=
				            0 ||
				        (buf[n] = '\0',
				            strstr(buf, "sleep") == NULL)))
					usleep(1000);
			} else if (read(go[0], buf, 1) != 1)
				_exit(4);
			sc = raw_get(fd, "/v1/token?aud=tsi-vault", resp,
			    sizeof(resp));
			dprintf(res[1], "%d %ld\n%s", sc, (long)getpid(), resp);
			_exit(0);
		}
		/* Only the child answers (and so EOF comes when it is done). */
		close(res[1]);
		close(go[0]);
		if (mode == RACE_EXEC)
			execl("/bin/sleep", "sleep", "30", (char *)NULL);
		if (mode == RACE_EXIT)
			_exit(0);
		/* NONE: the connector stays as it was until killed. */
		for (;;)
			pause();
	}
	close(res[1]);
	close(go[0]);
	if (mode == RACE_EXIT) {
		assert_int_equal(waitpid(p, &st, 0), p);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	if (mode != RACE_EXEC)
		assert_int_equal(write(go[1], "g", 1), 1);
	assert_non_null(in = fdopen(res[0], "r"));
	if (fgets(line, sizeof(line), in) != NULL) {
		long cl;
		size_t n;
		if (sscanf(line, "%d %ld", &status, &cl) == 2)
			c = (pid_t)cl;
		n = fread(body, 1, cap - 1, in);
		body[n] = '\0';
	}
	fclose(in);
	close(go[1]);
	if (mode != RACE_EXIT) {
		kill(p, SIGKILL);
		assert_int_equal(waitpid(p, NULL, 0), p);
	}
	if (c > 0) /* reparented to this process (subreaper) */
		assert_int_equal(waitpid(c, NULL, 0), c);
	return status;
}

static void
test_exec_race(void **state)
{
	struct ifx *f = *state;
	char body[65536];
	json_t *hdr = NULL, *cl = NULL, *j;
	int st;

	enroll(f);
	start_issuer(f);
	/* The connector runs /bin/sleep now; it ran this test's binary when
	 * it connected. Its child must not get a token naming sleep. */
	st = race(f, RACE_EXEC, body, sizeof(body));
	if (st == 200 && (j = json_loads(body, 0, NULL)) != NULL) {
		(void)tsi_jwt_decode_unverified(json_string_value(
		                                    json_object_get(j,
		                                        "token")),
		    &hdr, &cl);
		fail_msg("exec race: 200, a token for exe %s",
		    cl ? json_string_value(json_object_get(cl, "exe")) : "?");
	}
	assert_int_equal(st, 403);
	assert_null(strstr(body, "\"token\""));
	assert_true(log_has(f, "resolve.exe_changed"));
	/* The connector exited: the pid names nobody (or someone else). */
	st = race(f, RACE_EXIT, body, sizeof(body));
	assert_int_equal(st, 403);
	assert_null(strstr(body, "\"token\""));
	/* The control: the connector unchanged, its child gets the
	 * connector's identity (a socket handed on keeps it, as documented). */
	st = race(f, RACE_NONE, body, sizeof(body));
	assert_int_equal(st, 200);
	assert_non_null(strstr(body, "\"token\""));
	json_decref(hdr);
	json_decref(cl);
	assert_int_equal(stop_issuer(f), 0);
}

/* --- a huge executable ---------------------------------------------------- */

/* Latencies of n sequential token requests by this process (cached digest),
 * for dur_ms; a failed request counts as 5,000 ms. p50 and p99 in ms. */
static void
measure(struct ifx *f, long long dur_ms, long long *p50, long long *p99,
    int *n_out)
{
	static long long lat[20000];
	long long end = test_now_ms() + dur_ms, t, tmp;
	struct resp r;
	int n = 0, i, j;

	while (test_now_ms() < end && n < 20000) {
		t = test_now_ms();
		if (get(f, "/v1/token?aud=tsi-vault", NULL, &r, NULL) !=
		        CURLE_OK ||
		    r.status != 200)
			lat[n++] = 5000;
		else
			lat[n++] = test_now_ms() - t;
	}
	for (i = 1; i < n; i++) /* insertion sort: n is small */
		for (j = i; j > 0 && lat[j - 1] > lat[j]; j--) {
			tmp = lat[j];
			lat[j] = lat[j - 1];
			lat[j - 1] = tmp;
		}
	*p50 = n ? lat[n / 2] : -1;
	*p99 = n ? lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] : -1;
	*n_out = n;
}

static volatile sig_atomic_t drv_stop;
static volatile pid_t drv_child;

static void
drv_term(int sig)
{
	(void)sig;
	drv_stop = 1;
	if (drv_child > 0)
		kill(drv_child, SIGKILL);
}

/* A process that runs exe as a token client again and again, touching it
 * first each time so that its digest is never cached, until SIGTERM. */
static pid_t
start_driver(struct ifx *f, const char *exe)
{
	pid_t d;

	if ((d = fork()) != 0)
		return d;
	signal(SIGTERM, drv_term);
	while (!drv_stop) {
		pid_t c;
		int st;

		(void)utimensat(AT_FDCWD, exe, NULL, 0);
		if ((c = fork()) == 0) {
			execl(exe, exe, "--token-client", f->sock,
			    (char *)NULL);
			_exit(127);
		}
		drv_child = c;
		if (drv_stop)
			kill(c, SIGKILL);
		while (waitpid(c, &st, 0) < 0 && errno == EINTR)
			;
		drv_child = 0;
	}
	_exit(0);
}

static void
stop_driver(pid_t d)
{
	kill(d, SIGTERM);
	assert_int_equal(waitpid(d, NULL, 0), d);
}

/*
 * A 4 GiB (sparse) executable, touched before every run so that its digest
 * is never cached, asked for tokens by two processes without pause, while
 * this process (its digest cached) asks for tokens too. Over max_exe_size
 * (the default, 512 MiB) it is refused at once; allowed (max_exe_size
 * 8 GiB) it is hashed on the hashing threads, never on the threads that
 * serve the other caller. Either way the other caller keeps its latency.
 */
static void
test_huge_executable(void **state)
{
	struct ifx *f = *state;
	char big[400], self[4096], buf[65536];
	long long p50, p99, b50, b99;
	pid_t d1, d2;
	ssize_t n;
	int in, out, k;

	snprintf(big, sizeof(big), "%s/big-client", f->dir);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	assert_true((in = open(self, O_RDONLY)) >= 0);
	assert_true((out = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0755)) >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(ftruncate(out, 4LL * 1024 * 1024 * 1024), 0);
	close(in);
	assert_int_equal(close(out), 0);

	enroll(f);
	start_issuer(f);
	free(get_token(f, "tsi-vault", NULL)); /* this digest cached */
	measure(f, 2000, &b50, &b99, &k);
	print_message("huge exe: no attack: %d tokens, p50 %lld ms, p99 %lld "
	              "ms\n",
	    k, b50, b99);

	d1 = start_driver(f, big);
	d2 = start_driver(f, big);
	measure(f, 4000, &p50, &p99, &k);
	stop_driver(d1);
	stop_driver(d2);
	print_message("huge exe over max_exe_size: %d tokens, p50 %lld ms, "
	              "p99 %lld ms\n",
	    k, p50, p99);
	assert_true(log_has(f, "resolve.exe_too_large"));
	assert_true(p99 < 1500);
	assert_int_equal(stop_issuer(f), 0);

	/* Allowed: hashed, but not where other callers are served. */
	write_config(f, "max_exe_size = 8589934592L;\n");
	start_issuer(f);
	free(get_token(f, "tsi-vault", NULL));
	d1 = start_driver(f, big);
	d2 = start_driver(f, big);
	measure(f, 4000, &p50, &p99, &k);
	print_message("huge exe hashed (max_exe_size 8 GiB): %d tokens, p50 "
	              "%lld "
	              "ms, p99 %lld ms\n",
	    k, p50, p99);
	assert_true(p99 < 1500);
	stop_driver(d1);
	stop_driver(d2);
	/* Whether the other driver's request was refused (the file touched
	 * again, another version, while the uid's one slot was taken) or
	 * waited for the same hashing (not touched in between) depends on
	 * timing; the point here is the other caller's latency, above. */
	/* Stops cleanly with hashing in flight (suspended connections). */
	assert_int_equal(stop_issuer(f), 0);
	unlink(big);
}

/*
 * A slow kubelet (3 s per answer) while two processes in a container the
 * list lacks ask for tokens: their fetch runs on the kubelet client's own
 * thread, their requests suspended, so this process (in a container the
 * cached list holds) keeps its latency whichever event-loop thread serves
 * it. The stand-in kubelet checks the request's shape (GET /pods, bearer
 * token, Accept: application/json).
 */
static void
test_kubelet_slow_daemon(void **state)
{
	struct ifx *f = *state;
	char proc[400], p[600], extra[2048], tokp[400], cnt[400], dly[400];
	pid_t kubelet = 0, kids[2];
	int go[2][2], i, st, port, before, k;
	long long t0, p50, p99;

	snprintf(proc, sizeof(proc), "%s/proc", f->dir);
	mkdir(proc,
	    0755); /* world-readable, as /proc: the front end reads it */
	snprintf(p, sizeof(p), "%s/%ld", proc, (long)getpid());
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/%ld/stat", proc, (long)getpid());
	copy_file("/proc/self/stat", p);
	snprintf(p, sizeof(p), "%s/%ld/cgroup", proc, (long)getpid());
	write_text(p, "0::/kubepods.slice/cri-containerd-" ID_A ".scope\n");
	snprintf(tokp, sizeof(tokp), "%s/kubelet-token", f->dir);
	write_text(tokp, "node-token\n");
	port = start_kubelet(f, &kubelet);
	assert_true(port > 0);
	snprintf(extra, sizeof(extra),
	    "proc_root = \"%s\";\nkubelet_url = \"https://127.0.0.1:%d\";\n"
	    "kubelet_token_file = \"%s\";\nkubelet_ca_file = "
	    "\"%s/kubelet.pem\";\n"
	    "kubelet_cache_ms = 60000;\n"
	    "sidecar_images = [ \"" IMG_SIDECAR "\" ];\n",
	    proc, port, tokp, f->dir);
	snprintf(f->resolver, sizeof(f->resolver), "kubelet");
	snprintf(f->node_name, sizeof(f->node_name), "node-1");
	write_config(f, extra);
	enroll(f);
	start_issuer(f);
	free(get_token(f, "tsi-vault", NULL)); /* the list is cached */

	snprintf(cnt, sizeof(cnt), "%s/pods.json.count", f->dir);
	snprintf(dly, sizeof(dly), "%s/pods.json.delay", f->dir);
	write_text(dly, "3");
	usleep(150000); /* past the refresh floor, not a synchronisation */
	before = 0;
	{
		FILE *in = fopen(cnt, "r");
		char line[8];
		while (in != NULL && fgets(line, sizeof(line), in) != NULL)
			before++;
		if (in != NULL)
			fclose(in);
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(pipe(go[i]), 0);
		if ((kids[i] = fork()) == 0) {
			struct sockaddr_un sa;
			char buf[1], body[65536];
			int fd;

			close(go[i][1]);
			if (read(go[i][0], buf, 1) != 1)
				_exit(2);
			fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			memset(&sa, 0, sizeof(sa));
			sa.sun_family = AF_UNIX;
			memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
			if (fd < 0 ||
			    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) !=
			        0)
				_exit(2);
			_exit(raw_get(fd, "/v1/token?aud=tsi-vault", body,
			          sizeof(body)) == 403
			        ? 0
			        : 1);
		}
		close(go[i][0]);
		/* It is in a container no pod has. */
		snprintf(p, sizeof(p), "%s/%ld", proc, (long)kids[i]);
		mkdir(p, 0755);
		{
			char from[64];
			snprintf(from, sizeof(from), "/proc/%ld/stat",
			    (long)kids[i]);
			snprintf(p, sizeof(p), "%s/%ld/stat", proc,
			    (long)kids[i]);
			copy_file(from, p);
		}
		snprintf(p, sizeof(p), "%s/%ld/cgroup", proc, (long)kids[i]);
		write_text(p,
		    "0::/kubepods.slice/cri-containerd-"
		    "e569522d4e1d32cd4f78f804eaa4ba916c4a2df63f56e439a8bae74cdb"
		    "a3c9b0"
		    ".scope\n");
		assert_int_equal(write(go[i][1], "g", 1), 1);
		close(go[i][1]);
	}
	/* Until their fetch has reached the kubelet. */
	t0 = test_now_ms();
	for (;;) {
		FILE *in = fopen(cnt, "r");
		char line[8];
		int n = 0;
		while (in != NULL && fgets(line, sizeof(line), in) != NULL)
			n++;
		if (in != NULL)
			fclose(in);
		if (n > before)
			break;
		assert_true(test_now_ms() - t0 < 5000);
		usleep(2000);
	}
	measure(f, 2000, &p50, &p99, &k);
	print_message("slow kubelet: cached caller during a 3 s fetch: %d "
	              "tokens,"
	              " p50 %lld ms, p99 %lld ms\n",
	    k, p50, p99);
	k = 0;
	for (i = 0; i < 2; i++)
		if (waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) &&
		    WEXITSTATUS(st) == 0)
			k++; /* answered 403 */
	/* The stand-in kubelet goes first: a failed assertion must not
	 * leave it running. */
	kill(kubelet, SIGTERM);
	waitpid(kubelet, NULL, 0);
	unlink(dly);
	assert_int_equal(k, 2);
	assert_true(p99 < 1000);
	assert_int_equal(stop_issuer(f), 0);
}

static void
test_socket_mode(void **state)
{
	struct ifx *f = *state;
	struct stat st;

	write_config(f, "socket_mode = \"0660\";\n");
	enroll(f);
	start_issuer(f);
	assert_int_equal(lstat(f->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(stop_issuer(f), 0);
	/* Stopping removes the socket. */
	assert_int_not_equal(access(f->sock, F_OK), 0);
	/* A regular file at the socket path is never replaced. */
	write_text(f->sock, "not a socket");
	assert_int_equal(run_issuer_status(f), 1);
	assert_int_equal(lstat(f->sock, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

/* A second issuer on a socket a running one serves exits 1 ("address in
 * use") without touching the TPM or the socket; the first keeps serving. */
static void
test_second_issuer_same_socket(void **state)
{
	struct ifx *f = *state;
	char exe[512];
	struct stat st0, st1;
	struct resp r;
	int status = -1, i;
	pid_t pid;

	enroll(f);
	start_issuer(f);
	assert_int_equal(lstat(f->sock, &st0), 0);
	snprintf(exe, sizeof(exe), "%s/tsi-issuer", bin_dir());
	if ((pid = fork()) == 0) {
		int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		execl(exe, exe, "run", "--config", f->conf, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 300; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(50 * 1000);
	}
	if (i == 300) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("a second tsi-issuer on the same socket kept running");
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_true(log_has(f, "address in use"));
	/* The socket is the first issuer's still (same inode), and serves. */
	assert_int_equal(lstat(f->sock, &st1), 0);
	assert_true(st0.st_ino == st1.st_ino);
	assert_int_equal(get(f, "/v1/health", NULL, &r, NULL), CURLE_OK);
	assert_int_equal(stop_issuer(f), 0);
}

static void
test_bad_config_exit_2(void **state)
{
	struct ifx *f = *state;
	char exe[512];
	char *argv[] = { exe, "run", "--config", f->conf, NULL };
	char *argv2[] = { exe, "frobnicate", NULL };
	char *argv3[] = { exe, "--help", NULL };

	snprintf(exe, sizeof(exe), "%s/tsi-issuer", bin_dir());
	write_config(f, "token_ttl = 99999;\n");
	assert_int_equal(run(argv, NULL), 2);
	assert_int_equal(run(argv2, NULL), 2);
	assert_int_equal(run(argv3, NULL), 0);
}

/*
 * Privilege separation. A stand-in front end (this binary, run by the real
 * signer with --front-exe) sends the signer every malformed shape of its
 * requests and a few well-formed ones whose caller is not there, writing
 * one line per check to the file named by TSI_TEST_FAKE_FRONT: "ok <what>"
 * or "bad <what>", then "done".
 */
static FILE *ff_out;
static int ff_bad;

/* Sends len bytes of b (with the fds, nfds of them) on the channel and
 * waits (bounded) for one answer: its status, or 1 for no answer. */
static int
ff_call(int ch, const void *b, size_t len, const int *fds, int nfds,
    uint8_t *ans, size_t cap, size_t *alen)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} ctl;
	struct iovec iov = { (void *)b, len };
	struct msghdr mh;
	struct cmsghdr *c;
	struct pollfd p = { ch, POLLIN, 0 };
	int32_t st;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	if (sendmsg(ch, &mh, MSG_NOSIGNAL) != (ssize_t)len)
		return 1;
	if (poll(&p, 1, 10000) != 1 ||
	    (n = recv(ch, ans, cap, 0)) < (ssize_t)TSI_PRIV_HDR + 4)
		return 1;
	*alen = (size_t)n;
	memcpy(&st, ans + TSI_PRIV_HDR, 4);
	return st;
}

static void
ff_check(int cond, const char *what)
{
	fprintf(ff_out, "%s %s\n", cond ? "ok" : "bad", what);
	fflush(ff_out);
	if (!cond)
		ff_bad++;
}

/* A malformed request: an error answer, never silence or success. */
static void
ff_refused(int ch, const void *b, size_t len, const int *fds, int nfds,
    const char *what)
{
	static uint8_t ans[TSI_PRIV_MSG_MAX];
	size_t alen;
	int st = ff_call(ch, b, len, fds, nfds, ans, sizeof(ans), &alen);

	ff_check(st < 0, what);
}

/*
 * Enrollment requests from the stand-in front end: every malformed shape
 * of each refused with the decoder's status, then each well-formed one
 * answered as priv_proto.h says, checked with tpm2-tss's unmarshalling and
 * OpenSSL (no code of the signer's).
 */

/* A TPM answer can take a while on a loaded machine (the EK is an
 * RSA-2048 primary made on each request). */
#define FF_TPM_MS 60000

/* The length field of m made to agree after cutting n bytes off it, or
 * adding n bytes of 'x' to it. */
static void
ff_cut(struct tsi_priv_msg *m, size_t n)
{
	uint32_t v;

	m->len -= n;
	v = (uint32_t)(m->len - TSI_PRIV_HDR);
	memcpy(m->b + 8, &v, 4);
}

static void
ff_trail(struct tsi_priv_msg *m, size_t n)
{
	uint32_t v;

	memset(m->b + m->len, 'x', n);
	m->len += n;
	v = (uint32_t)(m->len - TSI_PRIV_HDR);
	memcpy(m->b + 8, &v, 4);
}

/* Sends m and waits (up to FF_TPM_MS) for the answer to it: its status, 1
 * for none or one that is not m's answer; *rd reads what follows. */
static int
ff_ask(int ch, const struct tsi_priv_msg *m, uint8_t *ans, size_t cap,
    struct tsi_priv_rd *rd)
{
	struct pollfd p = { ch, POLLIN, 0 };
	uint32_t type, id, sent;
	int32_t st;
	ssize_t n;

	if (send(ch, m->b, m->len, MSG_NOSIGNAL) != (ssize_t)m->len ||
	    poll(&p, 1, FF_TPM_MS) != 1 || (n = recv(ch, ans, cap, 0)) < 0)
		return 1;
	memcpy(&type, m->b, 4);
	memcpy(&sent, m->b + 4, 4);
	if (tsi_priv_ans_open(ans, (size_t)n, type, rd, &id, &st) != TSI_OK ||
	    id != sent)
		return 1;
	return st;
}

/* A malformed request: answered with exactly the status want and nothing
 * after it, in an answer that names the request (its type and id): the
 * front end waits for the answer with its id. */
static void
ff_refused_as(int ch, const struct tsi_priv_msg *m, int want, const char *what)
{
	static uint8_t ans[TSI_PRIV_MSG_MAX];
	struct tsi_priv_rd rd;

	ff_check(ff_ask(ch, m, ans, sizeof(ans), &rd) == want &&
	        tsi_priv_rd_end(&rd) == TSI_OK,
	    what);
}

/* A TPM2B of n bytes (n >= 2): its big-endian size, then fill. */
static uint8_t *
ff_tpm2b(uint8_t *b, size_t n, uint8_t fill)
{
	b[0] = (uint8_t)((n - 2) >> 8);
	b[1] = (uint8_t)((n - 2) & 0xff);
	memset(b + 2, fill, n - 2);
	return b;
}

/* PEM-shaped text of n bytes, NUL terminated. */
static const char *
ff_pem(char *b, size_t n)
{
	static const char head[] = "-----BEGIN CERTIFICATE-----\n";
	size_t i;

	memcpy(b, head, sizeof(head) - 1);
	for (i = sizeof(head) - 1; i < n; i++)
		b[i] = i % 65 == 64 ? '\n' : (char)('A' + i % 26);
	b[n] = '\0';
	return b;
}

#define FF_PEM \
	"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n" \
	"-----END CERTIFICATE-----\n"

static void
ff_enroll_malformed(int ch)
{
	static const uint32_t empty[] = { TSI_PRIV_ATT_EK, TSI_PRIV_ATT_AK,
		TSI_PRIV_ATT_KEY, TSI_PRIV_NODE_STATE };
	static const char *const names[] = { "ATT_EK", "ATT_AK", "ATT_KEY",
		"NODE_STATE" };
	static struct tsi_priv_msg m;
	static char big[TSI_PRIV_CA_MAX + 2], big2[TSI_PRIV_CERT_MAX + 2];
	uint8_t t2b[16], nonce[TSI_PRIV_NONCE_MAX + 8];
	char what[64];
	size_t i;

	for (i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		tsi_priv_msg_begin(&m, empty[i], (uint32_t)(100 + i));
		tsi_priv_put_u32(&m, 0);
		(void)tsi_priv_msg_end(&m);
		snprintf(what, sizeof(what), "%s with a payload", names[i]);
		ff_refused_as(ch, &m, TSI_ERR_PARSE, what);
	}
	ff_tpm2b(t2b, sizeof(t2b), 0xa1);
	(void)tsi_priv_enc_activate(&m, 110, t2b, 16, t2b, 16);
	ff_cut(&m, 2);
	ff_refused_as(ch, &m, TSI_ERR_PARSE, "ATT_ACTIVATE truncated");
	(void)tsi_priv_enc_activate(&m, 111, t2b, 16, t2b, 16);
	ff_trail(&m, 1);
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "ATT_ACTIVATE with a trailing byte");
	t2b[1] = 15;
	(void)tsi_priv_enc_activate(&m, 112, t2b, 16, t2b, 16);
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "ATT_ACTIVATE with a TPM2B size that is not its length");
	t2b[1] = 14;
	(void)tsi_priv_enc_activate(&m, 113, t2b, 16, t2b, 1);
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "ATT_ACTIVATE with a TPM2B of one byte");
	ff_tpm2b((uint8_t *)big, TSI_PRIV_TPM2B_MAX + 1, 0xb2);
	(void)tsi_priv_enc_activate(&m, 114, (uint8_t *)big,
	    TSI_PRIV_TPM2B_MAX + 1, t2b, 16);
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "ATT_ACTIVATE with a TPM2B over TSI_PRIV_TPM2B_MAX");
	(void)tsi_priv_enc_activate(&m, 115, (uint8_t *)big,
	    TSI_PRIV_TPM2B_MAX + 1, (uint8_t *)big, TSI_PRIV_TPM2B_MAX + 1);
	ff_refused_as(ch, &m, TSI_ERR_TOO_LARGE,
	    "ATT_ACTIVATE over its payload bound");

	memset(nonce, 0x5c, sizeof(nonce));
	(void)tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_CERTIFY, 120, nonce, 0, 0);
	ff_refused_as(ch, &m, TSI_ERR_PARSE, "ATT_CERTIFY with an empty nonce");
	(void)tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_CERTIFY, 121, nonce,
	    TSI_PRIV_NONCE_MAX + 1, 0);
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "ATT_CERTIFY with a nonce of 65 bytes");
	(void)tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_CERTIFY, 122, nonce,
	    TSI_PRIV_NONCE_MAX + 5, 0);
	ff_refused_as(ch, &m, TSI_ERR_TOO_LARGE,
	    "ATT_CERTIFY over its payload bound");
	(void)tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_CERTIFY, 123, nonce, 16, 0);
	ff_trail(&m, 4);
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "ATT_CERTIFY with a mask after it");
	(void)tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_QUOTE, 124, nonce, 0, 1);
	ff_refused_as(ch, &m, TSI_ERR_PARSE, "ATT_QUOTE with an empty nonce");
	(void)tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_QUOTE, 125, nonce,
	    TSI_PRIV_NONCE_MAX + 1, 1);
	ff_refused_as(ch, &m, TSI_ERR_TOO_LARGE,
	    "ATT_QUOTE with a nonce of 65 bytes (over its payload bound)");
	(void)tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_QUOTE, 126, nonce, 16, 0);
	ff_refused_as(ch, &m, TSI_ERR_PARSE, "ATT_QUOTE with mask 0");
	(void)tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_QUOTE, 127, nonce, 16,
	    1u << TSI_PRIV_PCRS);
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "ATT_QUOTE with PCR 24 in its mask");
	(void)tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_QUOTE, 128, nonce, 16, 1);
	ff_cut(&m, 4);
	ff_refused_as(ch, &m, TSI_ERR_PARSE, "ATT_QUOTE without a mask");

	(void)tsi_priv_enc_install(&m, 130, "MIIBszCCAVmgAwIBAgIU\n", FF_PEM);
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "NODE_INSTALL of a certificate that is not PEM");
	(void)tsi_priv_enc_install(&m, 131, FF_PEM, "MIIBszCCAVmgAwIBAgIU\n");
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "NODE_INSTALL with a CA that is not PEM");
	tsi_priv_msg_begin(&m, TSI_PRIV_NODE_INSTALL, 132);
	tsi_priv_put_str(&m, "-----BEGIN CERTIFICATE-----\n\0MIIB\n", 34);
	tsi_priv_put_str(&m, FF_PEM, strlen(FF_PEM));
	(void)tsi_priv_msg_end(&m);
	ff_refused_as(ch, &m, TSI_ERR_PARSE, "NODE_INSTALL with a NUL in it");
	(void)tsi_priv_enc_install(&m, 133,
	    "-----BEGIN CERTIFICATE-----\n\x1b[2JMIIB\n", FF_PEM);
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "NODE_INSTALL with a control byte in it");
	(void)tsi_priv_enc_install(&m, 134, ff_pem(big2, TSI_PRIV_CERT_MAX + 1),
	    FF_PEM);
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "NODE_INSTALL of a certificate over TSI_PRIV_CERT_MAX");
	(void)tsi_priv_enc_install(&m, 135, FF_PEM,
	    ff_pem(big, TSI_PRIV_CA_MAX + 1));
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "NODE_INSTALL with a CA over TSI_PRIV_CA_MAX");
	(void)tsi_priv_enc_install(&m, 136, ff_pem(big2, TSI_PRIV_CERT_MAX),
	    big);
	ff_refused_as(ch, &m, TSI_ERR_TOO_LARGE,
	    "NODE_INSTALL over its payload bound");
	(void)tsi_priv_enc_install(&m, 137, FF_PEM, FF_PEM);
	ff_cut(&m, 1);
	ff_refused_as(ch, &m, TSI_ERR_PARSE, "NODE_INSTALL truncated");
	(void)tsi_priv_enc_install(&m, 138, FF_PEM, FF_PEM);
	ff_trail(&m, 1);
	ff_refused_as(ch, &m, TSI_ERR_PARSE,
	    "NODE_INSTALL with a trailing byte");
}

/* The whole of (p, n) is one marshalled TPM2B_PUBLIC. */
static int
ff_public(const char *p, size_t n, TPM2B_PUBLIC *out)
{
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	return Tss2_MU_TPM2B_PUBLIC_Unmarshal((const uint8_t *)p, n, &off,
	           out) == TSS2_RC_SUCCESS &&
	    off == n;
}

/* The whole of (p, n) is one TPM2B_ATTEST whose body is one TPMS_ATTEST
 * made by the TPM (its magic), of the given type, over the nonce. */
static int
ff_attest(const char *p, size_t n, TPM2_ST type, const uint8_t *nonce,
    size_t nonce_len, TPMS_ATTEST *out)
{
	TPM2B_ATTEST a;
	size_t off = 0;

	memset(&a, 0, sizeof(a));
	memset(out, 0, sizeof(*out));
	if (Tss2_MU_TPM2B_ATTEST_Unmarshal((const uint8_t *)p, n, &off, &a) !=
	        TSS2_RC_SUCCESS ||
	    off != n)
		return 0;
	off = 0;
	return Tss2_MU_TPMS_ATTEST_Unmarshal(a.attestationData, a.size, &off,
	           out) == TSS2_RC_SUCCESS &&
	    off == a.size && out->magic == TPM2_GENERATED_VALUE &&
	    out->type == type && out->extraData.size == nonce_len &&
	    memcmp(out->extraData.buffer, nonce, nonce_len) == 0;
}

/* A node certificate as `tsi ca sign` makes it for delegated signing
 * (CA:TRUE, pathlen 0, keyCertSign, a location), for key, signed by the
 * fixture's CA; PEM (free), NULL on failure. */
static char *
ff_node_cert(const char *dir, EVP_PKEY *key)
{
	char path[512], *pem = NULL;
	struct pki_spec sp;
	X509 *ca = NULL, *cert = NULL;
	EVP_PKEY *ca_key = NULL;
	BIO *bio = NULL;
	FILE *in;
	long n;

	snprintf(path, sizeof(path), "%s/ca/ca.pem", dir);
	if ((in = fopen(path, "r")) != NULL) {
		ca = PEM_read_X509(in, NULL, NULL, NULL);
		fclose(in);
	}
	snprintf(path, sizeof(path), "%s/ca/ca.key", dir);
	if ((in = fopen(path, "r")) != NULL) {
		ca_key = PEM_read_PrivateKey(in, NULL, NULL, NULL);
		fclose(in);
	}
	if (ca == NULL || ca_key == NULL)
		goto out;
	node_cert_params(&sp, ca, ca_key, key);
	sp.not_before = -60;
	sp.not_after = 86400;
	if ((cert = pki_cert(&sp)) == NULL ||
	    (bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(bio, cert) != 1 || (n = BIO_pending(bio)) <= 0 ||
	    (pem = calloc(1, (size_t)n + 1)) == NULL)
		goto out;
	if (BIO_read(bio, pem, (int)n) != (int)n) {
		free(pem);
		pem = NULL;
	}
out:
	BIO_free(bio);
	X509_free(cert);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return pem;
}

/* Two files' texts (either may be absent: NULL) are the same. */
static int
ff_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
ff_enroll_good(int ch, const char *dir)
{
	static struct tsi_priv_msg m;
	static uint8_t ans[TSI_PRIV_MSG_MAX];
	static const uint32_t mask = 1u | (1u << 7) | (1u << 16) | (1u << 23);
	struct tsi_priv_rd rd;
	TPM2B_PUBLIC pub;
	TPMS_ATTEST at;
	const char *x, *y, *z;
	size_t xl, yl, zl;
	uint8_t nonce[32], digest[32], name[34], ak_name[34], t2b[320];
	uint8_t key_pub[TSI_PRIV_TPM2B_MAX], ak_pub[TSI_PRIV_TPM2B_MAX];
	size_t key_len = 0, ak_len = 0, i;
	char node[512], node_ca[512], inst[512], cluster[256], dc[256];
	char reason[TSI_PRIV_REASON_MAX + 1], kid[64];
	char *before = NULL, *ca_before = NULL, *after = NULL, *ca_after = NULL;
	char *other_pem = NULL, *own_pem = NULL, *ca_pem = NULL;
	X509_REQ *req = NULL;
	EVP_PKEY *kp = NULL, *ak = NULL, *other = NULL;
	BIO *bio = NULL;
	FILE *out;
	int st, valid;
	int64_t renew_at;

	/* EK: no certificate in this swtpm's NV, an RSA-2048 public. */
	tsi_priv_msg_begin(&m, TSI_PRIV_ATT_EK, 140);
	(void)tsi_priv_msg_end(&m);
	st = ff_ask(ch, &m, ans, sizeof(ans), &rd);
	tsi_priv_get_span(&rd, &x, &xl, TSI_PRIV_EK_CERT_MAX);
	tsi_priv_get_span(&rd, &y, &yl, TSI_PRIV_MSG_MAX);
	ff_check(st == TSI_OK && tsi_priv_rd_end(&rd) == TSI_OK,
	    "ATT_EK answered: ek_cert, ek_pub");
	ff_check(xl == 0, "ATT_EK: no EK certificate (none in this TPM's NV)");
	ff_check(ff_public(y, yl, &pub) &&
	        pub.publicArea.type == TPM2_ALG_RSA &&
	        pub.publicArea.unique.rsa.size == 256,
	    "ATT_EK: ek_pub is one TPM2B_PUBLIC, an RSA-2048 key");

	/* AK: a restricted P-256 signing key of the fixed template. */
	tsi_priv_msg_begin(&m, TSI_PRIV_ATT_AK, 141);
	(void)tsi_priv_msg_end(&m);
	st = ff_ask(ch, &m, ans, sizeof(ans), &rd);
	tsi_priv_get_span(&rd, &x, &xl, sizeof(ak_pub));
	ff_check(st == TSI_OK && tsi_priv_rd_end(&rd) == TSI_OK,
	    "ATT_AK answered: ak_pub");
	ff_check(ff_public(x, xl, &pub) &&
	        pub.publicArea.type == TPM2_ALG_ECC &&
	        pub.publicArea.parameters.eccDetail.curveID ==
	            TPM2_ECC_NIST_P256 &&
	        pub.publicArea.objectAttributes == 0x00050072,
	    "ATT_AK: ak_pub is one TPM2B_PUBLIC, P-256, attributes "
	    "0x00050072");
	memcpy(ak_pub, x, xl);
	ak_len = xl;
	ak = test_tpm_ecc_key(ak_pub, ak_len);
	ff_check(ak != NULL && test_tpm_name(ak_pub, ak_len, ak_name) == 0,
	    "ATT_AK: ak_pub as an OpenSSL key");

	/* KEY: the signing key and a CSR signed by it, for that key. */
	tsi_priv_msg_begin(&m, TSI_PRIV_ATT_KEY, 142);
	(void)tsi_priv_msg_end(&m);
	st = ff_ask(ch, &m, ans, sizeof(ans), &rd);
	tsi_priv_get_span(&rd, &x, &xl, sizeof(key_pub));
	tsi_priv_get_span(&rd, &y, &yl, TSI_PRIV_CSR_MAX);
	ff_check(st == TSI_OK && tsi_priv_rd_end(&rd) == TSI_OK,
	    "ATT_KEY answered: key_pub, csr");
	ff_check(ff_public(x, xl, &pub) &&
	        pub.publicArea.type == TPM2_ALG_ECC &&
	        (pub.publicArea.objectAttributes & TPMA_OBJECT_FIXEDTPM) != 0,
	    "ATT_KEY: key_pub is one TPM2B_PUBLIC, a P-256 key fixed to the "
	    "TPM");
	memcpy(key_pub, x, xl);
	key_len = xl;
	kp = test_tpm_ecc_key(key_pub, key_len);
	if ((bio = BIO_new_mem_buf(y, (int)yl)) != NULL)
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ff_check(req != NULL &&
	        X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) == 1,
	    "ATT_KEY: the CSR parses and its signature verifies");
	ff_check(req != NULL && kp != NULL &&
	        EVP_PKEY_eq(X509_REQ_get0_pubkey(req), kp) == 1,
	    "ATT_KEY: the CSR's public key is key_pub's point");
	ERR_clear_error();

	/* CERTIFY: the signing key by the AK, over the nonce. */
	for (i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(0xc3 ^ i * 7);
	(void)tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_CERTIFY, 143, nonce,
	    sizeof(nonce), 0);
	st = ff_ask(ch, &m, ans, sizeof(ans), &rd);
	tsi_priv_get_span(&rd, &x, &xl, TSI_PRIV_MSG_MAX);
	tsi_priv_get_span(&rd, &y, &yl, TSI_PRIV_MSG_MAX);
	ff_check(st == TSI_OK && tsi_priv_rd_end(&rd) == TSI_OK,
	    "ATT_CERTIFY answered: attest, signature");
	ff_check(ff_attest(x, xl, TPM2_ST_ATTEST_CERTIFY, nonce, sizeof(nonce),
	             &at),
	    "ATT_CERTIFY: a TPMS_ATTEST of type CERTIFY over the nonce sent");
	ff_check(test_tpm_name(key_pub, key_len, name) == 0 &&
	        at.attested.certify.name.size == sizeof(name) &&
	        memcmp(at.attested.certify.name.name, name, sizeof(name)) == 0,
	    "ATT_CERTIFY: it names the signing key");
	ff_check(ak != NULL &&
	        test_attest_sig_ok(ak, (const uint8_t *)x, xl,
	            (const uint8_t *)y, yl) == 1,
	    "ATT_CERTIFY: the signature is the AK's");

	/* QUOTE: over four PCRs, the lowest and the highest among them. */
	for (i = 0; i < 20; i++)
		nonce[i] = (uint8_t)(0x3c + i);
	(void)tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_QUOTE, 144, nonce, 20, mask);
	st = ff_ask(ch, &m, ans, sizeof(ans), &rd);
	tsi_priv_get_span(&rd, &x, &xl, TSI_PRIV_MSG_MAX);
	tsi_priv_get_span(&rd, &y, &yl, TSI_PRIV_MSG_MAX);
	tsi_priv_get_span(&rd, &z, &zl, TSI_PRIV_MSG_MAX);
	ff_check(st == TSI_OK && tsi_priv_rd_end(&rd) == TSI_OK,
	    "ATT_QUOTE answered: attest, signature, pcrs");
	ff_check(ff_attest(x, xl, TPM2_ST_ATTEST_QUOTE, nonce, 20, &at),
	    "ATT_QUOTE: a TPMS_ATTEST of type QUOTE over the nonce sent");
	ff_check(zl == 32 * (size_t)__builtin_popcount(mask),
	    "ATT_QUOTE: 32 bytes of PCR values per bit of the mask");
	ff_check(at.attested.quote.pcrSelect.count == 1 &&
	        at.attested.quote.pcrSelect.pcrSelections[0].hash ==
	            TPM2_ALG_SHA256 &&
	        at.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect ==
	            3 &&
	        at.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[0] ==
	            (mask & 0xff) &&
	        at.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[1] ==
	            ((mask >> 8) & 0xff) &&
	        at.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[2] ==
	            ((mask >> 16) & 0xff),
	    "ATT_QUOTE: the quote selects the SHA-256 PCRs of the mask");
	ff_check(EVP_Digest(z, zl, digest, NULL, EVP_sha256(), NULL) == 1 &&
	        at.attested.quote.pcrDigest.size == 32 &&
	        memcmp(at.attested.quote.pcrDigest.buffer, digest, 32) == 0,
	    "ATT_QUOTE: the pcrs are the values the quote's digest covers");
	ff_check(ak != NULL &&
	        test_attest_sig_ok(ak, (const uint8_t *)x, xl,
	            (const uint8_t *)y, yl) == 1,
	    "ATT_QUOTE: the signature is the AK's");

	/* ACTIVATE of a credential made for no one: the TPM refuses, the
	 * answer carries no secret, the signer answers the next request. */
	ff_tpm2b(t2b, 2 + 2 + 32 + 10, 0x42);
	t2b[2] = 0;
	t2b[3] = 32;
	ff_tpm2b(t2b + 46, 2 + 256, 0x24);
	(void)tsi_priv_enc_activate(&m, 145, t2b, 46, t2b + 46, 258);
	st = ff_ask(ch, &m, ans, sizeof(ans), &rd);
	ff_check(st != TSI_OK && st != 1 && tsi_priv_rd_end(&rd) == TSI_OK,
	    "ATT_ACTIVATE of a bogus credential: an error, no secret");

	/* NODE_STATE: the fixture's certificate is valid, renewal ahead. */
	tsi_priv_msg_begin(&m, TSI_PRIV_NODE_STATE, 146);
	(void)tsi_priv_msg_end(&m);
	st = ff_ask(ch, &m, ans, sizeof(ans), &rd);
	valid = (int)tsi_priv_get_u32(&rd);
	renew_at = tsi_priv_get_i64(&rd);
	ff_check(st == TSI_OK && tsi_priv_rd_end(&rd) == TSI_OK,
	    "NODE_STATE answered: valid, renew_at");
	ff_check(valid == 1 && renew_at > (int64_t)time(NULL),
	    "NODE_STATE: the node certificate is valid, renewal ahead");

	/* NODE_INSTALL of a certificate for another key: refused, the
	 * files as they were. */
	snprintf(node, sizeof(node), "%s/node.pem", dir);
	snprintf(node_ca, sizeof(node_ca), "%s/node-ca.pem", dir);
	snprintf(inst, sizeof(inst), "%s/ca/ca.pem", dir);
	ca_pem = test_slurp(inst);
	before = test_slurp(node);
	ca_before = test_slurp(node_ca);
	other = pki_key();
	other_pem = other != NULL ? ff_node_cert(dir, other) : NULL;
	ff_check(ca_pem != NULL && before != NULL && other_pem != NULL,
	    "a certificate for another key, from the fixture's CA");
	(void)tsi_priv_enc_install(&m, 147, other_pem ? other_pem : "",
	    ca_pem ? ca_pem : "");
	st = ff_ask(ch, &m, ans, sizeof(ans), &rd);
	tsi_priv_get_str(&rd, reason, TSI_PRIV_REASON_MAX);
	ff_check(st == TSI_ERR_BAD_CERT && tsi_priv_rd_end(&rd) == TSI_OK &&
	        strstr(reason, "not for this node's TPM key") != NULL,
	    "NODE_INSTALL of a certificate for another key: BAD_CERT, with "
	    "the reason");
	after = test_slurp(node);
	ca_after = test_slurp(node_ca);
	ff_check(before != NULL && ff_same(before, after) &&
	        ff_same(ca_before, ca_after),
	    "NODE_INSTALL refused: node_cert and node_ca unchanged");

	/* NODE_INSTALL of a fresh certificate for this TPM's key, made
	 * from the CSR: installed, exactly. */
	own_pem =
	    req != NULL ? ff_node_cert(dir, X509_REQ_get0_pubkey(req)) : NULL;
	ff_check(own_pem != NULL && !ff_same(own_pem, before),
	    "a fresh certificate from the CSR, by the fixture's CA");
	(void)tsi_priv_enc_install(&m, 148, own_pem ? own_pem : "",
	    ca_pem ? ca_pem : "");
	st = ff_ask(ch, &m, ans, sizeof(ans), &rd);
	tsi_priv_get_str(&rd, reason, TSI_PRIV_REASON_MAX);
	ff_check(st == TSI_OK && tsi_priv_rd_end(&rd) == TSI_OK,
	    "NODE_INSTALL of a certificate for this TPM's key: TSI_OK");
	free(after);
	free(ca_after);
	after = test_slurp(node);
	ca_after = test_slurp(node_ca);
	ff_check(own_pem != NULL && ff_same(after, own_pem) &&
	        ff_same(ca_after, ca_pem),
	    "NODE_INSTALL: node_cert and node_ca hold exactly what was sent");
	/* For the test's own comparison. */
	snprintf(inst, sizeof(inst), "%s/installed.pem", dir);
	if (own_pem != NULL && (out = fopen(inst, "w")) != NULL) {
		fputs(own_pem, out);
		fclose(out);
	}
	/* The signer serves with it: HEALTH gives its location. */
	tsi_priv_msg_begin(&m, TSI_PRIV_HEALTH, 149);
	(void)tsi_priv_msg_end(&m);
	st = ff_ask(ch, &m, ans, sizeof(ans), &rd);
	tsi_priv_get_str(&rd, reason, TSI_PRIV_REASON_MAX);
	tsi_priv_get_str(&rd, kid, sizeof(kid) - 1);
	tsi_priv_get_str(&rd, cluster, sizeof(cluster) - 1);
	tsi_priv_get_str(&rd, dc, sizeof(dc) - 1);
	ff_check(st == TSI_OK && tsi_priv_rd_end(&rd) == TSI_OK &&
	        strcmp(cluster, "hipaaCluster") == 0 &&
	        strcmp(dc, "dal05") == 0,
	    "HEALTH after NODE_INSTALL: the installed certificate's location");
	X509_REQ_free(req);
	EVP_PKEY_free(kp);
	EVP_PKEY_free(ak);
	EVP_PKEY_free(other);
	free(before);
	free(ca_before);
	free(after);
	free(ca_after);
	free(other_pem);
	free(own_pem);
	free(ca_pem);
}

static int
fake_front(const char *out_path)
{
	static struct tsi_priv_msg m;
	static uint8_t ans[TSI_PRIV_MSG_MAX], big[TSI_PRIV_MSG_MAX + 100];
	struct sockaddr_un sa;
	socklen_t salen = sizeof(sa);
	struct tsi_priv_rd rd;
	uint32_t id, handle, v;
	int32_t st;
	size_t alen;
	int ch = TSI_PRIV_FD_CHAN0, c, s, pair[2], fds[2];

	if ((ff_out = fopen(out_path, "w")) == NULL)
		return 1;
	/* Short header, and a length field that lies both ways. */
	ff_refused(ch, "\x01\x00\x00\x00", 4, NULL, 0, "short header");
	tsi_priv_msg_begin(&m, TSI_PRIV_HEALTH, 1);
	tsi_priv_put_u32(&m, 0);
	(void)tsi_priv_msg_end(&m);
	v = 100;
	memcpy(m.b + 8, &v, 4);
	ff_refused(ch, m.b, m.len, NULL, 0, "length over the datagram");
	v = 0;
	memcpy(m.b + 8, &v, 4);
	ff_refused(ch, m.b, m.len, NULL, 0, "trailing bytes after HEALTH");
	/* Types outside the table. */
	tsi_priv_msg_begin(&m, 99, 2);
	(void)tsi_priv_msg_end(&m);
	ff_refused(ch, m.b, m.len, NULL, 0, "unknown type");
	tsi_priv_msg_begin(&m, TSI_PRIV_WAKE, 3);
	tsi_priv_put_u32(&m, 1);
	(void)tsi_priv_msg_end(&m);
	ff_refused(ch, m.b, m.len, NULL, 0, "WAKE sent to the signer");
	/* A datagram over the maximum. */
	memset(big, 0, sizeof(big));
	v = TSI_PRIV_SIGN;
	memcpy(big, &v, 4);
	v = (uint32_t)(sizeof(big) - TSI_PRIV_HDR);
	memcpy(big + 8, &v, 4);
	ff_refused(ch, big, sizeof(big), NULL, 0, "datagram over the maximum");
	/* RELEASE: short and long. */
	tsi_priv_msg_begin(&m, TSI_PRIV_RELEASE, 4);
	tsi_priv_put_str(&m, "ab", 2);
	(void)tsi_priv_msg_end(&m);
	ff_refused(ch, m.b, m.len, NULL, 0, "RELEASE of 6 bytes");
	tsi_priv_msg_begin(&m, TSI_PRIV_RELEASE, 4);
	(void)tsi_priv_msg_end(&m);
	ff_refused(ch, m.b, m.len, NULL, 0, "RELEASE of 0 bytes");
	/* SIGN truncated, with trailing bytes, with bad claims. */
	(void)tsi_priv_enc_sign(&m, 5, 1, "tsi-vault", "", NULL);
	v = (uint32_t)(m.len - TSI_PRIV_HDR - 2);
	memcpy(m.b + 8, &v, 4);
	ff_refused(ch, m.b, m.len - 2, NULL, 0, "SIGN truncated");
	(void)tsi_priv_enc_sign(&m, 5, 1, "tsi-vault", "", NULL);
	m.b[m.len++] = 'x';
	v = (uint32_t)(m.len - TSI_PRIV_HDR);
	memcpy(m.b + 8, &v, 4);
	ff_refused(ch, m.b, m.len, NULL, 0, "SIGN with a trailing byte");
	tsi_priv_msg_begin(&m, TSI_PRIV_SIGN, 6);
	tsi_priv_put_u32(&m, 1);
	tsi_priv_put_str(&m, "tsi-vault", 9);
	tsi_priv_put_str(&m,
	    "0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef",
	    64);
	tsi_priv_put_str(&m, "{\"namespace\":\"\xff\"}", 18);
	(void)tsi_priv_msg_end(&m);
	ff_refused(ch, m.b, m.len, NULL, 0, "SIGN with invalid UTF-8 claims");
	(void)tsi_priv_enc_sign(&m, 7, 0x12345, "tsi-vault", "", NULL);
	ff_refused(ch, m.b, m.len, NULL, 0, "SIGN for an unknown handle");
	/* IDENTIFY without a descriptor, with two, and a RELEASE with one. */
	tsi_priv_msg_begin(&m, TSI_PRIV_IDENTIFY, 8);
	(void)tsi_priv_msg_end(&m);
	ff_refused(ch, m.b, m.len, NULL, 0, "IDENTIFY without a descriptor");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0)
		return 1;
	ff_refused(ch, m.b, m.len, pair, 2, "IDENTIFY with two descriptors");
	/* A descriptor that is not a connected socket. */
	fds[0] = open("/dev/null", O_RDONLY);
	ff_refused(ch, m.b, m.len, fds, 1, "IDENTIFY of /dev/null");
	close(fds[0]);
	tsi_priv_msg_begin(&m, TSI_PRIV_RELEASE, 9);
	tsi_priv_put_u32(&m, 0x12345);
	(void)tsi_priv_msg_end(&m);
	ff_refused(ch, m.b, m.len, pair, 1, "RELEASE with a descriptor");
	close(pair[0]);
	close(pair[1]);

	/* A real caller: this process, connected to the API socket. */
	if (getsockname(TSI_PRIV_FD_LISTEN, (struct sockaddr *)&sa, &salen) !=
	        0 ||
	    (c = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    connect(c, (struct sockaddr *)&sa, salen) != 0 ||
	    (s = accept(TSI_PRIV_FD_LISTEN, NULL, NULL)) < 0)
		return 1;
	tsi_priv_msg_begin(&m, TSI_PRIV_IDENTIFY, 10);
	(void)tsi_priv_msg_end(&m);
	st = ff_call(ch, m.b, m.len, &s, 1, ans, sizeof(ans), &alen);
	ff_check(st == TSI_OK &&
	        tsi_priv_ans_open(ans, alen, TSI_PRIV_IDENTIFY, &rd, &id,
	            &st) == TSI_OK,
	    "IDENTIFY of a connected caller");
	handle = tsi_priv_get_u32(&rd);
	ff_check(tsi_priv_get_u32(&rd) == (uint32_t)getpid(),
	    "the signer found this pid");
	(void)tsi_priv_enc_sign(&m, 11, handle, "tsi-vault", "", NULL);
	st = ff_call(ch, m.b, m.len, NULL, 0, ans, sizeof(ans), &alen);
	if (st == TSI_ERR_AGAIN) {
		/* The signer hashes this executable: its WAKE, then again. */
		struct pollfd p = { TSI_PRIV_FD_NOTIFY, POLLIN, 0 };
		uint8_t w[64];

		ff_check(poll(&p, 1, 30000) == 1 &&
		        recv(TSI_PRIV_FD_NOTIFY, w, sizeof(w), 0) ==
		            TSI_PRIV_HDR + 4,
		    "WAKE after the hashing");
		st = ff_call(ch, m.b, m.len, NULL, 0, ans, sizeof(ans), &alen);
	}
	ff_check(st == TSI_OK, "SIGN for the connected caller");
	/* Claims for a host caller are not the front end's to give. */
	tsi_priv_msg_begin(&m, TSI_PRIV_SIGN, 12);
	tsi_priv_put_u32(&m, handle);
	tsi_priv_put_str(&m, "tsi-vault", 9);
	tsi_priv_put_str(&m,
	    "0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef",
	    64);
	{
		static const char cl[] =
		    "{\"namespace\":\"ns\",\"pod\":\"p\","
		    "\"service_account\":\"sa\",\"container\":\"c\","
		    "\"images\":[],\"image_names\":[]}";

		tsi_priv_put_str(&m, cl, sizeof(cl) - 1);
	}
	(void)tsi_priv_msg_end(&m);
	ff_refused(ch, m.b, m.len, NULL, 0, "SIGN with made-up claims");
	/* The caller hangs up; the front end (this process) keeps its end:
	 * the signer refuses, then has forgotten the handle. */
	close(c);
	close(s);
	(void)tsi_priv_enc_sign(&m, 13, handle, "tsi-vault", "", NULL);
	st = ff_call(ch, m.b, m.len, NULL, 0, ans, sizeof(ans), &alen);
	ff_check(st == TSI_ERR_UNIDENTIFIED, "SIGN after the caller left");
	st = ff_call(ch, m.b, m.len, NULL, 0, ans, sizeof(ans), &alen);
	ff_check(st == TSI_ERR_NOT_FOUND, "SIGN for a forgotten handle");
	/* Enrollment, in the fixture's directory (where out_path is). */
	{
		char dir[400];
		const char *slash = strrchr(out_path, '/');

		snprintf(dir, sizeof(dir), "%.*s",
		    slash != NULL ? (int)(slash - out_path) : 1,
		    slash != NULL ? out_path : ".");
		ff_enroll_malformed(ch);
		ff_enroll_good(ch, dir);
	}
	/* Still answering, on every channel. */
	tsi_priv_msg_begin(&m, TSI_PRIV_HEALTH, 14);
	(void)tsi_priv_msg_end(&m);
	st = ff_call(ch + 1, m.b, m.len, NULL, 0, ans, sizeof(ans), &alen);
	ff_check(st == TSI_OK, "HEALTH after all that");
	fprintf(ff_out, "done %d\n", ff_bad);
	fclose(ff_out);
	for (;;)
		pause(); /* until the signer's SIGTERM */
}

/* The stand-in front end with the kubelet resolver: the caller (the test
 * process, in container ID_A as its fake /proc says) is already queued on
 * the API socket. Claims for another container, or none, are refused;
 * claims for the caller's container are signed. */
static int
fake_front_k8s(const char *out_path)
{
	static struct tsi_priv_msg m;
	static uint8_t ans[TSI_PRIV_MSG_MAX];
	struct tsi_workload *w;
	struct tsi_priv_rd rd;
	char cid[65];
	uint32_t id, handle;
	int32_t st;
	size_t alen;
	int ch = TSI_PRIV_FD_CHAN0, s;

	if ((ff_out = fopen(out_path, "w")) == NULL ||
	    (s = accept(TSI_PRIV_FD_LISTEN, NULL, NULL)) < 0 ||
	    (w = tsi_workload_new(TSI_WORKLOAD_K8S)) == NULL)
		return 1;
	w->namespace = strdup("medical");
	w->pod = strdup("records-7d9f8b6c5-x2x4q");
	w->service_account = strdup("records-sa");
	w->container = strdup("app");
	tsi_priv_msg_begin(&m, TSI_PRIV_IDENTIFY, 1);
	(void)tsi_priv_msg_end(&m);
	st = ff_call(ch, m.b, m.len, &s, 1, ans, sizeof(ans), &alen);
	ff_check(st == TSI_OK &&
	        tsi_priv_ans_open(ans, alen, TSI_PRIV_IDENTIFY, &rd, &id,
	            &st) == TSI_OK,
	    "IDENTIFY of the caller");
	handle = tsi_priv_get_u32(&rd);
	(void)tsi_priv_get_u32(&rd);
	(void)tsi_priv_get_u32(&rd);
	(void)tsi_priv_get_u32(&rd);
	tsi_priv_get_str(&rd, cid, 64);
	ff_check(strcmp(cid, ID_A) == 0, "the signer read the container id");
	(void)tsi_priv_enc_sign(&m, 2, handle, "tsi-vault", ID_B, w);
	st = ff_call(ch, m.b, m.len, NULL, 0, ans, sizeof(ans), &alen);
	ff_check(st == TSI_ERR_DENIED, "SIGN with another container's claims");
	(void)tsi_priv_enc_sign(&m, 3, handle, "tsi-vault", "", NULL);
	st = ff_call(ch, m.b, m.len, NULL, 0, ans, sizeof(ans), &alen);
	ff_check(st == TSI_ERR_DENIED, "SIGN without claims for a pod");
	(void)tsi_priv_enc_sign(&m, 4, handle, "tsi-vault", ID_A, w);
	st = ff_call(ch, m.b, m.len, NULL, 0, ans, sizeof(ans), &alen);
	ff_check(st == TSI_OK, "SIGN for the caller's container");
	tsi_workload_free(w);
	fprintf(ff_out, "done %d\n", ff_bad);
	fclose(ff_out);
	for (;;)
		pause();
}
/* Runs tsi-issuer with this binary as its front end (mode: "" or "k8s")
 * until the stand-in writes "done"; returns what it wrote (free). c: a
 * socket to connect to the API socket as soon as it is there (or -1). */
static char *
run_fake_front(struct ifx *f, const char *mode, int c)
{
	char exe[512], self[4096], out[400], *text = NULL;
	const char *p;
	struct sockaddr_un sa;
	long long deadline;
	int connected = c < 0;
	ssize_t n;
	pid_t pid;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	snprintf(out, sizeof(out), "%s/fake-front.out", f->dir);
	snprintf(exe, sizeof(exe), "%s/tsi-issuer", bin_dir());
	if ((pid = fork()) == 0) {
		int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		setenv("TSI_TEST_FAKE_FRONT", out, 1);
		setenv("TSI_TEST_FAKE_FRONT_MODE", mode, 1);
		execl(exe, exe, "run", "--config", f->conf, "--front-exe", self,
		    (char *)NULL);
		_exit(127);
	}
	f->issuer = pid;
	deadline = test_now_ms() + 60000;
	while (test_now_ms() < deadline) {
		if (!connected &&
		    connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			connected = 1;
		free(text);
		if ((text = test_slurp(out)) != NULL &&
		    strstr(text, "done ") != NULL)
			break;
		assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
		usleep(20000);
	}
	assert_true(connected);
	assert_non_null(text);
	/* Line by line: cmocka cuts a long message short. */
	for (p = text; *p != '\0'; p += n + (p[n] == '\n')) {
		n = (ssize_t)strcspn(p, "\n");
		print_message("%.*s\n", (int)n, p);
	}
	return text;
}

static void
test_signer_malformed(void **state)
{
	struct ifx *f = *state;
	char *text;

	char path[400], *node, *installed;

	enroll(f);
	text = run_fake_front(f, "", -1);
	assert_non_null(strstr(text, "done 0\n"));
	assert_null(strstr(text, "bad "));
	assert_non_null(strstr(text, "ok SIGN for the connected caller"));
	/* The enrollment part ran to its end. */
	assert_non_null(strstr(text, "ok NODE_INSTALL over its payload bound"));
	assert_non_null(
	    strstr(text, "ok ATT_QUOTE: the signature is the AK's"));
	assert_non_null(strstr(text,
	    "ok NODE_INSTALL refused: node_cert and node_ca unchanged"));
	assert_non_null(strstr(text, "ok HEALTH after NODE_INSTALL"));
	free(text);
	/* The signer lived through it, and logged what it refused. */
	assert_int_equal(waitpid(f->issuer, NULL, WNOHANG), 0);
	assert_true(log_has(f, "signer.bad_request"));
	assert_true(log_has(f, "the caller's connection is closed"));
	assert_true(log_has(f, "enroll.install_refused"));
	assert_true(log_has(f, "enroll.installed"));
	/* node_cert is, byte for byte, the certificate the stand-in had
	 * installed for the TPM's key. */
	snprintf(path, sizeof(path), "%s/installed.pem", f->dir);
	assert_non_null(installed = test_slurp(path));
	assert_non_null(node = test_slurp(f->node));
	assert_non_null(strstr(installed, "-----BEGIN CERTIFICATE-----"));
	assert_string_equal(node, installed);
	free(node);
	free(installed);
	assert_int_equal(stop_issuer(f), 0);
}

/* Kubernetes callers: the container id in a SIGN must be the one the
 * signer read from the caller's cgroup (this process, through a fake
 * /proc), whatever claims the front end puts with it. */
static void
test_signer_container_check(void **state)
{
	struct ifx *f = *state;
	char proc[400], p[600], extra[1024], *text;
	int c;

	snprintf(proc, sizeof(proc), "%s/proc", f->dir);
	mkdir(proc, 0700);
	snprintf(p, sizeof(p), "%s/%ld", proc, (long)getpid());
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/%ld/stat", proc, (long)getpid());
	copy_file("/proc/self/stat", p);
	snprintf(p, sizeof(p), "%s/%ld/cgroup", proc, (long)getpid());
	write_text(p, "0::/kubepods.slice/cri-containerd-" ID_A ".scope\n");
	snprintf(extra, sizeof(extra),
	    "proc_root = \"%s\";\n"
	    "kubelet_url = \"https://127.0.0.1:9\";\n",
	    proc);
	snprintf(f->resolver, sizeof(f->resolver), "kubelet");
	write_config(f, extra);
	enroll(f);
	/* This process waits in the socket's backlog: the stand-in's
	 * accept takes it. */
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(c >= 0);
	text = run_fake_front(f, "k8s", c);
	assert_non_null(strstr(text, "done 0\n"));
	assert_null(strstr(text, "bad "));
	free(text);
	close(c);
	assert_true(log_has(f, "claims for another container"));
	assert_int_equal(stop_issuer(f), 0);
}

/* The pid in the last "front.started" line of the log, or 0. */
static pid_t
front_pid(struct ifx *f)
{
	char *text = test_slurp(f->log), *p, *last = NULL;
	pid_t pid = 0;

	if (text == NULL)
		return 0;
	for (p = text; (p = strstr(p, "\"front.started\",\"pid\":")) != NULL;
	     p++)
		last = p;
	if (last != NULL)
		pid = (pid_t)atol(last + strlen("\"front.started\",\"pid\":"));
	free(text);
	return pid;
}

/* Counts lines of the log holding s. */
static int
log_count(struct ifx *f, const char *s)
{
	return test_count(f->log, s);
}

/*
 * The front end killed (SIGKILL) while four clients fetch tokens in a loop:
 * the signer survives and logs the death, a new front end serves within a
 * bounded time, the clients get tokens again, and no token was minted for
 * a caller the signer had not identified: every token.issued line of the
 * front end is matched by a signer that knew the pid (the counts of
 * tokens the clients got and tokens issued agree, none from nowhere).
 */
static void
test_front_killed_under_load(void **state)
{
	struct ifx *f = *state;
	pid_t kids[4], fp, fp2 = 0;
	int pipes[4][2], i, st, ok_total = 0, fail_total = 0;
	long long t0, back_ms = -1, deadline;
	struct resp r;

	enroll(f);
	start_issuer(f);
	assert_true((fp = front_pid(f)) > 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pipe(pipes[i]), 0);
		if ((kids[i] = fork()) == 0) {
			long long end = test_now_ms() + 6000;
			int counts[2] = { 0, 0 };

			close(pipes[i][0]);
			while (test_now_ms() < end) {
				if (get(f, "/v1/token?aud=tsi-vault", NULL, &r,
				        NULL) == CURLE_OK &&
				    r.status == 200 &&
				    strstr(r.body, "\"token\":\"ey") != NULL)
					counts[0]++;
				else
					counts[1]++;
			}
			if (write(pipes[i][1], counts, sizeof(counts)) !=
			    (ssize_t)sizeof(counts))
				_exit(1);
			_exit(0);
		}
		close(pipes[i][1]);
	}
	usleep(1000000); /* load running: the kill lands mid-request */
	assert_int_equal(kill(fp, SIGKILL), 0);
	t0 = test_now_ms();
	/* A new front end serves: a token within a bounded time. */
	deadline = t0 + 10000;
	while (test_now_ms() < deadline) {
		if (get(f, "/v1/token?aud=tsi-vault", NULL, &r, NULL) ==
		        CURLE_OK &&
		    r.status == 200) {
			back_ms = test_now_ms() - t0;
			break;
		}
	}
	print_message("front end SIGKILLed: tokens again after %lld ms\n",
	    back_ms);
	assert_true(back_ms >= 0);
	assert_true(back_ms < 5000);
	fp2 = front_pid(f);
	assert_true(fp2 > 0 && fp2 != fp);
	for (i = 0; i < 4; i++) {
		int counts[2];

		assert_int_equal(read(pipes[i][0], counts, sizeof(counts)),
		    (ssize_t)sizeof(counts));
		close(pipes[i][0]);
		assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		ok_total += counts[0];
		fail_total += counts[1];
	}
	print_message("under load: %d tokens, %d failed requests (the kill)\n",
	    ok_total, fail_total);
	assert_true(ok_total > 0);
	/* The signer lived, logged the death with its signal, and started
	 * exactly one new front end for it. */
	assert_int_equal(waitpid(f->issuer, NULL, WNOHANG), 0);
	assert_true(log_has(f, "\"event\":\"front.exited\",\"pid\":"));
	assert_true(log_has(f, "\"signal\":9"));
	assert_int_equal(log_count(f, "\"front.started\""), 2);
	/* Every token a client got was minted by the signer for an
	 * identified caller: no more issued than the clients (and the probe
	 * requests of this test) received. */
	assert_true(log_count(f, "\"token.issued\"") <= ok_total + 2 + 1);
	assert_int_equal(stop_issuer(f), 0);
}

/* privsep = false still serves (the benchmark's single-process figure). */
static void
test_single_process(void **state)
{
	struct ifx *f = *state;
	char *tok;

	enroll(f);
	write_config(f, "privsep = false;\n");
	start_issuer(f);
	tok = get_token(f, "tsi-vault", NULL);
	assert_non_null(tok);
	free(tok);
	assert_false(log_has(f, "front.started"));
	assert_int_equal(stop_issuer(f), 0);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delegated_token,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_caller_sets_only_aud,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_request_sizes,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_tpm_mode_restart_keeps_kid,
		    setup_tpm, teardown),
		cmocka_unit_test_setup_teardown(test_tpm_loss_delegated,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_tpm_loss_tpm, setup_tpm,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refuses_bad_node_cert,
		    setup_tpm, teardown),
		cmocka_unit_test_setup_teardown(test_bad_config_exit_2,
		    setup_tpm, teardown),
		cmocka_unit_test_setup_teardown(test_kubelet_workload,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_socket_mode,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_second_issuer_same_socket,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_exec_race, setup_delegated,
		    teardown),
		cmocka_unit_test_setup_teardown(test_huge_executable,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_kubelet_slow_daemon,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_signer_malformed,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_signer_container_check,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_front_killed_under_load,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_single_process,
		    setup_delegated, teardown),
	};

	/* Run by the signer as its front end (test_signer_malformed). */
	if (argc >= 2 && strcmp(argv[1], "front") == 0 &&
	    getenv("TSI_TEST_FAKE_FRONT") != NULL)
		return getenv("TSI_TEST_FAKE_FRONT_MODE") != NULL &&
		        strcmp(getenv("TSI_TEST_FAKE_FRONT_MODE"), "k8s") == 0
		    ? fake_front_k8s(getenv("TSI_TEST_FAKE_FRONT"))
		    : fake_front(getenv("TSI_TEST_FAKE_FRONT"));
	/* A copy of this binary serves as a token client (test_huge_executable):
	 * one request on the socket named, exit 0 for 200. */
	if (argc == 3 && strcmp(argv[1], "--token-client") == 0) {
		struct sockaddr_un sa;
		static char body[65536];
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		if (fd < 0 || strlen(argv[2]) >= sizeof(sa.sun_path))
			return 2;
		memcpy(sa.sun_path, argv[2], strlen(argv[2]) + 1);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			return 2;
		return raw_get(fd, "/v1/token?aud=tsi-vault", body,
		           sizeof(body)) == 200
		    ? 0
		    : 1;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tsi_log_init("test_issuer", TSI_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
