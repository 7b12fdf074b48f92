/*
 * tsi-vault's audit_sinks setting on the real server: a file sink gets
 * every record the store has, in order, one JSON line each, and is
 * reopened on SIGHUP after the file was moved away (logrotate's create);
 * a TCP sink whose receiver is down shows in /v1/sys/metrics as down with
 * its lag, while requests are answered; a bad audit_sinks keeps the
 * server down with exit 2 and file:line: reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "reload_wait.h"

/* seqs of the lines of path, in file order, into seqs[max]; the count */
static size_t
file_seqs(const char *path, uint64_t *seqs, size_t max)
{
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, n = 0;

	if (fp == NULL)
		return 0;
	while (n < max && getline(&line, &cap, fp) > 0) {
		json_t *j = json_loads(line, 0, NULL);

		assert_non_null(j);
		assert_non_null(json_object_get(j, "hash"));
		seqs[n++] =
		    (uint64_t)json_integer_value(json_object_get(j, "seq"));
		json_decref(j);
	}
	free(line);
	fclose(fp);
	return n;
}

/* The value of a metric line "name{labels} v", -1 when absent. */
static long long
metric(struct vfx *f, const char *prefix)
{
	struct vresp r;
	const char *p;
	long long v = -1;

	memset(&r, 0, sizeof(r));
	assert_int_equal(vfx_http(f, NULL, "GET",
	                     "/v1/sys/metrics?format=prometheus", NULL, NULL,
	                     &r),
	    0);
	assert_int_equal(r.status, 200);
	if ((p = strstr(r.body, prefix)) != NULL)
		v = strtoll(p + strlen(prefix), NULL, 10);
	vresp_clear(&r);
	return v;
}

static void
test_file_and_down_tcp(void **state)
{
	struct vfx f;
	char extra[1024], log[400], moved[400];
	uint64_t seqs[512], seqs2[512];
	size_t n = 0, n2 = 0, i;
	int k, port = vfx_free_port();
	long long lag = -1;

	(void)state;
	assert_true(port > 0);
	memset(&f, 0, sizeof(f));
	/* the fixture fills f.dir; the sink's file lives there */
	assert_int_equal(vfx_init(&f, NULL, NULL), 0);
	snprintf(log, sizeof(log), "%s/audit.jsonl", f.dir);
	snprintf(moved, sizeof(moved), "%s/audit.jsonl.1", f.dir);
	snprintf(extra, sizeof(extra),
	    "audit_sinks = (\n"
	    "  { type = \"file\"; path = \"%s\"; },\n"
	    "  { name = \"siem\"; type = \"tcp\"; address = \"127.0.0.1:%d\"; "
	    "}\n"
	    ");\n",
	    log, port);
	{
		FILE *fp = fopen(f.conf, "a");

		assert_non_null(fp);
		fputs(extra, fp);
		fclose(fp);
	}
	assert_int_equal(vfx_start(&f), 0);
	for (k = 0; k < 20; k++)
		assert_int_equal(vfx_kv_put(&f, f.root, "app/x",
		                     "{\"data\":{\"k\":\"v\"}}"),
		    200);
	/* the file gets every record of the store, in order */
	for (k = 0; k < 3000; k++) {
		n = file_seqs(log, seqs, 512);
		if (n >= 20)
			break;
		usleep(10000);
	}
	assert_true(n >= 20);
	for (i = 0; i < n; i++)
		assert_int_equal(seqs[i], i + 1);
	/* the receiver of "siem" is down: requests were answered, the sink
	 * shows down with what it owes */
	for (k = 0; k < 3000; k++) {
		lag = metric(&f,
		    "tsi_vault_audit_sink_lag{sink=\"siem\","
		    "type=\"tcp\"} ");
		if (lag >= 20)
			break;
		usleep(10000);
	}
	assert_true(lag >= 20);
	assert_int_equal(metric(&f, "tsi_vault_audit_sink_up{sink=\"siem\"} "),
	    0);
	assert_true(
	    metric(&f, "tsi_vault_audit_sink_errors_total{sink=\"siem\"} ") >
	    0);
	assert_int_equal(metric(&f, "tsi_vault_audit_sink_up{sink=\"file\"} "),
	    1);

	/* logrotate's create: moved away, SIGHUP, a new file continues */
	assert_int_equal(rename(log, moved), 0);
	assert_int_equal(vfx_reload(&f), 0);
	for (k = 0; k < 5; k++)
		assert_int_equal(vfx_kv_put(&f, f.root, "app/y",
		                     "{\"data\":{\"k\":\"v\"}}"),
		    200);
	for (k = 0; k < 3000; k++) {
		n = file_seqs(moved, seqs, 512);
		n2 = file_seqs(log, seqs2, 512);
		if (n2 > 0 && seqs2[n2 - 1] >= seqs[n - 1] + 5)
			break;
		usleep(10000);
	}
	assert_true(n2 > 0);
	for (i = 0; i < n; i++)
		assert_int_equal(seqs[i], i + 1);
	for (i = 0; i < n2; i++)
		assert_int_equal(seqs2[i], n + i + 1);
	assert_true(seqs2[n2 - 1] >= n + 5);
	assert_int_equal(vfx_stop(&f), 0);
	vfx_cleanup(&f);
}

