#include "attest_fixture.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tsi/attest.h"
#include "tsi/err.h"
#include "tsi/jwt.h"

static long long
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct sink {
	char *p;
	size_t n;
};

static size_t
sink_cb(char *d, size_t sz, size_t nm, void *u)
{
	struct sink *s = u;
	char *np = realloc(s->p, s->n + sz * nm + 1);

	if (np == NULL)
		return 0;
	memcpy(np + s->n, d, sz * nm);
	s->n += sz * nm;
	np[s->n] = '\0';
	s->p = np;
	return sz * nm;
}

long
attest_http(struct attest_srv *s, const char *method, const char *path,
    const char *token, const json_t *body, const char *raw_body, json_t **out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct sink sk = { NULL, 0 };
	char url[512], auth[400];
	char *text = NULL;
	long code = -1;

	if (out != NULL)
		*out = NULL;
	if (c == NULL)
		return -1;
	snprintf(url, sizeof(url), "%s%s", s->addr, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sk);
	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (raw_body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, raw_body);
	else if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (out != NULL && sk.p != NULL)
		*out = json_loads(sk.p, 0, NULL);
	free(sk.p);
	free(text);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return code;
}

int
attest_srv_start(struct attest_srv *s, const char *ek_ca,
    const char *pcr_policy)
{
	const char *bindir = getenv("TSI_BIN_DIR");
	char bin[512], listen[48];
	long long deadline;
	int tries;

	memset(s, 0, sizeof(*s));
	if (bindir == NULL)
		bindir = "build/bin";
	snprintf(bin, sizeof(bin), "%s/tsi-attest", bindir);
	if (tpm_node_ca_dir(s->scratch, sizeof(s->scratch), "attestsrv") != 0)
		return -1;
	snprintf(s->out, sizeof(s->out), "%s/out", s->scratch);
	snprintf(s->err, sizeof(s->err), "%s/err", s->scratch);
	srand((unsigned)(getpid() ^ time(NULL)));
	for (tries = 0; tries < 10; tries++) {
		pid_t pid;
		int status;

		s->port = 42000 + rand() % 20000;
		snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->port);
		snprintf(s->addr, sizeof(s->addr), "http://%s", listen);
		if ((pid = fork()) < 0)
			return -1;
		if (pid == 0) {
			const char *argv[12];
			int i = 0,
			    fo = open(s->out, O_WRONLY | O_CREAT | O_TRUNC,
			        0600);
			int fe =
			    open(s->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

			dup2(fo, 1);
			dup2(fe, 2);
			argv[i++] = bin;
			argv[i++] = "--dev";
			argv[i++] = "--dev-listen";
			argv[i++] = listen;
			argv[i++] = "--dev-root-token-id";
			argv[i++] = ATTEST_TEST_TOKEN;
			if (ek_ca != NULL) {
				argv[i++] = "--ek-ca";
				argv[i++] = ek_ca;
			}
			if (pcr_policy != NULL) {
				argv[i++] = "--pcr-policy";
				argv[i++] = pcr_policy;
			}
			argv[i] = NULL;
			execv(bin, (char *const *)argv);
			_exit(127);
		}
		s->pid = pid;
		deadline = ms_now() + 20000;
		while (ms_now() < deadline) {
			if (waitpid(pid, &status, WNOHANG) == pid) {
				s->pid = 0;
				break;
			}
			if (attest_http(s, "GET", "/v1/health", NULL, NULL,
			        NULL, NULL) == 200) {
				FILE *f = fopen(s->out, "r");
				char line[512];

				while (
				    f != NULL && fgets(line, sizeof(line), f))
					if (strncmp(line, "Data dir: ", 10) ==
					    0) {
						line[strcspn(line, "\n")] =
						    '\0';
						snprintf(s->data_dir,
						    sizeof(s->data_dir), "%s",
						    line + 10);
					}
				if (f != NULL)
					fclose(f);
				/* The banner is printed after the server
				 * starts answering. */
				if (s->data_dir[0])
					return 0;
			}
			usleep(20000);
		}
		if (s->pid > 0) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, NULL, 0);
			s->pid = 0;
		}
	}
	return -1;
}

void
attest_srv_stop(struct attest_srv *s)
{
	char cmd[400];

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	if (s->scratch[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->scratch);
		(void)!system(cmd);
	}
}

