/*
 * test_enroll.c - the enrollment client (tsi-issuer enroll, and run
 * enrolling by itself) against a stand-in for tsi-attest: libmicrohttpd on
 * loopback that checks every request of the protocol field by field (EK
 * certificate chained to the swtpm's local CA, AK attributes, CSR key =
 * signing key, activation proof, certify and quote signatures, nonce, PCR
 * digest) and answers like the real server (credential made in software
 * with tpm2_makecredential, certificate from the test PKI). The TPM is a
 * real swtpm manufactured with an EK certificate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <tss2/tss2_mu.h>

#include "issuer/config.h"
#include "issuer/enroll.h"
#include "issuer/tpm.h"
#include "swtpm_ek.h"
#include "tests/support/pki.h"
#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/log.h"
#include "tsi/x509.h"

enum mode {
	M_OK,
	M_START_403,
	M_START_503,
	M_START_BADJSON,
	M_START_KILL_TPM,
	M_FINISH_410,
	M_FINISH_403,
	M_FINISH_NOT_CA, /* a certificate delegated signing cannot use */
	M_FINISH_BADSHAPE,
	M_START_HANG,      /* start answers only when released (<= 30 s) */
	M_START_REVOKED,   /* 403 with tsi-attest's reason for a revoked node */
	M_FINISH_BADPROOF, /* 403 with tsi-attest's reason for a foreign proof */
};

/* The stand-in tsi-attest. */
struct standin {
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* mode changed (releases M_START_HANG) */
	int hanging;       /* a start request is being held */
	enum mode mode;
	char problem[512]; /* first protocol violation seen, "" if none */
	int starts, finishes, issued;
	char session[33];
	uint8_t nonce[32];
	char nonce_hex[65];
	uint8_t secret[32];
	uint8_t key_name[34];
	EVP_PKEY *ak; /* from ak_pub */
	EVP_PKEY *csr_key;
	X509 *ek_ca;
	X509 *ca;
	EVP_PKEY *ca_key;
	char ca_pem[8192];
	char cert_pem[8192];        /* the last certificate issued */
	long not_before, not_after; /* of the next one; 0: the defaults */
	struct test_swtpm_ek *ek;
	long client_uid; /* owner of the last start's socket, -1 unknown */
};

struct fx {
	struct test_swtpm_ek ek;
	struct standin s;
	char state[300], node[320], node_ca[320], conf[320], sock[320];
	char log[320];
	struct tsi_issuer_config *cfg;
	struct tsi_tpm *t;
	pid_t issuer; /* last tsi-issuer started, killed at teardown */
};

static void
problem(struct standin *s, const char *what)
{
	if (s->problem[0] == '\0')
		snprintf(s->problem, sizeof(s->problem), "%s", what);
}

