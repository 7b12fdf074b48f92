/*
 * enroll.c - POST /v1/enroll/start and /v1/enroll/finish (the wire protocol
 * is in docs/attestation.md).
 *
 * start proves nothing by itself: it checks what can be checked on public
 * data (EK certificate to ek_ca, inventory, key attributes, CSR) and sends a
 * secret only the TPM that holds both the EK and the AK can recover.
 * finish checks that recovery (proof), the AK's certify of the signing key
 * and its quote, all over the session's fresh nonce, then signs the node
 * certificate with the inventory's location and binds EK hash, AK name and
 * certificate serial in one LMDB transaction.
 *
 * Every refusal is logged and audited with its reason and answered with a
 * reason the node may know; nothing is written to the inventory before the
 * last check passed (except the quoted PCR values of an authentic quote that
 * failed its policy, which `tsi node show` prints).
 */
#include "attest.h"

#include "tsi/attest.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/hex.h"
#include "tsi/jwt.h"
#include "tsi/log.h"
#include "tsi/x509.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REASON_MAX 256
#define CSR_MAX (16 * 1024)
#define EK_CERT_MAX (16 * 1024)
#define B64_FIELD_MAX (4 * 1024)

/* What a refusal needs to be logged, audited and answered the same way. */
struct refusal {
	unsigned status;
	char reason[REASON_MAX];
};

static int refuse(struct refusal *rf, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int
refuse(struct refusal *rf, unsigned status, const char *fmt, ...)
{
	va_list ap;
	int n;

	rf->status = status;
	va_start(ap, fmt);
	n = vsnprintf(rf->reason, sizeof(rf->reason), fmt, ap);
	va_end(ap);
	if (n < 0)
		rf->reason[0] = '\0';
	return TSI_ERR_DENIED;
}

/* Microseconds on the monotonic clock: how long verification took is
 * logged with each accepted step (bench and capacity planning). */
static long long
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A string member of at most max bytes; NULL when absent or not a string. */
static const char *
str_field(const json_t *o, const char *key, size_t max)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

/* Decodes a base64 member into *out (caller frees with free). */
static int
b64_field(const json_t *o, const char *key, uint8_t **out, size_t *len,
    struct refusal *rf)
{
	const char *s = str_field(o, key, B64_FIELD_MAX);
	unsigned char *d = NULL;

	if (s == NULL)
		return refuse(rf, 400, "%s: missing or not a base64 string",
		    key);
	if (tsi_b64_decode(s, strlen(s), &d, len) != TSI_OK)
		return refuse(rf, 400, "%s: not canonical base64", key);
	*out = d;
	return TSI_OK;
}

static int
tpm_pub_field(const json_t *o, const char *key, struct tsi_tpm_pub **out,
    struct refusal *rf)
{
	uint8_t *b = NULL;
	size_t len = 0;
	int r;

	if (b64_field(o, key, &b, &len, rf) != TSI_OK)
		return TSI_ERR_DENIED;
	r = tsi_tpm_pub_parse(b, len, out);
	free(b);
	if (r != TSI_OK)
		return refuse(rf, 400, "%s: not a TPM2B_PUBLIC (%s)", key,
		    tsi_strerror(r));
	return TSI_OK;
}

static json_t *
parse_body(const struct attest_req *req, struct refusal *rf)
{
	json_error_t je;
	json_t *j;

	if (req->body == NULL || req->body_len == 0) {
		refuse(rf, 400, "empty body");
		return NULL;
	}
	j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		refuse(rf, 400, "body is not a JSON object");
		return NULL;
	}
	return j;
}

/* The location claims of an inventory entry, for audit records. */
static json_t *
entry_claims(const json_t *e, const char *ek)
{
	json_t *c = json_object();
	static const char *const keys[] = { "node", "cluster-name", "region",
		"datacenter" };
	size_t i;

	if (c == NULL)
		return NULL;
	for (i = 0; e != NULL && i < 4; i++) {
		json_t *v = json_object_get(e, keys[i]);
		if (json_is_string(v))
			json_object_set(c, keys[i], v);
	}
	if (ek != NULL)
		json_object_set_new(c, "ek_sha256", json_string(ek));
	return c;
}