int
attest_log_has(struct attest_srv *s, const char *needle)
{
	FILE *f = fopen(s->err, "r");
	char line[8192];
	int n = 0, lines = 0;

	while (f != NULL && lines++ < 100000 && fgets(line, sizeof(line), f))
		if (strstr(line, needle) != NULL)
			n++;
	if (f != NULL)
		fclose(f);
	return n;
}

static char *
b64_file(struct tpm_node *n, const char *name)
{
	uint8_t *b;
	size_t len;
	char *out = NULL;

	if (tpm_node_read(n, name, &b, &len) != 0)
		return NULL;
	if (tsi_b64_encode(b, len, &out) != TSI_OK)
		out = NULL;
	free(b);
	return out;
}

static char *
b64_mem(const uint8_t *b, size_t len)
{
	char *out = NULL;

	return tsi_b64_encode(b, len, &out) == TSI_OK ? out : NULL;
}

int
attest_ek_hash(struct tpm_node *n, char out[65])
{
	struct tsi_tpm_pub *p = NULL;
	uint8_t *b;
	size_t len;
	int r;

	if (tpm_node_read(n, "ek.pub", &b, &len) != 0)
		return -1;
	r = tsi_tpm_pub_parse(b, len, &p);
	free(b);
	if (r != TSI_OK)
		return -1;
	r = tsi_attest_key_sha256(tsi_tpm_pub_pkey(p), out);
	tsi_tpm_pub_free(p);
	return r == TSI_OK ? 0 : -1;
}

json_t *
attest_start_body(struct tpm_node *n, int with_cert, const char *csr_san)
{
	char *ek = b64_file(n, "ek.pub"), *ak = b64_file(n, "ak.pub");
	char *key = b64_file(n, "key.pub"), *csr = NULL;
	uint8_t *kb = NULL, *pem = NULL;
	size_t kl = 0, pl = 0;
	json_t *j = NULL;

	if (ek == NULL || ak == NULL || key == NULL ||
	    tpm_node_read(n, "key.pub", &kb, &kl) != 0 ||
	    tpm_node_csr(n, kb, kl, "node", csr_san, &csr) != 0 ||
	    tpm_node_read(n, "ek.pem", &pem, &pl) != 0)
		goto out;
	j = json_pack("{ssssssss}", "ek_pub", ek, "ak_pub", ak, "key_pub", key,
	    "csr", csr);
	if (j != NULL && with_cert)
		json_object_set_new(j, "ek_cert", json_string((char *)pem));
out:
	free(ek);
	free(ak);
	free(key);
	free(csr);
	free(kb);
	free(pem);
	return j;
}

int
attest_activate(struct tpm_node *n, const json_t *ans, uint8_t **secret,
    size_t *len)
{
	const char *blob =
	    json_string_value(json_object_get(ans, "credential_blob"));
	const char *sec =
	    json_string_value(json_object_get(ans, "encrypted_secret"));
	unsigned char *b = NULL, *s = NULL;
	size_t bl = 0, sl = 0;
	int r = -1;

	if (blob == NULL || sec == NULL ||
	    tsi_b64_decode(blob, strlen(blob), &b, &bl) != TSI_OK ||
	    tsi_b64_decode(sec, strlen(sec), &s, &sl) != TSI_OK)
		goto out;
	r = tpm_node_activate(n, b, bl, s, sl, secret, len);
out:
	free(b);
	free(s);
	return r;
}