static int
b64dec(const char *in, uint8_t **out, size_t *len)
{
	size_t n = in ? strlen(in) : 0, pad = 0;
	int k;

	if (n == 0 || n % 4 != 0 || (*out = malloc(n)) == NULL)
		return -1;
	if (in[n - 1] == '=')
		pad++;
	if (in[n - 2] == '=')
		pad++;
	if ((k = EVP_DecodeBlock(*out, (const unsigned char *)in, (int)n)) <
	    0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*len = (size_t)k - pad;
	return 0;
}

static void
hexs(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static char *
b64enc(const uint8_t *p, size_t n)
{
	char *o = malloc(4 * ((n + 2) / 3) + 1);

	if (o != NULL)
		EVP_EncodeBlock((unsigned char *)o, p, (int)n);
	return o;
}

/* A member that must be a string. */
static const char *
str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int
has_exactly(json_t *o, const char *const *keys, size_t n)
{
	size_t i;

	if (!json_is_object(o) || json_object_size(o) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (json_object_get(o, keys[i]) == NULL)
			return 0;
	return 1;
}

static int
unmarshal_pub(const char *b64, TPM2B_PUBLIC *p, uint8_t **raw, size_t *len)
{
	size_t off = 0;

	memset(p, 0, sizeof(*p));
	if (b64dec(b64, raw, len) != 0)
		return -1;
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(*raw, *len, &off, p) !=
	        TSS2_RC_SUCCESS ||
	    off != *len)
		return -1;
	return 0;
}

static int
attest_body(const char *b64, uint8_t **raw, size_t *len, TPMS_ATTEST *b)
{
	TPM2B_ATTEST a;
	size_t off = 0;

	memset(&a, 0, sizeof(a));
	memset(b, 0, sizeof(*b));
	if (b64dec(b64, raw, len) != 0 ||
	    Tss2_MU_TPM2B_ATTEST_Unmarshal(*raw, *len, &off, &a) !=
	        TSS2_RC_SUCCESS ||
	    off != *len)
		return -1;
	off = 0;
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(a.attestationData, a.size, &off, b) !=
	        TSS2_RC_SUCCESS ||
	    off != a.size || b->magic != TPM2_GENERATED_VALUE)
		return -1;
	return 0;
}

/* Checks the start request; on success fills the session state and the
 * answer. Returns the HTTP status. */
static int
do_start(struct standin *s, json_t *req, char **answer)
{
	static const char *const keys[] = { "ek_cert", "ek_pub", "ak_pub",
		"key_pub", "csr" };
	TPM2B_PUBLIC ek, ak, key;
	uint8_t *ekraw = NULL, *akraw = NULL, *keyraw = NULL, *blob = NULL;
	uint8_t *enc = NULL, sess[16], ak_name[34];
	size_t eklen, aklen, keylen, blob_len, enc_len;
	BIO *bio = NULL;
	X509 *ekc = NULL;
	X509_REQ *csr = NULL;
	EVP_PKEY *keyk = NULL;
	BIGNUM *n = NULL;
	uint8_t mod[256];
	char *b1 = NULL, *b2 = NULL;
	json_t *ans;
	int status = 400;

	if (!has_exactly(req, keys, 5)) {
		problem(s,
		    "start: not exactly ek_cert, ek_pub, ak_pub, key_pub, "
		    "csr");
		goto out;
	}
	if (unmarshal_pub(str(req, "ek_pub"), &ek, &ekraw, &eklen) != 0 ||
	    ek.publicArea.type != TPM2_ALG_RSA ||
	    ek.publicArea.parameters.rsaDetail.keyBits != 2048 ||
	    ek.publicArea.objectAttributes != 0x000300b2 ||
	    ek.publicArea.unique.rsa.size != 256) {
		problem(s, "start: ek_pub is not the TCG RSA-2048 EK");
		goto out;
	}
	bio = BIO_new_mem_buf(str(req, "ek_cert"), -1);
	if (bio == NULL ||
	    (ekc = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL ||
	    X509_verify(ekc, X509_get0_pubkey(s->ek_ca)) != 1) {
		problem(s,
		    "start: ek_cert is not signed by the swtpm local CA");
		goto out;
	}
	if (EVP_PKEY_get_bn_param(X509_get0_pubkey(ekc), OSSL_PKEY_PARAM_RSA_N,
	        &n) != 1 ||
	    BN_bn2binpad(n, mod, sizeof(mod)) != 256 ||
	    memcmp(mod, ek.publicArea.unique.rsa.buffer, 256) != 0) {
		problem(s, "start: ek_cert's key is not ek_pub");
		goto out;
	}
	if (unmarshal_pub(str(req, "ak_pub"), &ak, &akraw, &aklen) != 0 ||
	    ak.publicArea.type != TPM2_ALG_ECC ||
	    ak.publicArea.nameAlg != TPM2_ALG_SHA256 ||
	    ak.publicArea.objectAttributes != 0x00050072 ||
	    ak.publicArea.parameters.eccDetail.scheme.scheme !=
	        TPM2_ALG_ECDSA ||
	    ak.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg !=
	        TPM2_ALG_SHA256 ||
	    ak.publicArea.parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 ||
	    ak.publicArea.authPolicy.size != 0) {
		problem(s, "start: ak_pub is not the agreed AK template");
		goto out;
	}
	if (unmarshal_pub(str(req, "key_pub"), &key, &keyraw, &keylen) != 0 ||
	    (key.publicArea.objectAttributes & 0x40012) != 0x40012 ||
	    (keyk = test_tpm_ecc_key(keyraw, keylen)) == NULL) {
		problem(s,
		    "start: key_pub is not a fixedTPM fixedParent "
		    "signing key");
		goto out;
	}
	BIO_free(bio);
	if ((bio = BIO_new_mem_buf(str(req, "csr"), -1)) == NULL ||
	    (csr = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)) == NULL ||
	    X509_REQ_verify(csr, X509_REQ_get0_pubkey(csr)) != 1 ||
	    EVP_PKEY_eq(X509_REQ_get0_pubkey(csr), keyk) != 1) {
		problem(s, "start: csr is not self-signed by key_pub's key");
		goto out;
	}
	if (test_tpm_name(akraw, aklen, ak_name) != 0 ||
	    test_tpm_name(keyraw, keylen, s->key_name) != 0 ||
	    RAND_bytes(s->secret, sizeof(s->secret)) != 1 ||
	    RAND_bytes(s->nonce, sizeof(s->nonce)) != 1 ||
	    RAND_bytes(sess, sizeof(sess)) != 1 ||
	    test_make_credential(s->ek->dir, ekraw, eklen, ak_name, s->secret,
	        sizeof(s->secret), &blob, &blob_len, &enc, &enc_len) != 0) {
		problem(s, "start: stand-in could not make the credential");
		status = 500;
		goto out;
	}
	hexs(sess, sizeof(sess), s->session);
	hexs(s->nonce, sizeof(s->nonce), s->nonce_hex);
	EVP_PKEY_free(s->ak);
	s->ak = test_tpm_ecc_key(akraw, aklen);
	EVP_PKEY_free(s->csr_key);
	s->csr_key = keyk;
	keyk = NULL;
	b1 = b64enc(blob, blob_len);
	b2 = b64enc(enc, enc_len);
	ans = json_pack("{s:s, s:s, s:s, s:s, s:{s:[i,i,i,i,i,i,i,i]}, s:i}",
	    "session", s->session, "nonce", s->nonce_hex, "credential_blob", b1,
	    "encrypted_secret", b2, "pcr_selection", "sha256", 0, 1, 2, 3, 4, 5,
	    6, 7, "expires_in", 30);
	*answer = json_dumps(ans, JSON_COMPACT);
	json_decref(ans);
	status = 200;
out:
	free(b1);
	free(b2);
	free(blob);
	free(enc);
	free(ekraw);
	free(akraw);
	free(keyraw);
	BN_free(n);
	BIO_free(bio);
	X509_free(ekc);
	X509_REQ_free(csr);
	EVP_PKEY_free(keyk);
	return status;
}

static int
check_evidence(struct standin *s, json_t *e, TPM2_ST type, TPMS_ATTEST *b)
{
	static const char *const ckeys[] = { "attest", "signature" };
	static const char *const qkeys[] = { "attest", "signature", "pcrs" };
	uint8_t *att = NULL, *sig = NULL;
	size_t alen, slen;
	int ok = 0;

	if (!has_exactly(e, type == TPM2_ST_ATTEST_QUOTE ? qkeys : ckeys,
	        type == TPM2_ST_ATTEST_QUOTE ? 3 : 2))
		return 0;
	if (attest_body(str(e, "attest"), &att, &alen, b) != 0 ||
	    b64dec(str(e, "signature"), &sig, &slen) != 0)
		goto out;
	ok = b->type == type && b->extraData.size == 32 &&
	    memcmp(b->extraData.buffer, s->nonce, 32) == 0 &&
	    test_attest_sig_ok(s->ak, att, alen, sig, slen);
out:
	free(att);
	free(sig);
	return ok;
}

static int
do_finish(struct standin *s, json_t *req, char **answer)
{
	static const char *const keys[] = { "session", "proof", "certify",
		"quote" };
	uint8_t mac[32], cat[8 * 32], digest[32];
	char msg[97], proof[65], num[4];
	size_t maclen = 0;
	TPMS_ATTEST b;
	json_t *bank;
	X509 *cert = NULL;
	BIO *bio = NULL;
	int i, n;

	if (!has_exactly(req, keys, 4)) {
		problem(s,
		    "finish: not exactly session, proof, certify, quote");
		return 400;
	}
	if (str(req, "session") == NULL ||
	    strcmp(str(req, "session"), s->session) != 0) {
		problem(s, "finish: not the session of start");
		return 410;
	}
	snprintf(msg, sizeof(msg), "%s%s", s->session, s->nonce_hex);
	EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, s->secret, 32,
	    (unsigned char *)msg, strlen(msg), mac, sizeof(mac), &maclen);
	hexs(mac, 32, proof);
	if (str(req, "proof") == NULL ||
	    strcmp(str(req, "proof"), proof) != 0) {
		problem(s, "finish: wrong activation proof");
		return 403;
	}
	if (!check_evidence(s, json_object_get(req, "certify"),
	        TPM2_ST_ATTEST_CERTIFY, &b) ||
	    b.attested.certify.name.size != 34 ||
	    memcmp(b.attested.certify.name.name, s->key_name, 34) != 0) {
		problem(s,
		    "finish: certify is not of key_pub by the AK over the "
		    "nonce");
		return 403;
	}
	if (!check_evidence(s, json_object_get(req, "quote"),
	        TPM2_ST_ATTEST_QUOTE, &b)) {
		problem(s, "finish: quote is not by the AK over the nonce");
		return 403;
	}
	bank = json_object_get(json_object_get(json_object_get(req, "quote"),
	                           "pcrs"),
	    "sha256");
	if (json_object_size(
	        json_object_get(json_object_get(req, "quote"), "pcrs")) != 1 ||
	    json_object_size(bank) != 8) {
		problem(s, "finish: quote.pcrs is not sha256 PCRs 0..7");
		return 400;
	}
	for (i = 0; i < 8; i++) {
		const char *h;
		snprintf(num, sizeof(num), "%d", i);
		h = str(bank, num);
		if (h == NULL || strlen(h) != 64) {
			problem(s, "finish: a PCR value is not 64 hex digits");
			return 400;
		}
		for (n = 0; n < 32; n++) {
			unsigned v;
			if (sscanf(h + 2 * n, "%2x", &v) != 1) {
				problem(s, "finish: a PCR value is not hex");
				return 400;
			}
			cat[32 * i + n] = (uint8_t)v;
		}
	}
	EVP_Digest(cat, sizeof(cat), digest, NULL, EVP_sha256(), NULL);
	if (b.attested.quote.pcrDigest.size != 32 ||
	    memcmp(b.attested.quote.pcrDigest.buffer, digest, 32) != 0) {
		problem(s,
		    "finish: PCR values do not match the quote's digest");
		return 403;
	}
	{
		struct pki_spec sp = { 0 };
		char *pem;
		long len;

		sp.cn = "node-1";
		sp.issuer = s->ca;
		sp.issuer_key = s->ca_key;
		sp.key = s->csr_key;
		sp.ca = s->mode == M_FINISH_NOT_CA ? 0 : 1;
		sp.pathlen = s->mode == M_FINISH_NOT_CA ? -1 : 0;
		sp.ku = s->mode == M_FINISH_NOT_CA
		    ? "digitalSignature"
		    : "digitalSignature,keyCertSign";
		sp.san = pki_loc_san();
		sp.not_before = s->not_before != 0 ? s->not_before : -60;
		/* Distinct lifetimes make each certificate distinct. */
		sp.not_after =
		    (s->not_after != 0 ? s->not_after : 86400) + s->issued;
		cert = pki_cert(&sp);
		bio = BIO_new(BIO_s_mem());
		PEM_write_bio_X509(bio, cert);
		len = BIO_get_mem_data(bio, &pem);
		snprintf(s->cert_pem, sizeof(s->cert_pem), "%.*s", (int)len,
		    pem);
		s->issued++;
	}
	bank = json_pack("{s:s, s:s, s:s, s:I}", "certificate", s->cert_pem,
	    "ca", s->ca_pem, "node", "node-1", "expires_at",
	    (json_int_t)time(NULL) + 86400);
	*answer = json_dumps(bank, JSON_COMPACT);
	json_decref(bank);
	BIO_free(bio);
	X509_free(cert);
	return 200;
}

