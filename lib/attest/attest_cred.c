/*
 * attest_cred.c - TPM2_MakeCredential in software.
 *
 * TPM 2.0 Part 1, 24 (Credential Protection) and Annex B.10.3 (RSA secret
 * sharing), Part 3, 12.6. For an RSA EK with nameAlg H and a storage
 * symmetric AES-k in CFB mode:
 *   seed       random, |H| bytes
 *   secret     RSA-OAEP(EK, seed; H, MGF1-H, label "IDENTITY\0")
 *   symKey     KDFa(H, seed, "STORAGE", name, -, k bits)
 *   encIdentity AES-k-CFB(symKey, IV 0, TPM2B_DIGEST(credential))
 *   hmacKey    KDFa(H, seed, "INTEGRITY", -, -, |H| bits)
 *   outerHMAC  HMAC-H(hmacKey, encIdentity || name)
 *   blob       TPM2B_ID_OBJECT(TPM2B_DIGEST(outerHMAC) || encIdentity)
 * The TPM will only open it with ActivateCredential if the object named
 * `name` is loaded in the TPM that holds the EK's private key: that binds
 * the AK to the EK.
 *
 * KDFa (Part 1, 11.4.10.2) is NIST SP 800-108 in counter mode with HMAC,
 * [i]32 || label || 0x00 || context || [L]32: OpenSSL's KBKDF with a
 * separator and the length field.
 */
#include "tsi/attest.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"
#include "attest_int.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

static int
kdfa(const EVP_MD *md, const uint8_t *key, size_t key_len, const char *label,
    const uint8_t *ctx_u, size_t ctx_u_len, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[9], *p = params;
	int sep = 1, use_l = 1, r = TSI_ERR_CRYPTO;

	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE,
	    (char *)"counter", 0);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC,
	    (char *)"HMAC", 0);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *)EVP_MD_get0_name(md), 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	    (void *)key, key_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    (void *)label, strlen(label));
	if (ctx_u_len > 0)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
		    (void *)ctx_u, ctx_u_len);
	*p++ =
	    OSSL_PARAM_construct_int(OSSL_KDF_PARAM_KBKDF_USE_SEPARATOR, &sep);
	*p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_KBKDF_USE_L, &use_l);
	*p = OSSL_PARAM_construct_end();
	if ((kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL)) == NULL ||
	    (kctx = EVP_KDF_CTX_new(kdf)) == NULL ||
	    EVP_KDF_derive(kctx, out, out_len, params) != 1)
		goto out;
	r = TSI_OK;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return r;
}

static int
oaep_encrypt(EVP_PKEY *ek, const EVP_MD *md, const uint8_t *in, size_t in_len,
    uint8_t *out, size_t *out_len)
{
	static const char label[] = "IDENTITY"; /* with its NUL: 9 bytes */
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char *l = NULL;
	int r = TSI_ERR_CRYPTO;

	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL)) == NULL ||
	    EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1 ||
	    (l = OPENSSL_memdup(label, sizeof(label))) == NULL)
		goto out;
	if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, l, sizeof(label)) != 1)
		goto out;
	l = NULL; /* owned by ctx */
	if (EVP_PKEY_encrypt(ctx, out, out_len, in, in_len) != 1)
		goto out;
	r = TSI_OK;
out:
	OPENSSL_free(l);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

static void
put16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

