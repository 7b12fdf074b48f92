/*
 * test_tpm_enroll.c - the TPM side of attested enrollment against a real
 * swtpm manufactured with an EK certificate: the EK certificate read back,
 * a credential made by tpm2-tools (software, as the server does) activated,
 * the quote checked by tpm2_checkquote, the certify naming the signing key,
 * and no transient object or session left behind after many rounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "issuer/tpm.h"
#include "swtpm_ek.h"
#include "tsi/err.h"
#include "tsi/log.h"

struct fx {
	struct test_swtpm_ek ek;
	char state[300];
	struct tsi_tpm *t;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL || test_swtpm_ek_start(&f->ek) != 0)
		return -1;
	snprintf(f->state, sizeof(f->state), "%s/issuer", f->ek.dir);
	if (tsi_tpm_open(f->ek.tpm.tcti, f->state, &f->t) != TSI_OK)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	tsi_tpm_free(f->t);
	test_swtpm_ek_cleanup(&f->ek);
	free(f);
	return 0;
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static void
tpm_name(const uint8_t *pub2b, size_t len, uint8_t name[34])
{
	assert_int_equal(test_tpm_name(pub2b, len, name), 0);
}

static TPMS_ATTEST
attest_body(const uint8_t *attest, size_t len)
{
	TPM2B_ATTEST a;
	TPMS_ATTEST b;
	size_t off = 0;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(Tss2_MU_TPM2B_ATTEST_Unmarshal(attest, len, &off, &a),
	    TSS2_RC_SUCCESS);
	assert_int_equal(off, len);
	off = 0;
	assert_int_equal(Tss2_MU_TPMS_ATTEST_Unmarshal(a.attestationData,
	                     a.size, &off, &b),
	    TSS2_RC_SUCCESS);
	assert_int_equal(off, a.size);
	assert_int_equal(b.magic, TPM2_GENERATED_VALUE);
	return b;
}

static EVP_PKEY *
ak_evp(const uint8_t *pub2b, size_t len)
{
	EVP_PKEY *pk = test_tpm_ecc_key(pub2b, len);

	assert_non_null(pk);
	return pk;
}

static int
sig_ok(EVP_PKEY *pk, const uint8_t *attest, size_t alen, const uint8_t *sig,
    size_t slen)
{
	return test_attest_sig_ok(pk, attest, alen, sig, slen);
}

static void
test_ek_cert_is_swtpm_setups(void **state)
{
	struct fx *f = *state;
	uint8_t *cert = NULL, *pub = NULL, *file;
	size_t cert_len = 0, pub_len = 0, file_len = 0, off = 0;
	const unsigned char *p;
	TPM2B_PUBLIC ek;
	X509 *x;
	BIGNUM *n = NULL;
	uint8_t mod[256];

	assert_int_equal(tsi_tpm_ek(f->t, &cert, &cert_len, &pub, &pub_len),
	    TSI_OK);
	assert_non_null(file = test_read_file(f->ek.ek_cert, 16384, &file_len));
	assert_int_equal(cert_len, file_len);
	assert_memory_equal(cert, file, file_len);
	/* The EK public key is the certificate's key. */
	memset(&ek, 0, sizeof(ek));
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(pub, pub_len, &off,
	                     &ek),
	    TSS2_RC_SUCCESS);
	assert_int_equal(off, pub_len);
	assert_int_equal(ek.publicArea.type, TPM2_ALG_RSA);
	assert_int_equal(ek.publicArea.unique.rsa.size, 256);
	p = cert;
	assert_non_null(x = d2i_X509(NULL, &p, (long)cert_len));
	assert_int_equal(EVP_PKEY_get_bn_param(X509_get0_pubkey(x),
	                     OSSL_PKEY_PARAM_RSA_N, &n),
	    1);
	assert_int_equal(BN_bn2binpad(n, mod, sizeof(mod)), 256);
	assert_memory_equal(mod, ek.publicArea.unique.rsa.buffer, 256);
	BN_free(n);
	X509_free(x);
	free(file);
	free(cert);
	free(pub);
}

/* The credential made in software from the EK public and the AK name, as
 * tsi-attest makes it. */
