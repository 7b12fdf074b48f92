/*
 * test_tpm.c - the TPM layer against a real swtpm: signing, the key surviving
 * restarts, TPM loss detected quickly, recovery without reopening.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "issuer/tpm.h"
#include "tests/support/swtpm.h"
#include "tsi/err.h"
#include "tsi/log.h"

static int
verify_raw(EVP_PKEY *pub, const uint8_t digest[32], const uint8_t sig[64])
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	unsigned char *der = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	int len, ok = 0;

	if (es == NULL ||
	    !ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL),
	        BN_bin2bn(sig + 32, 32, NULL)))
		goto out;
	if ((len = i2d_ECDSA_SIG(es, &der)) <= 0)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new(pub, NULL)) == NULL ||
	    EVP_PKEY_verify_init(ctx) <= 0)
		goto out;
	ok = EVP_PKEY_verify(ctx, der, (size_t)len, digest, 32) == 1;
out:
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	return ok;
}

struct fx {
	struct test_swtpm tpm;
	char state[256];
};

static int
setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	tsi_log_init("test_tpm", TSI_LOG_WARN);
	if (test_swtpm_start(&f.tpm) != 0)
		return -1;
	if (test_mkdtemp(f.state, sizeof(f.state), "issuer-state") != 0)
		return -1;
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	test_swtpm_cleanup(&f->tpm);
	test_rmtree(f->state);
	return 0;
}

static void
test_sign_and_persist(void **state)
{
	struct fx *f = *state;
	struct tsi_tpm *t = NULL, *t2 = NULL;
	uint8_t dg[32], sig[64], sig2[64];
	char path[512], reason[256];
	struct stat st;

	RAND_bytes(dg, sizeof(dg));
	assert_int_equal(tsi_tpm_open(f->tpm.tcti, f->state, &t), TSI_OK);
	assert_non_null(tsi_tpm_pub(t));
	assert_int_equal(tsi_tpm_sign(t, dg, sig), TSI_OK);
	assert_true(verify_raw(tsi_tpm_pub(t), dg, sig));
	/* A different digest does not verify against that signature. */
	dg[0] ^= 1;
	assert_false(verify_raw(tsi_tpm_pub(t), dg, sig));
	assert_int_equal(tsi_tpm_check(t, reason, sizeof(reason)), TSI_OK);

	snprintf(path, sizeof(path), "%s/%s", f->state, TSI_TPM_KEY_FILE);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	tsi_tpm_free(t);

	/* Same key after the issuer restarts. */
	assert_int_equal(tsi_tpm_open(f->tpm.tcti, f->state, &t2), TSI_OK);
	assert_int_equal(tsi_tpm_sign(t2, dg, sig2), TSI_OK);
	assert_true(verify_raw(tsi_tpm_pub(t2), dg, sig2));
	tsi_tpm_free(t2);

	/* Same key after the TPM restarts on the same state dir. */
	test_swtpm_kill(&f->tpm, SIGTERM);
	assert_int_equal(test_swtpm_restart(&f->tpm), 0);
	assert_int_equal(tsi_tpm_open(f->tpm.tcti, f->state, &t), TSI_OK);
	assert_int_equal(tsi_tpm_sign(t, dg, sig), TSI_OK);
	assert_true(verify_raw(tsi_tpm_pub(t), dg, sig));
	tsi_tpm_free(t);
}

static void
test_loss_and_recovery(void **state)
{
	struct fx *f = *state;
	struct tsi_tpm *t = NULL;
	EVP_PKEY *before;
	uint8_t dg[32], sig[64];
	char reason[256];
	long long t0, dt, deadline;
	int r;

	RAND_bytes(dg, sizeof(dg));
	assert_int_equal(tsi_tpm_open(f->tpm.tcti, f->state, &t), TSI_OK);
	before = tsi_tpm_pub(t);
	EVP_PKEY_up_ref(before);
	assert_int_equal(tsi_tpm_sign(t, dg, sig), TSI_OK);

	test_swtpm_kill(&f->tpm, SIGKILL);
	t0 = test_now_ms();
	r = tsi_tpm_sign(t, dg, sig);
	dt = test_now_ms() - t0;
	assert_int_equal(r, TSI_ERR_TPM_UNAVAILABLE);
	assert_true(dt < 1000);
	print_message("tpm loss detected in %lld ms\n", dt);
	/* Later calls fail fast too, and the probe says why. */
	t0 = test_now_ms();
	assert_int_equal(tsi_tpm_sign(t, dg, sig), TSI_ERR_TPM_UNAVAILABLE);
	assert_int_not_equal(tsi_tpm_check(t, reason, sizeof(reason)), TSI_OK);
	assert_true(test_now_ms() - t0 < 1000);
	assert_true(strlen(reason) > 0);

	/* The TPM comes back: the same handle recovers, same key. */
	assert_int_equal(test_swtpm_restart(&f->tpm), 0);
	deadline = test_now_ms() + 3000;
	while ((r = tsi_tpm_sign(t, dg, sig)) != TSI_OK &&
	    test_now_ms() < deadline)
		usleep(50000);
	assert_int_equal(r, TSI_OK);
	assert_true(verify_raw(before, dg, sig));
	assert_int_equal(EVP_PKEY_eq(before, tsi_tpm_pub(t)), 1);
	assert_int_equal(tsi_tpm_check(t, reason, sizeof(reason)), TSI_OK);

	/* A TPM restarted while the handle looked healthy: the stale
	 * connection is replaced within the same call. */
	test_swtpm_kill(&f->tpm, SIGKILL);
	assert_int_equal(test_swtpm_restart(&f->tpm), 0);
	assert_int_equal(tsi_tpm_sign(t, dg, sig), TSI_OK);
	assert_true(verify_raw(before, dg, sig));
	EVP_PKEY_free(before);
	tsi_tpm_free(t);
}

