/*
 * What a reload may not drop (tsi_policy_check_dropped) and the last good
 * copy (tsi_policy_save): a file that had rules and is now empty, holds only
 * comments or an empty list is refused; removing a file, or some of its
 * rules, is not. The copy holds the bytes that were loaded, loads as the same
 * set, and replaces the previous copy whole.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "policy_dir.h"
#include "tsi/err.h"
#include "tsi/policy.h"
#include "vault-plugin/mounts.h"

static char dir[256], dir2[256];

static const char roles_text[] =
    "roles = ( { name = \"app\"; rules = [ \"app-read\" ]; } );\n";
static const char app_text[] =
    "rules = ( { name = \"app-read\"; paths = [ \"secret/data/app/*\" ];\n"
    "  capabilities = [ \"read\" ]; } );\n";
static const char deny_text[] =
    "# Geofence\n"
    "rules = (\n"
    "  { name = \"never-outside-eu\"; effect = \"deny\";\n"
    "    paths = [ \"secret/data/app/eu/*\" ];\n"
    "    match = { region = [ \"!eu-*\" ]; }; },\n"
    "  { name = \"no-tmp\"; effect = \"deny\"; paths = [ "
    "\"secret/data/app/tmp/*\" ]; }\n"
    ");\n";

static struct tsi_policy_set *
load_ok(const char *d)
{
	struct tsi_policy_set *p = NULL;
	char err[512];

	if (tsi_policy_load_dir(d, &p, err, sizeof(err)) != TSI_OK)
		fail_msg("load %s: %s", d, err);
	return p;
}

static int
setup(void **state)
{
	(void)state;
	assert_int_equal(pd_make(dir, sizeof(dir)), 0);
	assert_int_equal(pd_write(dir, "10-roles.conf", roles_text), 0);
	assert_int_equal(pd_write(dir, "20-app.conf", app_text), 0);
	assert_int_equal(pd_write(dir, "50-deny.conf", deny_text), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	pd_rm(dir);
	if (dir2[0] != '\0')
		pd_rm(dir2);
	dir2[0] = '\0';
	return 0;
}

/* prev: the setup's set; 50-deny.conf (or name) replaced by text. */
static int
dropped(const char *name, const char *text, char *err, size_t errlen)
{
	struct tsi_policy_set *prev = load_ok(dir), *next;
	int rc;

	if (text != NULL)
		assert_int_equal(pd_write(dir, name, text), 0);
	else {
		char p[512];

		snprintf(p, sizeof(p), "%s/%s", dir, name);
		assert_int_equal(unlink(p), 0);
	}
	next = load_ok(dir);
	rc = tsi_policy_check_dropped(prev, next, err, errlen);
	tsi_policy_unref(prev);
	tsi_policy_unref(next);
	return rc;
}

static void
test_refused(void **state)
{
	static const char *const texts[] = {
		"",             /* : > 50-deny.conf */
		"# Geofence\n", /* cut after a comment */
		"# all rules commented out\n# rules = ( );\n",
		"rules = ( );\n",
		"\n\n   \n",
	};
	char err[1024];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		assert_int_equal(pd_write(dir, "50-deny.conf", deny_text), 0);
		if (dropped("50-deny.conf", texts[i], err, sizeof(err)) !=
		    TSI_ERR_CONFIG)
			fail_msg("case %zu: refused nothing", i);
		assert_non_null(strstr(err,
		    "50-deny.conf: defines no rules or "
		    "roles, but the set in force has 2 rules and 0 roles"));
		assert_non_null(strstr(err, "atomic rename"));
	}
	/* Every file gone: an empty or unmounted directory. */
	assert_int_equal(pd_write(dir, "50-deny.conf", deny_text), 0);
	{
		struct tsi_policy_set *prev = load_ok(dir), *next;
		char empty[256];

		assert_int_equal(pd_make(empty, sizeof(empty)), 0);
		next = load_ok(empty);
		assert_int_equal(tsi_policy_check_dropped(prev, next, err,
		                     sizeof(err)),
		    TSI_ERR_CONFIG);
		assert_non_null(strstr(err,
		    "the policy directory defines no "
		    "rules or roles (0 files), but the set in force has 3 "
		    "rules "
		    "and 1 role"));
		assert_int_equal(tsi_policy_check_dropped(next, next, err,
		                     sizeof(err)),
		    TSI_OK);
		tsi_policy_unref(prev);
		tsi_policy_unref(next);
		pd_rm(empty);
	}
	/* A roles-only file emptied: its roles would be dropped too. */
	assert_int_equal(pd_write(dir, "50-deny.conf", deny_text), 0);
	assert_int_equal(dropped("10-roles.conf", "", err, sizeof(err)),
	    TSI_ERR_CONFIG);
	assert_non_null(strstr(err,
	    "10-roles.conf: defines no rules or roles, "
	    "but the set in force has 0 rules and 1 role from it (empty "
	    "file)"));
}

