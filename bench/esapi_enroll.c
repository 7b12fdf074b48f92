/*
 * esapi_enroll.c - the limit for one enrollment (figure attest_enroll): the
 * TPM commands tsi-issuer sends between "enroll.start" and "enroll.done",
 * the same commands in the same order through ESAPI, with nothing else in
 * the way (no HTTP, no JSON, no certificate work).
 *
 * One round is what issuer/tpm.c does for tsi_enroll (read it beside this):
 *   EK certificate: TR_FromTPMPublic of NV 0x01c00002 (ESAPI sends
 *     NV_ReadPublic), NV_ReadPublic, NV_Read in 512-byte chunks, TR_Close;
 *   EK public: TR_FromTPMPublic of 0x81010001 (ReadPublic), ReadPublic,
 *     TR_Close (or, without a persistent EK, the RSA-2048 EK CreatePrimary
 *     and its flush, as the issuer then does);
 *   AK public: CreatePrimary of the AK (ECC P-256, endorsement), flush;
 *   the CSR's signature: Sign with the node's signing key;
 *   activation: the EK again, the AK again, StartAuthSession (policy),
 *     PolicySecret(endorsement), ActivateCredential, three flushes/closes;
 *   certify: the AK again, Certify of the signing key, flush;
 *   quote: the AK again, PCR_Read of sha256 0..7, Quote, flush.
 * The signing key is loaded once before the rounds (tsi-issuer loads it at
 * start, before enrollment), as is the credential to activate (made once
 * with TPM2_MakeCredential by the TPM itself: its cost is the server's).
 *
 *   esapi_enroll --tcti swtpm:host=127.0.0.1,port=P [--rounds N]
 *
 * Prints one JSON object: rounds, median_ms, min_ms, max_ms, the EK's
 * origin ("persistent" or "created") and the commands per round.
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

#define EK_HANDLE 0x81010001u
#define EK_CERT_NV 0x01c00002u
#define MAX_ROUNDS 1000

static unsigned commands; /* TPM commands sent in the current round */

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
fail(const char *what, TSS2_RC rc)
{
	fprintf(stderr, "esapi_enroll: %s: %s\n", what, Tss2_RC_Decode(rc));
	return 1;
}

/* The issuer's templates (issuer/tpm.c ek_template, ak_template). */
static void
ek_template(TPM2B_PUBLIC *p)
{
	static const uint8_t policy[32] = {
		0x83,
		0x71,
		0x97,
		0x67,
		0x44,
		0x84,
		0xb3,
		0xf8,
		0x1a,
		0x90,
		0xcc,
		0x8d,
		0x46,
		0xa5,
		0xd7,
		0x24,
		0xfd,
		0x52,
		0xd7,
		0x6e,
		0x06,
		0x52,
		0x0b,
		0x64,
		0xf2,
		0xa1,
		0xda,
		0x1b,
		0x33,
		0x14,
		0x69,
		0xaa,
	};

	memset(p, 0, sizeof(*p));
	p->publicArea.type = TPM2_ALG_RSA;
	p->publicArea.nameAlg = TPM2_ALG_SHA256;
	p->publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM |
	    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
	    TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED |
	    TPMA_OBJECT_DECRYPT;
	p->publicArea.authPolicy.size = 32;
	memcpy(p->publicArea.authPolicy.buffer, policy, 32);
	p->publicArea.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	p->publicArea.parameters.rsaDetail.symmetric.keyBits.aes = 128;
	p->publicArea.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	p->publicArea.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	p->publicArea.parameters.rsaDetail.keyBits = 2048;
	p->publicArea.unique.rsa.size = 256;
}

