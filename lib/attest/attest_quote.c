/*
 * attest_quote.c - signed TPM attestation structures (TPM2_Certify,
 * TPM2_Quote): wire parsing, the AK's signature, the PCR digest.
 *
 * The signature covers the TPMS_ATTEST bytes exactly as received; they are
 * parsed only after the signature verified, so a forged structure never
 * reaches the unmarshaller's output consumers.
 */
#include "tsi/attest.h"
#include "tsi/err.h"
#include "tsi/log.h"
#include "attest_int.h"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <string.h>
#include <tss2/tss2_mu.h>

/* r||s of a TPMT_SIGNATURE as a DER ECDSA-Sig-Value. *der: OPENSSL_free. */
static int
ecdsa_der(const TPMS_SIGNATURE_ECDSA *e, unsigned char **der, int *der_len)
{
	ECDSA_SIG *sig = NULL;
	BIGNUM *r = NULL, *s = NULL;
	int ret = TSI_ERR_CRYPTO;

	if ((sig = ECDSA_SIG_new()) == NULL ||
	    (r = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL)) ==
	        NULL ||
	    (s = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL)) ==
	        NULL)
		goto out;
	if (ECDSA_SIG_set0(sig, r, s) != 1)
		goto out;
	r = s = NULL;
	*der = NULL;
	if ((*der_len = i2d_ECDSA_SIG(sig, der)) <= 0)
		goto out;
	ret = TSI_OK;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return ret;
}

int
tsi_attest_verify(const uint8_t *attest, size_t attest_len, const uint8_t *sig,
    size_t sig_len, const struct tsi_tpm_pub *ak, struct tsi_attest_info *info,
    char *why, size_t whylen)
{
	TPMT_SIGNATURE ts;
	TPMS_ATTEST a;
	EVP_MD_CTX *mctx = NULL;
	unsigned char *der = NULL;
	const uint8_t *body;
	size_t off = 0, body_len, i;
	int der_len = 0, v, r = TSI_ERR_PARSE;

	if (attest == NULL || sig == NULL || ak == NULL || info == NULL)
		return TSI_ERR_INVALID_ARG;
	memset(info, 0, sizeof(*info));
	if (attest_len < 2 || attest_len > sizeof(TPM2B_ATTEST)) {
		tsi_errf(why, whylen, "attest is not a TPM2B_ATTEST");
		return TSI_ERR_PARSE;
	}
	body_len = ((size_t)attest[0] << 8) | attest[1];
	if (body_len == 0 || attest_len - 2 != body_len) {
		tsi_errf(why, whylen, "attest size does not match its length");
		return TSI_ERR_PARSE;
	}
	body = attest + 2;
	memset(&ts, 0, sizeof(ts));
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &off, &ts) !=
	        TSS2_RC_SUCCESS ||
	    off != sig_len) {
		tsi_errf(why, whylen, "signature is not a TPMT_SIGNATURE");
		return TSI_ERR_PARSE;
	}
	if (ts.sigAlg != TPM2_ALG_ECDSA ||
	    ts.signature.ecdsa.hash != TPM2_ALG_SHA256) {
		tsi_errf(why, whylen, "signature is not ECDSA with SHA-256");
		return TSI_ERR_DENIED;
	}
	r = TSI_ERR_CRYPTO;
	if (ecdsa_der(&ts.signature.ecdsa, &der, &der_len) != TSI_OK)
		goto out;
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(mctx, NULL, EVP_sha256(), NULL,
	        tsi_tpm_pub_pkey(ak)) != 1)
		goto out;
	v = EVP_DigestVerify(mctx, der, (size_t)der_len, body, body_len);
	if (v != 1) {
		ERR_clear_error();
		tsi_errf(why, whylen, "signature by the AK does not verify");
		r = TSI_ERR_DENIED;
		goto out;
	}

	r = TSI_ERR_PARSE;
	off = 0;
	memset(&a, 0, sizeof(a));
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(body, body_len, &off, &a) !=
	        TSS2_RC_SUCCESS ||
	    off != body_len) {
		tsi_errf(why, whylen, "attest is not a TPMS_ATTEST");
		goto out;
	}
	/* A restricted key signs only digests the TPM produced itself with
	 * this magic: anything else could be a chosen message. */
	if (a.magic != TPM2_GENERATED_VALUE) {
		tsi_errf(why, whylen,
		    "attest magic is not TPM_GENERATED_VALUE");
		r = TSI_ERR_DENIED;
		goto out;
	}
	info->type = a.type;
	if (a.extraData.size > sizeof(info->extra))
		goto out;
	memcpy(info->extra, a.extraData.buffer, a.extraData.size);
	info->extra_len = a.extraData.size;
	info->clock = a.clockInfo.clock;
	info->reset_count = a.clockInfo.resetCount;
	info->restart_count = a.clockInfo.restartCount;
	if (a.type == TPM2_ST_ATTEST_CERTIFY) {
		if (a.attested.certify.name.size > sizeof(info->name))
			goto out;
		memcpy(info->name, a.attested.certify.name.name,
		    a.attested.certify.name.size);
		info->name_len = a.attested.certify.name.size;
	} else if (a.type == TPM2_ST_ATTEST_QUOTE) {
		const TPML_PCR_SELECTION *sel = &a.attested.quote.pcrSelect;

		for (i = 0; i < sel->count && i < TPM2_NUM_PCR_BANKS; i++) {
			const TPMS_PCR_SELECTION *s = &sel->pcrSelections[i];
			size_t j;

			if (s->hash != TPM2_ALG_SHA256) {
				for (j = 0; j < s->sizeofSelect; j++)
					if (s->pcrSelect[j] != 0)
						info->other_banks = 1;
				continue;
			}
			for (j = 0; j < s->sizeofSelect && j < 3; j++)
				info->pcr_mask |= (uint32_t)s->pcrSelect[j]
				    << (8 * j);
			for (; j < s->sizeofSelect; j++)
				if (s->pcrSelect[j] != 0)
					info->other_banks = 1;
		}
		if (a.attested.quote.pcrDigest.size > sizeof(info->pcr_digest))
			goto out;
		memcpy(info->pcr_digest, a.attested.quote.pcrDigest.buffer,
		    a.attested.quote.pcrDigest.size);
		info->pcr_digest_len = a.attested.quote.pcrDigest.size;
	}
	r = TSI_OK;
out:
	if (r == TSI_ERR_CRYPTO)
		tsi_log_openssl(TSI_LOG_ERROR, "attest.verify_failed");
	OPENSSL_free(der);
	EVP_MD_CTX_free(mctx);
	return r;
}

int
tsi_attest_pcr_digest(const uint8_t (*values)[32], size_t count,
    uint8_t out[32])
{
	EVP_MD_CTX *ctx;
	size_t i;
	int ok;

	if ((values == NULL && count > 0) || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return TSI_ERR_ALLOC;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	for (i = 0; ok && i < count; i++)
		ok = EVP_DigestUpdate(ctx, values[i], 32) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, out, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? TSI_OK : TSI_ERR_CRYPTO;
}
