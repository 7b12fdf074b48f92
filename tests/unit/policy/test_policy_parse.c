/*
 * Policy directory loading: every validation error with its expected
 * "file:line: reason", check_dir reporting all of them, load_dir stopping at
 * the first, file selection and order, and reference counting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsi/err.h"
#include "tsi/policy.h"
#include "vault-plugin/mounts.h"

struct file {
	const char *name, *text;
};

static char tmpdir[256];

static void
rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[512];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (unlink(p) != 0)
			rm_dir(p);
	}
	closedir(d);
	rmdir(dir);
}

/* A fresh directory holding files (NULL-terminated by name). */
static const char *
make_dir(const struct file *files)
{
	const char *base = getenv("TMPDIR");

	if (tmpdir[0] != '\0')
		rm_dir(tmpdir);
	snprintf(tmpdir, sizeof(tmpdir), "%s/tsi-policy-XXXXXX",
	    base ? base : "/tmp");
	assert_non_null(mkdtemp(tmpdir));
	for (; files != NULL && files->name != NULL; files++) {
		char p[512];
		FILE *f;

		snprintf(p, sizeof(p), "%s/%s", tmpdir, files->name);
		assert_non_null(f = fopen(p, "w"));
		fputs(files->text, f);
		fclose(f);
	}
	return tmpdir;
}

struct collected {
	char msgs[32][512];
	int n;
};

/* Keeps the message without the "<tmpdir>/" prefix. */
static void
collect(const char *msg, void *arg)
{
	struct collected *c = arg;
	size_t l = strlen(tmpdir);

	if (c->n >= 32)
		return;
	if (strncmp(msg, tmpdir, l) == 0 && msg[l] == '/')
		msg += l + 1;
	snprintf(c->msgs[c->n++], sizeof(c->msgs[0]), "%s", msg);
}

/* Checks dir and compares every error with want (NULL-terminated). */
static void
expect_errors(const struct file *files, const char *const *want)
{
	struct collected c;
	struct tsi_policy_set *p = NULL;
	char err[1024];
	int r, i, nwant = 0;

	memset(&c, 0, sizeof(c));
	make_dir(files);
	r = tsi_policy_check_dir(tmpdir, collect, &c);
	while (want[nwant] != NULL)
		nwant++;
	for (i = 0; i < c.n || i < nwant; i++) {
		const char *got = i < c.n ? c.msgs[i] : "(none)";
		const char *exp = i < nwant ? want[i] : "(none)";

		if (strcmp(got, exp) != 0)
			fail_msg("error %d:\n  want: %s\n  got:  %s", i, exp,
			    got);
	}
	assert_int_equal(r, nwant);
	/* load_dir refuses the same directory, naming the first error. */
	r = tsi_policy_load_dir(tmpdir, &p, err, sizeof(err));
	if (nwant > 0) {
		assert_int_equal(r, TSI_ERR_CONFIG);
		assert_null(p);
		assert_non_null(strstr(err, want[0]));
	} else {
		assert_int_equal(r, TSI_OK);
		assert_non_null(p);
		tsi_policy_unref(p);
	}
}

static void
test_syntax_error(void **state)
{
	static const struct file f[] = {
		{ "a.conf",
		    "rules = (\n  { name = \"x\"; paths = [ \"secret/data/x\" "
		    "];\n"
		    "    capabilities = [ \"read\" ] }\n  { name = \"y\" "
		    "}\n);\n" },
		{ NULL, NULL },
	};
	static const char *const want[] = { "a.conf:4: syntax error", NULL };

	(void)state;
	expect_errors(f, want);
}