/* Logs, audits and answers a refusal. */
static void
answer_refusal(struct attest *a, const struct attest_req *req, const char *op,
    const struct refusal *rf, const json_t *entry, const char *ek,
    struct attest_answer *ans)
{
	json_t *claims = entry_claims(entry, ek);
	const char *node =
	    entry ? json_string_value(json_object_get(entry, "node")) : NULL;
	char path[160];

	snprintf(path, sizeof(path), "nodes/%s", node ? node : "-");
	tsi_log(TSI_LOG_WARN, "enroll.refused", TSI_LS("step", op),
	    TSI_LS("reason", rf->reason), TSI_LS("node", node),
	    TSI_LS("ek_sha256", ek), TSI_LS("remote", req->remote),
	    TSI_LI("status", rf->status));
	if (strcmp(op, "enroll.start") == 0)
		__atomic_fetch_add(&a->metrics.start_refused, 1,
		    __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&a->metrics.enroll_refused, 1,
		    __ATOMIC_RELAXED);
	if (attest_audit(a, req, op, path, "deny", rf->reason, claims) !=
	    TSI_OK)
		attest_answer_error(ans, 503, "audit log unavailable");
	else
		attest_answer_error(ans, rf->status, rf->reason);
	json_decref(claims);
}

/* The CSR's key must be the certified TPM key; its self-signature proves
 * the node can sign with it. *pub: EVP_PKEY_free. */
static int
check_csr(const char *pem, const struct tsi_tpm_pub *key, struct refusal *rf)
{
	BIO *bio = NULL;
	X509_REQ *req = NULL;
	EVP_PKEY *pub;
	int r = TSI_ERR_DENIED;

	if ((bio = BIO_new_mem_buf(pem, (int)strlen(pem))) == NULL)
		return refuse(rf, 500, "internal error");
	if ((req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)) == NULL) {
		refuse(rf, 400, "csr: not a PEM certificate request");
		goto out;
	}
	if ((pub = X509_REQ_get0_pubkey(req)) == NULL ||
	    X509_REQ_verify(req, pub) != 1) {
		refuse(rf, 403, "csr: self-signature does not verify");
		goto out;
	}
	if (EVP_PKEY_eq(pub, tsi_tpm_pub_pkey(key)) != 1) {
		refuse(rf, 403, "csr: public key is not key_pub");
		goto out;
	}
	r = TSI_OK;
out:
	ERR_clear_error();
	X509_REQ_free(req);
	BIO_free(bio);
	return r;
}

/* Finds the inventory entry of ek (NULL when unregistered). */
static int
lookup_ek(struct attest *a, const char *ek, json_t **entry)
{
	MDB_txn *txn = NULL;
	json_t *idx = NULL;
	const char *node;
	int r;

	*entry = NULL;
	if ((r = attest_store_begin(a, 1, &txn)) != TSI_OK)
		return r;
	r = attest_store_get(a, txn, a->db_ek, ek, &idx);
	if (r == TSI_OK) {
		node = json_string_value(json_object_get(idx, "node"));
		r = node ? attest_store_get(a, txn, a->db_nodes, node, entry)
		         : TSI_ERR_STORE;
	}
	mdb_txn_abort(txn);
	json_decref(idx);
	return r;
}