static void
make_credential(struct fx *f, const uint8_t *ek_pub, size_t ek_len,
    const uint8_t name[34], const uint8_t *secret, size_t slen, uint8_t **blob,
    size_t *blob_len, uint8_t **enc, size_t *enc_len)
{
	assert_int_equal(test_make_credential(f->ek.dir, ek_pub, ek_len, name,
	                     secret, slen, blob, blob_len, enc, enc_len),
	    0);
}

static void
test_activate_credential(void **state)
{
	struct fx *f = *state;
	uint8_t *cert = NULL, *ek = NULL, *ak = NULL, *blob = NULL, *enc = NULL;
	size_t cert_len, ek_len, ak_len, blob_len, enc_len, got_len = 0;
	uint8_t name[34], secret[32], got[64];

	assert_int_equal(tsi_tpm_ek(f->t, &cert, &cert_len, &ek, &ek_len),
	    TSI_OK);
	assert_int_equal(tsi_tpm_ak_pub(f->t, &ak, &ak_len), TSI_OK);
	tpm_name(ak, ak_len, name);
	assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
	make_credential(f, ek, ek_len, name, secret, sizeof(secret), &blob,
	    &blob_len, &enc, &enc_len);
	assert_int_equal(tsi_tpm_activate(f->t, blob, blob_len, enc, enc_len,
	                     got, sizeof(got), &got_len),
	    TSI_OK);
	assert_int_equal(got_len, sizeof(secret));
	assert_memory_equal(got, secret, sizeof(secret));
	/* Malformed wire forms are refused before the TPM sees them. */
	assert_int_equal(tsi_tpm_activate(f->t, blob, blob_len - 1, enc,
	                     enc_len, got, sizeof(got), &got_len),
	    TSI_ERR_PARSE);
	free(blob);
	free(enc);
	/* A credential for another object's name does not activate. */
	name[5] ^= 1;
	make_credential(f, ek, ek_len, name, secret, sizeof(secret), &blob,
	    &blob_len, &enc, &enc_len);
	assert_int_equal(tsi_tpm_activate(f->t, blob, blob_len, enc, enc_len,
	                     got, sizeof(got), &got_len),
	    TSI_ERR_TPM);
	free(blob);
	free(enc);
	free(cert);
	free(ek);
	free(ak);
}

