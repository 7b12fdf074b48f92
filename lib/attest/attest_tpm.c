/*
 * attest_tpm.c - TPM public areas from the wire: parsing, names, attribute
 * checks, and their keys as OpenSSL keys.
 *
 * The name is computed over the TPMT_PUBLIC bytes exactly as received (the
 * TPM hashes its own marshalling, which is canonical; tpm2-tss unmarshals
 * into fixed-size unions, so re-marshalling would only risk a difference).
 */
#include "tsi/attest.h"
#include "tsi/err.h"
#include "tsi/hex.h"
#include "tsi/log.h"
#include "attest_int.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>

struct tsi_tpm_pub {
	TPMT_PUBLIC pub;
	uint8_t name[TSI_TPM_NAME_MAX];
	size_t name_len;
	EVP_PKEY *pkey;
};

const EVP_MD *
tsi_attest_md(uint16_t alg)
{
	switch (alg) {
	case TPM2_ALG_SHA256: return EVP_sha256();
	case TPM2_ALG_SHA384: return EVP_sha384();
	case TPM2_ALG_SHA512: return EVP_sha512();
	default: return NULL;
	}
}

static int
rsa_pkey(const TPMT_PUBLIC *p, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	uint32_t exp = p->parameters.rsaDetail.exponent;
	int r = TSI_ERR_CRYPTO;

	if (p->unique.rsa.size == 0 ||
	    p->unique.rsa.size * 8u != p->parameters.rsaDetail.keyBits)
		return TSI_ERR_PARSE;
	if (exp == 0)
		exp = 65537; /* Part 2, 12.2.3.5: zero means the default */
	if ((n = BN_bin2bn(p->unique.rsa.buffer, p->unique.rsa.size, NULL)) ==
	        NULL ||
	    (e = BN_new()) == NULL || BN_set_word(e, exp) != 1 ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	r = TSI_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return r;
}

static int
ecc_pkey(const TPMT_PUBLIC *p, EVP_PKEY **out)
{
	const char *group;
	size_t clen;
	uint8_t point[1 + 2 * 66];
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	int r = TSI_ERR_CRYPTO;

	switch (p->parameters.eccDetail.curveID) {
	case TPM2_ECC_NIST_P256:
		group = "P-256";
		clen = 32;
		break;
	case TPM2_ECC_NIST_P384:
		group = "P-384";
		clen = 48;
		break;
	default: return TSI_ERR_UNSUPPORTED;
	}
	if (p->unique.ecc.x.size != clen || p->unique.ecc.y.size != clen)
		return TSI_ERR_PARSE;
	point[0] = 0x04;
	memcpy(point + 1, p->unique.ecc.x.buffer, clen);
	memcpy(point + 1 + clen, p->unique.ecc.y.buffer, clen);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	    (char *)group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	    point, 1 + 2 * clen);
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	/* The point must be on the curve and not at infinity (OpenSSL 3.0's
	 * fromdata refuses an off-curve point already; this states it rather
	 * than rely on it). The quick check leaves out the order check,
	 * n * Q = O, a full scalar multiplication that proves nothing more on
	 * P-256 and P-384: their cofactor is 1, so every point on the curve
	 * but infinity has order n. The full check cost more than the two
	 * ECDSA verifications of an enrollment (bench/run --only attest). */
	EVP_PKEY_CTX_free(ctx);
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL)) == NULL)
		goto out;
	if (EVP_PKEY_public_check_quick(ctx) != 1) {
		EVP_PKEY_free(*out);
		*out = NULL;
		r = TSI_ERR_PARSE;
		goto out;
	}
	r = TSI_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}