void
attest_enroll_start(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans)
{
	struct refusal rf = { 0, "" };
	struct tsi_tpm_pub *ek = NULL, *ak = NULL, *key = NULL;
	json_t *body = NULL, *entry = NULL, *sess = NULL, *claims = NULL;
	STACK_OF(X509) *ek_chain = NULL;
	const char *ek_cert_pem, *csr, *state;
	uint8_t sid[ATTEST_SESSION_LEN], nonce[ATTEST_NONCE_LEN], secret[32];
	uint8_t *blob = NULL, *encsec = NULL;
	size_t blob_len = 0, encsec_len = 0, nlen;
	const uint8_t *ak_name;
	char ek_hash[65] = "", sid_hex[2 * ATTEST_SESSION_LEN + 1];
	char nonce_hex[2 * ATTEST_NONCE_LEN + 1], secret_hex[65];
	char why[REASON_MAX], path[160];
	char *blob_b64 = NULL, *sec_b64 = NULL;
	int cert_ok = 0, r;
	MDB_txn *txn = NULL;
	long long t0 = mono_us();

	if ((body = parse_body(req, &rf)) == NULL)
		goto refused;
	if (tpm_pub_field(body, "ek_pub", &ek, &rf) != TSI_OK ||
	    tpm_pub_field(body, "ak_pub", &ak, &rf) != TSI_OK ||
	    tpm_pub_field(body, "key_pub", &key, &rf) != TSI_OK)
		goto refused;
	if ((csr = str_field(body, "csr", CSR_MAX)) == NULL) {
		refuse(&rf, 400, "csr: missing or too large");
		goto refused;
	}
	if (tsi_attest_check_ek(ek, why, sizeof(why)) != TSI_OK) {
		refuse(&rf, 403, "%s", why);
		goto refused;
	}
	if (tsi_attest_key_sha256(tsi_tpm_pub_pkey(ek), ek_hash) != TSI_OK) {
		refuse(&rf, 500, "internal error");
		goto refused;
	}

	/* The certificate first: an EK from an unknown manufacturer is
	 * refused outright, not queued for an admin as pending. */
	ek_cert_pem = str_field(body, "ek_cert", EK_CERT_MAX);
	if (ek_cert_pem == NULL && json_object_get(body, "ek_cert") != NULL &&
	    !json_is_null(json_object_get(body, "ek_cert"))) {
		refuse(&rf, 400, "ek_cert: not a PEM string");
		goto refused;
	}
	if (ek_cert_pem != NULL) {
		X509 *leaf;

		if (tsi_x509_load_chain_pem(ek_cert_pem, strlen(ek_cert_pem),
		        &ek_chain) != TSI_OK) {
			refuse(&rf, 400, "ek_cert: not a PEM certificate");
			goto refused;
		}
		leaf = sk_X509_shift(ek_chain);
		r = tsi_attest_ek_cert_verify(leaf, ek_chain, a->ek_ca, why,
		    sizeof(why));
		if (r == TSI_OK &&
		    !tsi_x509_key_matches(leaf, tsi_tpm_pub_pkey(ek))) {
			tsi_errf(why, sizeof(why),
			    "EK certificate is not for ek_pub");
			r = TSI_ERR_BAD_CERT;
		}
		X509_free(leaf);
		if (r != TSI_OK) {
			refuse(&rf, 403, "%s", why);
			goto refused;
		}
		cert_ok = 1;
	}

	r = lookup_ek(a, ek_hash, &entry);
	if (r == TSI_ERR_NOT_FOUND) {
		int pr = attest_store_pending(a, ek_hash, req->remote);
		refuse(&rf, 403,
		    "EK %s is not registered (listed as pending%s)", ek_hash,
		    pr == TSI_OK ? "" : "; pending list full");
		goto refused;
	}
	if (r != TSI_OK) {
		refuse(&rf, 503, "inventory unavailable");
		goto refused;
	}
	if (!cert_ok &&
	    !json_is_true(json_object_get(entry, "ek_hash_trust"))) {
		refuse(&rf, 403,
		    ek_cert_pem == NULL ? "an EK certificate is "
		                          "required (the entry does not trust "
		                          "the EK hash alone)"
		                        : "EK certificate rejected");
		goto refused;
	}
	state = json_string_value(json_object_get(entry, "state"));
	if (state != NULL && strcmp(state, "revoked") == 0) {
		refuse(&rf, 403, "node is revoked");
		goto refused;
	}
	if (tsi_attest_check_ak(ak, why, sizeof(why)) != TSI_OK ||
	    tsi_attest_check_signing_key(key, why, sizeof(why)) != TSI_OK) {
		refuse(&rf, 403, "%s", why);
		goto refused;
	}
	if (check_csr(csr, key, &rf) != TSI_OK)
		goto refused;

	if (RAND_bytes(sid, sizeof(sid)) != 1 ||
	    RAND_bytes(nonce, sizeof(nonce)) != 1 ||
	    RAND_bytes(secret, sizeof(secret)) != 1) {
		refuse(&rf, 500, "internal error");
		goto refused;
	}
	ak_name = tsi_tpm_pub_name(ak, &nlen);
	if (tsi_attest_make_credential(ek, ak_name, nlen, secret,
	        sizeof(secret), &blob, &blob_len, &encsec,
	        &encsec_len) != TSI_OK ||
	    tsi_b64_encode(blob, blob_len, &blob_b64) != TSI_OK ||
	    tsi_b64_encode(encsec, encsec_len, &sec_b64) != TSI_OK) {
		refuse(&rf, 500, "internal error");
		goto refused;
	}
	tsi_hex_encode(sid, sizeof(sid), sid_hex);
	tsi_hex_encode(nonce, sizeof(nonce), nonce_hex);
	tsi_hex_encode(secret, sizeof(secret), secret_hex);
	sess = json_pack("{sssssOsOsssssssI}", "node",
	    json_string_value(json_object_get(entry, "node")), "ek_sha256",
	    ek_hash, "ak_pub", json_object_get(body, "ak_pub"), "key_pub",
	    json_object_get(body, "key_pub"), "csr", csr, "nonce", nonce_hex,
	    "secret", secret_hex, "expires_at",
	    (json_int_t)(attest_now() + a->set->session_ttl));
	OPENSSL_cleanse(secret_hex, sizeof(secret_hex));
	if (sess == NULL) {
		refuse(&rf, 500, "internal error");
		goto refused;
	}
	attest_store_expire(a, attest_now(), 256);
	if (attest_store_begin(a, 0, &txn) != TSI_OK ||
	    attest_store_put(txn, a->db_sessions, sid_hex, sess) != TSI_OK) {
		refuse(&rf, 503, "session store unavailable");
		goto refused;
	}
	r = attest_store_commit(txn);
	txn = NULL;
	if (r != TSI_OK) {
		refuse(&rf, 503, "session store unavailable");
		goto refused;
	}
	claims = entry_claims(entry, ek_hash);
	snprintf(path, sizeof(path), "nodes/%s",
	    json_string_value(json_object_get(entry, "node")));
	if (attest_audit(a, req, "enroll.start", path, "allow",
	        "evidence accepted, credential sent", claims) != TSI_OK) {
		attest_answer_error(ans, 503, "audit log unavailable");
		goto out;
	}
	__atomic_fetch_add(&a->metrics.start_ok, 1, __ATOMIC_RELAXED);
	tsi_log(TSI_LOG_INFO, "enroll.started",
	    TSI_LS("node", json_string_value(json_object_get(entry, "node"))),
	    TSI_LS("ek_sha256", ek_hash), TSI_LS("remote", req->remote),
	    TSI_LI("us", mono_us() - t0));
	ans->status = 200;
	ans->json = json_pack("{sssssssss{s[iiiiiiii]}sI}", "session", sid_hex,
	    "nonce", nonce_hex, "credential_blob", blob_b64, "encrypted_secret",
	    sec_b64, "pcr_selection", "sha256", 0, 1, 2, 3, 4, 5, 6, 7,
	    "expires_in", (json_int_t)a->set->session_ttl);
	goto out;
refused:
	answer_refusal(a, req, "enroll.start", &rf, entry,
	    ek_hash[0] ? ek_hash : NULL, ans);
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	OPENSSL_cleanse(secret, sizeof(secret));
	json_decref(claims);
	json_decref(sess);
	json_decref(entry);
	json_decref(body);
	sk_X509_pop_free(ek_chain, X509_free);
	tsi_tpm_pub_free(ek);
	tsi_tpm_pub_free(ak);
	tsi_tpm_pub_free(key);
	free(blob);
	free(encsec);
	free(blob_b64);
	free(sec_b64);
}