static void
test_unknown_keys_and_types(void **state)
{
	static const struct file f[] = {
		{ "a.conf",
		    "policies = ();\n"                   /* 1 */
		    "rules = (\n"                        /* 2 */
		    "  { name = \"r1\";\n"               /* 3 */
		    "    paths = \"secret/data/x\";\n"   /* 4 */
		    "    capabilities = [ \"read\" ];\n" /* 5 */
		    "    colour = \"blue\"; },\n"        /* 6 */
		    "  { name = 7; paths = [ \"secret/data/x\" ]; capabilities "
		    "= [ \"read\" ]; },\n" /* 7 */
		    "  { name = \"r3\"; paths = [ ]; capabilities = [ \"read\" "
		    "]; },\n" /* 8 */
		    "  { name = \"r4\"; paths = ( \"secret/data/x\", 5 ); "
		    "capabilities = [ \"read\" ]; },\n" /* 9 */
		    "  { name = \"r5\"; paths = [ \"secret/data/x\" ]; "
		    "capabilities = [ \"read\" ];\n"                /* 10 */
		    "    effect = \"maybe\"; description = 1; },\n" /* 11 */
		    "  \"not a group\",\n"                          /* 12 */
		    "  { paths = [ \"secret/data/x\" ]; capabilities = [ "
		    "\"read\" ]; }\n" /* 13 */
		    ");\n"
		    "roles = { name = \"x\"; };\n" }, /* 15 */
		{ NULL, NULL },
	};
	static const char *const want[] = {
		"a.conf:1: unknown setting 'policies' (a policy file has roles "
		"and rules)",
		"a.conf:4: rule 'r1': 'paths' must be a list of strings",
		"a.conf:6: rule 'r1': unknown setting 'colour'",
		"a.conf:7: rule: 'name' must be a string",
		"a.conf:8: rule 'r3': 'paths' must not be empty",
		"a.conf:9: rule 'r4': 'paths' must be a list of strings",
		"a.conf:11: rule 'r5': 'effect' must be \"allow\" or \"deny\"",
		"a.conf:11: rule 'r5': 'description' must be a string",
		"a.conf:12: each entry of 'rules' must be a group { ... }",
		"a.conf:13: rule without a 'name'",
		"a.conf:15: 'roles' must be a list ( { ... }, ... )",
		NULL,
	};

	(void)state;
	expect_errors(f, want);
}

static void
test_capabilities(void **state)
{
	static const struct file f[] = {
		{ "caps.conf",
		    "rules = (\n" /* 1 */
		    "  { name = \"a\"; paths = [ \"secret/data/x\" "
		    "];\n" /* 2 */
		    "    capabilities = [ \"read\", \"sudo\" ]; "
		    "},\n" /* 3 */
		    "  { name = \"b\"; paths = [ \"secret/data/x\" "
		    "]; },\n" /* 4 */
		    "  { name = \"c\"; effect = \"deny\"; paths = "
		    "[ \"secret/data/x\" ];\n"              /* 5 */
		    "    capabilities = [ \"nuke\" ]; },\n" /* 6 */
		    "  { name = \"d\"; effect = \"deny\"; paths = "
		    "[ \"secret/data/x\" ];\n"     /* 7 */
		    "    capabilities = [ ]; },\n" /* 8 */
		    "  { name = \"e\"; paths = [ "
		    "\"secret/data/x/*\" ];\n" /* 9 */
		    "    capabilities = [ \"read\", \"list\" ]; "
		    "},\n" /* 10 */
		    "  { name = \"f\"; paths = [ "
		    "\"secret/data/x/*\" ];\n"               /* 11 */
		    "    capabilities = [ \"audit\" ]; },\n" /* 12 */
		    "  { name = \"g\"; paths = [ "
		    "\"sys/audit/releases\" ];\n"           /* 13 */
		    "    capabilities = [ \"read\" ]; },\n" /* 14 */
		    "  { name = \"ok\"; effect = \"deny\"; paths = "
		    "[ \"secret/data/x\" ]; },\n" /* 15 */
		    "  { name = \"ok2\"; paths = [ "
		    "\"secret/data/x/*\", \"secret/metadata/x/*\" "
		    "];\n"
		    "    capabilities = [ \"read\", \"list\" ]; }\n"
		    ");\n" },
		{ NULL, NULL },
	};
	static const char *const want[] = {
		"caps.conf:3: rule 'a': unknown capability 'sudo' (create, "
		"read, update, delete, list, audit)",
		"caps.conf:4: rule 'b': an allow rule needs 'capabilities'",
		"caps.conf:6: rule 'c': unknown capability 'nuke' (create, "
		"read, update, delete, list, audit)",
		"caps.conf:8: rule 'd': 'capabilities' must not be empty",
		"caps.conf:10: rule 'e': capability 'list' applies to none of "
		"its paths (list is checked on secret/metadata/)",
		"caps.conf:12: rule 'f': capability 'audit' applies to none of "
		"its paths (audit is checked on sys/audit/)",
		"caps.conf:14: rule 'g': capability 'read' applies to none of "
		"its paths (read is checked on secret/data/, secret/metadata/, "
		"secret/subkeys/, secret/config)",
		NULL,
	};

	(void)state;
	expect_errors(f, want);
}