int
tsi_tpm_pub_parse(const uint8_t *buf, size_t len, struct tsi_tpm_pub **out)
{
	struct tsi_tpm_pub *p = NULL;
	const EVP_MD *md;
	size_t off = 0, inner;
	unsigned int dlen = 0;
	int r = TSI_ERR_PARSE;

	if (buf == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if (len < 2 || len > sizeof(TPM2B_PUBLIC))
		return TSI_ERR_PARSE;
	inner = ((size_t)buf[0] << 8) | buf[1];
	if (inner == 0 || len - 2 != inner)
		return TSI_ERR_PARSE;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return TSI_ERR_ALLOC;
	/* The inner TPMT_PUBLIC must fill the size exactly. */
	if (Tss2_MU_TPMT_PUBLIC_Unmarshal(buf + 2, inner, &off, &p->pub) !=
	        TSS2_RC_SUCCESS ||
	    off != inner)
		goto out;
	if ((md = tsi_attest_md(p->pub.nameAlg)) == NULL) {
		r = TSI_ERR_UNSUPPORTED;
		goto out;
	}
	p->name[0] = (uint8_t)(p->pub.nameAlg >> 8);
	p->name[1] = (uint8_t)p->pub.nameAlg;
	if (EVP_Digest(buf + 2, inner, p->name + 2, &dlen, md, NULL) != 1) {
		r = TSI_ERR_CRYPTO;
		goto out;
	}
	p->name_len = 2 + dlen;
	if (p->pub.type == TPM2_ALG_RSA)
		r = rsa_pkey(&p->pub, &p->pkey);
	else if (p->pub.type == TPM2_ALG_ECC)
		r = ecc_pkey(&p->pub, &p->pkey);
	else
		r = TSI_ERR_UNSUPPORTED;
	if (r != TSI_OK)
		goto out;
	*out = p;
	p = NULL;
	r = TSI_OK;
out:
	if (r == TSI_ERR_CRYPTO)
		tsi_log_openssl(TSI_LOG_ERROR, "attest.tpm_pub_failed");
	ERR_clear_error();
	tsi_tpm_pub_free(p);
	return r;
}

void
tsi_tpm_pub_free(struct tsi_tpm_pub *p)
{
	if (p == NULL)
		return;
	EVP_PKEY_free(p->pkey);
	free(p);
}

const uint8_t *
tsi_tpm_pub_name(const struct tsi_tpm_pub *p, size_t *len)
{
	*len = p->name_len;
	return p->name;
}

uint32_t
tsi_tpm_pub_attrs(const struct tsi_tpm_pub *p)
{
	return p->pub.objectAttributes;
}

EVP_PKEY *
tsi_tpm_pub_pkey(const struct tsi_tpm_pub *p)
{
	return p->pkey;
}

const TPMT_PUBLIC *
tsi_tpm_pub_area(const struct tsi_tpm_pub *p)
{
	return &p->pub;
}

/* Names the first attribute of `want` missing from attrs, or of `never`
 * present; 0 when both hold. */
static int
attrs_fail(uint32_t attrs, uint32_t want, uint32_t never, char *why,
    size_t whylen, const char *what)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{ TSI_TPMA_FIXED_TPM, "fixedTPM" },
		{ TSI_TPMA_FIXED_PARENT, "fixedParent" },
		{ TSI_TPMA_SENSITIVE_ORIGIN, "sensitiveDataOrigin" },
		{ TSI_TPMA_USER_WITH_AUTH, "userWithAuth" },
		{ TSI_TPMA_RESTRICTED, "restricted" },
		{ TSI_TPMA_DECRYPT, "decrypt" },
		{ TSI_TPMA_SIGN, "sign" },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((want & names[i].bit) && !(attrs & names[i].bit)) {
			tsi_errf(why, whylen, "%s lacks %s", what,
			    names[i].name);
			return 1;
		}
		if ((never & names[i].bit) && (attrs & names[i].bit)) {
			tsi_errf(why, whylen, "%s must not have %s", what,
			    names[i].name);
			return 1;
		}
	}
	return 0;
}