json_t *
attest_finish_body(struct tpm_node *n, const char *session,
    const uint8_t *secret, size_t secret_len, uint32_t object,
    const uint8_t nonce[32], const uint8_t *quote_nonce)
{
	char msg[32 + 64 + 1], nhex[65], proof[65], idx[4], hex[65];
	uint8_t mac[32], *ca = NULL, *cs = NULL, *qa = NULL, *qs = NULL;
	uint8_t pcrs[8][32];
	size_t cal, csl, qal, qsl;
	unsigned int ml = 0;
	json_t *j = NULL, *pj;
	char *b1 = NULL, *b2 = NULL, *b3 = NULL, *b4 = NULL;
	int i;

	tpm_node_hex(nonce, 32, nhex);
	snprintf(msg, sizeof(msg), "%s%s", session, nhex);
	if (HMAC(EVP_sha256(), secret, (int)secret_len, (uint8_t *)msg,
	        strlen(msg), mac, &ml) == NULL)
		return NULL;
	tpm_node_hex(mac, 32, proof);
	if (tpm_node_certify(n, object, nonce, 32, &ca, &cal, &cs, &csl) != 0 ||
	    tpm_node_quote(n, quote_nonce ? quote_nonce : nonce, 32, &qa, &qal,
	        &qs, &qsl, pcrs) != 0)
		goto out;
	b1 = b64_mem(ca, cal);
	b2 = b64_mem(cs, csl);
	b3 = b64_mem(qa, qal);
	b4 = b64_mem(qs, qsl);
	pj = json_object();
	for (i = 0; i < 8; i++) {
		snprintf(idx, sizeof(idx), "%d", i);
		tpm_node_hex(pcrs[i], 32, hex);
		json_object_set_new(pj, idx, json_string(hex));
	}
	j = json_pack("{sssss{ssss}s{sssss{so}}}", "session", session, "proof",
	    proof, "certify", "attest", b1, "signature", b2, "quote", "attest",
	    b3, "signature", b4, "pcrs", "sha256", pj);
out:
	free(ca);
	free(cs);
	free(qa);
	free(qs);
	free(b1);
	free(b2);
	free(b3);
	free(b4);
	return j;
}

long
attest_register(struct attest_srv *s, struct tpm_node *n, const char *name,
    const char *dc, const char *pcr_policy, int by_hash)
{
	json_t *b, *ans = NULL;
	uint8_t *pem = NULL;
	size_t pl;
	char h[65];
	long code;

	b = json_pack("{ssssssss}", "node", name, "cluster-name", "test",
	    "region", "eu-west", "datacenter", dc);
	if (by_hash) {
		if (attest_ek_hash(n, h) != 0)
			return -1;
		json_object_set_new(b, "ek_sha256", json_string(h));
		json_object_set_new(b, "ek_hash_trust", json_true());
	} else {
		if (tpm_node_read(n, "ek.pem", &pem, &pl) != 0)
			return -1;
		json_object_set_new(b, "ek_cert", json_string((char *)pem));
	}
	if (pcr_policy != NULL)
		json_object_set_new(b, "pcr_policy", json_string(pcr_policy));
	code = attest_http(s, "POST", "/v1/nodes", ATTEST_TEST_TOKEN, b, NULL,
	    &ans);
	json_decref(b);
	json_decref(ans);
	free(pem);
	return code;
}

int
attest_nonce(const json_t *ans, uint8_t nonce[32])
{
	const char *nh = json_string_value(json_object_get(ans, "nonce"));
	int i;

	if (nh == NULL || strlen(nh) != 64)
		return -1;
	for (i = 0; i < 32; i++)
		if (sscanf(nh + 2 * i, "%2hhx", &nonce[i]) != 1)
			return -1;
	return 0;
}

int
attest_audit_has(struct attest_srv *s, const char *needle)
{
	const char *bindir = getenv("TSI_BIN_DIR");
	char cmd[1024], line[16384];
	FILE *p;
	int n = 0, lines = 0;

	snprintf(cmd, sizeof(cmd),
	    "'%s/tsi' audit list --data-dir '%s' "
	    "--format json --limit 10000",
	    bindir ? bindir : "build/bin", s->data_dir);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	while (lines++ < 100000 && fgets(line, sizeof(line), p) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	if (pclose(p) != 0)
		return -1;
	return n;
}

long
attest_enroll(struct attest_srv *s, struct tpm_node *n, const char *csr_san,
    json_t **answer)
{
	json_t *sb = attest_start_body(n, 1, csr_san), *sa = NULL, *fb = NULL;
	uint8_t *secret = NULL, nonce[32];
	size_t sl = 0;
	long code;

	*answer = NULL;
	code = attest_http(s, "POST", "/v1/enroll/start", NULL, sb, NULL, &sa);
	if (code != 200) {
		*answer = sa;
		sa = NULL;
		goto out;
	}
	code = -1;
	if (attest_activate(n, sa, &secret, &sl) != 0 ||
	    attest_nonce(sa, nonce) != 0)
		goto out;
	fb = attest_finish_body(n,
	    json_string_value(json_object_get(sa, "session")), secret, sl,
	    TPM_NODE_KEY, nonce, NULL);
	if (fb == NULL)
		goto out;
	code =
	    attest_http(s, "POST", "/v1/enroll/finish", NULL, fb, NULL, answer);
out:
	json_decref(sb);
	json_decref(sa);
	json_decref(fb);
	free(secret);
	return code;
}
