/*
 * The login's body scanner and answer writer (vault-plugin/login_wire.c)
 * against jansson, which they stand in for:
 * - every body the scanner accepts, vault_login_parse reads to the same role
 *   and jwt; bodies it must leave to the general parser are refused by it;
 * - the answer text is byte for byte json_dumps(JSON_COMPACT) of the JSON
 *   tree tsi-vault built before (the envelope and auth object with the
 *   claims as metadata), over fixed and random claims with escapes,
 *   control bytes, UTF-8, NULs, reals, nesting and over-long arrays.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vault.h"
#include "parse.h"
#include "login_wire.h"
#include "tsi/buf.h"
#include "tsi/err.h"

/* ---- the body ---- */

static void
scan_ok(const char *body, const char *role, const char *jwt)
{
	struct vault_login_body lb;
	const char *r2, *j2;
	json_t *req = NULL;

	assert_int_equal(vault_login_body_scan(body, strlen(body), &lb),
	    TSI_OK);
	assert_int_equal(lb.rolelen, strlen(role));
	assert_memory_equal(lb.role, role, lb.rolelen);
	assert_int_equal(lb.jwtlen, strlen(jwt));
	assert_memory_equal(lb.jwt, jwt, lb.jwtlen);
	/* The general parser reads the same two strings. */
	assert_int_equal(vault_login_parse(body, strlen(body), &req, &r2, &j2),
	    TSI_OK);
	assert_string_equal(r2, role);
	assert_string_equal(j2, jwt);
	json_decref(req);
}

static void
scan_refused(const char *body, size_t len)
{
	struct vault_login_body lb;

	assert_int_equal(vault_login_body_scan(body, len, &lb), TSI_ERR_PARSE);
}

static void
test_body_plain(void **state)
{
	(void)state;
	scan_ok("{\"role\":\"demo\",\"jwt\":\"a.b.c\"}", "demo", "a.b.c");
	scan_ok("{\"jwt\": \"eyJ.x-_.y\", \"role\": \"r 1\"}", "r 1",
	    "eyJ.x-_.y");
	scan_ok(" \t\r\n{ \"role\" :\n\"demo\" ,\t\"jwt\":\"\" }\n ", "demo",
	    "");
	scan_ok("{\"role\":\"\",\"jwt\":\"x\"}", "", "x");
	scan_ok("{\"role\":\"~!@#$%^&*()/'<>\",\"jwt\":\"x\"}",
	    "~!@#$%^&*()/'<>", "x");
}

static void
test_body_left_to_jansson(void **state)
{
	static const char *const bodies[] = {
		"",
		"   ",
		"{}",
		"[]",
		"null",
		"{\"role\":\"demo\"}",
		"{\"jwt\":\"x\"}",
		"{\"role\":\"demo\",\"jwt\":\"x\",}",
		"{\"role\":\"demo\",\"jwt\":\"x\"} x",
		"{\"role\":\"demo\",\"jwt\":\"x\"}{}",
		"{\"role\":\"demo\",\"role\":\"x\"}",
		"{\"jwt\":\"x\",\"jwt\":\"y\"}",
		"{\"role\":\"demo\",\"jwt\":\"x\",\"extra\":1}",
		"{\"role\":\"de\\\"mo\",\"jwt\":\"x\"}",
		"{\"role\":\"de\\u006do\",\"jwt\":\"x\"}",
		"{\"role\":\"d\xc3\xa9mo\",\"jwt\":\"x\"}",
		"{\"role\":\"d\x7fmo\",\"jwt\":\"x\"}",
		"{\"role\":\"d\tmo\",\"jwt\":\"x\"}",
		"{\"role\":1,\"jwt\":\"x\"}",
		"{\"role\":\"demo\",\"jwt\":null}",
		"{\"ro\\u006ce\":\"demo\",\"jwt\":\"x\"}",
		"{role:\"demo\",\"jwt\":\"x\"}",
		"{\"role\":\"demo\" \"jwt\":\"x\"}",
		"{\"role\" \"demo\",\"jwt\":\"x\"}",
		"{\"role\":\"demo\",\"jwt\":\"x\"",
		"{\"role\":\"demo\",\"jwt\":\"x",
		"\xef\xbb\xbf{\"role\":\"demo\",\"jwt\":\"x\"}",
		"{\"role\":\"demo\"\f,\"jwt\":\"x\"}",
	};
	static const char nul[] = "{\"role\":\"demo\",\"jwt\":\"x\"}\0";
	static const char nul2[] = "{\"role\":\"de\0mo\",\"jwt\":\"x\"}";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		scan_refused(bodies[i], strlen(bodies[i]));
	scan_refused(nul, sizeof(nul) - 1);
	scan_refused(nul2, sizeof(nul2) - 1);
	/* A body cut anywhere is refused. */
	{
		const char *b = "{\"role\":\"demo\",\"jwt\":\"x.y.z\"}";
		for (i = 0; i < strlen(b); i++)
			scan_refused(b, i);
	}
}

