/*
 * swtpm_ek.h - a private swtpm manufactured like a real TPM: swtpm_setup
 * --create-ek-cert with a local CA of the test's own (config files, CA key
 * and EK certificate copies in the test's scratch directory).
 */
#ifndef TSI_TEST_SWTPM_EK_H
#define TSI_TEST_SWTPM_EK_H

#include <stddef.h>

#include "swtpm_util.h"

struct test_swtpm_ek {
	struct test_swtpm tpm;
	char dir[256];        /* scratch: CA, configs, EK certificate files */
	char ek_cert[340];    /* DER copy of the RSA EK certificate */
	char ca_cert[340];    /* the local CA that signed it (PEM) */
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

#endif
