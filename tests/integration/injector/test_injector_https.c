/*
 * tsi-injector over real HTTPS on loopback: the built program is started with
 * a fresh certificate, and AdmissionReviews from tests/data/admission/ are
 * posted with libcurl.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/tsi-injector-test-XXXXXX";
static char cert[256], key[256], conf[256], logpath[256], base[64];
static pid_t server = -1;
static const char *bindir, *srcdir;

struct body {
	char *p;
	size_t n;
};

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body *b = ud;
	size_t n = size * nmemb;
	char *q;

	if ((q = realloc(b->p, b->n + n + 1)) == NULL)
		return 0;
	memcpy(q + b->n, ptr, n);
	b->p = q;
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* Runs argv, waits; returns the exit status (or -1). Output goes to /dev/null. */
static int
run(char *const argv[], int quiet)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (quiet) {
			int fd = open("/dev/null", O_WRONLY);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static unsigned
free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port = 0;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *p = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n + 1)) != NULL) {
		if (fread(p, 1, (size_t)n, f) != (size_t)n) {
			free(p);
			p = NULL;
		} else
			p[n] = '\0';
	}
	fclose(f);
	return p;
}

/* One HTTPS request; returns the HTTP status (0 on transport failure). */
static long
https(CURL *c, const char *method, const char *path, const char *data,
    size_t len, struct body *out)
{
	char url[256];
	struct curl_slist *h = NULL;
	long code = 0;

	snprintf(url, sizeof(url), "%s%s", base, path);
	out->p = NULL;
	out->n = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, cert);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (data != NULL) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	return code;
}

static int
setup(void **state)
{
	char subj_alt[] = "subjectAltName=IP:127.0.0.1";
	char *req[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out",
		cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
		subj_alt, NULL };
	char prog[512];
	unsigned port;
	FILE *f;
	int i;

	(void)state;
	bindir = getenv("TSI_BIN_DIR");
	srcdir = getenv("TSI_SOURCE_DIR");
	if (bindir == NULL || srcdir == NULL || mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
	snprintf(conf, sizeof(conf), "%s/injector.conf", tmpdir);
	snprintf(logpath, sizeof(logpath), "%s/injector.log", tmpdir);
	if (run(req, 1) != 0)
		return -1;
	if ((port = free_port()) == 0)
		return -1;
	snprintf(base, sizeof(base), "https://127.0.0.1:%u", port);
	if ((f = fopen(conf, "w")) == NULL)
		return -1;
	fprintf(f,
	    "listen = \"127.0.0.1:%u\";\ntls_cert = \"%s\";\n"
	    "tls_key = \"%s\";\nsidecar_image = "
	    "\"registry.example/tsi-sidecar:0.1.0\";\n"
	    "vault_addr = \"https://tsi-vault.tsi-system.svc:8200\";\n"
	    "max_request_bytes = 65536;\n",
	    port, cert, key);
	fclose(f);
	snprintf(prog, sizeof(prog), "%s/tsi-injector", bindir);
	if ((server = fork()) < 0)
		return -1;
	if (server == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		execl(prog, prog, "--config", conf, "run", (char *)NULL);
		_exit(127);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (i = 0; i < 100; i++) {
		CURL *c = curl_easy_init();
		struct body b;
		long code = https(c, "GET", "/healthz", NULL, 0, &b);
		free(b.p);
		curl_easy_cleanup(c);
		if (code == 200)
			return 0;
		usleep(50 * 1000);
	}
	return -1;
}

static int
teardown(void **state)
{
	char *rm[] = { "rm", "-rf", tmpdir, NULL };
	int st, rc = 0;

	(void)state;
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, &st, 0);
		/* SIGTERM is a clean stop: exit 0 */
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "tsi-injector did not stop cleanly\n");
			rc = -1;
		}
	}
	curl_global_cleanup();
	if (getenv("TSI_TEST_KEEP") == NULL)
		run(rm, 1);
	return rc;
}

/* Posts tests/data/admission/<name>; returns the parsed response object
 * (caller decrefs the root via *root). */