struct watchdog {
	struct tsi_tpm *t;
	volatile int stop;
};

/* What the issuer's monitor thread does: check the TPM periodically. */
static void *
watchdog_run(void *arg)
{
	struct watchdog *w = arg;
	char reason[256];

	while (!w->stop) {
		(void)tsi_tpm_check(w->t, reason, sizeof(reason));
		usleep(100000);
	}
	return NULL;
}

static void
test_hung_tpm(void **state)
{
	struct watchdog wd;
	pthread_t th;
	struct fx *f = *state;
	struct tsi_tpm *t = NULL;
	uint8_t dg[32], sig[64];
	char reason[256];
	long long t0, dt, deadline;
	int r;

	RAND_bytes(dg, sizeof(dg));
	assert_int_equal(tsi_tpm_open(f->tpm.tcti, f->state, &t), TSI_OK);
	assert_int_equal(tsi_tpm_sign(t, dg, sig), TSI_OK);

	wd.t = t;
	wd.stop = 0;
	assert_int_equal(pthread_create(&th, NULL, watchdog_run, &wd), 0);
	/* The TPM stops answering but keeps the connection open. */
	assert_int_equal(kill(f->tpm.pid, SIGSTOP), 0);
	t0 = test_now_ms();
	r = tsi_tpm_sign(t, dg, sig);
	dt = test_now_ms() - t0;
	print_message("hung tpm: sign failed after %lld ms\n", dt);
	assert_int_equal(r, TSI_ERR_TPM_UNAVAILABLE);
	assert_true(dt < 1500);
	t0 = test_now_ms();
	assert_int_not_equal(tsi_tpm_check(t, reason, sizeof(reason)), TSI_OK);
	assert_true(test_now_ms() - t0 < 1500);

	/* It answers again: the same handle recovers. */
	assert_int_equal(kill(f->tpm.pid, SIGCONT), 0);
	deadline = test_now_ms() + 5000;
	while ((r = tsi_tpm_sign(t, dg, sig)) != TSI_OK &&
	    test_now_ms() < deadline)
		usleep(50000);
	assert_int_equal(r, TSI_OK);
	assert_true(verify_raw(tsi_tpm_pub(t), dg, sig));
	wd.stop = 1;
	pthread_join(th, NULL);
	tsi_tpm_free(t);
}

static void
test_start_without_tpm(void **state)
{
	struct fx *f = *state;
	struct tsi_tpm *t = NULL;
	char empty[256];
	uint8_t dg[32] = { 1 }, sig[64];

	/* Make sure the key exists, then take the TPM away. */
	assert_int_equal(tsi_tpm_open(f->tpm.tcti, f->state, &t), TSI_OK);
	tsi_tpm_free(t);
	t = NULL;
	test_swtpm_kill(&f->tpm, SIGKILL);

	/* With a key file the issuer starts and reports the TPM missing. */
	assert_int_equal(tsi_tpm_open(f->tpm.tcti, f->state, &t), TSI_OK);
	assert_non_null(tsi_tpm_pub(t));
	assert_int_equal(tsi_tpm_sign(t, dg, sig), TSI_ERR_TPM_UNAVAILABLE);
	tsi_tpm_free(t);
	t = NULL;

	/* Without one there is no key to report: refuse. */
	assert_int_equal(test_mkdtemp(empty, sizeof(empty), "issuer-empty"), 0);
	assert_int_equal(tsi_tpm_open(f->tpm.tcti, empty, &t),
	    TSI_ERR_TPM_UNAVAILABLE);
	assert_null(t);
	test_rmtree(empty);
	assert_int_equal(test_swtpm_restart(&f->tpm), 0);
}

static void
test_bad_key_file(void **state)
{
	struct fx *f = *state;
	struct tsi_tpm *t = NULL;
	char dir[256], path[512];
	int fd;

	assert_int_equal(test_mkdtemp(dir, sizeof(dir), "issuer-bad"), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, TSI_TPM_KEY_FILE);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "garbage!garbage", 15), 15);
	close(fd);
	/* A damaged key file is never silently replaced by a new key. */
	assert_int_equal(tsi_tpm_open(f->tpm.tcti, dir, &t), TSI_ERR_PARSE);
	assert_null(t);
	test_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sign_and_persist, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_loss_and_recovery, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hung_tpm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_without_tpm, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_key_file, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
