/*
 * Policy reloads over a running tsi-vault (real SIGHUP, the reload awaited
 * in /v1/sys/metrics): a deny rule's file truncated to nothing, or left with
 * only a comment, must not take the deny away; the set in force stays, the
 * refusal is logged and counted, and the reload is partial. A file written
 * by atomic rename reloads. At start-up a broken or emptied directory falls
 * back to the last good set in data_dir; at a first start, with no such
 * set, a broken file still keeps the server down with exit 2 and
 * file:line: reason.
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

struct st {
	struct vfx f;
	struct vfx_node us; /* hipaaCluster / us-south / dal05 */
	char img[72];
};

static const char roles_conf[] =
    "roles = ( { name = \"demo\"; rules = [ \"eu-read\" ]; } );\n"
    "rules = ( { name = \"eu-read\"; paths = [ \"secret/data/eu/*\" ];\n"
    "  capabilities = [ \"read\" ]; } );\n";
static const char deny_conf[] =
    "# Geofence: EU data never leaves EU regions.\n"
    "rules = (\n"
    "  { name = \"never-outside-eu\"; effect = \"deny\";\n"
    "    paths = [ \"secret/data/eu/*\" ];\n"
    "    match = { region = [ \"!eu-*\" ]; }; }\n"
    ");\n";

static int
setup(void **state)
{
	struct st *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	vfx_image("image-x", s->img);
	assert_int_equal(vfx_init(&s->f, roles_conf, NULL), 0);
	assert_int_equal(vfx_write_policy(&s->f, "50-deny.conf", deny_conf), 0);
	assert_int_equal(vfx_node_new(&s->f, "hipaaCluster", "us-south",
	                     "dal05", "node-a", &s->us),
	    0);
	assert_int_equal(vfx_start(&s->f), 0);
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "eu/gdpr",
	                     "{\"data\":{\"k\":\"EU-SECRET\"}}"),
	    200);
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	struct st *s = *state;

	vfx_node_free(&s->us);
	vfx_cleanup(&s->f);
	free(s);
	return 0;
}

/* GET secret/data/eu/gdpr with a fresh us-south token: the status. */
static long
eu_read(struct st *s)
{
	long status;
	char *t = vfx_login_as(&s->f, &s->us, s->img, "prod", "demo", &status);
	long r;

	assert_int_equal(status, 200);
	assert_non_null(t);
	r = vfx_kv_get(&s->f, t, "eu/gdpr", NULL);
	free(t);
	return r;
}