/* Random edits of valid bodies (a piece inserted, bytes deleted or
 * replaced): whatever the scanner accepts, jansson reads to the same
 * strings (the converse is not required: it may leave more to jansson). */
static void
test_body_random(void **state)
{
	static const char *const bases[] = {
		"{\"role\":\"demo\",\"jwt\":\"a.b.c\"}",
		" { \"jwt\" : \"x-y_z\" ,\n\"role\":\"r\" } ",
	};
	static const char *const pieces[] = {
		"{",
		"}",
		"\"role\"",
		"\"jwt\"",
		"\"x\"",
		":",
		",",
		" ",
		"\n",
		"\\",
		"\\n",
		"1",
		"null",
		"\xc3\xa9",
		"[",
		"]",
		"\"",
		"\t",
		"\x01",
		"\x7f",
		"\\u0041",
		"\r",
	};
	char body[256];
	size_t n, k, len, accepted = 0, refused = 0;
	unsigned seed = 12345;

	(void)state;
	for (n = 0; n < 200000; n++) {
		struct vault_login_body lb;
		json_t *req = NULL;
		const char *r2, *j2;

		seed = seed * 1103515245u + 12345u;
		snprintf(body, sizeof(body), "%s", bases[(seed >> 16) & 1]);
		len = strlen(body);
		for (k = 0; k < 1 + (seed >> 20) % 3; k++) {
			size_t at, m;
			const char *p;

			seed = seed * 1103515245u + 12345u;
			at = (seed >> 16) % (len + 1);
			switch ((seed >> 8) % 3) {
			case 0:
				p = pieces[(seed >> 24) %
				    (sizeof(pieces) / sizeof(pieces[0]))];
				m = strlen(p);
				if (len + m + 1 > sizeof(body))
					break;
				memmove(body + at + m, body + at, len - at + 1);
				memcpy(body + at, p, m);
				len += m;
				break;
			case 1:
				m = 1 + (seed >> 24) % 3;
				if (at + m > len)
					m = len - at;
				memmove(body + at, body + at + m,
				    len - at - m + 1);
				len -= m;
				break;
			default:
				if (at < len)
					body[at] = (char)(seed >> 24);
				break;
			}
		}
		if (vault_login_body_scan(body, len, &lb) != TSI_OK) {
			refused++;
			continue;
		}
		accepted++;
		assert_int_equal(vault_login_parse(body, len, &req, &r2, &j2),
		    TSI_OK);
		assert_int_equal(strlen(r2), lb.rolelen);
		assert_memory_equal(r2, lb.role, lb.rolelen);
		assert_int_equal(strlen(j2), lb.jwtlen);
		assert_memory_equal(j2, lb.jwt, lb.jwtlen);
		json_decref(req);
	}
	/* Both outcomes are reached often. */
	assert_true(accepted > 1000);
	assert_true(refused > 1000);
}

/* ---- the answer ---- */

/* The JSON tree tsi-vault answered with before (auth.c's claims_metadata,
 * json_pack of the auth object, vault_envelope for the login route). */
