/*
 * swtpm_ek.h - a private swtpm manufactured like a real TPM: swtpm_setup
 * --create-ek-cert with a local CA of the test's own (config files, CA key
 * and EK certificate copies in the test's scratch directory).
 */
#ifndef TSI_TEST_SWTPM_EK_H
#define TSI_TEST_SWTPM_EK_H

#include <stddef.h>

#include <openssl/evp.h>

#include "tests/support/swtpm.h"

struct test_swtpm_ek {
	struct test_swtpm tpm;
	char dir[256];     /* scratch: CA, configs, EK certificate files */
	char ek_cert[340]; /* DER copy of the RSA EK certificate */
	char ca_cert[340]; /* the local CA that signed it (PEM) */
};

/* Makes the scratch dir, manufactures the TPM state and starts swtpm on a
 * free loopback port. 0 on success. */
int test_swtpm_ek_start(struct test_swtpm_ek *e);

/* Stops swtpm and removes both directories. */
void test_swtpm_ek_cleanup(struct test_swtpm_ek *e);

/* Runs argv (stdin, stdout and stderr to /dev/null unless out_path is
 * given, which then receives stdout); the exit status, -1 if not run. */
int test_run_quiet(char *const argv[], const char *out_path);

/* Reads a whole file (at most max bytes) into a malloc'd buffer. */
unsigned char *test_read_file(const char *path, size_t max, size_t *len);

/* Writes len bytes to path (0600). 0 on success. */
int test_write_file(const char *path, const void *p, size_t len);

/* A TPM object's name from its marshalled TPM2B_PUBLIC: 0x000b followed by
 * SHA-256 of the marshalled TPMT_PUBLIC. 0 on success. */
int test_tpm_name(const unsigned char *pub2b, size_t len,
    unsigned char name[34]);

/* TPM2_MakeCredential in software (tpm2_makecredential -T none, as a server
 * does it) for the EK public ek_pub (marshalled TPM2B_PUBLIC) and an object
 * name; scratch files go to dir. *blob (TPM2B_ID_OBJECT) and *enc
 * (TPM2B_ENCRYPTED_SECRET) in wire form, malloc'd. 0 on success. */
int test_make_credential(const char *dir, const unsigned char *ek_pub,
    size_t ek_len, const unsigned char name[34], const unsigned char *secret,
    size_t slen, unsigned char **blob, size_t *blob_len, unsigned char **enc,
    size_t *enc_len);

/* The P-256 key of a marshalled TPM2B_PUBLIC as an OpenSSL key (NULL when
 * it is not one). Caller: EVP_PKEY_free. */
EVP_PKEY *test_tpm_ecc_key(const unsigned char *pub2b, size_t len);

/* 1 when sig (marshalled TPMT_SIGNATURE, ECDSA-SHA256) by pk verifies over
 * the attest body of attest (marshalled TPM2B_ATTEST); 0 otherwise. */
int test_attest_sig_ok(EVP_PKEY *pk, const unsigned char *attest, size_t alen,
    const unsigned char *sig, size_t slen);

#endif