/* Takes the session out of the store: whatever happens next, it cannot be
 * used again. */
static int
take_session(struct attest *a, const char *sid, json_t **out)
{
	MDB_txn *txn = NULL;
	int r;

	if ((r = attest_store_begin(a, 0, &txn)) != TSI_OK)
		return r;
	if ((r = attest_store_get(a, txn, a->db_sessions, sid, out)) !=
	        TSI_OK ||
	    (r = attest_store_del(txn, a->db_sessions, sid)) != TSI_OK) {
		mdb_txn_abort(txn);
		return r;
	}
	return attest_store_commit(txn);
}

static int
check_proof(const json_t *sess, const char *sid, const char *proof,
    struct refusal *rf)
{
	const char *nonce = json_string_value(json_object_get(sess, "nonce"));
	uint8_t secret[32], want[32], got[32];
	unsigned char msg[2 * ATTEST_SESSION_LEN + 2 * ATTEST_NONCE_LEN];
	unsigned int mlen = 0;
	int r = TSI_ERR_DENIED;

	if (nonce == NULL || strlen(nonce) != 2 * ATTEST_NONCE_LEN ||
	    tsi_hex_decode(json_string_value(json_object_get(sess, "secret")),
	        secret, sizeof(secret), 0) != TSI_OK)
		return refuse(rf, 500, "internal error");
	if (proof == NULL ||
	    tsi_hex_decode(proof, got, sizeof(got), TSI_HEX_ANY_CASE) !=
	        TSI_OK) {
		refuse(rf, 400, "proof: expected 64 hex digits");
		goto out;
	}
	memcpy(msg, sid, 2 * ATTEST_SESSION_LEN);
	memcpy(msg + 2 * ATTEST_SESSION_LEN, nonce, 2 * ATTEST_NONCE_LEN);
	if (HMAC(EVP_sha256(), secret, sizeof(secret), msg, sizeof(msg), want,
	        &mlen) == NULL ||
	    mlen != sizeof(want)) {
		refuse(rf, 500, "internal error");
		goto out;
	}
	if (CRYPTO_memcmp(want, got, sizeof(got)) != 0) {
		refuse(rf, 403,
		    "activation proof does not match: the AK and EK "
		    "are not in one TPM, or the proof is for another session");
		goto out;
	}
	r = TSI_OK;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(want, sizeof(want));
	return r;
}