static json_t *
ref_metadata(const json_t *claims)
{
	json_t *md = json_object(), *val, *e;
	const char *key;
	char num[32];
	size_t i;

	json_object_foreach ((json_t *)claims, key, val) {
		json_t *s = NULL;

		if (json_is_string(val))
			s = json_string(json_string_value(val));
		else if (json_is_integer(val)) {
			snprintf(num, sizeof(num), "%lld",
			    (long long)json_integer_value(val));
			s = json_string(num);
		} else if (json_is_real(val)) {
			snprintf(num, sizeof(num), "%g", json_real_value(val));
			s = json_string(num);
		} else if (json_is_boolean(val))
			s = json_string(json_is_true(val) ? "true" : "false");
		else if (json_is_array(val)) {
			struct tsi_buf *b = tsi_buf_new(64 * 1024);
			int ok = b != NULL;
			json_array_foreach (val, i, e) {
				if (!ok)
					break;
				if (i > 0 && tsi_buf_puts(b, ",") != TSI_OK)
					ok = 0;
				if (ok && json_is_string(e) &&
				    tsi_buf_puts(b, json_string_value(e)) !=
				        TSI_OK)
					ok = 0;
			}
			if (ok)
				s = json_string(tsi_buf_str(b));
			tsi_buf_free(b);
		}
		if (s != NULL)
			json_object_set_new(md, key, s);
	}
	return md;
}

static char *
ref_answer(const struct vault_login_answer *a)
{
	json_t *policies = json_array(), *auth, *env;
	char *text;
	size_t i;

	for (i = 0; i < a->nrules; i++)
		json_array_append_new(policies, json_string(a->rules[i]));
	auth = json_pack("{sssssOsOsosIsbsssssn}", "client_token", a->token,
	    "accessor", a->accessor, "policies", policies, "token_policies",
	    policies, "metadata", ref_metadata(a->claims), "lease_duration",
	    (json_int_t)a->ttl, "renewable", 0, "entity_id", "", "token_type",
	    "service", "mfa_requirement");
	assert_non_null(auth);
	json_object_set_new(auth, "orphan", json_true());
	env = json_pack("{sssssbsIsososnsnso}", "request_id", a->request_id,
	    "lease_id", "", "renewable", 0, "lease_duration", (json_int_t)0,
	    "data", json_null(), "auth", auth, "wrap_info", "warnings",
	    "mount_type", json_string(""));
	assert_non_null(env);
	text = json_dumps(env, JSON_COMPACT);
	json_decref(env);
	json_decref(policies);
	return text;
}

static void
same_answer(const json_t *claims, const char *const *rules, size_t nrules)
{
	struct vault_login_answer a;
	char *want, *got;

	a.request_id = "6a1c3c5e-6a39-4c2f-9a7a-6f8c2b1d0e11";
	a.token = "hvs.AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHHIIIIJJJJKKK";
	a.accessor = "abcdefghijklmnopqrstuvwx";
	a.rules = rules;
	a.nrules = nrules;
	a.claims = claims;
	a.ttl = 3599;
	want = ref_answer(&a);
	got = vault_login_answer_text(&a);
	assert_non_null(want);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(want);
	tsi_strfree(got);
}

static void
test_answer_fixed(void **state)
{
	static const char *const rules[] = { "medical-records", "a\"b",
		"\xc3\xa9t\xc3\xa9", "tab\there", "" };
	json_t *c;

	(void)state;
	c = json_loads(
	    "{\"iss\":\"tsi-issuer/n1\",\"sub\":\"spiffe://x/ns/a\","
	    "\"aud\":[\"tsi-vault\",\"other\"],\"iat\":1795394442,\"exp\":"
	    "1795398042,"
	    "\"images\":[\"sha256:aa\",7,\"b\",null,{\"o\":1}],\"pi\":3.25,"
	    "\"big\":1e300,\"t\":true,\"f\":false,\"n\":null,\"o\":{\"a\":1},"
	    "\"q\\\"uote\":\"back\\\\slash\",\"ctl\":\"a\\u0001b\\u001fc\","
	    "\"utf\":\"\xe2\x82\xac \xf0\x9f\x94\x91\",\"del\":\"x\\u007fy\","
	    "\"nul\":\"be\\u0000fore\",\"slash\":\"a/b\",\"empty\":\"\","
	    "\"neg\":-42,\"e\":[]}",
	    JSON_ALLOW_NUL, NULL);
	assert_non_null(c);
	same_answer(c, rules, sizeof(rules) / sizeof(rules[0]));
	same_answer(c, NULL, 0);
	json_decref(c);
	c = json_object();
	same_answer(c, rules, 1);
	json_decref(c);
}

