/*
 * tsi.secrets / TSI_SECRETS: the injector (at admission) and the sidecar
 * (before fetching) apply one rule. Every input the two former validators
 * were tested or fuzzed with goes through both callers and the shared rule;
 * all three verdicts must be the same, so that a pod the injector admits is
 * never refused by its sidecar.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "injector.h"
#include "sidecar/sidecar.h"
#include "tsi/err.h"
#include "tsi/secrets_spec.h"

#define E(n, p, d) "{\"name\":\"" n "\",\"path\":\"" p "\",\"dest\":\"" d "\"}"

/* The two inputs the former copies disagreed on, then the test cases of
 * both former validators' unit tests. */
static const char *const cases[] = {
	"[" E("a", "p/a", "x") "," E("a", "p/b", "y") "]",
	"[" E("a", "p", "1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17") "]",
	"[" E("a", "p", "1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16") "]",
	/* injector */
	"",
	"{}",
	"[]",
	"[1]",
	"not json",
	"[{}]",
	"[" E("a", "secret/a", "/tsi-secrets/a") "] x",
	"[{\"name\":\"a\",\"name\":\"b\",\"path\":\"secret/a\",\"dest\":\"/"
	"tsi-secrets/a\"}]",
	"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/tsi-secrets/"
	"a\",\"mode\":\"0644\"}]",
	"[" E("a", "secret/a", "/etc") "]",
	"[" E("a", "secret/a", "/tsi-secretsX") "]",
	"[" E("a", "secret/a", "/tsi-secrets/../etc") "]",
	"[" E("a", "secret/a", "../x") "]",
	"[" E("../a", "secret/a", "/tsi-secrets/a") "]",
	"[" E("..", "secret/a", "/tsi-secrets/a") "]",
	"[" E("a", "/secret/a", "/tsi-secrets/a") "]",
	"[" E("a", "secret//a", "/tsi-secrets/a") "]",
	"[" E("a", "secret/a?x=1", "/tsi-secrets/a") "]",
	"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/tsi-secrets/"
	"a\",\"field\":7}]",
	"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/tsi-secrets/"
	"a\",\"field\":\"a/b\"}]",
	"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/tsi-secrets/"
	"a\",\"field\":\"a b\"}]",
	"[" E("a", "secret/a", "/tsi-secrets/a") "," E("a", "secret/b",
	    "/tsi-secrets/a") "]",
	"[" E("a", "secret/a", "/tsi-secrets") "]",
	"[" E("a", "secret/a", "/tsi-secrets/") "]",
	"[{\"name\":\"a\",\"path\":\"secret/"
	"a\",\"dest\":\"a\",\"format\":\"yaml\"}]",
	"[{\"name\":\"a\",\"path\":\"secret/"
	"a\",\"dest\":\"a\",\"format\":\"raw\"}]",
	"[" E("a", "secret/a", "a") "," E("b", "secret/b",
	    "/tsi-secrets/a/b") "]",
	"[" E("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	      "a",
	    "secret/a", "a") "]",
	"[" E("a\\u0000b", "secret/a", "/tsi-secrets/a") "]",
	"[ {\"path\": \"secret/data/a/b\", \"name\": \"db\", \"dest\": "
	"\"/tsi-secrets/x\","
	" \"field\": \"password\"} ]",
	"[{\"name\":\"cfg\",\"path\":\"app/cfg\",\"dest\":\"app/env\","
	"\"format\":\"env\"},{\"name\":\"pw\",\"path\":\"app/db\","
	"\"dest\":\"/tsi-secrets/app/"
	"pw\",\"field\":\"password\",\"format\":\"raw\"}]",
	/* sidecar */
	"[{\"name\":\"record\",\"path\":\"secret/data/medical/record\","
	"\"dest\":\"medical/record.json\"},"
	"{\"name\":\"pw\",\"path\":\"db/creds\",\"dest\":\"/run/tsi/secrets/db/"
	"pw\","
	"\"field\":\"password\",\"format\":\"raw\"},"
	"{\"name\":\"env\",\"path\":\"db/"
	"creds\",\"dest\":\"db.env\",\"format\":\"env\"}]",
	"[{\"name\":\"a\",",
	"{\"name\":\"a\"}",
	"[42]",
	"[{\"path\":\"a\",\"dest\":\"a\"}]",
	"[{\"name\":\"a\",\"dest\":\"a\"}]",
	"[{\"name\":\"a\",\"path\":\"a\"}]",
	"[" E("a b", "a", "a") "]",
	"[{\"name\":1,\"path\":\"a\",\"dest\":\"a\"}]",
	"[{\"name\":\"a\",\"path\":\"a\",\"dest\":\"a\",\"field\":\"\"}]",
	"[" E("a", "a", "x") "," E("b", "b", "x") "]",
	"[" E("a", "a", "x") "," E("b", "b", "x/y") "]",
	"[" E("a", "a/../b", "a") "]",
	"[" E("a", "a", "a\\u0000b") "]",
	"[" E("a", "a", "..") "]",
	"[" E("a", "a", "a/../../x") "]",
	"[" E("a", "a", "a/./b") "]",
	"[" E("a", "a", "./a") "]",
	"[" E("a", "a", "/etc/passwd") "]",
	"[" E("a", "a", "/run/tsi/secretsX/a") "]",
	"[" E("a", "a", "/run/tsi/secrets") "]",
	"[" E("a", "a", "a//b") "]",
	"[" E("a", "a", "a/") "]",
	"[" E("a", "a", "") "]",
	"[" E("a", "a", "/run/tsi/secrets/../x") "]",
	"[" E("a", "a", "/x/a") "]",
};