static void
ak_template(TPM2B_PUBLIC *p)
{
	memset(p, 0, sizeof(*p));
	p->publicArea.type = TPM2_ALG_ECC;
	p->publicArea.nameAlg = TPM2_ALG_SHA256;
	p->publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM |
	    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
	    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
	    TPMA_OBJECT_SIGN_ENCRYPT;
	p->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	p->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	p->publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg =
	    TPM2_ALG_SHA256;
	p->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	p->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

/* The EK as the issuer's ek_load finds it: *created when it had to be made. */
static TSS2_RC
ek_load(ESYS_CONTEXT *e, ESYS_TR *ek, int *created)
{
	TPM2B_SENSITIVE_CREATE sens = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION pcrs = { 0 };
	TPM2B_PUBLIC tmpl, *p = NULL;
	TSS2_RC rc;

	*created = 0;
	commands++;
	rc = Esys_TR_FromTPMPublic(e, EK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, ek);
	if (rc == TSS2_RC_SUCCESS) {
		commands++;
		rc = Esys_ReadPublic(e, *ek, ESYS_TR_NONE, ESYS_TR_NONE,
		    ESYS_TR_NONE, &p, NULL, NULL);
		Esys_Free(p);
		return rc;
	}
	ek_template(&tmpl);
	commands++;
	rc = Esys_CreatePrimary(e, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, ek, NULL,
	    NULL, NULL, NULL);
	*created = 1;
	return rc;
}

static void
ek_release(ESYS_CONTEXT *e, ESYS_TR *ek, int created)
{
	if (*ek == ESYS_TR_NONE)
		return;
	if (created) {
		commands++;
		(void)Esys_FlushContext(e, *ek);
	} else {
		(void)Esys_TR_Close(e, ek);
	}
	*ek = ESYS_TR_NONE;
}

static TSS2_RC
ak_load(ESYS_CONTEXT *e, ESYS_TR *ak, TPM2B_PUBLIC **pub)
{
	TPM2B_SENSITIVE_CREATE sens = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION pcrs = { 0 };
	TPM2B_PUBLIC tmpl;

	ak_template(&tmpl);
	commands++;
	return Esys_CreatePrimary(e, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, ak, pub,
	    NULL, NULL, NULL);
}

static void
flush(ESYS_CONTEXT *e, ESYS_TR *h)
{
	if (*h != ESYS_TR_NONE) {
		commands++;
		(void)Esys_FlushContext(e, *h);
	}
	*h = ESYS_TR_NONE;
}

/* The issuer's key: an ECC P-256 signing key under an owner primary, as
 * esapi_sign.c makes it (fixedTPM|fixedParent|sign, NODA). */
static TSS2_RC
key_load(ESYS_CONTEXT *e, ESYS_TR *key)
{
	TPM2B_SENSITIVE_CREATE sens = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION pcrs = { 0 };
	TPM2B_PUBLIC srk = { 0 }, in = { 0 }, *out_pub = NULL;
	TPM2B_PRIVATE *out_priv = NULL;
	ESYS_TR parent = ESYS_TR_NONE;
	TSS2_RC rc;

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
	in.publicArea.type = TPM2_ALG_ECC;
	in.publicArea.nameAlg = TPM2_ALG_SHA256;
	in.publicArea.objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT |
	    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
	    TPMA_OBJECT_NODA;
	in.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	in.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	in.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg =
	    TPM2_ALG_SHA256;
	in.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	in.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	rc = Esys_CreatePrimary(e, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, &sens, &srk, &outside, &pcrs, &parent,
	    NULL, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return rc;
	rc = Esys_Create(e, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, &sens, &in, &outside, &pcrs, &out_priv, &out_pub,
	    NULL, NULL, NULL);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_Load(e, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		    ESYS_TR_NONE, out_priv, out_pub, key);
	Esys_Free(out_pub);
	Esys_Free(out_priv);
	(void)Esys_FlushContext(e, parent);
	return rc;
}

static void
pcr_sel(TPML_PCR_SELECTION *sel)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = 3;
	sel->pcrSelections[0].pcrSelect[0] = 0xff;
}

struct cred {
	TPM2B_ID_OBJECT *blob;
	TPM2B_ENCRYPTED_SECRET *secret;
};

/* One enrollment's TPM commands. */
static int
round_once(ESYS_CONTEXT *e, ESYS_TR key, const struct cred *c, int *ek_made)
{
	TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
	TPMT_SIG_SCHEME null_scheme = { .scheme = TPM2_ALG_NULL };
	TPMT_SIG_SCHEME ecdsa = { .scheme = TPM2_ALG_ECDSA };
	TPMT_TK_HASHCHECK ticket = { .tag = TPM2_ST_HASHCHECK,
		.hierarchy = TPM2_RH_NULL };
	TPM2B_DIGEST digest = { .size = 32 };
	TPM2B_DATA q = { .size = 32 };
	TPML_PCR_SELECTION sel, *osel = NULL;
	TPML_DIGEST *vals = NULL;
	TPM2B_NV_PUBLIC *nvpub = NULL;
	TPM2B_MAX_NV_BUFFER *data = NULL;
	TPM2B_PUBLIC *pub = NULL;
	TPM2B_DIGEST *info = NULL;
	TPM2B_ATTEST *att = NULL;
	TPMT_SIGNATURE *sig = NULL;
	ESYS_TR nv = ESYS_TR_NONE, ek = ESYS_TR_NONE, ak = ESYS_TR_NONE;
	ESYS_TR sess = ESYS_TR_NONE;
	UINT32 counter;
	TSS2_RC rc;
	uint16_t size, off, n;
	int ret = 1;

	ecdsa.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	memset(digest.buffer, 0x5a, 32);
	memset(q.buffer, 0xa5, 32);

	/* start: the EK certificate, the EK, the AK's public area, the CSR */
	commands++;
	if ((rc = Esys_TR_FromTPMPublic(e, EK_CERT_NV, ESYS_TR_NONE,
	         ESYS_TR_NONE, ESYS_TR_NONE, &nv)) != TSS2_RC_SUCCESS) {
		nv = ESYS_TR_NONE;
		ret = fail("EK certificate index", rc);
		goto out;
	}
	commands++;
	if ((rc = Esys_NV_ReadPublic(e, nv, ESYS_TR_NONE, ESYS_TR_NONE,
	         ESYS_TR_NONE, &nvpub, NULL)) != TSS2_RC_SUCCESS) {
		ret = fail("NV_ReadPublic", rc);
		goto out;
	}
	size = nvpub->nvPublic.dataSize;
	for (off = 0; off < size; off = (uint16_t)(off + n)) {
		n = (uint16_t)(size - off < 512 ? size - off : 512);
		commands++;
		rc = Esys_NV_Read(e,
		    (nvpub->nvPublic.attributes & TPMA_NV_AUTHREAD)
		        ? nv
		        : ESYS_TR_RH_OWNER,
		    nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n, off,
		    &data);
		if (rc != TSS2_RC_SUCCESS) {
			ret = fail("NV_Read", rc);
			goto out;
		}
		Esys_Free(data);
		data = NULL;
	}
	(void)Esys_TR_Close(e, &nv);
	nv = ESYS_TR_NONE;
	if ((rc = ek_load(e, &ek, ek_made)) != TSS2_RC_SUCCESS) {
		ret = fail("EK", rc);
		goto out;
	}
	ek_release(e, &ek, *ek_made);
	if ((rc = ak_load(e, &ak, &pub)) != TSS2_RC_SUCCESS) {
		ret = fail("AK CreatePrimary", rc);
		goto out;
	}
	flush(e, &ak);
	commands++;
	if ((rc = Esys_Sign(e, key, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	         ESYS_TR_NONE, &digest, &ecdsa, &ticket, &sig)) !=
	    TSS2_RC_SUCCESS) {
		ret = fail("Sign", rc);
		goto out;
	}
	Esys_Free(sig);
	sig = NULL;

	/* finish: activation under the EK policy session */
	if ((rc = ek_load(e, &ek, ek_made)) != TSS2_RC_SUCCESS ||
	    (rc = ak_load(e, &ak, NULL)) != TSS2_RC_SUCCESS) {
		ret = fail("EK/AK for activation", rc);
		goto out;
	}
	commands++;
	if ((rc = Esys_StartAuthSession(e, ESYS_TR_NONE, ESYS_TR_NONE,
	         ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY,
	         &sym, TPM2_ALG_SHA256, &sess)) != TSS2_RC_SUCCESS) {
		sess = ESYS_TR_NONE;
		ret = fail("StartAuthSession", rc);
		goto out;
	}
	(void)Esys_TRSess_SetAttributes(e, sess, TPMA_SESSION_CONTINUESESSION,
	    0xff);
	commands++;
	if ((rc = Esys_PolicySecret(e, ESYS_TR_RH_ENDORSEMENT, sess,
	         ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL,
	         0, NULL, NULL)) != TSS2_RC_SUCCESS) {
		ret = fail("PolicySecret", rc);
		goto out;
	}
	commands++;
	if ((rc = Esys_ActivateCredential(e, ak, ek, ESYS_TR_PASSWORD, sess,
	         ESYS_TR_NONE, c->blob, c->secret, &info)) != TSS2_RC_SUCCESS) {
		ret = fail("ActivateCredential", rc);
		goto out;
	}
	if (info->size != 32 || info->buffer[0] != 0x42) {
		fprintf(stderr, "esapi_enroll: wrong credential back\n");
		goto out;
	}
	flush(e, &sess);
	flush(e, &ak);
	ek_release(e, &ek, *ek_made);

	/* certify the signing key by the AK */
	if ((rc = ak_load(e, &ak, NULL)) != TSS2_RC_SUCCESS) {
		ret = fail("AK CreatePrimary", rc);
		goto out;
	}
	commands++;
	if ((rc = Esys_Certify(e, key, ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
	         ESYS_TR_NONE, &q, &null_scheme, &att, &sig)) !=
	    TSS2_RC_SUCCESS) {
		ret = fail("Certify", rc);
		goto out;
	}
	Esys_Free(att);
	Esys_Free(sig);
	att = NULL;
	sig = NULL;
	flush(e, &ak);

	/* quote sha256 PCRs 0..7, read first */
	if ((rc = ak_load(e, &ak, NULL)) != TSS2_RC_SUCCESS) {
		ret = fail("AK CreatePrimary", rc);
		goto out;
	}
	pcr_sel(&sel);
	commands++;
	if ((rc = Esys_PCR_Read(e, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	         &sel, &counter, &osel, &vals)) != TSS2_RC_SUCCESS) {
		ret = fail("PCR_Read", rc);
		goto out;
	}
	commands++;
	if ((rc = Esys_Quote(e, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	         ESYS_TR_NONE, &q, &null_scheme, &sel, &att, &sig)) !=
	    TSS2_RC_SUCCESS) {
		ret = fail("Quote", rc);
		goto out;
	}
	flush(e, &ak);
	ret = 0;
out:
	if (info != NULL) {
		memset(info, 0, sizeof(*info));
		Esys_Free(info);
	}
	Esys_Free(att);
	Esys_Free(sig);
	Esys_Free(osel);
	Esys_Free(vals);
	Esys_Free(pub);
	Esys_Free(nvpub);
	Esys_Free(data);
	flush(e, &sess);
	flush(e, &ak);
	ek_release(e, &ek, *ek_made);
	if (nv != ESYS_TR_NONE)
		(void)Esys_TR_Close(e, &nv);
	return ret;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int
usage(void)
{
	fprintf(stderr, "usage: esapi_enroll --tcti CONF [--rounds N]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *tcti_conf = NULL;
	int rounds = 10, i, ek_made = 0, ret = 1;
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	ESYS_TR key = ESYS_TR_NONE, ek = ESYS_TR_NONE, ak = ESYS_TR_NONE;
	TPM2B_PUBLIC *ak_pub = NULL;
	TPM2B_NAME *ak_name = NULL;
	TPM2B_DIGEST credential = { .size = 32 };
	struct cred c = { NULL, NULL };
	double *ms = NULL, t0;
	unsigned per_round = 0;
	TSS2_RC rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--tcti") == 0 && i + 1 < argc)
			tcti_conf = argv[++i];
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else
			return usage();
	}
	if (tcti_conf == NULL || rounds < 1 || rounds > MAX_ROUNDS)
		return usage();
	if ((ms = calloc((size_t)rounds, sizeof(*ms))) == NULL)
		return 1;
	memset(credential.buffer, 0x42, 32);

	if ((rc = Tss2_TctiLdr_Initialize(tcti_conf, &tcti)) !=
	    TSS2_RC_SUCCESS) {
		ret = fail("tcti", rc);
		goto out;
	}
	if ((rc = Esys_Initialize(&esys, tcti, NULL)) != TSS2_RC_SUCCESS) {
		ret = fail("Esys_Initialize", rc);
		goto out;
	}
	if ((rc = key_load(esys, &key)) != TSS2_RC_SUCCESS) {
		ret = fail("signing key", rc);
		goto out;
	}
	/* The credential, made once by the TPM for its own EK and the AK
	 * (the AK is a primary: the same key, so the same name, every time). */
	if ((rc = ek_load(esys, &ek, &ek_made)) != TSS2_RC_SUCCESS ||
	    (rc = ak_load(esys, &ak, &ak_pub)) != TSS2_RC_SUCCESS ||
	    (rc = Esys_TR_GetName(esys, ak, &ak_name)) != TSS2_RC_SUCCESS ||
	    (rc = Esys_MakeCredential(esys, ek, ESYS_TR_NONE, ESYS_TR_NONE,
	         ESYS_TR_NONE, &credential, ak_name, &c.blob, &c.secret)) !=
	        TSS2_RC_SUCCESS) {
		ret = fail("MakeCredential", rc);
		goto out;
	}
	flush(esys, &ak);
	ek_release(esys, &ek, ek_made);

	for (i = 0; i < rounds; i++) {
		commands = 0;
		t0 = now_ms();
		if (round_once(esys, key, &c, &ek_made) != 0)
			goto out;
		ms[i] = now_ms() - t0;
		per_round = commands;
	}
	qsort(ms, (size_t)rounds, sizeof(*ms), cmp_double);
	printf("{\"rounds\": %d, \"median_ms\": %.3f, \"min_ms\": %.3f, "
	       "\"max_ms\": %.3f, \"ek\": \"%s\", \"commands\": %u}\n",
	    rounds,
	    rounds % 2 ? ms[rounds / 2]
	               : (ms[rounds / 2 - 1] + ms[rounds / 2]) / 2,
	    ms[0], ms[rounds - 1], ek_made ? "created" : "persistent",
	    per_round);
	ret = 0;
out:
	free(ms);
	Esys_Free(ak_pub);
	Esys_Free(ak_name);
	Esys_Free(c.blob);
	Esys_Free(c.secret);
	if (esys != NULL) {
		flush(esys, &ak);
		ek_release(esys, &ek, ek_made);
		flush(esys, &key);
		Esys_Finalize(&esys);
	}
	Tss2_TctiLdr_Finalize(&tcti);
	return ret;
}