/* An array whose join passes 64 KiB is left out, as before; one that just
 * fits is kept. */
static void
test_answer_long_arrays(void **state)
{
	static const char *const rules[] = { "r" };
	json_t *c = json_object(), *big = json_array(), *fits = json_array();
	char s[1025];
	size_t i;

	(void)state;
	memset(s, 'x', 1024);
	s[1024] = '\0';
	for (i = 0; i < 70; i++)
		json_array_append_new(big, json_string(s));
	s[1022] = '\0'; /* 64 * 1022 + 63 commas: 65,471 bytes */
	for (i = 0; i < 64; i++)
		json_array_append_new(fits, json_string(s));
	json_object_set_new(c, "big", big);
	json_object_set_new(c, "fits", fits);
	json_object_set_new(c, "after", json_string("kept"));
	same_answer(c, rules, 1);
	json_decref(c);
}

static void
random_string(unsigned *seed, char *out, size_t max)
{
	static const char *const bits[] = { "a", "Z", "0", " ", "\"", "\\", "/",
		"\n", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac",
		"\xf0\x9f\x94\x91", ",", "{", "}", ":" };
	size_t len = 0, n, i;

	*seed = *seed * 1103515245u + 12345u;
	n = (*seed >> 16) % 12;
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		const char *b;
		*seed = *seed * 1103515245u + 12345u;
		b = bits[(*seed >> 16) % (sizeof(bits) / sizeof(bits[0]))];
		if (len + strlen(b) + 1 > max)
			break;
		memcpy(out + len, b, strlen(b) + 1);
		len += strlen(b);
	}
}

static json_t *
random_value(unsigned *seed, int depth)
{
	char s[64];
	json_t *a;
	size_t i, n;

	*seed = *seed * 1103515245u + 12345u;
	switch ((*seed >> 16) % (depth > 2 ? 6 : 8)) {
	case 0: random_string(seed, s, sizeof(s)); return json_string(s);
	case 1: return json_integer((json_int_t)(*seed >> 4) - 100000000);
	case 2: return json_real((double)(*seed >> 8) / 7.0);
	case 3: return json_boolean(*seed & 0x100);
	case 4: return json_null();
	case 5: random_string(seed, s, sizeof(s)); return json_string(s);
	case 6:
		a = json_array();
		n = (*seed >> 20) % 5;
		for (i = 0; i < n; i++)
			json_array_append_new(a, random_value(seed, depth + 1));
		return a;
	default:
		a = json_object();
		n = (*seed >> 20) % 4;
		for (i = 0; i < n; i++) {
			random_string(seed, s, sizeof(s));
			json_object_set_new(a, s,
			    random_value(seed, depth + 1));
		}
		return a;
	}
}

static void
test_answer_random(void **state)
{
	const char *rules[3];
	char r0[64], r1[64], key[64];
	unsigned seed = 4242;
	size_t n, i, nk;

	(void)state;
	for (n = 0; n < 2000; n++) {
		json_t *c = json_object();

		seed = seed * 1103515245u + 12345u;
		nk = (seed >> 16) % 16;
		for (i = 0; i < nk; i++) {
			random_string(&seed, key, sizeof(key));
			json_object_set_new(c, key, random_value(&seed, 0));
		}
		random_string(&seed, r0, sizeof(r0));
		random_string(&seed, r1, sizeof(r1));
		rules[0] = r0;
		rules[1] = "plain-rule";
		rules[2] = r1;
		same_answer(c, rules, (seed >> 16) % 4);
		json_decref(c);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_plain),
		cmocka_unit_test(test_body_left_to_jansson),
		cmocka_unit_test(test_body_random),
		cmocka_unit_test(test_answer_fixed),
		cmocka_unit_test(test_answer_long_arrays),
		cmocka_unit_test(test_answer_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