static const char *const mounts[] = { "/tsi-secrets", "/run/tsi/secrets" };

static struct tsi_injector_conf *
conf(const char *mount)
{
	char text[512], err[256];
	struct tsi_injector_conf *c = NULL;

	snprintf(text, sizeof(text),
	    "tls_cert = \"/c.pem\";\ntls_key = "
	    "\"/k.pem\";\nsidecar_image = \"reg/tsi-sidecar:1\";\nvault_addr = "
	    "\"https://v:8200\";\nissuer_mount_path = \"/run/tsi-issuer\";\n"
	    "secrets_mount_path = \"%s\";\n",
	    mount);
	assert_int_equal(tsi_injector_conf_load_string("injector.conf", text,
	                     &c, err, sizeof(err)),
	    TSI_OK);
	return c;
}

/*
 * Runs text through the injector, the sidecar (on what the injector hands
 * it, or on the raw text when the injector refused) and the shared rule.
 * Returns 1 when admitted.
 */
static int
same_verdict(const struct tsi_injector_conf *c, const char *mount,
    const char *text)
{
	struct tsi_sidecar_spec *sc = NULL;
	struct tsi_secrets_spec *sh = NULL;
	char *canon = NULL, why[512] = "", err[512] = "";
	int inj, side, shared;

	inj = tsi_injector_secrets_validate(c, text, &canon, why, sizeof(why));
	side = tsi_sidecar_spec_parse("TSI_SECRETS", text, strlen(text), mount,
	    &sc, err, sizeof(err));
	shared = tsi_secrets_spec_parse("tsi.secrets", text, strlen(text),
	    mount, &sh, why, sizeof(why));
	if ((inj == TSI_OK) != (side == TSI_OK) ||
	    (shared == TSI_OK) != (side == TSI_OK))
		fail_msg("disagree on %s (mount %s): injector %d, sidecar %d "
		         "(%s), shared %d",
		    text, mount, inj, side, err, shared);
	tsi_sidecar_spec_free(sc);
	tsi_secrets_spec_free(sh);
	sc = NULL;
	if (inj == TSI_OK) {
		/* What the pod's sidecar really reads is the canonical text. */
		assert_int_equal(tsi_sidecar_spec_parse("TSI_SECRETS", canon,
		                     strlen(canon), mount, &sc, err,
		                     sizeof(err)),
		    TSI_OK);
		tsi_sidecar_spec_free(sc);
	}
	free(canon);
	return inj == TSI_OK;
}