static void
test_paths_and_templates(void **state)
{
	static const struct file f[] = {
		{ "p.conf",
		    "rules = (\n"                                      /* 1 */
		    "  { name = \"a\"; capabilities = [ \"read\" ];\n" /* 2 */
		    "    paths = [ \"\",\n"                            /* 3 */
		    "              \"secret/data/{regoin}/*\",\n"      /* 4 */
		    "              \"secret/data/{region/*\",\n"       /* 5 */
		    "              \"secret/data/{}/x\",\n"            /* 6 */
		    "              \"secret/data/{re+gion}/x\",\n"     /* 7 */
		    "              \"kv/data/x\",\n"                   /* 8 */
		    "              \"secret/*\",\n"                    /* 9 */
		    "              \"/v1/secret/data/x\",\n"           /* 10 */
		    "              \"secret/data/*/x\",\n"             /* 11 */
		    "              \"secret/data/a+\",\n"              /* 12 */
		    "              \"secret/data/../x\" ]; },\n"       /* 13 */
		    "  { name = \"b\"; capabilities = [ \"read\" ]; }\n" /* 14 */
		    ");\n" },
		{ NULL, NULL },
	};
	static const char *const want[] = {
		"p.conf:3: rule 'a': empty path",
		"p.conf:4: rule 'a': unknown claim '{regoin}' in path template",
		"p.conf:5: rule 'a': path 'secret/data/{region/*': '{' without "
		"'}' in the same segment",
		"p.conf:6: rule 'a': path 'secret/data/{}/x': empty {} "
		"template",
		"p.conf:7: rule 'a': path 'secret/data/{re+gion}/x': malformed "
		"{claim} template",
		"p.conf:8: rule 'a': path 'kv/data/x' is not under a known "
		"mount (secret/data/, secret/metadata/, secret/delete/, "
		"secret/undelete/, secret/destroy/, secret/subkeys/, "
		"secret/config, sys/audit/)",
		"p.conf:9: rule 'a': path 'secret/*' is not under a known "
		"mount (secret/data/, secret/metadata/, secret/delete/, "
		"secret/undelete/, secret/destroy/, secret/subkeys/, "
		"secret/config, sys/audit/)",
		"p.conf:10: rule 'a': path '/v1/secret/data/x' must not start "
		"with '/' (no /v1/ either)",
		"p.conf:11: rule 'a': path 'secret/data/*/x': '*' is only "
		"allowed at the end",
		"p.conf:12: rule 'a': path 'secret/data/a+': '+' must be a "
		"whole segment",
		"p.conf:13: rule 'a': path 'secret/data/../x' has a '.' or "
		"'..' segment",
		"p.conf:14: rule 'b': no 'paths'",
		NULL,
	};

	(void)state;
	expect_errors(f, want);
}

static void
test_match_errors(void **state)
{
	static const struct file f[] = {
		{ "m.conf",
		    "rules = (\n" /* 1 */
		    "  { name = \"a\"; paths = [ \"secret/data/x\" ]; "
		    "capabilities = [ \"read\" ];\n"           /* 2 */
		    "    match = { clustername = [ \"c\" ];\n" /* 3 */
		    "              region = [ \"\" ];\n"       /* 4 */
		    "              datacenter = [ \"!\" ];\n"  /* 5 */
		    "              namespace = 5;\n"           /* 6 */
		    "              images = [ ]; }; },\n"      /* 7 */
		    "  { name = \"b\"; paths = [ \"secret/data/x\" ]; "
		    "capabilities = [ \"read\" ];\n"   /* 8 */
		    "    match = [ \"region\" ]; },\n" /* 9 */
		    "  { name = \"c\"; paths = [ \"secret/data/x\" ]; "
		    "capabilities = [ \"read\" ];\n" /* 10 */
		    "    match = { }; },\n"          /* 11 */
		    "  { name = \"ok\"; paths = [ \"secret/data/x\" ]; "
		    "capabilities = [ \"read\" ];\n"
		    "    match = { region = \"eu-*\"; cluster-name = [ \"a\", "
		    "\"!b\" ]; }; }\n"
		    ");\n" },
		{ NULL, NULL },
	};
	static const char *const want[] = {
		"m.conf:3: rule 'a': unknown claim 'clustername' in match",
		"m.conf:4: rule 'a': empty pattern in match 'region'",
		"m.conf:5: rule 'a': empty pattern in match 'datacenter'",
		"m.conf:6: rule 'a': 'namespace' must be a list of strings",
		"m.conf:7: rule 'a': 'images' must not be empty",
		"m.conf:9: rule 'b': 'match' must be a group { claim = [ ... "
		"]; }",
		"m.conf:11: rule 'c': 'match' is empty (leave it out to match "
		"any caller)",
		NULL,
	};

	(void)state;
	expect_errors(f, want);
}

