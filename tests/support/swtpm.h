/*
 * swtpm.h - start and stop a private swtpm for one test (by PID), on a
 * free loopback port pair. The one copy of it: tsi-issuer's tests use it
 * directly, tpm_node.c (attestation tests) for its manufactured nodes.
 * With it, what those tests share: scratch directories, the clock, and
 * whole files read and written.
 */
#ifndef TSI_TEST_SWTPM_H
#define TSI_TEST_SWTPM_H

#include <sys/types.h>

struct test_swtpm {
	pid_t pid;
	int port;
	char dir[256];  /* --tpmstate dir (removed by test_swtpm_cleanup) */
	char tcti[128]; /* "swtpm:host=127.0.0.1,port=P" */
};

/* Starts swtpm on a free loopback port pair with a new state dir.
 * Returns 0 when it accepts connections, -1 otherwise. */
int test_swtpm_start(struct test_swtpm *s);

/* Starts swtpm on a free loopback port pair with the existing state
 * directory statedir (e.g. one swtpm_setup made); s->dir is set to it and
 * test_swtpm_cleanup removes it. Returns 0 when it accepts connections. */
int test_swtpm_start_state(struct test_swtpm *s, const char *statedir);

/* Starts swtpm again on the same port and state dir. */
int test_swtpm_restart(struct test_swtpm *s);

/* Kills swtpm with sig (SIGKILL for "TPM lost") and reaps it. */
void test_swtpm_kill(struct test_swtpm *s, int sig);

/* Kills swtpm if running and removes its state dir. */
void test_swtpm_cleanup(struct test_swtpm *s);

/* A new private temporary directory under TMPDIR. 0 on success. */
int test_mkdtemp(char *out, size_t len, const char *tag);

/* rm -r of a test directory. */
void test_rmtree(const char *dir);

/* Monotonic milliseconds. */
long long test_now_ms(void);

/* The whole file as a NUL-terminated string (free), NULL when it cannot
 * be read. Logs of load tests run to megabytes: nothing is cut off. */
char *test_slurp(const char *path);

/* How many times s occurs in the file at path (0 when unreadable). */
int test_count(const char *path, const char *s);

/* Writes text to path (created or truncated). 0 on success. */
int test_write_text(const char *path, const char *text);

#endif