static void
test_case_lists(void **state)
{
	struct tsi_injector_conf *c;
	size_t i, m, ok = 0;

	(void)state;
	for (m = 0; m < sizeof(mounts) / sizeof(mounts[0]); m++) {
		c = conf(mounts[m]);
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			ok += (size_t)same_verdict(c, mounts[m], cases[i]);
		tsi_injector_conf_free(c);
	}
	/* Both kinds are exercised: some admitted, most refused. */
	assert_true(ok >= 5);
	assert_true(ok < sizeof(cases) / sizeof(cases[0]));
}

/* The inputs the injector used to admit and the sidecar then refused. */
static void
test_former_disagreements_refused(void **state)
{
	struct tsi_injector_conf *c = conf("/tsi-secrets");
	char *canon = NULL, why[512] = "";

	(void)state;
	assert_int_equal(tsi_injector_secrets_validate(c, cases[0], &canon, why,
	                     sizeof(why)),
	    TSI_ERR_INVALID_ARG);
	assert_non_null(strstr(why, "already used"));
	assert_null(canon);
	assert_int_equal(tsi_injector_secrets_validate(c, cases[1], &canon, why,
	                     sizeof(why)),
	    TSI_ERR_INVALID_ARG);
	assert_non_null(strstr(why, "too many path segments"));
	assert_null(canon);
	/* 16 segments is the limit, not past it. */
	assert_int_equal(tsi_injector_secrets_validate(c, cases[2], &canon, why,
	                     sizeof(why)),
	    TSI_OK);
	free(canon);
	tsi_injector_conf_free(c);
}

/* Reads a whole small corpus file; caller frees. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *b;
	size_t n;

	assert_non_null(f);
	b = calloc(1, 1 << 20);
	assert_non_null(b);
	n = fread(b, 1, (1 << 20) - 1, f);
	assert_true(feof(f));
	b[n] = '\0';
	fclose(f);
	return b;
}

/* Runs f on every file of tests/fuzz/corpus/<dir>; returns how many. */
static size_t
each_corpus_file(const char *dir, void (*f)(const char *text))
{
	const char *top = getenv("TSI_SOURCE_DIR");
	char path[4096];
	struct dirent *de;
	DIR *d;
	size_t n = 0;
	char *text;

	assert_non_null(top);
	assert_true(snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/%s", top,
	                dir) < (int)sizeof(path));
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		assert_true(snprintf(path, sizeof(path),
		                "%s/tests/fuzz/corpus/"
		                "%s/%s",
		                top, dir, de->d_name) < (int)sizeof(path));
		text = slurp(path);
		f(text);
		free(text);
		n++;
	}
	closedir(d);
	return n;
}

static void
spec_input(const char *text)
{
	struct tsi_injector_conf *c;
	size_t m;

	for (m = 0; m < sizeof(mounts) / sizeof(mounts[0]); m++) {
		c = conf(mounts[m]);
		(void)same_verdict(c, mounts[m], text);
		tsi_injector_conf_free(c);
	}
}

static size_t annotated;

/* An AdmissionReview: its pod's tsi.secrets annotation, if any. */
static void
admission_input(const char *text)
{
	json_t *doc = json_loads(text, 0, NULL), *ann;

	assert_non_null(doc);
	ann = json_object_get(
	    json_object_get(json_object_get(json_object_get(json_object_get(doc,
	                                                        "request"),
	                                        "object"),
	                        "metadata"),
	        "annotations"),
	    "tsi.secrets");
	if (json_is_string(ann)) {
		spec_input(json_string_value(ann));
		annotated++;
	}
	json_decref(doc);
}

static void
test_fuzz_corpora(void **state)
{
	(void)state;
	assert_true(each_corpus_file("sidecar_spec", spec_input) >= 2);
	assert_true(each_corpus_file("admission", admission_input) >= 2);
	assert_true(annotated >= 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_case_lists),
		cmocka_unit_test(test_former_disagreements_refused),
		cmocka_unit_test(test_fuzz_corpora),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