static json_t *
review(const char *name, json_t **root)
{
	char path[512];
	char *data;
	struct body b;
	CURL *c;
	long code;
	json_t *req;

	snprintf(path, sizeof(path), "%s/tests/data/admission/%s", srcdir,
	    name);
	data = slurp(path);
	assert_non_null(data);
	c = curl_easy_init();
	code = https(c, "POST", "/mutate", data, strlen(data), &b);
	curl_easy_cleanup(c);
	assert_int_equal(code, 200);
	*root = json_loads(b.p, 0, NULL);
	assert_non_null(*root);
	assert_string_equal(json_string_value(
	                        json_object_get(*root, "apiVersion")),
	    "admission.k8s.io/v1");
	assert_string_equal(json_string_value(json_object_get(*root, "kind")),
	    "AdmissionReview");
	/* the response answers the request it was given */
	req = json_loads(data, 0, NULL);
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(*root,
	                                            "response"),
	                            "uid")),
	    json_string_value(
	        json_object_get(json_object_get(req, "request"), "uid")));
	json_decref(req);
	free(data);
	free(b.p);
	return json_object_get(*root, "response");
}

static json_t *
decode_patch(const json_t *resp)
{
	const char *enc = json_string_value(json_object_get(resp, "patch"));
	unsigned char *dec;
	size_t n;
	int len;
	json_t *p;

	assert_non_null(enc);
	assert_string_equal(json_string_value(
	                        json_object_get(resp, "patchType")),
	    "JSONPatch");
	n = strlen(enc);
	dec = calloc(1, n + 1);
	assert_non_null(dec);
	len = EVP_DecodeBlock(dec, (const unsigned char *)enc, (int)n);
	assert_true(len > 0);
	while (len > 0 && dec[len - 1] == '\0')
		len--; /* EVP_DecodeBlock keeps the padding's zero bytes */
	p = json_loadb((const char *)dec, (size_t)len, 0, NULL);
	free(dec);
	assert_true(json_is_array(p));
	return p;
}

/* The value of the op at path, or NULL. */
static json_t *
op_value(const json_t *patch, const char *path)
{
	json_t *op;
	size_t i;

	json_array_foreach (patch, i, op)
		if (strcmp(json_string_value(json_object_get(op, "path")),
		        path) == 0) {
			assert_string_equal(json_string_value(
			                        json_object_get(op, "op")),
			    "add");
			return json_object_get(op, "value");
		}
	return NULL;
}

static const char *
env_of(const json_t *ct, const char *name)
{
	json_t *e;
	size_t i;

	json_array_foreach (json_object_get(ct, "env"), i, e)
		if (strcmp(json_string_value(json_object_get(e, "name")),
		        name) == 0)
			return json_string_value(json_object_get(e, "value"));
	return NULL;
}

