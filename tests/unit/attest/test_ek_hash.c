/*
 * The EK identity: a TPM sends its RSA EK's TPM2B_PUBLIC with exponent 0
 * (TPM 2.0 Part 2, 12.2.3.5: zero means 65537), while `tsi node register
 * --ek-cert` hashes the certificate's SubjectPublicKeyInfo, where the
 * exponent is 65537 written out. Both must give the same SHA-256, or no
 * registered TPM could ever enroll; and the EK checks must accept it.
 */
#include "tsi/attest.h"
#include "tsi/err.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <tss2/tss2_mu.h>

/* A TCG default EK template (RSA-2048, AES-128-CFB, restricted decrypt)
 * holding n, with the given exponent field. */
static size_t
ek_pub(EVP_PKEY *k, uint32_t exponent, uint8_t *out, size_t cap)
{
	TPM2B_PUBLIC p;
	BIGNUM *n = NULL;
	size_t off = 0;

	memset(&p, 0, sizeof(p));
	p.publicArea.type = TPM2_ALG_RSA;
	p.publicArea.nameAlg = TPM2_ALG_SHA256;
	p.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM |
	    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
	    TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED |
	    TPMA_OBJECT_DECRYPT;
	p.publicArea.authPolicy.size = 32;
	p.publicArea.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	p.publicArea.parameters.rsaDetail.symmetric.keyBits.aes = 128;
	p.publicArea.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	p.publicArea.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	p.publicArea.parameters.rsaDetail.keyBits = 2048;
	p.publicArea.parameters.rsaDetail.exponent = exponent;
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n),
	    1);
	assert_int_equal(BN_bn2binpad(n, p.publicArea.unique.rsa.buffer, 256),
	    256);
	p.publicArea.unique.rsa.size = 256;
	BN_free(n);
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&p, out, cap, &off),
	    TSS2_RC_SUCCESS);
	return off;
}

static void
test_exponent_zero_is_65537(void **state)
{
	EVP_PKEY *k;
	struct tsi_tpm_pub *p0 = NULL, *pe = NULL;
	uint8_t buf[1024];
	size_t len;
	char want[65], h0[65], he[65], why[256];

	(void)state;
	assert_non_null(k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
	/* What --ek-cert hashes: the key as a certificate holds it. */
	assert_int_equal(tsi_attest_key_sha256(k, want), TSI_OK);

	len = ek_pub(k, 0, buf, sizeof(buf));
	assert_int_equal(tsi_tpm_pub_parse(buf, len, &p0), TSI_OK);
	assert_int_equal(tsi_attest_key_sha256(tsi_tpm_pub_pkey(p0), h0),
	    TSI_OK);
	assert_string_equal(h0, want);
	why[0] = '\0';
	assert_int_equal(tsi_attest_check_ek(p0, why, sizeof(why)), TSI_OK);
	assert_int_equal(EVP_PKEY_eq(tsi_tpm_pub_pkey(p0), k), 1);

	/* 65537 written out is the same key and the same identity. */
	len = ek_pub(k, 65537, buf, sizeof(buf));
	assert_int_equal(tsi_tpm_pub_parse(buf, len, &pe), TSI_OK);
	assert_int_equal(tsi_attest_key_sha256(tsi_tpm_pub_pkey(pe), he),
	    TSI_OK);
	assert_string_equal(he, want);
	tsi_tpm_pub_free(p0);
	tsi_tpm_pub_free(pe);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exponent_zero_is_65537),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
