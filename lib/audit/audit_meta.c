/* audit_meta.c - chain head, prune point and the signed head in the meta DB. */
#include "audit_int.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_MSG_TAG "tsi-audit-head"

int
audit_meta_get_point(struct audit_env *e, MDB_txn *txn, const char *name,
    struct audit_point *p)
{
	MDB_val k = { strlen(name), (void *)name }, v;
	int rc;

	memset(p, 0, sizeof(*p));
	rc = mdb_get(txn, e->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		if (strcmp(name, "prune") == 0)
			p->seq = 1;
		return TSI_OK;
	}
	if (rc != 0)
		return audit_mdb_err(rc);
	if (v.mv_size != 8 + AUDIT_HASH_LEN)
		return TSI_ERR_PARSE;
	p->seq = audit_be64_get(v.mv_data);
	memcpy(p->hash, (uint8_t *)v.mv_data + 8, AUDIT_HASH_LEN);
	return TSI_OK;
}

int
audit_meta_put_point(struct audit_env *e, MDB_txn *txn, const char *name,
    const struct audit_point *p)
{
	uint8_t b[8 + AUDIT_HASH_LEN];
	MDB_val k = { strlen(name), (void *)name }, v = { sizeof(b), b };

	audit_be64_put(b, p->seq);
	memcpy(b + 8, p->hash, AUDIT_HASH_LEN);
	return mdb_put(txn, e->meta, &k, &v, 0); /* LMDB code */
}

static void
head_msg(const struct audit_point *head,
    uint8_t msg[sizeof(HEAD_MSG_TAG) + 8 + AUDIT_HASH_LEN])
{
	memcpy(msg, HEAD_MSG_TAG, sizeof(HEAD_MSG_TAG)); /* with its NUL */
	audit_be64_put(msg + sizeof(HEAD_MSG_TAG), head->seq);
	memcpy(msg + sizeof(HEAD_MSG_TAG) + 8, head->hash, AUDIT_HASH_LEN);
}

int
audit_meta_sign_head(struct audit_env *e, MDB_txn *txn,
    const struct tsi_signer *signer, const struct audit_point *head)
{
	uint8_t msg[sizeof(HEAD_MSG_TAG) + 8 + AUDIT_HASH_LEN], sig[64];
	char hashhex[2 * AUDIT_HASH_LEN + 1], sighex[129], kid[48];
	unsigned char *der = NULL;
	char *pubhex = NULL, *body = NULL;
	json_t *j = NULL;
	MDB_val k = { 11, "signed_head" }, v;
	int r = TSI_ERR_INTERNAL, n;

	head_msg(head, msg);
	if ((r = tsi_signer_sign_msg(signer, msg, sizeof(msg), sig)) != TSI_OK)
		goto out;
	memset(kid, 0, sizeof(kid));
	if ((r = tsi_signer_kid(signer, kid)) != TSI_OK)
		goto out;
	if ((n = i2d_PUBKEY(tsi_signer_pub(signer), &der)) <= 0) {
		r = TSI_ERR_CRYPTO;
		goto out;
	}
	if ((pubhex = malloc(2 * (size_t)n + 1)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	audit_hex(der, (size_t)n, pubhex);
	audit_hex(head->hash, AUDIT_HASH_LEN, hashhex);
	audit_hex(sig, sizeof(sig), sighex);
	j = json_pack("{s:I,s:s,s:s,s:s,s:s,s:I}", "seq", (json_int_t)head->seq,
	    "hash", hashhex, "kid", kid, "sig", sighex, "pub", pubhex,
	    "time_us", (json_int_t)audit_now_us());
	if (j == NULL ||
	    (body = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	v.mv_size = strlen(body);
	v.mv_data = body;
	if ((n = mdb_put(txn, e->meta, &k, &v, 0)) != 0) {
		r = audit_mdb_err(n);
		goto out;
	}
	r = TSI_OK;
out:
	if (r != TSI_OK)
		tsi_log(TSI_LOG_WARN, "audit.head_sign_failed",
		    TSI_LS("error", tsi_strerror(r)));
	OPENSSL_free(der);
	free(pubhex);
	free(body);
	json_decref(j);
	return r;
}

static int
check_sig(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *der = NULL;
	EVP_MD_CTX *md = NULL;
	int n, ok = 0;

	if ((es = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(sig, 32, NULL)) == NULL ||
	    (bs = BN_bin2bn(sig + 32, 32, NULL)) == NULL)
		goto out;
	if (ECDSA_SIG_set0(es, br, bs) != 1)
		goto out;
	br = bs = NULL;
	if ((n = i2d_ECDSA_SIG(es, &der)) <= 0)
		goto out;
	if ((md = EVP_MD_CTX_new()) == NULL)
		goto out;
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1 &&
	    EVP_DigestVerify(md, der, (size_t)n, msg, len) == 1;
out:
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return ok;
}

int
audit_meta_check_signed_head(struct audit_env *e, MDB_txn *txn,
    EVP_PKEY *trusted, struct audit_point *sh, char *why, size_t why_len)
{
	MDB_val k = { 11, "signed_head" }, v;
	uint8_t msg[sizeof(HEAD_MSG_TAG) + 8 + AUDIT_HASH_LEN], sig[64];
	uint8_t *der = NULL;
	const unsigned char *p;
	const char *pubhex;
	EVP_PKEY *pub = NULL;
	json_t *j = NULL;
	json_int_t seq;
	size_t derlen;
	int r = TSI_ERR_PARSE, rc;

	if ((rc = mdb_get(txn, e->meta, &k, &v)) != 0)
		return rc == MDB_NOTFOUND ? TSI_ERR_NOT_FOUND
		                          : audit_mdb_err(rc);
	snprintf(why, why_len, "signed head is malformed");
	if ((j = json_loadb(v.mv_data, v.mv_size, 0, NULL)) == NULL)
		goto out;
	seq = json_integer_value(json_object_get(j, "seq"));
	pubhex = json_string_value(json_object_get(j, "pub"));
	if (seq < 0 || pubhex == NULL || strlen(pubhex) % 2 != 0 ||
	    audit_unhex(json_string_value(json_object_get(j, "hash")), sh->hash,
	        AUDIT_HASH_LEN) != TSI_OK ||
	    audit_unhex(json_string_value(json_object_get(j, "sig")), sig,
	        sizeof(sig)) != TSI_OK)
		goto out;
	sh->seq = (uint64_t)seq;
	derlen = strlen(pubhex) / 2;
	if ((der = malloc(derlen ? derlen : 1)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if (audit_unhex(pubhex, der, derlen) != TSI_OK)
		goto out;
	p = der;
	if ((pub = d2i_PUBKEY(NULL, &p, (long)derlen)) == NULL)
		goto out;
	if (trusted != NULL && EVP_PKEY_eq(trusted, pub) != 1) {
		snprintf(why, why_len,
		    "signed head was made by another key (kid %s)",
		    json_string_value(json_object_get(j, "kid"))
		        ? json_string_value(json_object_get(j, "kid"))
		        : "?");
		r = TSI_ERR_DENIED;
		goto out;
	}
	head_msg(sh, msg);
	if (!check_sig(pub, msg, sizeof(msg), sig)) {
		snprintf(why, why_len,
		    "signature of the signed head (seq %llu) "
		    "does not verify",
		    (unsigned long long)sh->seq);
		r = TSI_ERR_DENIED;
		goto out;
	}
	why[0] = '\0';
	r = TSI_OK;
out:
	EVP_PKEY_free(pub);
	free(der);
	json_decref(j);
	return r;
}