static void
test_annotated_pod_is_patched(void **state)
{
	json_t *root, *resp, *patch, *inits, *init, *v, *m, *secrets;
	size_t i;
	int saw_issuer = 0;

	(void)state;
	resp = review("pod-annotated-create.json", &root);
	assert_true(json_is_true(json_object_get(resp, "allowed")));
	patch = decode_patch(resp);
	/* no initContainers before: the list is created with ours */
	inits = op_value(patch, "/spec/initContainers");
	assert_true(json_is_array(inits));
	assert_int_equal(json_array_size(inits), 1);
	init = json_array_get(inits, 0);
	assert_string_equal(json_string_value(json_object_get(init, "name")),
	    "tsi-sidecar-init");
	assert_string_equal(json_string_value(json_object_get(init, "image")),
	    "registry.example/tsi-sidecar:0.1.0");
	assert_string_equal(json_string_value(
	                        json_array_get(json_object_get(init, "args"),
	                            0)),
	    "--once");
	assert_string_equal(env_of(init, "TSI_ROLE"), "demo");
	assert_string_equal(env_of(init, "VAULT_ADDR"),
	    "https://tsi-vault.tsi-system.svc:8200");
	assert_string_equal(env_of(init, "TSI_ISSUER_SOCKET"),
	    "/run/tsi/issuer.sock");
	assert_string_equal(env_of(init, "TSI_AUDIENCE"), "tsi-vault");
	assert_string_equal(env_of(init, "TSI_SECRETS_DIR"), "/tsi-secrets");
	assert_null(
	    env_of(init, "VAULT_CACERT")); /* no CA ConfigMap configured */
	secrets = json_loads(env_of(init, "TSI_SECRETS"), 0, NULL);
	assert_int_equal(json_array_size(secrets), 2);
	assert_string_equal(json_string_value(
	                        json_object_get(json_array_get(secrets, 0),
	                            "path")),
	    "secret/data/medical/db");
	assert_string_equal(json_string_value(
	                        json_object_get(json_array_get(secrets, 0),
	                            "field")),
	    "password");
	json_decref(secrets);
	/* the sidecar runs as the application's uid, unprivileged */
	v = json_object_get(init, "securityContext");
	assert_int_equal(json_integer_value(json_object_get(v, "runAsUser")),
	    1000);
	assert_true(
	    json_is_false(json_object_get(v, "allowPrivilegeEscalation")));
	json_array_foreach (json_object_get(init, "volumeMounts"), i, m)
		if (strcmp(json_string_value(json_object_get(m, "name")),
		        "tsi-issuer") == 0) {
			assert_true(
			    json_is_true(json_object_get(m, "readOnly")));
			saw_issuer = 1;
		}
	assert_true(saw_issuer);
	/* the application containers see the secrets, read-only, and nothing
	 * of the issuer */
	m = op_value(patch, "/spec/containers/0/volumeMounts/-");
	assert_string_equal(json_string_value(json_object_get(m, "name")),
	    "tsi-secrets");
	assert_true(json_is_true(json_object_get(m, "readOnly")));
	m = op_value(patch, "/spec/containers/1/volumeMounts");
	assert_int_equal(json_array_size(m), 1);
	/* volumes appended to the existing list */
	json_array_foreach (patch, i, v) {
		json_t *val = json_object_get(v, "value");
		if (strcmp(json_string_value(json_object_get(v, "path")),
		        "/spec/volumes/-") != 0)
			continue;
		if (json_object_get(val, "emptyDir") != NULL)
			assert_string_equal(json_string_value(json_object_get(
			                        json_object_get(val,
			                            "emptyDir"),
			                        "medium")),
			    "Memory");
		else
			assert_string_equal(json_string_value(json_object_get(
			                        json_object_get(val,
			                            "hostPath"),
			                        "path")),
			    "/run/tsi");
	}
	assert_string_equal(json_string_value(op_value(patch,
	                        "/metadata/annotations/tsi.injected")),
	    "true");
	/* no refresh sidecar unless asked */
	assert_null(op_value(patch, "/spec/containers/-"));
	json_decref(patch);
	json_decref(root);
}

static void
test_refresh_pod_gets_sidecar(void **state)
{
	json_t *root, *resp, *patch, *sc, *init;

	(void)state;
	resp = review("pod-refresh-create.json", &root);
	assert_true(json_is_true(json_object_get(resp, "allowed")));
	patch = decode_patch(resp);
	sc = op_value(patch, "/spec/containers/-");
	assert_non_null(sc);
	assert_string_equal(json_string_value(json_object_get(sc, "name")),
	    "tsi-sidecar");
	assert_null(json_object_get(sc, "args")); /* refresh mode */
	/* ours goes first among the existing init containers */
	init = op_value(patch, "/spec/initContainers/0");
	assert_string_equal(json_string_value(json_object_get(init, "name")),
	    "tsi-sidecar-init");
	assert_non_null(op_value(patch, "/spec/initContainers/0/volumeMounts"));
	assert_true(json_is_array(op_value(patch, "/spec/volumes")));
	json_decref(patch);
	json_decref(root);
}

static void
test_plain_pod_left_alone(void **state)
{
	json_t *root, *resp;

	(void)state;
	resp = review("pod-plain-create.json", &root);
	assert_true(json_is_true(json_object_get(resp, "allowed")));
	assert_null(json_object_get(resp, "patch"));
	assert_null(json_object_get(resp, "patchType"));
	json_decref(root);
}

static void
assert_refused(const char *file, const char *needle)
{
	json_t *root, *resp, *st;

	resp = review(file, &root);
	assert_true(json_is_false(json_object_get(resp, "allowed")));
	assert_null(json_object_get(resp, "patch"));
	st = json_object_get(resp, "status");
	assert_int_equal(json_integer_value(json_object_get(st, "code")), 403);
	assert_non_null(
	    strstr(json_string_value(json_object_get(st, "message")), needle));
	json_decref(root);
}