int
tsi_attest_make_credential(const struct tsi_tpm_pub *ek,
    const uint8_t *obj_name, size_t name_len, const uint8_t *credential,
    size_t cred_len, uint8_t **blob, size_t *blob_len, uint8_t **secret,
    size_t *secret_len)
{
	const TPMT_PUBLIC *area;
	const EVP_MD *md;
	const EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *cctx = NULL;
	uint8_t seed[TSI_TPM_DIGEST_MAX], symkey[32],
	    hmackey[TSI_TPM_DIGEST_MAX];
	uint8_t plain[2 + TSI_TPM_DIGEST_MAX], iv[16] = { 0 };
	uint8_t *b = NULL, *s = NULL;
	size_t hlen, klen, blen, enc_off, slen = 0;
	unsigned int maclen = 0;
	int outl = 0, fin = 0, r = TSI_ERR_INVALID_ARG;
	char why[96];

	if (ek == NULL || obj_name == NULL || credential == NULL ||
	    blob == NULL || blob_len == NULL || secret == NULL ||
	    secret_len == NULL || name_len < 2 || name_len > TSI_TPM_NAME_MAX ||
	    cred_len == 0 || cred_len > TSI_TPM_DIGEST_MAX)
		return TSI_ERR_INVALID_ARG;
	if (tsi_attest_check_ek(ek, why, sizeof(why)) != TSI_OK)
		return TSI_ERR_INVALID_ARG;
	area = tsi_tpm_pub_area(ek);
	if ((md = tsi_attest_md(area->nameAlg)) == NULL)
		return TSI_ERR_UNSUPPORTED;
	hlen = (size_t)EVP_MD_get_size(md);
	klen = area->parameters.rsaDetail.symmetric.keyBits.aes / 8;
	cipher = klen == 16 ? EVP_aes_128_cfb128() : EVP_aes_256_cfb128();
	/* The credential is protected at most as strongly as the name's hash. */
	if (cred_len > hlen)
		return TSI_ERR_INVALID_ARG;

	r = TSI_ERR_ALLOC;
	/* blob: size, TPM2B_DIGEST(hmac), encIdentity (2 + cred_len bytes). */
	blen = 2 + 2 + hlen + 2 + cred_len;
	if ((b = malloc(blen)) == NULL ||
	    (s = malloc(2 + (size_t)EVP_PKEY_get_size(tsi_tpm_pub_pkey(ek)))) ==
	        NULL)
		goto out;

	r = TSI_ERR_CRYPTO;
	if (RAND_bytes(seed, (int)hlen) != 1)
		goto out;
	slen = (size_t)EVP_PKEY_get_size(tsi_tpm_pub_pkey(ek));
	if (oaep_encrypt(tsi_tpm_pub_pkey(ek), md, seed, hlen, s + 2, &slen) !=
	    TSI_OK)
		goto out;
	put16(s, slen);

	if (kdfa(md, seed, hlen, "STORAGE", obj_name, name_len, symkey, klen) !=
	        TSI_OK ||
	    kdfa(md, seed, hlen, "INTEGRITY", NULL, 0, hmackey, hlen) != TSI_OK)
		goto out;

	put16(plain, cred_len);
	memcpy(plain + 2, credential, cred_len);
	enc_off = 2 + 2 + hlen;
	if ((cctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(cctx, cipher, NULL, symkey, iv) != 1 ||
	    EVP_EncryptUpdate(cctx, b + enc_off, &outl, plain,
	        (int)(2 + cred_len)) != 1 ||
	    EVP_EncryptFinal_ex(cctx, b + enc_off + outl, &fin) != 1 ||
	    (size_t)(outl + fin) != 2 + cred_len)
		goto out;

	/* outerHMAC over encIdentity || name, into the TPM2B_DIGEST slot. */
	{
		EVP_MAC *mac = NULL;
		EVP_MAC_CTX *mctx = NULL;
		OSSL_PARAM mp[2];
		size_t ml = 0;
		int ok;

		mp[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
		    (char *)EVP_MD_get0_name(md), 0);
		mp[1] = OSSL_PARAM_construct_end();
		ok = (mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) != NULL &&
		    (mctx = EVP_MAC_CTX_new(mac)) != NULL &&
		    EVP_MAC_init(mctx, hmackey, hlen, mp) == 1 &&
		    EVP_MAC_update(mctx, b + enc_off, 2 + cred_len) == 1 &&
		    EVP_MAC_update(mctx, obj_name, name_len) == 1 &&
		    EVP_MAC_final(mctx, b + 4, &ml, hlen) == 1 && ml == hlen;
		EVP_MAC_CTX_free(mctx);
		EVP_MAC_free(mac);
		if (!ok)
			goto out;
		maclen = (unsigned int)ml;
	}
	put16(b, blen - 2);
	put16(b + 2, maclen);

	*blob = b;
	*blob_len = blen;
	*secret = s;
	*secret_len = 2 + slen;
	b = s = NULL;
	r = TSI_OK;
out:
	if (r == TSI_ERR_CRYPTO)
		tsi_log_openssl(TSI_LOG_ERROR, "attest.make_credential_failed");
	EVP_CIPHER_CTX_free(cctx);
	OPENSSL_cleanse(seed, sizeof(seed));
	OPENSSL_cleanse(symkey, sizeof(symkey));
	OPENSSL_cleanse(hmackey, sizeof(hmackey));
	OPENSSL_cleanse(plain, sizeof(plain));
	free(b);
	free(s);
	return r;
}
