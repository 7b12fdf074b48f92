/* Crash test: a writer under load from 4 threads is killed with SIGKILL;
 * every seq it acknowledged must be in the log and the chain must verify,
 * and a new writer goes on from there. Three rounds on one log. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <signal.h>
#include <sys/wait.h>
#include <poll.h>
#include <cmocka.h>

#include "tests/unit/audit/audit_test.h"
#include "tsi/log.h"

#ifndef AUDIT_LOAD_BIN
#error AUDIT_LOAD_BIN must name the audit_load program
#endif

#define MAX_ACK 200000

/* Runs audit_load on dir, kills it after min_acks acknowledgements (or
 * 3 s), and returns the acknowledged seqs. */
static size_t
run_and_kill(const char *dir, uint64_t *acks, size_t min_acks)
{
	int out[2], status;
	pid_t pid;
	char buf[8192], line[32];
	size_t n_acks = 0, ll = 0;
	long long t0 = test_mono_ms();
	struct pollfd pfd;
	ssize_t n, i;
	int killed = 0;

	assert_int_equal(pipe(out), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execl(AUDIT_LOAD_BIN, "audit_load", dir, "--threads", "4",
		    "--count", "0", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	pfd.fd = out[0];
	pfd.events = POLLIN;
	for (;;) {
		if (!killed &&
		    (n_acks >= min_acks || test_mono_ms() - t0 > 3000)) {
			/* mid-load: appends are queued and in flight right now */
			assert_int_equal(kill(pid, SIGKILL), 0);
			killed = 1;
		}
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(out[0], buf, sizeof(buf));
		if (n <= 0)
			break; /* EOF: the writer is gone; all it printed is read */
		for (i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (ll < sizeof(line) - 1)
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = '\0';
			ll = 0;
			assert_true(n_acks < MAX_ACK);
			acks[n_acks++] = strtoull(line, NULL, 10);
		}
	}
	close(out[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	return n_acks;
}

static void
test_kill_mid_load(void **state)
{
	char *dir = test_tmpdir();
	uint64_t *acks = calloc(MAX_ACK, sizeof(*acks));
	struct tsi_audit_reader *r;
	struct tsi_audit_verify_result vr;
	struct tsi_audit_info info;
	struct tsi_audit *a;
	uint64_t max_ack, seq;
	json_t *rec;
	size_t n, i;
	int round;

	(void)state;
	assert_non_null(acks);
	for (round = 0; round < 3; round++) {
		n = run_and_kill(dir, acks, 400);
		print_message("round %d: %zu acknowledged before SIGKILL\n",
		    round, n);
		assert_true(n > 0);
		assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
		max_ack = 0;
		for (i = 0; i < n; i++) {
			if (tsi_audit_get(r, acks[i], &rec) != TSI_OK)
				fail_msg("acknowledged seq %llu is not in the "
				         "log",
				    (unsigned long long)acks[i]);
			assert_int_equal(json_integer_value(
			                     json_object_get(rec, "seq")),
			    acks[i]);
			json_decref(rec);
			if (acks[i] > max_ack)
				max_ack = acks[i];
		}
		if (tsi_audit_verify(r, &vr) != TSI_OK)
			fail_msg("verify: seq %llu: %s",
			    (unsigned long long)vr.first_bad_seq, vr.reason);
		assert_int_equal(tsi_audit_reader_info(r, &info), TSI_OK);
		assert_true(info.last_seq >= max_ack);
		assert_int_equal(vr.records, info.last_seq);
		print_message("round %d: log holds %llu records, highest ack "
		              "%llu\n",
		    round, (unsigned long long)info.last_seq,
		    (unsigned long long)max_ack);
		tsi_audit_reader_close(r);
		/* a new writer continues the chain */
		assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
		rec = test_rec("read", "secret/data/after-crash", "allow", "d",
		    "c", "n", "sha256:cc");
		assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
		json_decref(rec);
		assert_int_equal(seq, info.last_seq + 1);
		tsi_audit_close(a);
	}
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_verify(r, &vr), TSI_OK);
	tsi_audit_reader_close(r);
	free(acks);
	test_rmrf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill_mid_load),
	};

	tsi_log_init("test", TSI_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