static void
test_hostpath_escape_refused(void **state)
{
	(void)state;
	assert_refused("pod-hostpath-escape-create.json", "hostPath /run ");
}

static void
test_update_changing_annotation_refused(void **state)
{
	(void)state;
	assert_refused("pod-update-annotation-changed.json",
	    "tsi.secrets cannot change");
}

static void
test_update_changing_sidecar_image_refused(void **state)
{
	(void)state;
	assert_refused("pod-update-sidecar-image-changed.json", "image");
}

static void
test_bad_secrets_refused(void **state)
{
	(void)state;
	assert_refused("pod-bad-secrets-create.json", "tsi.secrets[0].path");
}

static void
test_benign_update_allowed(void **state)
{
	json_t *root, *resp;

	(void)state;
	/* the injected pod's own issuer hostPath volume does not make every
	 * later update fail */
	resp = review("pod-update-label-allowed.json", &root);
	assert_true(json_is_true(json_object_get(resp, "allowed")));
	assert_null(json_object_get(resp, "patch"));
	json_decref(root);
}

static void
test_bad_requests(void **state)
{
	CURL *c = curl_easy_init();
	struct body b;
	char *big;
	const char *notreview =
	    "{\"apiVersion\":\"admission.k8s.io/v1beta1\","
	    "\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"x\"}}";

	(void)state;
	assert_int_equal(https(c, "POST", "/mutate", "{not json", 9, &b), 400);
	assert_non_null(strstr(b.p, "errors"));
	free(b.p);
	assert_int_equal(https(c, "POST", "/mutate", notreview,
	                     strlen(notreview), &b),
	    400);
	free(b.p);
	assert_int_equal(https(c, "GET", "/mutate", NULL, 0, &b), 405);
	free(b.p);
	assert_int_equal(https(c, "GET", "/nope", NULL, 0, &b), 404);
	free(b.p);
	/* over max_request_bytes (65536 in this config) */
	big = malloc(70000);
	assert_non_null(big);
	memset(big, ' ', 70000);
	assert_int_equal(https(c, "POST", "/mutate", big, 70000, &b), 413);
	free(b.p);
	free(big);
	/* the server is still there */
	assert_int_equal(https(c, "GET", "/healthz", NULL, 0, &b), 200);
	assert_string_equal(b.p, "ok\n");
	free(b.p);
	curl_easy_cleanup(c);
}

static void
test_keep_alive_and_tls_only(void **state)
{
	CURL *c = curl_easy_init();
	struct body b;
	long conns = -1;
	char url[128];

	(void)state;
	assert_int_equal(https(c, "GET", "/healthz", NULL, 0, &b), 200);
	free(b.p);
	assert_int_equal(https(c, "GET", "/healthz", NULL, 0, &b), 200);
	free(b.p);
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
	assert_int_equal(conns,
	    0); /* the second request reused the connection */
	curl_easy_cleanup(c);
	/* plain HTTP gets no answer */
	c = curl_easy_init();
	snprintf(url, sizeof(url), "http%s/healthz", base + 5);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	b.p = NULL;
	b.n = 0;
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	assert_int_not_equal(curl_easy_perform(c), CURLE_OK);
	free(b.p);
	curl_easy_cleanup(c);
}

static void
test_log_is_json_lines_without_secrets(void **state)
{
	char *log = slurp(logpath);
	char *line, *nl;
	int n = 0;

	(void)state;
	assert_non_null(log);
	for (line = log; *line != '\0'; line = nl + 1) {
		json_t *o;
		if ((nl = strchr(line, '\n')) == NULL)
			break;
		o = json_loadb(line, (size_t)(nl - line), 0, NULL);
		assert_non_null(o);
		json_decref(o);
		n++;
	}
	assert_true(n >= 8);
	assert_non_null(strstr(logpath, "injector.log"));
	/* decisions are logged, the annotation's content is not */
	free(log);
	log = slurp(logpath);
	assert_non_null(strstr(log, "\"decision\":\"refused\""));
	assert_null(strstr(log, "secret/data/medical"));
	free(log);
}