static void
test_quote_checks_with_tpm2_tools(void **state)
{
	struct fx *f = *state;
	uint8_t *ak = NULL, *attest = NULL, *sig = NULL;
	size_t ak_len, attest_len, sig_len;
	uint8_t nonce[32], values[TSI_TPM_PCRS][32], again[TSI_TPM_PCRS][32];
	uint8_t cat[8 * 32], digest[32];
	char akp[400], mp[400], sp[400], qhex[65], other[65], ext[128];
	TPMS_ATTEST b;
	TPM2B_ATTEST a;
	size_t off = 0;
	int i;
	char *argv[] = { "tpm2_checkquote", "-u", akp, "-m", mp, "-s", sp, "-q",
		qhex, "-g", "sha256", NULL };
	char *argv_other[] = { "tpm2_checkquote", "-u", akp, "-m", mp, "-s", sp,
		"-q", other, "-g", "sha256", NULL };
	char *extend[] = { "tpm2_pcrextend", "-T", f->ek.tpm.tcti, ext, NULL };

	assert_int_equal(tsi_tpm_ak_pub(f->t, &ak, &ak_len), TSI_OK);
	assert_int_equal(RAND_bytes(nonce, sizeof(nonce)), 1);
	memset(values, 0xee, sizeof(values));
	assert_int_equal(tsi_tpm_quote(f->t, nonce, sizeof(nonce), 0xff,
	                     &attest, &attest_len, &sig, &sig_len, values),
	    TSI_OK);
	b = attest_body(attest, attest_len);
	assert_int_equal(b.type, TPM2_ST_ATTEST_QUOTE);
	assert_int_equal(b.extraData.size, 32);
	assert_memory_equal(b.extraData.buffer, nonce, 32);
	for (i = 0; i < 8; i++)
		memcpy(cat + 32 * i, values[i], 32);
	assert_int_equal(EVP_Digest(cat, sizeof(cat), digest, NULL,
	                     EVP_sha256(), NULL),
	    1);
	assert_int_equal(b.attested.quote.pcrDigest.size, 32);
	assert_memory_equal(b.attested.quote.pcrDigest.buffer, digest, 32);
	/* Rows outside the mask are not touched. */
	assert_int_equal(values[8][0], 0xee);
	/* The values are the TPM's. */
	assert_int_equal(tsi_tpm_pcr_read(f->t, 0xff, again), TSI_OK);
	assert_memory_equal(again, values, 8 * 32);

	/* tpm2_checkquote reads the AK public in its TPM2B_PUBLIC form and
	 * the attest body without its TPM2B size. */
	memset(&a, 0, sizeof(a));
	assert_int_equal(Tss2_MU_TPM2B_ATTEST_Unmarshal(attest, attest_len,
	                     &off, &a),
	    TSS2_RC_SUCCESS);
	snprintf(akp, sizeof(akp), "%s/ak.pub", f->ek.dir);
	snprintf(mp, sizeof(mp), "%s/quote.msg", f->ek.dir);
	snprintf(sp, sizeof(sp), "%s/quote.sig", f->ek.dir);
	assert_int_equal(test_write_file(akp, ak, ak_len), 0);
	assert_int_equal(test_write_file(mp, a.attestationData, a.size), 0);
	assert_int_equal(test_write_file(sp, sig, sig_len), 0);
	hex(nonce, 32, qhex);
	assert_int_equal(test_run_quiet(argv, NULL), 0);
	nonce[0] ^= 1;
	hex(nonce, 32, other);
	assert_int_not_equal(test_run_quiet(argv_other, NULL), 0);
	free(attest);
	free(sig);

	/* A PCR extended since shows in the next quote's values. */
	snprintf(ext, sizeof(ext), "7:sha256=%064d", 1);
	assert_int_equal(test_run_quiet(extend, NULL), 0);
	assert_int_equal(tsi_tpm_quote(f->t, nonce, sizeof(nonce), 0xff,
	                     &attest, &attest_len, &sig, &sig_len, again),
	    TSI_OK);
	assert_memory_equal(again, values, 7 * 32);
	assert_memory_not_equal(again[7], values[7], 32);
	free(attest);
	free(sig);
	free(ak);
}

static void
test_certify_names_signing_key(void **state)
{
	struct fx *f = *state;
	uint8_t *ak = NULL, *key = NULL, *attest = NULL, *sig = NULL;
	size_t ak_len, key_len, attest_len, sig_len;
	uint8_t nonce[32], name[34];
	TPMS_ATTEST b;
	TPM2B_PUBLIC kp;
	size_t off = 0;
	EVP_PKEY *pk;

	assert_int_equal(tsi_tpm_ak_pub(f->t, &ak, &ak_len), TSI_OK);
	assert_int_equal(tsi_tpm_key_pub(f->t, &key, &key_len), TSI_OK);
	memset(&kp, 0, sizeof(kp));
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(key, key_len, &off,
	                     &kp),
	    TSS2_RC_SUCCESS);
	assert_true(kp.publicArea.objectAttributes & TPMA_OBJECT_FIXEDTPM);
	assert_true(kp.publicArea.objectAttributes & TPMA_OBJECT_FIXEDPARENT);
	assert_int_equal(RAND_bytes(nonce, sizeof(nonce)), 1);
	assert_int_equal(tsi_tpm_certify(f->t, nonce, sizeof(nonce), &attest,
	                     &attest_len, &sig, &sig_len),
	    TSI_OK);
	b = attest_body(attest, attest_len);
	assert_int_equal(b.type, TPM2_ST_ATTEST_CERTIFY);
	assert_memory_equal(b.extraData.buffer, nonce, 32);
	tpm_name(key, key_len, name);
	assert_int_equal(b.attested.certify.name.size, 34);
	assert_memory_equal(b.attested.certify.name.name, name, 34);
	pk = ak_evp(ak, ak_len);
	assert_true(sig_ok(pk, attest, attest_len, sig, sig_len));
	/* The check can fail: a changed byte breaks the signature. */
	attest[attest_len - 1] ^= 1;
	assert_false(sig_ok(pk, attest, attest_len, sig, sig_len));
	/* The AK is the same key every time (a primary from a fixed
	 * template). */
	free(key);
	assert_int_equal(tsi_tpm_ak_pub(f->t, &key, &key_len), TSI_OK);
	assert_int_equal(key_len, ak_len);
	assert_memory_equal(key, ak, ak_len);
	EVP_PKEY_free(pk);
	free(attest);
	free(sig);
	free(ak);
	free(key);
}