/* Verifies one {attest, signature} member against the AK and the nonce. */
static int
check_attest(const json_t *body, const char *member, uint16_t type,
    const struct tsi_tpm_pub *ak, const uint8_t *nonce,
    struct tsi_attest_info *info, struct refusal *rf)
{
	const json_t *o = json_object_get(body, member);
	uint8_t *att = NULL, *sig = NULL;
	size_t alen = 0, slen = 0;
	char why[REASON_MAX];
	int r = TSI_ERR_DENIED;

	if (!json_is_object(o))
		return refuse(rf, 400, "%s: missing", member);
	if (b64_field(o, "attest", &att, &alen, rf) != TSI_OK ||
	    b64_field(o, "signature", &sig, &slen, rf) != TSI_OK)
		goto out;
	r = tsi_attest_verify(att, alen, sig, slen, ak, info, why, sizeof(why));
	if (r != TSI_OK) {
		refuse(rf, r == TSI_ERR_PARSE ? 400 : 403, "%s: %s", member,
		    why);
		r = TSI_ERR_DENIED;
		goto out;
	}
	r = TSI_ERR_DENIED;
	if (info->type != type) {
		refuse(rf, 403, "%s: wrong attestation type 0x%04x", member,
		    info->type);
		goto out;
	}
	/* The nonce makes the evidence fresh and bound to this session. */
	if (info->extra_len != ATTEST_NONCE_LEN ||
	    CRYPTO_memcmp(info->extra, nonce, ATTEST_NONCE_LEN) != 0) {
		refuse(rf, 403,
		    "%s: qualifying data is not this session's nonce "
		    "(stale or replayed)",
		    member);
		goto out;
	}
	r = TSI_OK;
out:
	free(att);
	free(sig);
	return r;
}

/* The quoted PCR values from the request, in selection order. */
static int
quote_pcrs(const json_t *body, uint8_t values[ATTEST_PCRS][32],
    struct refusal *rf)
{
	const json_t *bank =
	    json_object_get(json_object_get(json_object_get(body, "quote"),
	                        "pcrs"),
	        "sha256");
	char idx[4];
	int i;

	if (!json_is_object(bank) || json_object_size(bank) != ATTEST_PCRS)
		return refuse(rf, 400, "quote.pcrs.sha256: expected PCRs 0..7");
	for (i = 0; i < ATTEST_PCRS; i++) {
		snprintf(idx, sizeof(idx), "%d", i);
		if (tsi_hex_decode(str_field(bank, idx, 64), values[i], 32,
		        TSI_HEX_ANY_CASE) != TSI_OK)
			return refuse(rf, 400,
			    "quote.pcrs.sha256.%d: expected 64 "
			    "hex digits",
			    i);
	}
	return TSI_OK;
}

static json_t *
pcrs_json(const uint8_t values[ATTEST_PCRS][32])
{
	json_t *o = json_object();
	char idx[4], hex[65];
	int i;

	for (i = 0; o != NULL && i < ATTEST_PCRS; i++) {
		snprintf(idx, sizeof(idx), "%d", i);
		tsi_hex_encode(values[i], 32, hex);
		json_object_set_new(o, idx, json_string(hex));
	}
	return o;
}

/* Notes an authentic quote that failed its PCR policy on the entry, so
 * that `tsi node show` can print what was quoted. */