static void
test_cli_exit_codes(void **state)
{
	char prog[512], bad[512];
	char *help[] = { prog, "--help", NULL };
	char *ver[] = { prog, "--version", NULL };
	char *unknown[] = { prog, "--frobnicate", NULL };
	char *badconf[] = { prog, "--config", bad, "run", NULL };
	FILE *f;

	(void)state;
	snprintf(prog, sizeof(prog), "%s/tsi-injector", bindir);
	snprintf(bad, sizeof(bad), "%s/bad.conf", tmpdir);
	assert_int_equal(run(help, 1), 0);
	assert_int_equal(run(ver, 1), 0);
	assert_int_equal(run(unknown, 1), 2);
	f = fopen(bad, "w");
	assert_non_null(f);
	fprintf(f,
	    "tls_cert = \"x\";\ntls_key = \"y\";\nsidecar_image = \"i\";\n"
	    "vault_addr = \"https://v\";\nsidecar_imag = \"typo\";\n");
	fclose(f);
	assert_int_equal(run(badconf, 1), 2);
	f = fopen(bad, "w");
	assert_non_null(f);
	/* the TLS files do not exist: a runtime failure */
	fprintf(f,
	    "listen = \"127.0.0.1:1\";\ntls_cert = \"%s/none.pem\";\n"
	    "tls_key = \"%s/none.key\";\nsidecar_image = \"i\";\n"
	    "vault_addr = \"https://v\";\n",
	    tmpdir, tmpdir);
	fclose(f);
	assert_int_equal(run(badconf, 1), 1);
}

/* Runs tsi-injector --config cfg run; waits at most wait_s for it to
 * exit. Returns its exit status, or -1 (it is killed) when it still runs.
 * Its stderr goes to errpath. */