struct upload {
	char buf[TSI_ENROLL_BODY_MAX + 1];
	size_t len;
	int over;
};

static enum MHD_Result
reply(struct MHD_Connection *c, int status, const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body),
	    (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The uid owning the client's end of connection c (loopback TCP to port):
 * its row in /proc/net/tcp, local port = the client's, remote = ours. */
static long
client_uid(struct MHD_Connection *c, int port)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr_in *sin;
	char line[512];
	unsigned lport, rport;
	long uid = -1, u;
	FILE *fp;

	if (ci == NULL || ci->client_addr->sa_family != AF_INET ||
	    (fp = fopen("/proc/net/tcp", "r")) == NULL)
		return -1;
	sin = (const struct sockaddr_in *)ci->client_addr;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line,
		        " %*d: %*8x:%4x %*8x:%4x %*x %*x:%*x %*x:%*x %*x %ld",
		        &lport, &rport, &u) == 3 &&
		    lport == ntohs(sin->sin_port) && rport == (unsigned)port)
			uid = u;
	fclose(fp);
	return uid;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data, size_t *size,
    void **con_cls)
{
	struct standin *s = cls;
	struct upload *u = *con_cls;
	json_t *req;
	char *answer = NULL;
	int status;
	enum MHD_Result ret;

	(void)version;
	if (u == NULL) {
		if ((u = calloc(1, sizeof(*u))) == NULL)
			return MHD_NO;
		*con_cls = u;
		if (strcmp(url, "/v1/enroll/start") == 0) {
			long uid = client_uid(c, s->port);

			pthread_mutex_lock(&s->mu);
			s->client_uid = uid;
			pthread_mutex_unlock(&s->mu);
		}
		return MHD_YES;
	}
	if (*size > 0) {
		if (*size > sizeof(u->buf) - 1 - u->len)
			u->over = 1;
		else {
			memcpy(u->buf + u->len, data, *size);
			u->len += *size;
		}
		*size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&s->mu);
	req = json_loadb(u->buf, u->len, JSON_REJECT_DUPLICATES, NULL);
	if (strcmp(method, "POST") != 0 || u->over || req == NULL) {
		problem(s, "request: not a JSON POST within 64 KiB");
		status = 400;
		answer = strdup("{\"errors\":[\"malformed request\"]}");
	} else if (strcmp(url, "/v1/enroll/start") == 0) {
		s->starts++;
		if (s->mode == M_START_HANG) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 30;
			s->hanging = 1;
			pthread_cond_broadcast(&s->cv);
			while (s->mode == M_START_HANG &&
			    pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0)
				;
			s->hanging = 0;
			status = 503;
			answer = strdup("{\"errors\":[\"released\"]}");
		} else if (s->mode == M_START_403) {
			status = 403;
			answer = strdup("{\"errors\":[\"EK not registered; "
			                "listed as pending\"]}");
		} else if (s->mode == M_START_REVOKED) {
			status = 403;
			answer = strdup("{\"errors\":[\"node is revoked\"]}");
		} else if (s->mode == M_START_503) {
			status = 503;
			answer = strdup("{\"errors\":[\"audit log "
			                "unavailable\"]}");
		} else if ((status = do_start(s, req, &answer)) == 200 &&
		    s->mode == M_START_BADJSON) {
			free(answer);
			answer = strdup("{\"session\": \"abc\", nonce");
		} else if (status == 200 && s->mode == M_START_KILL_TPM)
			test_swtpm_kill(&s->ek->tpm, SIGKILL);
	} else if (strcmp(url, "/v1/enroll/finish") == 0) {
		s->finishes++;
		if (s->mode == M_FINISH_403) {
			status = 403;
			answer = strdup("{\"errors\":[\"quote does not match "
			                "PCR policy 'prod'\"]}");
		} else if (s->mode == M_FINISH_BADPROOF) {
			status = 403;
			answer = strdup(
			    "{\"errors\":[\"activation proof does "
			    "not match: the AK and EK are not in one TPM\"]}");
		} else if (s->mode == M_FINISH_410) {
			status = 410;
			answer = strdup("{\"errors\":[\"session expired\"]}");
		} else if ((status = do_finish(s, req, &answer)) == 200 &&
		    s->mode == M_FINISH_BADSHAPE) {
			free(answer);
			answer = strdup("{\"certificate\": 5, \"ca\": []}");
		}
	} else {
		status = 404;
		answer = strdup("{\"errors\":[\"not found\"]}");
	}
	if (answer == NULL)
		answer = strdup("{\"errors\":[\"refused\"]}");
	pthread_mutex_unlock(&s->mu);
	json_decref(req);
	ret = reply(c, status, answer);
	free(answer);
	return ret;
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

