/*
 * crypto.c - KV values at rest: AES-256-GCM (OpenSSL EVP).
 *
 * Blob layout: 0x01 | nonce (12 random bytes) | ciphertext | tag (16).
 * The associated data is "tsi-kv-v1" NUL path NUL version (8 bytes, big
 * endian), so a ciphertext copied to another path or version fails to open.
 * A random 96-bit nonce per value keeps the collision risk negligible for
 * far more writes than one key will see (NIST SP 800-38D, 2^32 limit).
 */
#include "crypto.h"
#include "store.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/file.h"
#include "tsi/log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOB_FORMAT 0x01
#define NONCE_LEN 12
#define TAG_LEN 16
#define AD_CONTEXT "tsi-kv-v1"

int
vault_key_load(const char *path, struct vault_key *out, char *err,
    size_t errlen)
{
	unsigned char *raw = NULL;
	char *text = NULL;
	size_t n = 0, len, i;
	int r;

	/* 64 hex digits and a newline at most: anything longer is refused. */
	r = tsi_file_read(path, 65, TSI_FILE_NOFOLLOW | TSI_FILE_PRIVATE, &text,
	    &n, err, errlen);
	if (r == TSI_ERR_DENIED || r == TSI_ERR_TOO_LARGE) {
		if (r == TSI_ERR_TOO_LARGE)
			snprintf(err, errlen,
			    "%s: key file must hold 32 raw "
			    "bytes or 64 hex digits",
			    path);
		return TSI_ERR_CONFIG;
	}
	if (r != TSI_OK)
		return r == TSI_ERR_ALLOC ? TSI_ERR_ALLOC : TSI_ERR_IO;
	raw = (unsigned char *)text;
	len = n;
	r = TSI_ERR_CONFIG;
	if (len == 32) {
		memcpy(out->k, raw, 32);
		r = TSI_OK;
		goto out;
	}
	if (len > 0 && raw[len - 1] == '\n')
		len--;
	if (len != 64) {
		snprintf(err, errlen,
		    "%s: key file must hold 32 raw bytes or 64 hex digits",
		    path);
		goto out;
	}
	for (i = 0; i < 32; i++) {
		int hi = OPENSSL_hexchar2int((unsigned char)raw[2 * i]);
		int lo = OPENSSL_hexchar2int((unsigned char)raw[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "%s: key file: bad hex digit",
			    path);
			OPENSSL_cleanse(out->k, sizeof(out->k));
			goto out;
		}
		out->k[i] = (unsigned char)(hi << 4 | lo);
	}
	r = TSI_OK;
out:
	tsi_freezero(text, n + 1);
	return r;
}

int
vault_key_random(struct vault_key *out)
{
	return RAND_bytes(out->k, sizeof(out->k)) == 1 ? TSI_OK
	                                               : TSI_ERR_CRYPTO;
}

void
vault_key_wipe(struct vault_key *k)
{
	OPENSSL_cleanse(k->k, sizeof(k->k));
}

static int
make_ad(const char *path, uint64_t version, unsigned char *ad, size_t cap,
    size_t *len)
{
	size_t c = sizeof(AD_CONTEXT), p = strlen(path);
	int i;

	if (p > KV_PATH_MAX || cap < c + p + 1 + 8)
		return TSI_ERR_TOO_LARGE;
	memcpy(ad, AD_CONTEXT, c); /* with its NUL */
	memcpy(ad + c, path, p);
	ad[c + p] = '\0';
	for (i = 0; i < 8; i++)
		ad[c + p + 1 + (size_t)i] =
		    (unsigned char)(version >> (56 - 8 * i));
	*len = c + p + 9;
	return TSI_OK;
}

