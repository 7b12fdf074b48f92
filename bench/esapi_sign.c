/*
 * esapi_sign.c - the limit for the issuer's tpm signing mode: how many
 * Esys_Sign calls per second the TPM (swtpm here) answers through ESAPI,
 * with nothing else in the way.
 *
 * Makes the key as tsi-issuer does: an ECC P-256 storage primary in the owner
 * hierarchy, a child ECC P-256 signing key (ECDSA/SHA-256, NODA) created and
 * loaded under it, the primary flushed. Then calls Esys_Sign on a fixed
 * digest in a loop for the given number of seconds, from one ESYS context
 * (swtpm serves one client at a time, like the issuer's single context).
 *
 *   esapi_sign --tcti swtpm:host=127.0.0.1,port=P [--seconds N]
 *
 * Prints one JSON object: {"signs": n, "seconds": s, "signs_per_sec": r}.
 * Exit 0 on success, 1 when the TPM fails, 2 on bad usage.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
usage(void)
{
	fprintf(stderr, "usage: esapi_sign --tcti CONF [--seconds N]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *tcti_conf = NULL;
	double seconds = 5;
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	ESYS_TR key = ESYS_TR_NONE, parent = ESYS_TR_NONE;
	TPM2B_PUBLIC *out_pub = NULL;
	TPM2B_PRIVATE *out_priv = NULL;
	TPM2B_PUBLIC srk = { 0 };
	TPM2B_SENSITIVE_CREATE in_sens = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION pcrs = { 0 };
	TPM2B_PUBLIC in_pub = { 0 };
	TPM2B_DIGEST digest = { .size = 32 };
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_ECDSA };
	TPMT_TK_HASHCHECK ticket = { .tag = TPM2_ST_HASHCHECK,
		.hierarchy = TPM2_RH_NULL };
	TSS2_RC rc;
	unsigned long long n = 0;
	double t0, t1;
	int i, ret = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--tcti") == 0 && i + 1 < argc)
			tcti_conf = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else
			return usage();
	}
	if (tcti_conf == NULL || seconds <= 0)
		return usage();

	in_pub.publicArea.type = TPM2_ALG_ECC;
	in_pub.publicArea.nameAlg = TPM2_ALG_SHA256;
	/* The issuer's key attributes. NODA matters: without it every
	 * authorisation of the key may make swtpm write its NV state (a file
	 * write), which made this loop ~3x slower than the issuer's signing. */
	in_pub.publicArea.objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT |
	    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
	    TPMA_OBJECT_NODA;
	in_pub.publicArea.parameters.eccDetail.symmetric.algorithm =
	    TPM2_ALG_NULL;
	in_pub.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	in_pub.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg =
	    TPM2_ALG_SHA256;
	in_pub.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	in_pub.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	srk.publicArea.type = TPM2_ALG_ECC;
	srk.publicArea.nameAlg = TPM2_ALG_SHA256;
	srk.publicArea.objectAttributes = TPMA_OBJECT_USERWITHAUTH |
	    TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
	    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_NODA;
	srk.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	srk.publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
	srk.publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	srk.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	srk.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	srk.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	memset(digest.buffer, 0x5a, sizeof(digest.buffer));

	if ((rc = Tss2_TctiLdr_Initialize(tcti_conf, &tcti)) !=
	    TSS2_RC_SUCCESS) {
		fprintf(stderr, "esapi_sign: tcti %s: %s\n", tcti_conf,
		    Tss2_RC_Decode(rc));
		goto out;
	}
	if ((rc = Esys_Initialize(&esys, tcti, NULL)) != TSS2_RC_SUCCESS) {
		fprintf(stderr, "esapi_sign: Esys_Initialize: %s\n",
		    Tss2_RC_Decode(rc));
		goto out;
	}
	rc = Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, &in_sens, &srk, &outside, &pcrs,
	    &parent, NULL, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		fprintf(stderr, "esapi_sign: Esys_CreatePrimary: %s\n",
		    Tss2_RC_Decode(rc));
		goto out;
	}
	rc = Esys_Create(esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, &in_sens, &in_pub, &outside, &pcrs, &out_priv,
	    &out_pub, NULL, NULL, NULL);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_Load(esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		    ESYS_TR_NONE, out_priv, out_pub, &key);
	if (rc != TSS2_RC_SUCCESS) {
		fprintf(stderr, "esapi_sign: Esys_Create/Load: %s\n",
		    Tss2_RC_Decode(rc));
		goto out;
	}
	Esys_FlushContext(esys, parent); /* as the issuer: only the key stays */
	parent = ESYS_TR_NONE;

	t0 = now_s();
	t1 = t0;
	while (t1 - t0 < seconds) {
		TPMT_SIGNATURE *sig = NULL;

		digest.buffer[0] =
		    (uint8_t)n; /* a different digest each time */
		rc = Esys_Sign(esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		    ESYS_TR_NONE, &digest, &scheme, &ticket, &sig);
		if (rc != TSS2_RC_SUCCESS) {
			fprintf(stderr, "esapi_sign: Esys_Sign: %s\n",
			    Tss2_RC_Decode(rc));
			goto out;
		}
		if (sig->signature.ecdsa.signatureR.size == 0) {
			fprintf(stderr, "esapi_sign: empty signature\n");
			Esys_Free(sig);
			goto out;
		}
		Esys_Free(sig);
		n++;
		t1 = now_s();
	}
	printf("{\"signs\": %llu, \"seconds\": %.3f, \"signs_per_sec\": "
	       "%.1f}\n",
	    n, t1 - t0, (double)n / (t1 - t0));
	ret = 0;
out:
	Esys_Free(out_pub);
	Esys_Free(out_priv);
	if (esys != NULL) {
		if (key != ESYS_TR_NONE)
			Esys_FlushContext(esys, key);
		if (parent != ESYS_TR_NONE)
			Esys_FlushContext(esys, parent);
		Esys_Finalize(&esys);
	}
	Tss2_TctiLdr_Finalize(&tcti);
	return ret;
}