static char *
pem_of(X509 *cert, EVP_PKEY *key)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *out;
	long len;

	assert_non_null(bio);
	if (cert != NULL)
		assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
	else
		assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL,
		                     0, NULL, NULL),
		    1);
	len = BIO_get_mem_data(bio, &p);
	assert_non_null(out = strndup(p, (size_t)len));
	BIO_free(bio);
	return out;
}

/* tls_cert and tls_key (PEM, NULL: plain HTTP) must outlive the daemon. */
static void standin_start_tls(struct standin *s, struct test_swtpm_ek *ek,
    const char *tls_cert, const char *tls_key);

static void
standin_start(struct standin *s, struct test_swtpm_ek *ek)
{
	standin_start_tls(s, ek, NULL, NULL);
}

static void
standin_start_tls(struct standin *s, struct test_swtpm_ek *ek,
    const char *tls_cert, const char *tls_key)
{
	struct sockaddr_in a;
	const union MHD_DaemonInfo *info;
	struct pki_spec sp = { 0 };
	BIO *bio;
	char *pem;
	long len;

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->ek = ek;
	bio = BIO_new_file(ek->ca_cert, "r");
	assert_non_null(bio);
	assert_non_null(s->ek_ca = PEM_read_bio_X509(bio, NULL, NULL, NULL));
	BIO_free(bio);
	assert_non_null(s->ca_key = pki_key());
	sp.cn = "test node CA";
	sp.key = s->ca_key;
	sp.ca = 1;
	sp.pathlen = 1;
	sp.ku = "keyCertSign,cRLSign";
	sp.not_before = -3600;
	sp.not_after = 86400 * 30;
	assert_non_null(s->ca = pki_cert(&sp));
	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(bio, s->ca);
	len = BIO_get_mem_data(bio, &pem);
	snprintf(s->ca_pem, sizeof(s->ca_pem), "%.*s", (int)len, pem);
	BIO_free(bio);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (tls_cert != NULL)
		s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
		        MHD_USE_ERROR_LOG | MHD_USE_TLS,
		    0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR,
		    (struct sockaddr *)&a, MHD_OPTION_NOTIFY_COMPLETED,
		    completed, s, MHD_OPTION_HTTPS_MEM_CERT, tls_cert,
		    MHD_OPTION_HTTPS_MEM_KEY, tls_key, MHD_OPTION_END);
	else
		s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
		        MHD_USE_ERROR_LOG,
		    0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR,
		    (struct sockaddr *)&a, MHD_OPTION_NOTIFY_COMPLETED,
		    completed, s, MHD_OPTION_END);
	assert_non_null(s->d);
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	assert_non_null(info);
	s->port = info->port;
	s->client_uid = -1;
}

static void
standin_stop(struct standin *s)
{
	if (s->d != NULL)
		MHD_stop_daemon(s->d);
	EVP_PKEY_free(s->ak);
	EVP_PKEY_free(s->csr_key);
	EVP_PKEY_free(s->ca_key);
	X509_free(s->ca);
	X509_free(s->ek_ca);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
}

static void
set_mode(struct fx *f, enum mode m)
{
	pthread_mutex_lock(&f->s.mu);
	f->s.mode = m;
	pthread_cond_broadcast(&f->s.cv);
	pthread_mutex_unlock(&f->s.mu);
}

static void
write_config(struct fx *f)
{
	char text[4096];
	int n;

	n = snprintf(text, sizeof(text),
	    "tcti = \"%s\";\nstate_dir = \"%s\";\nnode_cert = \"%s\";\n"
	    "socket = \"%s\";\nresolver = \"unix\";\n"
	    "trust_domain = \"tsi.example\";\nnode_name = \"node-1\";\n"
	    "attest_url = \"http://127.0.0.1:%d/\";\n",
	    f->ek.tpm.tcti, f->state, f->node, f->sock, f->s.port);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	assert_int_equal(test_write_file(f->conf, text, (size_t)n), 0);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512];

	if (f == NULL || test_swtpm_ek_start(&f->ek) != 0)
		return -1;
	snprintf(f->state, sizeof(f->state), "%s/issuer", f->ek.dir);
	snprintf(f->node, sizeof(f->node), "%s/node.pem", f->ek.dir);
	snprintf(f->node_ca, sizeof(f->node_ca), "%s/node-ca.pem", f->ek.dir);
	snprintf(f->conf, sizeof(f->conf), "%s/issuer.conf", f->ek.dir);
	snprintf(f->sock, sizeof(f->sock), "%s/issuer.sock", f->ek.dir);
	snprintf(f->log, sizeof(f->log), "%s/issuer.log", f->ek.dir);
	standin_start(&f->s, &f->ek);
	write_config(f);
	if (tsi_issuer_config_load(f->conf, &f->cfg, err, sizeof(err)) !=
	    TSI_OK) {
		fprintf(stderr, "config: %s\n", err);
		return -1;
	}
	if (tsi_tpm_open(f->ek.tpm.tcti, f->state, &f->t) != TSI_OK)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	/* A failed assertion leaves the issuer running: never orphan it. */
	if (f->issuer > 0 && waitpid(f->issuer, NULL, WNOHANG) == 0) {
		kill(f->issuer, SIGKILL);
		waitpid(f->issuer, NULL, 0);
	}
	tsi_tpm_free(f->t);
	tsi_issuer_config_free(f->cfg);
	standin_stop(&f->s);
	test_swtpm_ek_cleanup(&f->ek);
	free(f);
	return 0;
}

