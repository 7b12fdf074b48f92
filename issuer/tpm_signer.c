/*
 * tpm_signer.c - the TPM key as a tsi_signer, so the token core and the
 * X.509 code can sign with it without knowing about the TPM.
 */
#include "issuer/tpm.h"

#include "tsi/err.h"

static int
tpm_sign_cb(void *ctx, const uint8_t digest[32], uint8_t sig[64])
{
	return tsi_tpm_sign(ctx, digest, sig);
}

int
tsi_tpm_signer(struct tsi_tpm *t, struct tsi_signer **out)
{
	if (t == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	return tsi_signer_new(tpm_sign_cb, t, tsi_tpm_pub(t), out);
}