static void
test_roles(void **state)
{
	static const struct file f[] = {
		{ "a.conf",
		    "roles = (\n" /* 1 */
		    "  { name = \"r1\"; rules = [ \"x\", \"nope\" ]; "
		    "},\n" /* 2 */
		    "  { name = \"r2\"; rules = [ \"x\" ]; token_ttl = "
		    "0; },\n" /* 3 */
		    "  { name = \"r3\"; rules = [ \"x\" ]; token_ttl = "
		    "\"300\"; },\n"           /* 4 */
		    "  { name = \"r4\"; },\n" /* 5 */
		    "  { name = \"r5\"; rules = [ \"bad\" ]; policies "
		    "= [ \"x\" ]; },\n" /* 6 */
		    "  { name = \"default-deny\"; rules = [ \"x\" ]; "
		    "},\n"                                        /* 7 */
		    "  { name = \"r 8\"; rules = [ \"x\" ]; },\n" /* 8 */
		    "  { name = \"r9\"; rules = [ \"x\" ]; match = { "
		    "regoin = [ \"eu\" ]; }; },\n" /* 9 */
		    "  { name = \"ok\"; rules = [ \"x\" ]; token_ttl = "
		    "60;\n"
		    "    match = { region = [ \"eu-*\" ]; }; }\n"
		    ");\n" },
		{ "b.conf",
		    "rules = (\n"
		    "  { name = \"x\"; paths = [ \"secret/data/x\" ]; "
		    "capabilities = [ \"read\" ]; },\n"
		    "  { name = \"bad\"; paths = [ \"secret/data/x\" "
		    "]; capabilities = [ \"reed\" ]; }\n"
		    ");\n" },
		{ NULL, NULL },
	};
	static const char *const want[] = {
		"a.conf:3: role 'r2': 'token_ttl' must be between 1 and 86400",
		"a.conf:4: role 'r3': 'token_ttl' must be an integer (seconds)",
		"a.conf:5: role 'r4': no 'rules'",
		"a.conf:6: role 'r5': unknown setting 'policies'",
		"a.conf:7: invalid role name 'default-deny' (letters, digits, "
		"'.', '_', '-'; at most 100 characters; not 'default-deny')",
		"a.conf:8: invalid role name 'r 8' (letters, digits, '.', '_', "
		"'-'; at most 100 characters; not 'default-deny')",
		"a.conf:9: role 'r9': unknown claim 'regoin' in match",
		"b.conf:3: rule 'bad': unknown capability 'reed' (create, "
		"read, update, delete, list, audit)",
		"a.conf:2: role 'r1': unknown rule 'nope'",
		NULL,
	};

	(void)state;
	expect_errors(f, want);
}

static void
test_duplicates_across_files(void **state)
{
	static const struct file f[] = {
		{ "10-a.conf",
		    "rules = ( { name = \"x\"; paths = [ \"secret/data/x\" ]; "
		    "capabilities = [ \"read\" ]; } );\n"
		    "roles = ( { name = \"r\"; rules = [ \"x\" ]; } );\n" },
		{ "20-b.conf",
		    "\n"
		    "rules = ( { name = \"x\"; paths = [ \"secret/data/y\" ]; "
		    "capabilities = [ \"read\" ]; } );\n"
		    "roles = ( { name = \"r\"; rules = [ \"x\" ]; },\n"
		    "          { name = \"s\"; rules = [ \"x\" ]; },\n"
		    "          { name = \"s\"; rules = [ \"x\" ]; } );\n" },
		{ NULL, NULL },
	};
	char want0[512], want1[512], want2[512];
	const char *want[4] = { want0, want1, want2, NULL };

	(void)state;
	/* The first definition is named with its directory path. */
	{
		struct collected c;
		int r;

		memset(&c, 0, sizeof(c));
		make_dir(f);
		snprintf(want0, sizeof(want0),
		    "20-b.conf:2: duplicate rule 'x' "
		    "(first defined at %s/10-a.conf:1)",
		    tmpdir);
		snprintf(want1, sizeof(want1),
		    "20-b.conf:3: duplicate role 'r' "
		    "(first defined at %s/10-a.conf:2)",
		    tmpdir);
		snprintf(want2, sizeof(want2),
		    "20-b.conf:5: duplicate role 's' "
		    "(first defined at %s/20-b.conf:4)",
		    tmpdir);
		r = tsi_policy_check_dir(tmpdir, collect, &c);
		assert_int_equal(r, 3);
		assert_int_equal(c.n, 3);
		assert_string_equal(c.msgs[0], want[0]);
		assert_string_equal(c.msgs[1], want[1]);
		assert_string_equal(c.msgs[2], want[2]);
	}
}