/* No temporary file left next to the certificate. */
static int
leftovers(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp.") != NULL)
			n++;
	closedir(d);
	return n;
}

static void
test_enroll_writes_node_cert(void **state)
{
	struct fx *f = *state;
	char reason[512], *cert, *ca;
	struct stat st;
	X509 *x = NULL;
	struct tsi_location loc;

	assert_int_equal(tsi_enroll(f->cfg, f->t, reason, sizeof(reason)),
	    TSI_OK);
	assert_string_equal(f->s.problem, "");
	assert_int_equal(f->s.starts, 1);
	assert_int_equal(f->s.finishes, 1);
	/* In process: the client is this process's uid (the check below
	 * in test_run_enrolls_when_missing tells them apart). */
	assert_int_equal(f->s.client_uid, (long)getuid());
	assert_string_equal(f->cfg->node_ca, f->node_ca);
	assert_non_null(cert = test_slurp(f->node));
	assert_non_null(ca = test_slurp(f->node_ca));
	assert_string_equal(cert, f->s.cert_pem);
	assert_string_equal(ca, f->s.ca_pem);
	assert_int_equal(stat(f->node, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(stat(f->node_ca, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(leftovers(f->ek.dir), 0);
	/* The certificate is this TPM key's, with the inventory's location. */
	assert_int_equal(tsi_x509_load_file(f->node, &x), TSI_OK);
	assert_int_equal(tsi_x509_key_matches(x, tsi_tpm_pub(f->t)), 1);
	memset(&loc, 0, sizeof(loc));
	assert_int_equal(tsi_x509_location(x, &loc), TSI_OK);
	assert_string_equal(loc.datacenter, "dal05");
	tsi_location_clear(&loc);
	X509_free(x);
	free(cert);
	free(ca);
}

struct reader {
	const char *path;
	volatile int stop;
	int reads, torn;
};

/* Reads node_cert over and over: every read must be one whole
 * certificate (the old or the new), never a torn or empty file. */
static void *
reader_main(void *arg)
{
	struct reader *rd = arg;
	X509 *x;

	while (!rd->stop) {
		if (tsi_x509_load_file(rd->path, &x) != TSI_OK)
			rd->torn++;
		else
			X509_free(x);
		rd->reads++;
	}
	return NULL;
}

static void
test_enroll_replaces_atomically(void **state)
{
	struct fx *f = *state;
	struct reader rd = { f->node, 0, 0, 0 };
	char reason[512], *before, *after;
	pthread_t th;
	int i;

	assert_int_equal(tsi_enroll(f->cfg, f->t, reason, sizeof(reason)),
	    TSI_OK);
	assert_non_null(before = test_slurp(f->node));
	assert_int_equal(pthread_create(&th, NULL, reader_main, &rd), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(tsi_enroll(f->cfg, f->t, reason,
		                     sizeof(reason)),
		    TSI_OK);
	rd.stop = 1;
	pthread_join(th, NULL);
	assert_string_equal(f->s.problem, "");
	assert_true(rd.reads > 0);
	assert_int_equal(rd.torn, 0);
	assert_non_null(after = test_slurp(f->node));
	assert_string_not_equal(before, after);
	assert_string_equal(after, f->s.cert_pem);
	assert_int_equal(leftovers(f->ek.dir), 0);
	free(before);
	free(after);
}

/* Each refusal: a clear error, the reason named, the old files kept. */
static void
refusal(struct fx *f, enum mode m, int want, const char *needle)
{
	char reason[512], *before, *after, *ca_before, *ca_after;

	assert_non_null(before = test_slurp(f->node));
	assert_non_null(ca_before = test_slurp(f->node_ca));
	set_mode(f, m);
	reason[0] = '\0';
	assert_int_equal(tsi_enroll(f->cfg, f->t, reason, sizeof(reason)),
	    want);
	if (strstr(reason, needle) == NULL)
		fail_msg("reason '%s' does not name '%s'", reason, needle);
	assert_non_null(after = test_slurp(f->node));
	assert_non_null(ca_after = test_slurp(f->node_ca));
	assert_string_equal(before, after);
	assert_string_equal(ca_before, ca_after);
	assert_int_equal(leftovers(f->ek.dir), 0);
	free(before);
	free(after);
	free(ca_before);
	free(ca_after);
	set_mode(f, M_OK);
}

/* A refusal whose reason must not carry a misleading hint. */
static void
refusal_without(struct fx *f, enum mode m, const char *needle,
    const char *absent)
{
	char reason[512];

	set_mode(f, m);
	reason[0] = '\0';
	assert_int_equal(tsi_enroll(f->cfg, f->t, reason, sizeof(reason)),
	    TSI_ERR_DENIED);
	if (strstr(reason, needle) == NULL || strstr(reason, absent) != NULL)
		fail_msg("reason '%s': want '%s', not '%s'", reason, needle,
		    absent);
	set_mode(f, M_OK);
}

static void
test_refusals_are_clear(void **state)
{
	struct fx *f = *state;
	char reason[512];

	assert_int_equal(tsi_enroll(f->cfg, f->t, reason, sizeof(reason)),
	    TSI_OK);
	refusal(f, M_START_403, TSI_ERR_DENIED, "EK not registered");
	refusal(f, M_START_403, TSI_ERR_DENIED, "tsi node register");
	refusal(f, M_START_503, TSI_ERR_AGAIN, "unavailable (503)");
	refusal(f, M_START_BADJSON, TSI_ERR_PARSE,
	    "malformed answer from "
	    "tsi-attest to /v1/enroll/start");
	refusal(f, M_FINISH_410, TSI_ERR_EXPIRED, "410");
	refusal(f, M_FINISH_403, TSI_ERR_DENIED,
	    "refused this TPM's evidence "
	    "at /v1/enroll/finish (403): quote does not match PCR policy");
	/* tsi-attest's 403s that are not about registration (strings as
	 * attest/enroll.c answers them): a registered but revoked node is
	 * not told to register, a bad proof is not sent to the PCRs. */
	refusal(f, M_START_REVOKED, TSI_ERR_DENIED, "node is revoked");
	refusal_without(f, M_START_REVOKED, "tsi node trust",
	    "tsi node register");
	refusal_without(f, M_FINISH_BADPROOF, "log and audit", "quoted PCRs");
	refusal(f, M_FINISH_BADSHAPE, TSI_ERR_PARSE,
	    "'certificate' is not a "
	    "PEM certificate");
	refusal(f, M_FINISH_NOT_CA, TSI_ERR_BAD_CERT,
	    "cannot certify session "
	    "keys");
	assert_string_equal(f->s.problem, "");
	/* Nothing listening: a transport error naming the address. */
	free(f->cfg->attest_url);
	assert_non_null(f->cfg->attest_url = strdup("http://127.0.0.1:1"));
	refusal(f, M_OK, TSI_ERR_IO, "cannot reach tsi-attest");
}

/* Over HTTPS, tsi-attest's certificate is verified against attest_ca:
 * another CA's server is not talked to, and nothing is written. */
static void
test_tls_verified_against_attest_ca(void **state)
{
	struct fx *f = *state;
	struct pki_spec sp = { 0 };
	EVP_PKEY *ca_key, *other_key, *srv_key;
	X509 *ca, *other, *srv;
	char *srv_pem, *key_pem, ca_path[400], other_path[400], url[64];
	char reason[512];

	/* The fixture's plain stand-in is replaced by a TLS one. */
	standin_stop(&f->s);
	assert_non_null(ca_key = pki_key());
	assert_non_null(other_key = pki_key());
	assert_non_null(srv_key = pki_key());
	sp.cn = "attest CA";
	sp.key = ca_key;
	sp.ca = 1;
	sp.pathlen = -1;
	sp.ku = "keyCertSign,cRLSign";
	sp.not_before = -60;
	sp.not_after = 3600;
	assert_non_null(ca = pki_cert(&sp));
	sp.cn = "another CA";
	sp.key = other_key;
	assert_non_null(other = pki_cert(&sp));
	sp.cn = "tsi-attest";
	sp.key = srv_key;
	sp.issuer = ca;
	sp.issuer_key = ca_key;
	sp.ca = 0;
	sp.ku = "digitalSignature";
	sp.san = "IP:127.0.0.1";
	assert_non_null(srv = pki_cert(&sp));
	srv_pem = pem_of(srv, NULL);
	key_pem = pem_of(NULL, srv_key);
	snprintf(ca_path, sizeof(ca_path), "%s/attest-ca.pem", f->ek.dir);
	snprintf(other_path, sizeof(other_path), "%s/other-ca.pem", f->ek.dir);
	assert_int_equal(pki_write_cert(ca_path, ca), 0);
	assert_int_equal(pki_write_cert(other_path, other), 0);
	standin_start_tls(&f->s, &f->ek, srv_pem, key_pem);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", f->s.port);
	free(f->cfg->attest_url);
	free(f->cfg->attest_ca);
	assert_non_null(f->cfg->attest_url = strdup(url));
	assert_non_null(f->cfg->attest_ca = strdup(other_path));
	assert_int_equal(tsi_enroll(f->cfg, f->t, reason, sizeof(reason)),
	    TSI_ERR_IO);
	if (strstr(reason, "cannot reach tsi-attest") == NULL ||
	    strstr(reason, "SSL") == NULL)
		fail_msg("reason '%s' does not name the TLS failure", reason);
	assert_int_equal(f->s.starts, 0);
	assert_int_equal(access(f->node, F_OK), -1);
	free(f->cfg->attest_ca);
	assert_non_null(f->cfg->attest_ca = strdup(ca_path));
	assert_int_equal(tsi_enroll(f->cfg, f->t, reason, sizeof(reason)),
	    TSI_OK);
	assert_string_equal(f->s.problem, "");
	assert_int_equal(f->s.finishes, 1);
	assert_int_equal(access(f->node, F_OK), 0);
	/* The daemon must stop before the PEM it serves is freed. */
	standin_stop(&f->s);
	memset(&f->s, 0, sizeof(f->s));
	pthread_mutex_init(&f->s.mu, NULL);
	pthread_cond_init(&f->s.cv, NULL);
	free(srv_pem);
	free(key_pem);
	X509_free(ca);
	X509_free(other);
	X509_free(srv);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(srv_key);
}

/* The TPM dies between start and finish: the activation fails as "TPM
 * unavailable", the old certificate stays. */
static void
test_tpm_vanishes_mid_enroll(void **state)
{
	struct fx *f = *state;
	char reason[512];

	assert_int_equal(tsi_enroll(f->cfg, f->t, reason, sizeof(reason)),
	    TSI_OK);
	refusal(f, M_START_KILL_TPM, TSI_ERR_TPM_UNAVAILABLE,
	    "cannot activate the credential");
	assert_int_equal(f->s.finishes, 1);
}

/* The parsers refuse what is not the protocol's shape. */
static void
test_parsers(void **state)
{
	struct tsi_enroll_challenge ch;
	struct tsi_enroll_result res;
	char reason[256];
	const char *ok =
	    "{\"session\":\"0123456789abcdef0123456789abcdef\","
	    "\"nonce\":\"00112233445566778899aabbccddeeff00112233445566778899"
	    "aabbccddeeff\",\"credential_blob\":\"AAQBAgME\","
	    "\"encrypted_secret\":\"AAIFBg==\",\"pcr_selection\":{\"sha256\":"
	    "[0,7,23]},\"expires_in\":30}";
	const char *bank =
	    "{\"session\":\"0123456789abcdef0123456789abcdef\","
	    "\"nonce\":\"00112233445566778899aabbccddeeff00112233445566778899"
	    "aabbccddeeff\",\"credential_blob\":\"AAQBAgME\","
	    "\"encrypted_secret\":\"AAIFBg==\",\"pcr_selection\":{\"sha1\":"
	    "[0]}}";
	const char *badpcr =
	    "{\"session\":\"0123456789abcdef0123456789abcdef\","
	    "\"nonce\":\"00112233445566778899aabbccddeeff00112233445566778899"
	    "aabbccddeeff\",\"credential_blob\":\"AAQBAgME\","
	    "\"encrypted_secret\":\"AAIFBg==\",\"pcr_selection\":{\"sha256\":"
	    "[0,24]}}";

	(void)state;
	assert_int_equal(tsi_enroll_parse_start(ok, strlen(ok), &ch, reason,
	                     sizeof(reason)),
	    TSI_OK);
	assert_int_equal(ch.pcr_mask, 0x800081);
	assert_int_equal(ch.blob_len, 6);
	assert_int_equal(ch.secret_len, 4);
	assert_int_equal(ch.expires_in, 30);
	assert_int_equal(ch.nonce[31], 0xff);
	tsi_enroll_challenge_clear(&ch);
	assert_int_equal(tsi_enroll_parse_start(bank, strlen(bank), &ch, reason,
	                     sizeof(reason)),
	    TSI_ERR_UNSUPPORTED);
	assert_non_null(strstr(reason, "sha1"));
	assert_int_equal(tsi_enroll_parse_start(badpcr, strlen(badpcr), &ch,
	                     reason, sizeof(reason)),
	    TSI_ERR_PARSE);
	assert_int_equal(tsi_enroll_parse_start("{}", 2, &ch, reason,
	                     sizeof(reason)),
	    TSI_ERR_PARSE);
	assert_non_null(strstr(reason, "session"));
	assert_int_equal(tsi_enroll_parse_finish("[1]", 3, &res, reason,
	                     sizeof(reason)),
	    TSI_ERR_PARSE);
	assert_int_equal(
	    tsi_enroll_parse_finish("{\"certificate\":\"-----BEGIN "
	                            "CERTIFICATE-----x\",\"ca\":\"-----BEGIN "
	                            "CERTIFICATE-----y\","
	                            "\"node\":\"../x\",\"expires_at\":5}",
	        95, &res, reason, sizeof(reason)),
	    TSI_ERR_PARSE);
}

/* Runs tsi-issuer with argv[1..]; stderr to the log file. */
static pid_t
spawn_issuer(struct fx *f, const char *cmd)
{
	char exe[512];
	const char *bin = getenv("TSI_BIN_DIR");
	pid_t pid;

	snprintf(exe, sizeof(exe), "%s/tsi-issuer", bin ? bin : "build/bin");
	if ((pid = fork()) == 0) {
		int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int dn = open("/dev/null", O_RDWR);
		if (dn >= 0) {
			dup2(dn, 0);
			dup2(dn, 1);
		}
		if (fd >= 0)
			dup2(fd, 2);
		execl(exe, exe, cmd, "--config", f->conf, (char *)NULL);
		_exit(127);
	}
	f->issuer = pid;
	return pid;
}

static size_t
discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return sz * n;
}

static long
health(struct fx *f)
{
	CURL *c = curl_easy_init();
	long status = 0;

	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, f->sock);
	curl_easy_setopt(c, CURLOPT_URL, "http://localhost/v1/health");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status;
}

static int
wait_exit(pid_t pid, long long ms)
{
	long long deadline = test_now_ms() + ms;
	int status;

	while (test_now_ms() < deadline) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -2;
}

/* The CLI: `tsi-issuer enroll` exits 0 and writes the files; a refusal
 * exits 1 and says why on stderr. The in-process TPM context is closed
 * first: swtpm serves one connection at a time. */
static void
test_enroll_command(void **state)
{
	struct fx *f = *state;
	char *log;

	tsi_tpm_free(f->t);
	f->t = NULL;
	set_mode(f, M_START_403);
	assert_int_equal(wait_exit(spawn_issuer(f, "enroll"), 60000), 1);
	assert_int_equal(access(f->node, F_OK), -1);
	assert_non_null(log = test_slurp(f->log));
	assert_non_null(strstr(log,
	    "tsi-issuer: enroll: tsi-attest refused "
	    "enrollment"));
	free(log);
	set_mode(f, M_OK);
	assert_int_equal(wait_exit(spawn_issuer(f, "enroll"), 60000), 0);
	assert_string_equal(f->s.problem, "");
	assert_non_null(log = test_slurp(f->node));
	assert_string_equal(log, f->s.cert_pem);
	free(log);
}

/* `run` without a node certificate enrolls before it serves. */
static void
test_run_enrolls_when_missing(void **state)
{
	struct fx *f = *state;
	struct passwd *pw;
	long long deadline;
	char *cert;
	pid_t pid;

	tsi_tpm_free(f->t);
	f->t = NULL;
	assert_int_equal(access(f->node, F_OK), -1);
	pid = spawn_issuer(f, "run");
	deadline = test_now_ms() + 60000;
	while (health(f) != 200 && test_now_ms() < deadline) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid)
			fail_msg("tsi-issuer run exited (log %s)", f->log);
		usleep(20000);
	}
	assert_int_equal(health(f), 200);
	assert_int_equal(f->s.finishes, 1);
	assert_string_equal(f->s.problem, "");
	assert_non_null(cert = test_slurp(f->node));
	assert_string_equal(cert, f->s.cert_pem);
	free(cert);
	/* Privilege separation (the default): tsi-attest was spoken to by the
	 * front end as front_user, and the signer installed what it got. */
	assert_non_null(pw = getpwnam("nobody"));
	assert_int_equal(f->s.client_uid, (long)pw->pw_uid);
	assert_non_null(cert = test_slurp(f->log));
	assert_non_null(strstr(cert, "\"event\":\"enroll.installed\""));
	free(cert);
	kill(pid, SIGTERM);
	assert_int_equal(wait_exit(pid, 20000), 0);
}

struct body {
	char buf[65536];
	size_t len;
};

static size_t
keep(char *p, size_t sz, size_t n, void *ud)
{
	struct body *b = ud;

	if (sz * n > sizeof(b->buf) - 1 - b->len)
		return 0;
	memcpy(b->buf + b->len, p, sz * n);
	b->len += sz * n;
	b->buf[b->len] = '\0';
	return sz * n;
}

/* The node certificate in the x5c of a token from the running issuer, as
 * its base64 (the PEM body without line breaks). NULL when the socket
 * refuses the connection: the issuer restarts its API socket when it
 * switches to a renewed certificate, a gap clients retry through. */
static char *
token_node_cert(struct fx *f)
{
	struct body b;
	json_t *root, *hdr = NULL, *claims = NULL, *x5c;
	CURL *c = curl_easy_init();
	CURLcode cr;
	long status = 0;
	char *out = NULL;

	memset(&b, 0, sizeof(b));
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, f->sock);
	curl_easy_setopt(c, CURLOPT_URL,
	    "http://localhost/v1/token?aud=tsi-vault");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (cr == CURLE_COULDNT_CONNECT)
		return NULL;
	assert_int_equal(cr, CURLE_OK);
	assert_int_equal(status, 200);
	assert_non_null(root = json_loads(b.buf, 0, NULL));
	assert_int_equal(tsi_jwt_decode_unverified(json_string_value(
	                                               json_object_get(root,
	                                                   "token")),
	                     &hdr, &claims),
	    TSI_OK);
	x5c = json_object_get(hdr, "x5c");
	assert_true(json_array_size(x5c) >= 1);
	out = strdup(
	    json_string_value(json_array_get(x5c, json_array_size(x5c) - 1)));
	json_decref(hdr);
	json_decref(claims);
	json_decref(root);
	return out;
}