/* Runs tsi-vault --config on f until it exits (at most 60 s). */
static int
run_to_exit(struct vfx *f)
{
	const char *bd = getenv("TSI_BIN_DIR");
	char exe[512];
	pid_t pid;
	int st, i;

	snprintf(exe, sizeof(exe), "%s/tsi-vault", bd ? bd : "build/bin");
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd >= 0)
			dup2(fd, 2);
		execl(exe, exe, "--config", f->conf, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 3000; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		usleep(20 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* The line of the config file holding text (1-based), 0 when none. */
static int
conf_line(const struct vfx *f, const char *text)
{
	FILE *fp = fopen(f->conf, "r");
	char line[1024];
	int n = 0, found = 0;

	if (fp == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		n++;
		found = strstr(line, text) != NULL;
	}
	fclose(fp);
	return found ? n : 0;
}

static void
bad_conf(const char *extra, const char *at, const char *why)
{
	struct vfx f;
	char want[512];

	memset(&f, 0, sizeof(f));
	assert_int_equal(vfx_init(&f, NULL, extra), 0);
	assert_int_equal(run_to_exit(&f), 2);
	snprintf(want, sizeof(want), ":%d: %s", conf_line(&f, at), why);
	if (!rw_log_has(&f, want)) {
		vfx_dump_log(&f);
		fail_msg("no '%s'", want);
	}
	vfx_cleanup(&f);
}

static void
test_bad_config(void **state)
{
	(void)state;
	bad_conf("audit_sinks = (\n  { name = \"siem\"; type = \"tcp\"; "
	         "address = \"127.0.0.1\"; }\n);\n",
	    "name = \"siem\"",
	    "audit_sinks[0] 'siem': a tcp sink needs address");
	bad_conf("audit_sinks = (\n  { type = \"file\"; path = \"/tmp/a\"; },\n"
	         "  { type = \"syslog\";\n    facility = \"local9\"; }\n);\n",
	    "local9", "audit_sinks[1]: facility 'local9'");
	bad_conf("audit_sinks = (\n  { type = \"file\"; path = \"/tmp/a\";\n"
	         "    address = \"x:1\"; }\n);\n",
	    "address",
	    "audit_sinks[0]: 'address' is not a setting of a file sink");
	bad_conf("audit_sinks = (\n  { type = \"kafka\"; }\n);\n", "kafka",
	    "audit_sinks[0]: type 'kafka'");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_and_down_tcp),
		cmocka_unit_test(test_bad_config),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