static void
note_bad_quote(struct attest *a, const char *node, const char *ek,
    const uint8_t values[ATTEST_PCRS][32], const char *reason)
{
	MDB_txn *txn = NULL;
	json_t *e = NULL;

	if (attest_store_begin(a, 0, &txn) != TSI_OK)
		return;
	if (attest_store_get(a, txn, a->db_nodes, node, &e) != TSI_OK ||
	    !json_is_string(json_object_get(e, "ek_sha256")) ||
	    strcmp(json_string_value(json_object_get(e, "ek_sha256")), ek) !=
	        0) {
		mdb_txn_abort(txn);
		json_decref(e);
		return;
	}
	json_object_set_new(e, "quoted_pcrs", pcrs_json(values));
	json_object_set_new(e, "last_quote", json_integer(attest_now()));
	if (strcmp(json_string_value(json_object_get(e, "state")), "revoked") !=
	    0) {
		json_object_set_new(e, "state", json_string("untrusted"));
		json_object_set_new(e, "reason", json_string(reason));
	}
	if (attest_store_put(txn, a->db_nodes, node, e) == TSI_OK)
		(void)attest_store_commit(txn);
	else
		mdb_txn_abort(txn);
	json_decref(e);
}

static int
location_of(const json_t *e, struct tsi_location *loc)
{
	memset(loc, 0, sizeof(*loc));
	if ((loc->cluster_name =
	            strdup(json_string_value(json_object_get(e, "cluster-name"))
	                    ?: "")) == NULL ||
	    (loc->region = strdup(
	         json_string_value(json_object_get(e, "region")) ?: "")) ==
	        NULL ||
	    (loc->datacenter = strdup(
	         json_string_value(json_object_get(e, "datacenter")) ?: "")) ==
	        NULL ||
	    (loc->node = strdup(json_string_value(json_object_get(e, "node"))
	             ?: "")) == NULL) {
		tsi_location_clear(loc);
		return TSI_ERR_ALLOC;
	}
	return tsi_location_validate(loc);
}

static int
cert_facts(const char *pem, char serial[80], long long *not_after)
{
	X509 *x = NULL;
	STACK_OF(X509) *sk = NULL;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	struct tm tm;
	int r = TSI_ERR_CRYPTO;

	if (tsi_x509_load_chain_pem(pem, strlen(pem), &sk) != TSI_OK)
		return TSI_ERR_PARSE;
	x = sk_X509_value(sk, 0);
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) ==
	        NULL ||
	    (hex = BN_bn2hex(bn)) == NULL || strlen(hex) >= 80 ||
	    ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		goto out;
	snprintf(serial, 80, "%s", hex);
	*not_after = (long long)timegm(&tm);
	r = TSI_OK;
out:
	OPENSSL_free(hex);
	BN_free(bn);
	sk_X509_pop_free(sk, X509_free);
	return r;
}