/* PEM body of one certificate without the armour and line breaks. */
static void
pem_b64(const char *pem, char *out, size_t outlen)
{
	const char *p = strstr(pem, "-----\n"), *end = strstr(pem, "-----END");
	size_t n = 0;

	assert_non_null(p);
	assert_non_null(end);
	for (p += 6; p < end && n + 1 < outlen; p++)
		if (*p != '\n')
			out[n++] = *p;
	out[n] = '\0';
}

/* run with a certificate in its last fifth of life: enrollment fails at
 * start (503), the issuer serves with the old certificate anyway; when
 * tsi-attest is back the keeper enrolls again (after a backoff) and the
 * issuer signs with the new certificate without a restart. */
static void
test_run_renews_and_keeps_serving(void **state)
{
	struct fx *f = *state;
	char reason[512], old_b64[8192], new_b64[8192], *x5c, *log;
	long long deadline;
	int starts;
	pid_t pid;

	f->s.not_before = -3000;
	f->s.not_after = 600;
	assert_int_equal(tsi_enroll(f->cfg, f->t, reason, sizeof(reason)),
	    TSI_OK);
	pem_b64(f->s.cert_pem, old_b64, sizeof(old_b64));
	tsi_tpm_free(f->t);
	f->t = NULL;
	f->s.not_before = 0;
	f->s.not_after = 0;
	set_mode(f, M_START_503);
	pid = spawn_issuer(f, "run");
	deadline = test_now_ms() + 60000;
	while (health(f) != 200 && test_now_ms() < deadline) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid)
			fail_msg("tsi-issuer run exited (log %s)", f->log);
		usleep(20000);
	}
	assert_int_equal(health(f), 200);
	pthread_mutex_lock(&f->s.mu);
	starts = f->s.starts;
	pthread_mutex_unlock(&f->s.mu);
	assert_true(starts >= 2);
	assert_non_null(x5c = token_node_cert(f));
	assert_string_equal(x5c, old_b64);
	free(x5c);
	set_mode(f, M_OK);
	/* The keeper retries within its backoff (2 s and jitter). */
	deadline = test_now_ms() + 60000;
	for (;;) {
		pthread_mutex_lock(&f->s.mu);
		pem_b64(f->s.cert_pem, new_b64, sizeof(new_b64));
		pthread_mutex_unlock(&f->s.mu);
		if (strcmp(new_b64, old_b64) != 0 && health(f) == 200) {
			x5c = token_node_cert(f);
			if (x5c != NULL && strcmp(x5c, new_b64) == 0) {
				free(x5c);
				break;
			}
			free(x5c);
		}
		if (test_now_ms() > deadline)
			fail_msg("the issuer did not switch to the renewed "
			         "certificate (log %s)",
			    f->log);
		usleep(50000);
	}
	assert_string_equal(f->s.problem, "");
	kill(pid, SIGTERM);
	assert_int_equal(wait_exit(pid, 20000), 0);
	assert_non_null(log = test_slurp(f->log));
	assert_non_null(strstr(log, "\"event\":\"enroll.deferred\""));
	assert_non_null(strstr(log, "\"event\":\"enroll.renewed\""));
	free(log);
}