static void
test_file_selection_and_split(void **state)
{
	/* Only *.conf, no dot files, in name order; a role may name a rule of
	 * a later file; other files are ignored even when broken. */
	static const struct file f[] = {
		{ "b.conf",
		    "rules = ( { name = \"x\"; paths = [ \"secret/data/x\" ]; "
		    "capabilities = [ \"read\" ]; } );\n" },
		{ "a.conf",
		    "roles = ( { name = \"r\"; rules = [ \"x\" ]; token_ttl = "
		    "42; } );\n" },
		{ "README.md", "not a policy {{{" },
		{ ".hidden.conf", "broken = " },
		{ "c.conf.bak", "broken = " },
		{ "empty.conf", "# nothing but a comment\n" },
		{ NULL, NULL },
	};
	static const char *const none[] = { NULL };
	struct tsi_policy_set *p = NULL;
	struct tsi_decision d;
	char err[512];
	size_t nf, nro, nru, n;
	const char *const *rules;
	json_t *claims = json_object();
	long ttl = 0;

	(void)state;
	expect_errors(f, none);
	assert_int_equal(tsi_policy_load_dir(tmpdir, &p, err, sizeof(err)),
	    TSI_OK);
	tsi_policy_stats(p, &nf, &nro, &nru);
	assert_int_equal(nf, 3);
	assert_int_equal(nro, 1);
	assert_int_equal(nru, 1);
	rules = tsi_policy_role_rules(p, "r", &n);
	assert_non_null(rules);
	assert_int_equal(n, 1);
	assert_string_equal(rules[0], "x");
	assert_null(tsi_policy_role_rules(p, "nope", &n));
	assert_int_equal(n, 0);
	assert_int_equal(tsi_policy_login(p, "r", claims, &ttl, &d), TSI_OK);
	assert_int_equal(ttl, 42);
	assert_int_equal(tsi_policy_eval(p, "r", claims, "secret/data/x",
	                     TSI_CAP_READ, &d),
	    TSI_OK);
	assert_string_equal(d.rule, "x");
	tsi_policy_unref(p);
	json_decref(claims);
}

static void
test_include_refused(void **state)
{
	/* A set is exactly the files of its directory: no @include (it could
	 * read any file the server can). */
	static const struct file f[] = {
		{ "a.conf", "rules = (\n  @include \"common.inc\"\n);\n" },
		{ "b.conf",
		    "# fine\nrules = ( { name = \"x\"; paths = [ "
		    "\"secret/data/@include\" ]; "
		    "capabilities = [ \"read\" ]; } );\n" },
		{ "common.inc",
		    "{ name = \"y\"; paths = [ \"secret/data/x\" ]; "
		    "capabilities = [ \"read\" ]; }\n" },
		{ NULL, NULL },
	};
	static const char *const want[] = {
		"a.conf:2: @include is not supported in policy files (put the "
		"file in the policy directory)",
		NULL,
	};

	(void)state;
	expect_errors(f, want);
}

static void
test_large_and_binary_files(void **state)
{
	static const struct file none[] = { { NULL, NULL } };
	struct collected c;
	char p[512];
	FILE *f;
	size_t i;

	(void)state;
	make_dir(none);
	snprintf(p, sizeof(p), "%s/big.conf", tmpdir);
	assert_non_null(f = fopen(p, "w"));
	for (i = 0; i < 1024 * 1024 / 15 + 1; i++)
		fputs("# padding.....\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/nul.conf", tmpdir);
	assert_non_null(f = fopen(p, "w"));
	fwrite("roles = ();\0rules = ();\n", 1, 25, f);
	fclose(f);
	memset(&c, 0, sizeof(c));
	assert_int_equal(tsi_policy_check_dir(tmpdir, collect, &c), 2);
	assert_string_equal(c.msgs[0],
	    "big.conf: file larger than 1048576 bytes");
	assert_string_equal(c.msgs[1], "nul.conf: file contains a NUL byte");
}