/* tss2's TPM2_TRANSIENT_FIRST shifts a signed int past its sign bit (UBSan
 * stops on it): the handle ranges spelled out. */
#define TRANSIENT_FIRST 0x80000000u
#define LOADED_SESSION_FIRST 0x02000000u

/* Transient objects and loaded sessions, asked through a context of the
 * test's own. */
static int
handles(const char *tcti, TPM2_HANDLE first)
{
	TSS2_TCTI_CONTEXT *tc = NULL;
	ESYS_CONTEXT *e = NULL;
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	int n;

	assert_int_equal(Tss2_TctiLdr_Initialize(tcti, &tc), TSS2_RC_SUCCESS);
	assert_int_equal(Esys_Initialize(&e, tc, NULL), TSS2_RC_SUCCESS);
	assert_int_equal(Esys_GetCapability(e, ESYS_TR_NONE, ESYS_TR_NONE,
	                     ESYS_TR_NONE, TPM2_CAP_HANDLES, first, 64, &more,
	                     &cap),
	    TSS2_RC_SUCCESS);
	n = (int)cap->data.handles.count;
	Esys_Free(cap);
	Esys_Finalize(&e);
	Tss2_TctiLdr_Finalize(&tc);
	return n;
}

static void
rounds(struct fx *f, int n)
{
	uint8_t *cert = NULL, *ek = NULL, *ak = NULL, *blob = NULL, *enc = NULL;
	uint8_t *attest = NULL, *sig = NULL, *key = NULL;
	size_t cert_len, ek_len, ak_len, blob_len, enc_len, got_len;
	size_t attest_len, sig_len, key_len;
	uint8_t name[34], secret[32], got[64], nonce[32];
	uint8_t values[TSI_TPM_PCRS][32];
	int i;

	assert_int_equal(tsi_tpm_ek(f->t, &cert, &cert_len, &ek, &ek_len),
	    TSI_OK);
	assert_int_equal(tsi_tpm_ak_pub(f->t, &ak, &ak_len), TSI_OK);
	tpm_name(ak, ak_len, name);
	assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
	make_credential(f, ek, ek_len, name, secret, sizeof(secret), &blob,
	    &blob_len, &enc, &enc_len);
	memset(nonce, 7, sizeof(nonce));
	for (i = 0; i < n; i++) {
		uint8_t *c2 = NULL, *e2 = NULL, *a2 = NULL;
		size_t c2l, e2l, a2l;

		assert_int_equal(tsi_tpm_ek(f->t, &c2, &c2l, &e2, &e2l),
		    TSI_OK);
		assert_int_equal(tsi_tpm_ak_pub(f->t, &a2, &a2l), TSI_OK);
		assert_int_equal(tsi_tpm_key_pub(f->t, &key, &key_len), TSI_OK);
		assert_int_equal(tsi_tpm_activate(f->t, blob, blob_len, enc,
		                     enc_len, got, sizeof(got), &got_len),
		    TSI_OK);
		assert_memory_equal(got, secret, sizeof(secret));
		assert_int_equal(tsi_tpm_certify(f->t, nonce, sizeof(nonce),
		                     &attest, &attest_len, &sig, &sig_len),
		    TSI_OK);
		free(attest);
		free(sig);
		assert_int_equal(tsi_tpm_quote(f->t, nonce, sizeof(nonce), 0xff,
		                     &attest, &attest_len, &sig, &sig_len,
		                     values),
		    TSI_OK);
		free(attest);
		free(sig);
		free(c2);
		free(e2);
		free(a2);
		free(key);
	}
	free(cert);
	free(ek);
	free(ak);
	free(blob);
	free(enc);
}

static void
test_no_leaks_after_50_rounds(void **state)
{
	struct fx *f = *state;

	/* Only the signing key stays loaded. */
	assert_int_equal(handles(f->ek.tpm.tcti, TRANSIENT_FIRST), 1);
	rounds(f, 50);
	assert_int_equal(handles(f->ek.tpm.tcti, TRANSIENT_FIRST), 1);
	assert_int_equal(handles(f->ek.tpm.tcti, LOADED_SESSION_FIRST), 0);
}