/* Truncates policy_dir/name to n bytes of text (n 0: `: > name`). */
static void
truncate_to(struct st *s, const char *name, const char *text)
{
	char p[600];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", s->f.policy_dir, name);
	fd = open(p, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Writes name the safe way: a temporary name, then rename(2). */
static void
write_by_rename(struct st *s, const char *name, const char *text)
{
	char tmp[600], p[600];

	assert_int_equal(vfx_write_policy(&s->f, ".tmp-policy", text), 0);
	snprintf(tmp, sizeof(tmp), "%s/.tmp-policy", s->f.policy_dir);
	snprintf(p, sizeof(p), "%s/%s", s->f.policy_dir, name);
	assert_int_equal(rename(tmp, p), 0);
}

static long long
refusals(struct st *s, const char *reason)
{
	char name[128];

	snprintf(name, sizeof(name),
	    "tsi_vault_policy_refusals_total{reason="
	    "\"%s\"}",
	    reason);
	return rw_metric(&s->f, name, 0);
}

static void
test_truncated_and_comment_only(void **state)
{
	struct st *s = *state;

	assert_int_equal(eu_read(s), 403);
	assert_int_equal(rw_metric(&s->f, "tsi_vault_policy_stale", 0), 0);
	/* `: > 50-deny.conf; kill -HUP`: the deny must stay. */
	truncate_to(s, "50-deny.conf", "");
	assert_int_equal(rw_reload(&s->f), 0);
	if (eu_read(s) != 403) {
		vfx_dump_log(&s->f);
		fail_msg("the geofence was dropped by an empty file");
	}
	assert_int_equal(refusals(s, "dropped_rules"), 1);
	assert_int_equal(rw_metric(&s->f, "tsi_vault_policy_stale", 0), 1);
	assert_int_equal(
	    rw_metric(&s->f,
	        "tsi_vault_policy_reloads_total{result=\"failed\"}", 0),
	    1);
	assert_true(rw_log_has(&s->f, "\"reload.policy_refused\""));
	assert_true(
	    rw_log_has(&s->f, "50-deny.conf: defines no rules or roles"));
	assert_true(rw_log_has(&s->f, "\"result\":\"partial\""));
	/* A file cut after its first comment line. */
	truncate_to(s, "50-deny.conf",
	    "# Geofence: EU data never leaves EU "
	    "regions.\n");
	assert_int_equal(rw_reload(&s->f), 0);
	assert_int_equal(eu_read(s), 403);
	assert_int_equal(refusals(s, "dropped_rules"), 2);
	/* Written by atomic rename, the file reloads; removing a file is how
	 * rules are dropped on purpose. */
	write_by_rename(s, "50-deny.conf", deny_conf);
	assert_int_equal(rw_reload(&s->f), 0);
	assert_int_equal(rw_metric(&s->f, "tsi_vault_policy_stale", 0), 0);
	assert_int_equal(eu_read(s), 403);
	{
		char p[600];

		snprintf(p, sizeof(p), "%s/50-deny.conf", s->f.policy_dir);
		assert_int_equal(unlink(p), 0);
	}
	assert_int_equal(rw_reload(&s->f), 0);
	assert_int_equal(eu_read(s), 200);
	assert_int_equal(refusals(s, "dropped_rules"), 2);
	write_by_rename(s, "50-deny.conf", deny_conf);
	assert_int_equal(rw_reload(&s->f), 0);
	assert_int_equal(eu_read(s), 403);
	/* Every file gone at once (an unmounted directory): refused too. */
	{
		static const char *const names[] = { "test.conf",
			"50-deny.conf" };
		char from[600], to[600];
		size_t i;

		for (i = 0; i < 2; i++) {
			snprintf(from, sizeof(from), "%s/%s", s->f.policy_dir,
			    names[i]);
			snprintf(to, sizeof(to), "%s/%s.away", s->f.dir,
			    names[i]);
			assert_int_equal(rename(from, to), 0);
		}
		assert_int_equal(rw_reload(&s->f), 0);
		assert_int_equal(refusals(s, "dropped_rules"), 3);
		assert_int_equal(eu_read(s), 403);
		for (i = 0; i < 2; i++) {
			snprintf(from, sizeof(from), "%s/%s.away", s->f.dir,
			    names[i]);
			snprintf(to, sizeof(to), "%s/%s", s->f.policy_dir,
			    names[i]);
			assert_int_equal(rename(from, to), 0);
		}
	}
}

static void
test_start_with_last_good(void **state)
{
	struct st *s = *state;

	/* Broken while the server was down: it starts with the last good set,
	 * loudly, instead of staying down. */
	assert_int_equal(vfx_stop(&s->f), 0);
	truncate_to(s, "50-deny.conf",
	    "rules = ( { name = \"never-outside-eu\";");
	if (vfx_start(&s->f) != 0)
		fail_msg("tsi-vault did not start with a broken policy file");
	assert_true(rw_log_has(&s->f, "\"policy.start_last_good\""));
	assert_true(rw_log_has(&s->f, "50-deny.conf:1:"));
	assert_int_equal(rw_metric(&s->f, "tsi_vault_policy_stale", 0), 1);
	assert_int_equal(refusals(s, "invalid"), 1);
	assert_int_equal(eu_read(s), 403);
	/* Emptied while down: the same. */
	assert_int_equal(vfx_stop(&s->f), 0);
	truncate_to(s, "50-deny.conf", "");
	assert_int_equal(vfx_start(&s->f), 0);
	assert_int_equal(refusals(s, "dropped_rules"), 1);
	assert_int_equal(eu_read(s), 403);
	/* Fixed and reloaded: in force, no longer stale. */
	write_by_rename(s, "50-deny.conf", deny_conf);
	assert_int_equal(rw_reload(&s->f), 0);
	assert_int_equal(rw_metric(&s->f, "tsi_vault_policy_stale", 0), 0);
	assert_int_equal(eu_read(s), 403);
}

/* Runs tsi-vault --config on f until it exits (at most 60 s); its exit
 * status, or -1. */
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

static void
test_first_start_broken(void **state)
{
	struct vfx f;

	(void)state;
	assert_int_equal(vfx_init(&f,
	                     "roles = ( { name = \"x\";\n  rules = "
	                     "[ \"nope\" ]; } );\n",
	                     NULL),
	    0);
	assert_int_equal(run_to_exit(&f), 2);
	if (!rw_log_has(&f, "test.conf:2: role 'x': unknown rule 'nope'")) {
		vfx_dump_log(&f);
		fail_msg("no file:line: reason");
	}
	vfx_cleanup(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_truncated_and_comment_only,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_with_last_good,
		    setup, teardown),
		cmocka_unit_test(test_first_start_broken),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