static int
run_bounded(const char *cfg, const char *errpath, int wait_s)
{
	char prog[512];
	pid_t pid;
	int st, i;

	snprintf(prog, sizeof(prog), "%s/tsi-injector", bindir);
	if ((pid = fork()) < 0)
		return -2;
	if (pid == 0) {
		int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		execl(prog, prog, "--config", cfg, "run", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < wait_s * 20; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -3;
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* A second injector on the running one's address exits 1 and says why. */
static void
test_second_injector_same_port(void **state)
{
	char errp[300], *log;

	(void)state;
	snprintf(errp, sizeof(errp), "%s/second.log", tmpdir);
	assert_int_equal(run_bounded(conf, errp, 15), 1);
	log = slurp(errp);
	assert_non_null(log);
	assert_non_null(strstr(log, "address in use"));
	free(log);
}

/* The key file must not be readable by group or others: exit 2. */
static void
test_open_key_refused(void **state)
{
	char cfg[300], k2[300], errp[300], *log;
	char *cp[] = { "cp", key, k2, NULL };
	FILE *f;

	(void)state;
	snprintf(cfg, sizeof(cfg), "%s/openkey.conf", tmpdir);
	snprintf(k2, sizeof(k2), "%s/open.key", tmpdir);
	snprintf(errp, sizeof(errp), "%s/openkey.log", tmpdir);
	assert_int_equal(run(cp, 1), 0);
	assert_int_equal(chmod(k2, 0644), 0);
	f = fopen(cfg, "w");
	assert_non_null(f);
	fprintf(f,
	    "listen = \"127.0.0.1:%u\";\ntls_cert = \"%s\";\n"
	    "tls_key = \"%s\";\nsidecar_image = \"i\";\n"
	    "vault_addr = \"https://v\";\n",
	    free_port(), cert, k2);
	fclose(f);
	assert_int_equal(run_bounded(cfg, errp, 15), 2);
	log = slurp(errp);
	assert_non_null(log);
	assert_non_null(strstr(log, "readable by group or others"));
	free(log);
}

/* One TLS handshake; 1 when it succeeded. ciphers NULL: TLS 1.3. fp (may
 * be NULL): the SHA-256 of the certificate served. */
static int
tls_handshake_fp(const char *ciphers, unsigned char fp[32])
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	struct sockaddr_in a;
	struct timeval tv = { 10, 0 };
	unsigned port = (unsigned)atoi(strrchr(base, ':') + 1);
	int fd, ok;

	assert_non_null(ctx);
	SSL_CTX_set_security_level(ctx, 0);
	if (ciphers != NULL) {
		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
		assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
	} else
		SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	ok = SSL_connect(ssl) == 1;
	if (ok && fp != NULL) {
		X509 *peer = SSL_get1_peer_certificate(ssl);
		unsigned len = 32;
		if (peer != NULL)
			X509_digest(peer, EVP_sha256(), fp, &len);
		X509_free(peer);
	}
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	return ok;
}

static int
tls_handshake(const char *ciphers)
{
	return tls_handshake_fp(ciphers, NULL);
}

/* SIGHUP: a rotated certificate is served without a restart; a key that
 * does not match keeps the current one. Runs last: it replaces the
 * certificate the other tests trust. */
static void
test_sighup_reloads_certificate(void **state)
{
	char subj_alt[] = "subjectAltName=IP:127.0.0.1";
	char other[300], otherkey[300];
	char *req[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out",
		cert, "-days", "2", "-subj", "/CN=rotated", "-addext", subj_alt,
		NULL };
	char *req2[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:P-256", "-nodes", "-keyout", otherkey,
		"-out", other, "-days", "2", "-subj", "/CN=other", NULL };
	char *cp[] = { "cp", other, cert, NULL };
	unsigned char fp0[32], fp1[32], fp2[32];
	char *log;
	int i;

	(void)state;
	snprintf(other, sizeof(other), "%s/other.pem", tmpdir);
	snprintf(otherkey, sizeof(otherkey), "%s/other.key", tmpdir);
	assert_int_equal(tls_handshake_fp(NULL, fp0), 1);
	assert_int_equal(run(req, 1), 0);
	assert_int_equal(kill(server, SIGHUP), 0);
	for (i = 0; i < 100; i++) {
		assert_int_equal(tls_handshake_fp(NULL, fp1), 1);
		if (memcmp(fp0, fp1, 32) != 0)
			break;
		usleep(100 * 1000);
	}
	assert_memory_not_equal(fp0, fp1, 32);
	/* A certificate whose key is not tls_key: refused, logged, kept. */
	assert_int_equal(run(req2, 1), 0);
	assert_int_equal(run(cp, 1), 0);
	assert_int_equal(kill(server, SIGHUP), 0);
	for (i = 0; i < 100; i++) {
		log = slurp(logpath);
		if (log != NULL && strstr(log, "injector.tls_reload_failed")) {
			free(log);
			break;
		}
		free(log);
		usleep(100 * 1000);
	}
	assert_true(i < 100);
	assert_int_equal(tls_handshake_fp(NULL, fp2), 1);
	assert_memory_equal(fp1, fp2, 32);
}

/* The same suites as tsi-vault: TLS 1.2 with ECDHE and AEAD only. */
static void
test_tls_suites(void **state)
{
	(void)state;
	assert_int_equal(tls_handshake(NULL), 1);
	assert_int_equal(tls_handshake("ECDHE-ECDSA-AES128-GCM-SHA256"), 1);
	assert_int_equal(tls_handshake("ECDHE-ECDSA-CHACHA20-POLY1305"), 1);
	assert_int_equal(tls_handshake("ECDHE-ECDSA-AES128-SHA"), 0);
	assert_int_equal(tls_handshake("ECDHE-ECDSA-AES256-SHA"), 0);
	assert_int_equal(tls_handshake("ECDHE-ECDSA-AES128-SHA256"), 0);
	assert_int_equal(tls_handshake("AES128-GCM-SHA256:AES128-SHA"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_annotated_pod_is_patched),
		cmocka_unit_test(test_refresh_pod_gets_sidecar),
		cmocka_unit_test(test_plain_pod_left_alone),
		cmocka_unit_test(test_hostpath_escape_refused),
		cmocka_unit_test(test_update_changing_annotation_refused),
		cmocka_unit_test(test_update_changing_sidecar_image_refused),
		cmocka_unit_test(test_bad_secrets_refused),
		cmocka_unit_test(test_benign_update_allowed),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_keep_alive_and_tls_only),
		cmocka_unit_test(test_log_is_json_lines_without_secrets),
		cmocka_unit_test(test_cli_exit_codes),
		cmocka_unit_test(test_second_injector_same_port),
		cmocka_unit_test(test_open_key_refused),
		cmocka_unit_test(test_tls_suites),
		cmocka_unit_test(test_sighup_reloads_certificate),
	};

	return cmocka_run_group_tests_name("injector_https", tests, setup,
	    teardown);
}