/* SIGTERM while the keeper waits on tsi-attest: the issuer stops at once
 * instead of waiting out the request's 30 s timeout. */
static void
test_stop_during_renewal(void **state)
{
	struct fx *f = *state;
	char reason[512];
	long long deadline, t0;
	int hanging = 0, rc;
	pid_t pid;

	f->s.not_before = -3000;
	f->s.not_after = 600;
	assert_int_equal(tsi_enroll(f->cfg, f->t, reason, sizeof(reason)),
	    TSI_OK);
	tsi_tpm_free(f->t);
	f->t = NULL;
	set_mode(f, M_START_503);
	pid = spawn_issuer(f, "run");
	deadline = test_now_ms() + 60000;
	while (health(f) != 200 && test_now_ms() < deadline)
		usleep(20000);
	assert_int_equal(health(f), 200);
	/* The keeper's first retry comes within its backoff. */
	set_mode(f, M_START_HANG);
	deadline = test_now_ms() + 30000;
	while (!hanging && test_now_ms() < deadline) {
		pthread_mutex_lock(&f->s.mu);
		hanging = f->s.hanging;
		pthread_mutex_unlock(&f->s.mu);
		usleep(20000);
	}
	assert_true(hanging);
	t0 = test_now_ms();
	kill(pid, SIGTERM);
	rc = wait_exit(pid, 20000);
	set_mode(f, M_OK);
	assert_int_equal(rc, 0);
	/* Far below the 30 s request timeout, with room for a loaded host. */
	assert_true(test_now_ms() - t0 < 10000);
}