static void
test_allowed(void **state)
{
	struct tsi_policy_set *p;
	char err[1024];

	(void)state;
	/* Removing the file is how rules are dropped on purpose. */
	assert_int_equal(dropped("50-deny.conf", NULL, err, sizeof(err)),
	    TSI_OK);
	assert_int_equal(pd_write(dir, "50-deny.conf", deny_text), 0);
	/* Fewer rules, or other ones, in a file that still has some. */
	assert_int_equal(dropped("50-deny.conf",
	                     "rules = ( { name = \"no-tmp\";\n"
	                     "  effect = \"deny\"; paths = [ "
	                     "\"secret/data/app/tmp/*\" ]; } );\n",
	                     err, sizeof(err)),
	    TSI_OK);
	/* A new empty file, or one that never had rules, is no loss. */
	assert_int_equal(dropped("60-new.conf", "# later\n", err, sizeof(err)),
	    TSI_OK);
	assert_int_equal(dropped("60-new.conf", "", err, sizeof(err)), TSI_OK);
	/* No set in force yet. */
	p = load_ok(dir);
	assert_int_equal(tsi_policy_check_dropped(NULL, p, err, sizeof(err)),
	    TSI_OK);
	assert_int_equal(tsi_policy_check_dropped(p, NULL, err, sizeof(err)),
	    TSI_ERR_INVALID_ARG);
	tsi_policy_unref(p);
}

/* The entries of d whose name starts with prefix. */
static int
count_prefix(const char *d, const char *prefix)
{
	DIR *dd = opendir(d);
	struct dirent *de;
	int n = 0;

	assert_non_null(dd);
	while ((de = readdir(dd)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(dd);
	return n;
}

static void
test_save_and_load_copy(void **state)
{
	struct tsi_policy_set *p = load_ok(dir), *c, *c2;
	char link[512], target[256], path[PATH_MAX], err[512];
	size_t nf, nro, nru;
	struct stat st;
	json_t *us = json_pack("{ss}", "region", "us-south");
	struct tsi_decision d;
	ssize_t n;

	(void)state;
	assert_int_equal(pd_make(dir2, sizeof(dir2)), 0);
	snprintf(link, sizeof(link), "%s/policy-last-good", dir2);
	assert_int_equal(tsi_policy_save(p, link, err, sizeof(err)), TSI_OK);
	/* The files change after the load: the copy keeps what was loaded. */
	assert_int_equal(pd_write(dir, "50-deny.conf", ""), 0);
	c = load_ok(link);
	tsi_policy_stats(c, &nf, &nro, &nru);
	assert_int_equal(nf, 3);
	assert_int_equal(nro, 1);
	assert_int_equal(nru, 3);
	assert_int_equal(tsi_policy_eval(c, "app", us, "secret/data/app/eu/x",
	                     TSI_CAP_READ, &d),
	    TSI_ERR_DENIED);
	assert_string_equal(d.rule, "never-outside-eu");
	/* A link to one private directory of 0600 files. */
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	n = readlink(link, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_null(strchr(target, '/'));
	snprintf(path, sizeof(path), "%s/%s", dir2, target);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/%s/50-deny.conf", dir2, target);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal((size_t)st.st_size, strlen(deny_text));
	/* Saving again replaces the copy: one link, one directory. */
	c2 = load_ok(dir);
	assert_int_equal(tsi_policy_save(c2, link, err, sizeof(err)), TSI_OK);
	assert_int_equal(count_prefix(dir2, "policy-last-good"), 2);
	tsi_policy_unref(c);
	c = load_ok(link);
	tsi_policy_stats(c, NULL, NULL, &nru);
	assert_int_equal(nru, 1);
	/* Left-overs of a crash between mkdtemp and the rename go too. */
	snprintf(path, sizeof(path), "%s/policy-last-good.abcdef", dir2);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(tsi_policy_save(p, link, err, sizeof(err)), TSI_OK);
	assert_int_equal(count_prefix(dir2, "policy-last-good"), 2);
	/* A path that cannot be written is an error with a reason. */
	assert_int_equal(tsi_policy_save(p, "/nonexistent-dir/last-good", err,
	                     sizeof(err)),
	    TSI_ERR_IO);
	assert_non_null(strstr(err, "cannot create"));
	json_decref(us);
	tsi_policy_unref(c);
	tsi_policy_unref(c2);
	tsi_policy_unref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_and_load_copy, setup,
		    teardown),
	};

	vault_policy_mounts_register();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