static void
test_empty_and_missing_dir(void **state)
{
	static const struct file none[] = { { NULL, NULL } };
	struct tsi_policy_set *p = NULL;
	struct tsi_decision d;
	struct collected c;
	char err[512];
	json_t *claims = json_object();

	(void)state;
	make_dir(none);
	/* An empty directory is a valid set that denies everything. */
	assert_int_equal(tsi_policy_load_dir(tmpdir, &p, err, sizeof(err)),
	    TSI_OK);
	assert_int_equal(tsi_policy_eval(p, NULL, claims, "secret/data/x",
	                     TSI_CAP_READ, &d),
	    TSI_ERR_DENIED);
	assert_string_equal(d.rule, "default-deny");
	assert_int_equal(tsi_policy_login(p, "r", claims, NULL, &d),
	    TSI_ERR_NOT_FOUND);
	tsi_policy_unref(p);
	p = NULL;
	memset(&c, 0, sizeof(c));
	assert_int_equal(tsi_policy_check_dir("/nonexistent/tsi-policy",
	                     collect, &c),
	    TSI_ERR_IO);
	assert_int_equal(c.n, 1);
	assert_non_null(
	    strstr(c.msgs[0], "/nonexistent/tsi-policy: cannot open"));
	assert_int_equal(tsi_policy_load_dir("/nonexistent/tsi-policy", &p, err,
	                     sizeof(err)),
	    TSI_ERR_IO);
	assert_null(p);
	assert_non_null(strstr(err, "cannot open policy directory"));
	assert_int_equal(tsi_policy_load_dir(NULL, &p, err, sizeof(err)),
	    TSI_ERR_INVALID_ARG);
	json_decref(claims);
}

static void *
hammer(void *arg)
{
	struct tsi_policy_set *p = arg;
	json_t *claims = json_pack("{s:s}", "region", "eu-de");
	struct tsi_decision d;
	int i, ok = 1;

	for (i = 0; i < 2000; i++) {
		struct tsi_policy_set *q = tsi_policy_ref(p);

		if (tsi_policy_eval(q, NULL, claims, "secret/data/eu-de/x",
		        TSI_CAP_READ, &d) != TSI_OK)
			ok = 0;
		tsi_policy_unref(q);
	}
	json_decref(claims);
	return ok ? p : NULL;
}

static void
test_refcount_threads(void **state)
{
	static const struct file f[] = {
		{ "a.conf",
		    "rules = ( { name = \"x\"; paths = [ "
		    "\"secret/data/{region}/*\" ]; "
		    "capabilities = [ \"read\" ]; } );\n" },
		{ NULL, NULL },
	};
	struct tsi_policy_set *p = NULL;
	pthread_t t[4];
	char err[512];
	void *res;
	int i;

	(void)state;
	make_dir(f);
	assert_int_equal(tsi_policy_load_dir(tmpdir, &p, err, sizeof(err)),
	    TSI_OK);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, p), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &res), 0);
		assert_ptr_equal(res, p);
	}
	/* One reference left: ours. Swap-style use: ref, unref twice. */
	assert_ptr_equal(tsi_policy_ref(p), p);
	tsi_policy_unref(p);
	tsi_policy_unref(p);
	tsi_policy_unref(NULL);
	assert_null(tsi_policy_ref(NULL));
}

static int
cleanup(void **state)
{
	(void)state;
	if (tmpdir[0] != '\0')
		rm_dir(tmpdir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_unknown_keys_and_types),
		cmocka_unit_test(test_capabilities),
		cmocka_unit_test(test_paths_and_templates),
		cmocka_unit_test(test_match_errors),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_duplicates_across_files),
		cmocka_unit_test(test_file_selection_and_split),
		cmocka_unit_test(test_include_refused),
		cmocka_unit_test(test_large_and_binary_files),
		cmocka_unit_test(test_empty_and_missing_dir),
		cmocka_unit_test(test_refcount_threads),
	};

	vault_policy_mounts_register();
	return cmocka_run_group_tests(tests, NULL, cleanup);
}