int
tsi_attest_check_ak(const struct tsi_tpm_pub *ak, char *why, size_t whylen)
{
	const TPMT_PUBLIC *p;

	if (ak == NULL)
		return TSI_ERR_INVALID_ARG;
	p = &ak->pub;
	if (p->type != TPM2_ALG_ECC ||
	    p->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256) {
		tsi_errf(why, whylen, "AK is not an ECC P-256 key");
		return TSI_ERR_DENIED;
	}
	if (p->nameAlg != TPM2_ALG_SHA256) {
		tsi_errf(why, whylen, "AK nameAlg is not SHA-256");
		return TSI_ERR_DENIED;
	}
	if (p->parameters.eccDetail.scheme.scheme != TPM2_ALG_ECDSA ||
	    p->parameters.eccDetail.scheme.details.ecdsa.hashAlg !=
	        TPM2_ALG_SHA256) {
		tsi_errf(why, whylen, "AK scheme is not ECDSA with SHA-256");
		return TSI_ERR_DENIED;
	}
	if (attrs_fail(p->objectAttributes,
	        TSI_TPMA_FIXED_TPM | TSI_TPMA_FIXED_PARENT |
	            TSI_TPMA_SENSITIVE_ORIGIN | TSI_TPMA_RESTRICTED |
	            TSI_TPMA_SIGN,
	        TSI_TPMA_DECRYPT, why, whylen, "AK"))
		return TSI_ERR_DENIED;
	return TSI_OK;
}

int
tsi_attest_check_signing_key(const struct tsi_tpm_pub *key, char *why,
    size_t whylen)
{
	const TPMT_PUBLIC *p;

	if (key == NULL)
		return TSI_ERR_INVALID_ARG;
	p = &key->pub;
	if (p->type != TPM2_ALG_ECC ||
	    p->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256) {
		tsi_errf(why, whylen, "signing key is not an ECC P-256 key");
		return TSI_ERR_DENIED;
	}
	if (attrs_fail(p->objectAttributes,
	        TSI_TPMA_FIXED_TPM | TSI_TPMA_FIXED_PARENT | TSI_TPMA_SIGN,
	        TSI_TPMA_DECRYPT, why, whylen, "signing key"))
		return TSI_ERR_DENIED;
	return TSI_OK;
}

int
tsi_attest_check_ek(const struct tsi_tpm_pub *ek, char *why, size_t whylen)
{
	const TPMT_PUBLIC *p;
	const TPMT_SYM_DEF_OBJECT *sym;

	if (ek == NULL)
		return TSI_ERR_INVALID_ARG;
	p = &ek->pub;
	if (p->type != TPM2_ALG_RSA ||
	    p->parameters.rsaDetail.keyBits != 2048) {
		tsi_errf(why, whylen, "EK is not an RSA-2048 key");
		return TSI_ERR_DENIED;
	}
	sym = &p->parameters.rsaDetail.symmetric;
	if (sym->algorithm != TPM2_ALG_AES || sym->mode.aes != TPM2_ALG_CFB ||
	    (sym->keyBits.aes != 128 && sym->keyBits.aes != 256)) {
		tsi_errf(why, whylen, "EK symmetric is not AES-128/256 CFB");
		return TSI_ERR_DENIED;
	}
	if (attrs_fail(p->objectAttributes,
	        TSI_TPMA_FIXED_TPM | TSI_TPMA_FIXED_PARENT |
	            TSI_TPMA_RESTRICTED | TSI_TPMA_DECRYPT,
	        TSI_TPMA_SIGN, why, whylen, "EK"))
		return TSI_ERR_DENIED;
	return TSI_OK;
}

int
tsi_attest_key_sha256(EVP_PKEY *pub, char hex[65])
{
	unsigned char *der = NULL, md[32];
	unsigned int mdlen = 0;
	int n, r = TSI_ERR_CRYPTO;

	if (pub == NULL || hex == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((n = i2d_PUBKEY(pub, &der)) <= 0)
		goto out;
	if (EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		goto out;
	tsi_hex_encode(md, 32, hex);
	r = TSI_OK;
out:
	OPENSSL_free(der);
	ERR_clear_error();
	return r;
}