/* Without the persistent EK, the EK is made from the TCG template: the same
 * key (swtpm_setup used the same template), flushed after each use. */
static void
test_ek_without_persistent_handle(void **state)
{
	struct fx *f = *state;
	uint8_t *cert = NULL, *ek = NULL, *cert2 = NULL, *ek2 = NULL;
	size_t cert_len, ek_len, cert2_len, ek2_len;
	char *evict[] = { "tpm2_evictcontrol", "-T", f->ek.tpm.tcti, "-C", "o",
		"-c", "0x81010001", NULL };

	assert_int_equal(tsi_tpm_ek(f->t, &cert, &cert_len, &ek, &ek_len),
	    TSI_OK);
	assert_int_equal(test_run_quiet(evict, NULL), 0);
	assert_int_equal(tsi_tpm_ek(f->t, &cert2, &cert2_len, &ek2, &ek2_len),
	    TSI_OK);
	assert_int_equal(ek2_len, ek_len);
	assert_memory_equal(ek2, ek, ek_len);
	rounds(f, 2);
	assert_int_equal(handles(f->ek.tpm.tcti, TRANSIENT_FIRST), 1);
	free(cert);
	free(ek);
	free(cert2);
	free(ek2);
}

/* A TPM without an EK certificate (a vTPM): no certificate, the EK public
 * key all the same, for EK-hash trust. */
static void
test_no_ek_cert(void **state)
{
	struct fx *f = *state;
	uint8_t *cert = (uint8_t *)"x", *ek = NULL, *ek2 = NULL;
	size_t cert_len = 99, ek_len, ek2_len;
	char *undefine[] = { "tpm2_nvundefine", "-T", f->ek.tpm.tcti, "-C", "p",
		"0x01c00002", NULL };

	assert_int_equal(tsi_tpm_ek(f->t, &cert, &cert_len, &ek, &ek_len),
	    TSI_OK);
	assert_non_null(cert);
	free(cert);
	assert_int_equal(test_run_quiet(undefine, NULL), 0);
	assert_int_equal(tsi_tpm_ek(f->t, &cert, &cert_len, &ek2, &ek2_len),
	    TSI_OK);
	assert_null(cert);
	assert_int_equal(cert_len, 0);
	assert_int_equal(ek2_len, ek_len);
	assert_memory_equal(ek2, ek, ek_len);
	free(ek);
	free(ek2);
}

/* The TPM gone mid-enrollment: a clear "unavailable", not a crash or a
 * hang; back when it is. */
static void
test_tpm_vanishes(void **state)
{
	struct fx *f = *state;
	uint8_t *attest = NULL, *sig = NULL, nonce[32] = { 1 };
	uint8_t values[TSI_TPM_PCRS][32];
	size_t attest_len, sig_len;
	long long deadline;
	int r;

	test_swtpm_kill(&f->ek.tpm, SIGKILL);
	assert_int_equal(tsi_tpm_quote(f->t, nonce, sizeof(nonce), 0xff,
	                     &attest, &attest_len, &sig, &sig_len, values),
	    TSI_ERR_TPM_UNAVAILABLE);
	assert_null(attest);
	assert_int_equal(test_swtpm_restart(&f->ek.tpm), 0);
	/* Reconnects are throttled: ask until one goes through. */
	deadline = test_now_ms() + 10000;
	while ((r = tsi_tpm_quote(f->t, nonce, sizeof(nonce), 0xff, &attest,
	            &attest_len, &sig, &sig_len, values)) ==
	        TSI_ERR_TPM_UNAVAILABLE &&
	    test_now_ms() < deadline)
		usleep(20000);
	assert_int_equal(r, TSI_OK);
	free(attest);
	free(sig);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ek_cert_is_swtpm_setups,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_activate_credential, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_quote_checks_with_tpm2_tools, setup, teardown),
		cmocka_unit_test_setup_teardown(test_certify_names_signing_key,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_leaks_after_50_rounds,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_ek_without_persistent_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_ek_cert, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tpm_vanishes, setup,
		    teardown),
	};

	tsi_log_init("test_tpm_enroll", TSI_LOG_ERROR);
	(void)setenv("TSS2_LOG", "all+NONE", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