void
attest_enroll_finish(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans)
{
	struct refusal rf = { 0, "" };
	struct tsi_tpm_pub *ak = NULL, *key = NULL;
	struct tsi_attest_info cinfo, qinfo;
	struct tsi_location loc = { 0 };
	json_t *body = NULL, *sess = NULL, *entry = NULL, *claims = NULL;
	json_t *cur = NULL, *idx = NULL;
	const char *sid, *node = NULL, *ek = NULL, *pol_name, *cur_ek;
	uint8_t nonce[ATTEST_NONCE_LEN], values[ATTEST_PCRS][32], digest[32];
	uint8_t *pub = NULL;
	size_t publen = 0, nlen;
	const uint8_t *name;
	char *cert = NULL, serial[80] = "", ak_name[2 * TSI_TPM_NAME_MAX + 1];
	char path[160];
	long long not_after = 0;
	MDB_txn *txn = NULL;
	long long t0 = mono_us();
	int r;

	if ((body = parse_body(req, &rf)) == NULL)
		goto refused;
	if ((sid = str_field(body, "session", 2 * ATTEST_SESSION_LEN)) ==
	        NULL ||
	    strlen(sid) != 2 * ATTEST_SESSION_LEN ||
	    tsi_hex_decode(sid, digest, ATTEST_SESSION_LEN, TSI_HEX_ANY_CASE) !=
	        TSI_OK) {
		refuse(&rf, 400, "session: expected 32 hex digits");
		goto refused;
	}
	r = take_session(a, sid, &sess);
	if (r == TSI_ERR_NOT_FOUND) {
		refuse(&rf, 410, "session unknown, expired or already used");
		goto refused;
	}
	if (r != TSI_OK) {
		refuse(&rf, 503, "session store unavailable");
		goto refused;
	}
	node = json_string_value(json_object_get(sess, "node"));
	ek = json_string_value(json_object_get(sess, "ek_sha256"));
	if (node == NULL || ek == NULL) {
		refuse(&rf, 500, "internal error");
		goto refused;
	}
	/* The entry as it was when the session began: audit records name the
	 * node even when this step refuses. */
	if (lookup_ek(a, ek, &entry) != TSI_OK)
		entry = NULL;
	if (json_integer_value(json_object_get(sess, "expires_at")) <
	    attest_now()) {
		refuse(&rf, 410, "session expired");
		goto refused;
	}
	if (check_proof(sess, sid, str_field(body, "proof", 64), &rf) != TSI_OK)
		goto refused;
	if (tsi_hex_decode(json_string_value(json_object_get(sess, "nonce")),
	        nonce, sizeof(nonce), 0) != TSI_OK ||
	    b64_field(sess, "ak_pub", &pub, &publen, &rf) != TSI_OK ||
	    tsi_tpm_pub_parse(pub, publen, &ak) != TSI_OK) {
		refuse(&rf, 500, "internal error");
		goto refused;
	}
	free(pub);
	pub = NULL;
	if (b64_field(sess, "key_pub", &pub, &publen, &rf) != TSI_OK ||
	    tsi_tpm_pub_parse(pub, publen, &key) != TSI_OK) {
		refuse(&rf, 500, "internal error");
		goto refused;
	}
	if (check_attest(body, "certify", TSI_ATTEST_CERTIFY, ak, nonce, &cinfo,
	        &rf) != TSI_OK)
		goto refused;
	name = tsi_tpm_pub_name(key, &nlen);
	if (cinfo.name_len != nlen || memcmp(cinfo.name, name, nlen) != 0) {
		refuse(&rf, 403,
		    "certify: the certified object is not key_pub");
		goto refused;
	}
	if (check_attest(body, "quote", TSI_ATTEST_QUOTE, ak, nonce, &qinfo,
	        &rf) != TSI_OK)
		goto refused;
	if (qinfo.pcr_mask != 0xff || qinfo.other_banks) {
		refuse(&rf, 403, "quote: selection is not sha256 PCRs 0..7");
		goto refused;
	}
	if (quote_pcrs(body, values, &rf) != TSI_OK)
		goto refused;
	if (tsi_attest_pcr_digest((const uint8_t(*)[32])values, ATTEST_PCRS,
	        digest) != TSI_OK ||
	    qinfo.pcr_digest_len != 32 ||
	    memcmp(digest, qinfo.pcr_digest, 32) != 0) {
		refuse(&rf, 403,
		    "quote: PCR values do not match the quoted digest");
		goto refused;
	}
	if (entry == NULL) {
		refuse(&rf, 403, "node is no longer registered");
		goto refused;
	}
	pol_name = json_string_value(json_object_get(entry, "pcr_policy"));
	if (pol_name != NULL) {
		const struct attest_pcr_policy *pol;
		int ok;

		pthread_mutex_lock(&a->mu);
		pol = attest_pcr_find(a->pcr, pol_name);
		ok = pol == NULL
		    ? -1
		    : attest_pcr_match(pol, (const uint8_t(*)[32])values);
		pthread_mutex_unlock(&a->mu);
		if (ok != 1) {
			refuse(&rf, 403,
			    ok < 0 ? "PCR policy '%s' is not defined"
			           : "quoted PCR values are not allowed by "
			             "policy '%s'",
			    pol_name);
			note_bad_quote(a, node, ek,
			    (const uint8_t(*)[32])values, rf.reason);
			goto refused;
		}
	}

	/* Every check passed: the location comes from the entry only. */
	if (location_of(entry, &loc) != TSI_OK) {
		refuse(&rf, 500, "inventory entry has no valid location");
		goto refused;
	}
	r = tsi_ca_sign_csr(a->set->node_ca_cert, a->set->node_ca_key,
	    json_string_value(json_object_get(sess, "csr")),
	    strlen(json_string_value(json_object_get(sess, "csr"))), &loc,
	    (int)a->set->cert_days, &cert);
	if (r != TSI_OK || cert_facts(cert, serial, &not_after) != TSI_OK) {
		refuse(&rf,
		    r == TSI_ERR_BAD_CERT || r == TSI_ERR_PARSE ? 403 : 500,
		    "node certificate could not be signed (%s)",
		    tsi_strerror(r));
		goto refused;
	}
	name = tsi_tpm_pub_name(ak, &nlen);
	tsi_hex_encode(name, nlen, ak_name);

	/* One transaction: the entry must still be this EK's, not revoked,
	 * and it takes the AK name and serial together. */
	if (attest_store_begin(a, 0, &txn) != TSI_OK) {
		refuse(&rf, 503, "inventory unavailable");
		goto refused;
	}
	if (attest_store_get(a, txn, a->db_ek, ek, &idx) != TSI_OK ||
	    !json_is_string(json_object_get(idx, "node")) ||
	    strcmp(json_string_value(json_object_get(idx, "node")), node) !=
	        0 ||
	    attest_store_get(a, txn, a->db_nodes, node, &cur) != TSI_OK ||
	    (cur_ek = json_string_value(json_object_get(cur, "ek_sha256"))) ==
	        NULL ||
	    strcmp(cur_ek, ek) != 0) {
		refuse(&rf, 403, "node is no longer registered with this EK");
		goto refused;
	}
	if (strcmp(json_string_value(json_object_get(cur, "state")) ?: "",
	        "revoked") == 0) {
		refuse(&rf, 403, "node is revoked");
		goto refused;
	}
	json_object_set_new(cur, "state", json_string("trusted"));
	json_object_set_new(cur, "reason", json_string(""));
	json_object_set_new(cur, "ak_name", json_string(ak_name));
	json_object_set_new(cur, "cert_serial", json_string(serial));
	json_object_set_new(cur, "cert_expires_at", json_integer(not_after));
	json_object_set_new(cur, "enrolled_at", json_integer(attest_now()));
	json_object_set_new(cur, "last_quote", json_integer(attest_now()));
	json_object_set_new(cur, "quoted_pcrs",
	    pcrs_json((const uint8_t(*)[32])values));
	if (attest_store_put(txn, a->db_nodes, node, cur) != TSI_OK) {
		refuse(&rf, 503, "inventory unavailable");
		goto refused;
	}
	/* Durable audit before the binding is committed and the certificate
	 * leaves: no certificate without its record. */
	claims = entry_claims(cur, ek);
	json_object_set_new(claims, "cert_serial", json_string(serial));
	json_object_set_new(claims, "ak_name", json_string(ak_name));
	snprintf(path, sizeof(path), "nodes/%s", node);
	if (attest_audit(a, req, "enroll.finish", path, "allow",
	        "TPM evidence verified, node certificate issued",
	        claims) != TSI_OK) {
		attest_answer_error(ans, 503, "audit log unavailable");
		goto out;
	}
	r = attest_store_commit(txn);
	txn = NULL;
	if (r != TSI_OK) {
		(void)attest_audit(a, req, "enroll.finish", path, "error",
		    "inventory commit failed; certificate withheld", claims);
		attest_answer_error(ans, 503, "inventory unavailable");
		goto out;
	}
	__atomic_fetch_add(&a->metrics.enroll_ok, 1, __ATOMIC_RELAXED);
	tsi_log(TSI_LOG_INFO, "enroll.done", TSI_LS("node", node),
	    TSI_LS("ek_sha256", ek), TSI_LS("serial", serial),
	    TSI_LS("remote", req->remote), TSI_LI("us", mono_us() - t0));
	ans->status = 200;
	ans->json = json_pack("{sssssssI}", "certificate", cert, "ca",
	    a->node_ca_pem, "node", node, "expires_at", (json_int_t)not_after);
	goto out;
refused:
	answer_refusal(a, req, "enroll.finish", &rf, entry, ek, ans);
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	tsi_location_clear(&loc);
	if (sess != NULL) {
		json_t *s = json_object_get(sess, "secret");
		if (json_is_string(s))
			OPENSSL_cleanse((void *)json_string_value(s),
			    json_string_length(s));
	}
	json_decref(sess);
	json_decref(body);
	json_decref(entry);
	json_decref(cur);
	json_decref(idx);
	json_decref(claims);
	tsi_tpm_pub_free(ak);
	tsi_tpm_pub_free(key);
	free(pub);
	free(cert);
}