int
vault_seal(const struct vault_key *k, const char *path, uint64_t version,
    const void *pt, size_t ptlen, uint8_t **blob, size_t *len)
{
	unsigned char ad[KV_PATH_MAX + 32];
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *b = NULL;
	size_t adlen, blen;
	int outl, r = TSI_ERR_CRYPTO;

	if (ptlen > INT32_MAX)
		return TSI_ERR_TOO_LARGE;
	if ((r = make_ad(path, version, ad, sizeof(ad), &adlen)) != TSI_OK)
		return r;
	r = TSI_ERR_CRYPTO;
	blen = 1 + NONCE_LEN + ptlen + TAG_LEN;
	if ((b = malloc(blen)) == NULL)
		return TSI_ERR_ALLOC;
	b[0] = BLOB_FORMAT;
	if (RAND_bytes(b + 1, NONCE_LEN) != 1)
		goto out;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		goto out;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->k, b + 1) !=
	        1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, ad, (int)adlen) != 1 ||
	    EVP_EncryptUpdate(ctx, b + 1 + NONCE_LEN, &outl, pt, (int)ptlen) !=
	        1 ||
	    EVP_EncryptFinal_ex(ctx, b + 1 + NONCE_LEN + outl, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
	        b + 1 + NONCE_LEN + ptlen) != 1) {
		tsi_log_openssl(TSI_LOG_ERROR, "kv.seal_failed");
		goto out;
	}
	*blob = b;
	*len = blen;
	b = NULL;
	r = TSI_OK;
out:
	EVP_CIPHER_CTX_free(ctx);
	tsi_freezero(b, blen);
	return r;
}

int
vault_unseal(const struct vault_key *k, const char *path, uint64_t version,
    const uint8_t *blob, size_t len, char **pt, size_t *ptlen)
{
	unsigned char ad[KV_PATH_MAX + 32];
	EVP_CIPHER_CTX *ctx = NULL;
	char *p = NULL;
	size_t adlen, clen = 0;
	int outl, r;

	if (len < 1 + NONCE_LEN + TAG_LEN || blob[0] != BLOB_FORMAT ||
	    len > INT32_MAX)
		return TSI_ERR_CRYPTO;
	if ((r = make_ad(path, version, ad, sizeof(ad), &adlen)) != TSI_OK)
		return r;
	r = TSI_ERR_CRYPTO;
	clen = len - 1 - NONCE_LEN - TAG_LEN;
	if ((p = malloc(clen + 1)) == NULL)
		return TSI_ERR_ALLOC;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		goto out;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->k, blob + 1) !=
	        1 ||
	    EVP_DecryptUpdate(ctx, NULL, &outl, ad, (int)adlen) != 1 ||
	    EVP_DecryptUpdate(ctx, (unsigned char *)p, &outl,
	        blob + 1 + NONCE_LEN, (int)clen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
	        (void *)(blob + len - TAG_LEN)) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)p + outl, &outl) != 1) {
		tsi_log(TSI_LOG_ERROR, "kv.unseal_failed", TSI_LS("path", path),
		    TSI_LI("version", version));
		goto out;
	}
	p[clen] = '\0';
	*pt = p;
	*ptlen = clen;
	p = NULL;
	r = TSI_OK;
out:
	EVP_CIPHER_CTX_free(ctx);
	tsi_freezero(p, clen + 1);
	return r;
}

int
vault_random_b64(size_t n, char *out, size_t outlen)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[64];
	size_t i, o = 0, bits = 0;
	unsigned acc = 0;

	if (n > sizeof(raw) || outlen < (4 * n + 2) / 3 + 1)
		return TSI_ERR_INVALID_ARG;
	if (RAND_bytes(raw, (int)n) != 1)
		return TSI_ERR_CRYPTO;
	for (i = 0; i < n; i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = alpha[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = alpha[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return TSI_OK;
}

void
vault_uuid(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	/* Request ids are public (answers, logs, audit records), so the
	 * random bytes for 16 of them are drawn at once per thread: one
	 * RAND_bytes per 16 requests instead of one each. */
	static __thread unsigned char pool[16 * 16];
	static __thread size_t left;
	unsigned char u[16];
	size_t i, o = 0;

	if (left < sizeof(u)) {
		if (RAND_bytes(pool, sizeof(pool)) == 1)
			left = sizeof(pool);
		else
			left = 0;
	}
	if (left >= sizeof(u)) {
		memcpy(u, pool + sizeof(pool) - left, sizeof(u));
		left -= sizeof(u);
	} else if (RAND_bytes(u, sizeof(u)) != 1) {
		memset(u, 0, sizeof(u));
	}
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u[i] >> 4];
		out[o++] = hex[u[i] & 15];
	}
	out[o] = '\0';
}
