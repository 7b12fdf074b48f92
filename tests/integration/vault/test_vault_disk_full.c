/*
 * A full data disk (issue 14.9): the server's data directory on a small
 * tmpfs, written until a KV write no longer fits. The failed write is
 * answered 503 "storage full" (never 500), the secret does not exist, and
 * no audit record claims it was answered 200: the log has the decision
 * (no status) and, when it could still be written, the outcome (503).
 *
 * Mounting needs root (CAP_SYS_ADMIN); without it the test is skipped,
 * saying so.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "fixture.h"
#include "tsi/audit.h"
#include "tsi/err.h"

#define VALUE_LEN (96 * 1024)

/* The mounted tmpfs, unmounted by teardown even when an assertion ended
 * the test early (cmocka leaves the test function by longjmp). */
static char mounted[400];
#define WRITES_MAX 400

struct found {
	const char *path;
	int decision_records; /* phase "decision", no status */
	int claims_200;       /* any record saying status 200 */
	int outcome_503;
	int other;
};

static int
scan_cb(const json_t *rec, void *arg)
{
	struct found *f = arg;
	const char *path = json_string_value(json_object_get(rec, "path"));
	const char *phase = json_string_value(json_object_get(rec, "phase"));
	json_t *st = json_object_get(rec, "status");

	const char *op = json_string_value(json_object_get(rec, "op"));

	if (path == NULL || strcmp(path, f->path) != 0 || op == NULL ||
	    strcmp(op, "write") != 0)
		return 0;
	if (json_integer_value(st) == 200)
		f->claims_200++;
	if (phase != NULL && strcmp(phase, "decision") == 0 && st == NULL)
		f->decision_records++;
	else if (phase != NULL && strcmp(phase, "outcome") == 0 &&
	    json_integer_value(st) == 503)
		f->outcome_503++;
	else
		f->other++;
	return 0;
}

static void
test_kv_write_disk_full(void **state)
{
	struct vfx f;
	struct vresp r;
	char *body, path[64], apath[96], dir[400];
	long status = 0;
	int i, failed_at = -1;

	(void)state;
	assert_int_equal(vfx_init(&f, NULL, "max_body = 1048576;\n"), 0);
	assert_int_equal(mkdir(f.data_dir, 0700), 0);
	if (mount("tsi-test", f.data_dir, "tmpfs", 0, "size=3m,mode=0700") == 0)
		snprintf(mounted, sizeof(mounted), "%s", f.data_dir);
	else {
		print_message("SKIP: cannot mount a tmpfs on %s (%s): this "
		              "test needs root\n",
		    f.data_dir, strerror(errno));
		vfx_cleanup(&f);
		skip();
	}
	if (vfx_start(&f) != 0) {
		vfx_dump_log(&f);
		umount2(f.data_dir, MNT_DETACH);
		fail_msg("server did not start on the tmpfs");
	}
	body = malloc(VALUE_LEN + 64);
	assert_non_null(body);
	memcpy(body, "{\"data\":{\"v\":\"", 14);
	memset(body + 14, 'x', VALUE_LEN);
	memcpy(body + 14 + VALUE_LEN, "\"}}", 4);
	/* Distinct values fill the store until the disk is full. */
	for (i = 0; i < WRITES_MAX; i++) {
		snprintf(path, sizeof(path), "full/%d", i);
		snprintf(body + 14, 12, "%010d", i);
		body[24] = 'x';
		status = vfx_kv_put(&f, f.root, path, body);
		if (status != 200) {
			failed_at = i;
			break;
		}
	}
	free(body);
	if (failed_at < 0)
		vfx_dump_log(&f);
	assert_true(failed_at > 0);
	/* A full store is 503 "storage full" (or 503 from the audit log
	 * when it is the one that ran out first), never 500. */
	assert_int_equal(status, 503);
	snprintf(path, sizeof(path), "full/%d", failed_at);
	/* The secret does not exist. */
	status = vfx_kv_get(&f, f.root, path, &r);
	assert_true(status == 404 || status == 503);
	assert_null(strstr(r.body ? r.body : "", "xxxxxxxx"));
	vresp_clear(&r);
	assert_int_equal(vfx_stop(&f), 0);
	{
		struct tsi_audit_reader *rd = NULL;
		struct tsi_audit_verify_result vr;
		struct tsi_audit_query q;
		struct found fd;
		uint64_t next = 0;

		snprintf(dir, sizeof(dir), "%s/audit", f.data_dir);
		snprintf(apath, sizeof(apath), "secret/data/%s", path);
		assert_int_equal(tsi_audit_reader_open(dir, &rd), TSI_OK);
		assert_int_equal(tsi_audit_verify(rd, &vr), TSI_OK);
		memset(&q, 0, sizeof(q));
		memset(&fd, 0, sizeof(fd));
		q.path_prefix = apath;
		q.limit = SIZE_MAX;
		fd.path = apath;
		assert_int_equal(tsi_audit_query(rd, &q, scan_cb, &fd, &next),
		    TSI_OK);
		print_message("write %d failed: %d decision, %d outcome 503, "
		              "%d claiming 200, %d other records\n",
		    failed_at, fd.decision_records, fd.outcome_503,
		    fd.claims_200, fd.other);
		/* Never an outcome that did not happen. */
		assert_int_equal(fd.claims_200, 0);
		assert_int_equal(fd.other, 0);
		assert_true(fd.decision_records <= 1);
		/* A successful write has both records, the outcome 200. */
		memset(&fd, 0, sizeof(fd));
		fd.path = "secret/data/full/0";
		q.path_prefix = fd.path;
		assert_int_equal(tsi_audit_query(rd, &q, scan_cb, &fd, &next),
		    TSI_OK);
		assert_int_equal(fd.decision_records, 1);
		assert_int_equal(fd.claims_200, 1);
		tsi_audit_reader_close(rd);
	}
	assert_int_equal(umount2(f.data_dir, MNT_DETACH), 0);
	mounted[0] = '\0';
	vfx_cleanup(&f);
}

static int
teardown(void **state)
{
	(void)state;
	if (mounted[0] != '\0')
		umount2(mounted, MNT_DETACH);
	mounted[0] = '\0';
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_kv_write_disk_full, teardown),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