/* Held at start-up enrollment (no certificate yet), the issuer still
 * honours SIGTERM at once: exit 0, nothing written. */
static void
test_stop_during_startup_enrollment(void **state)
{
	struct fx *f = *state;
	long long deadline, t0;
	int hanging = 0, rc;
	pid_t pid;

	tsi_tpm_free(f->t);
	f->t = NULL;
	set_mode(f, M_START_HANG);
	pid = spawn_issuer(f, "run");
	deadline = test_now_ms() + 60000;
	while (!hanging && test_now_ms() < deadline) {
		pthread_mutex_lock(&f->s.mu);
		hanging = f->s.hanging;
		pthread_mutex_unlock(&f->s.mu);
		usleep(20000);
	}
	assert_true(hanging);
	t0 = test_now_ms();
	kill(pid, SIGTERM);
	rc = wait_exit(pid, 20000);
	set_mode(f, M_OK);
	assert_int_equal(rc, 0);
	assert_true(test_now_ms() - t0 < 10000);
	assert_int_equal(access(f->node, F_OK), -1);
}

/* A node that cannot enroll and has no certificate does not serve. */
static void
test_run_refused_without_cert_exits(void **state)
{
	struct fx *f = *state;
	char *log;

	tsi_tpm_free(f->t);
	f->t = NULL;
	set_mode(f, M_START_403);
	assert_int_equal(wait_exit(spawn_issuer(f, "run"), 60000), 1);
	assert_non_null(log = test_slurp(f->log));
	assert_non_null(strstr(log, "\"event\":\"enroll.failed\""));
	free(log);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parsers),
		cmocka_unit_test_setup_teardown(test_enroll_writes_node_cert,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_replaces_atomically,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals_are_clear, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tpm_vanishes_mid_enroll,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_tls_verified_against_attest_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_command, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_run_enrolls_when_missing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_run_refused_without_cert_exits, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_run_renews_and_keeps_serving, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_during_renewal, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stop_during_startup_enrollment, setup, teardown),
	};
	int rc;

	tsi_log_init("test_enroll", TSI_LOG_ERROR);
	(void)setenv("TSS2_LOG", "all+NONE", 1);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
