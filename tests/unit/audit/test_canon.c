/* The canonical form of docs/audit-format.md (lib/audit/audit_canon.c): RFC 8785's
 * examples that fit the subset, 100,000 random values against jansson as
 * the oracle (it parses the output back to an equal value; keys come out in
 * UTF-16 order as iconv counts it; the strict reader accepts the output and,
 * on a mutated copy, exactly when jansson's parse written canonically gives
 * the same bytes), and format 1 against jansson 2.14's own dump. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <iconv.h>
#include <cmocka.h>

#include "audit_test.h"
#include "lib/audit/audit_canon.h"
#include "lib/audit/audit_int.h"

static char *
dump2(const json_t *v, size_t *len)
{
	int err = TSI_ERR_INTERNAL;
	char *s = audit_canon_dumps(v, AUDIT_FORMAT_V2, 1 << 20, len, &err);

	if (s == NULL)
		fail_msg("audit_canon_dumps: %d", err);
	return s;
}

/* in: JSON text as an RFC writes it; want: its canonical bytes. */
static void
check_vector(const char *in, const char *want)
{
	json_error_t jerr;
	json_t *v = json_loads(in, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	size_t len = 0;
	char *out;

	if (v == NULL)
		fail_msg("vector does not parse: %s", jerr.text);
	out = dump2(v, &len);
	if (len != strlen(want) || memcmp(out, want, len) != 0)
		fail_msg("canonical form differs:\n got  %s\n want %s", out,
		    want);
	assert_int_equal(audit_canon_check(out, len, NULL, NULL), TSI_OK);
	free(out);
	json_decref(v);
}

static void
test_rfc8785_vectors(void **state)
{
	(void)state;
	/* RFC 8785 3.2.3, sorting of object properties: by UTF-16 code
	 * units, so U+1F600 (D83D DE00) comes before U+FB33 */
	check_vector(
	    "{\"\\u20ac\": \"Euro Sign\", \"\\r\": \"Carriage Return\", "
	    "\"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\", \"1\": \"One\", "
	    "\"\\ud83d\\ude00\": \"Emoji: Grinning Face\", \"\\u0080\": "
	    "\"Control\", \"\\u00f6\": \"Latin Small Letter O With "
	    "Diaeresis\"}",
	    "{\"\\r\":\"Carriage "
	    "Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
	    "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\","
	    "\"\xe2\x82\xac\":\"Euro Sign\","
	    "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
	    "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
	/* RFC 8785 3.2.4's example without its "numbers" (reals are outside
	 * the subset): the string rules and the literals */
	check_vector("{\"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022"
	             "\\u005c\\\\\\\"\\/\", \"literals\": [null, true, false]}",
	    "{\"literals\":[null,true,false],\"string\":\"\xe2\x82\xac$"
	    "\\u000f\\nA'B"
	    "\\\"\\\\\\\\\\\"/\"}");
	/* RFC 8785 appendix C without its real "val" */
	check_vector("{\"time\": \"2019-01-28T07:45:10Z\", \"big\": \"055\"}",
	    "{\"big\":\"055\",\"time\":\"2019-01-28T07:45:10Z\"}");
	/* RFC 8785 appendix B's integer rows: 0, and 2^53 - 1 (the largest
	 * the subset keeps) */
	check_vector("[0, 9007199254740991, -9007199254740991]",
	    "[0,9007199254740991,-9007199254740991]");
	/* 3.2.2.2: the short escapes, \u00xx in lower case for the other
	 * controls, everything else (DEL, U+2028) as it is */
	check_vector("\"\\u0000\\u0008\\u0009\\u000a\\u000b\\u000c\\u000d"
	             "\\u001f \\u007f\\u2028\"",
	    "\"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f \x7f\xe2\x80\xa8\"");
	/* nesting and empty containers */
	check_vector("{\"b\": [{}, [], {\"z\": 1, \"a\": [true]}], \"a\": {}}",
	    "{\"a\":{},\"b\":[{},[],{\"a\":[true],\"z\":1}]}");
}

/* What the subset leaves out is refused by the writer and by the reader:
 * the RFC's own canonical numbers that are not integers, 2^53, -0. */
static void
test_outside_subset(void **state)
{
	static const char *const refused[] = {
		"333333333.3333333",
		"1e+30",
		"4.5",
		"0.002",
		"1e-27",
		"9007199254740992",
		"-9007199254740992",
		"-0",
		"01",
		"1.0",
		"1E3",
		"+1",
		"\"\\u001F\"",
		"\"\\/\"",
		"\"\\u0041\"",
		"\"\\u000a\"",
		"{\"b\":1,\"a\":2}",
		"{\"a\":1,\"a\":2}",
		"{ }",
		"[1, 2]",
		"\"\xc0\xaf\"",
		"\"\xed\xa0\x80\"",
		"\"\xf4\x90\x80\x80\"",
		"\"\x01\"",
		"[",
		"{\"a\"}",
		"tru",
		"\"\\u00\"",
		"",
		"1 ",
		"nul",
		"{\"\xef\xac\xb3\":1,\"\xf0\x9f\x98\x80\":2}",
	};
	json_t *v;
	size_t i;
	int err;
	char deep[2 * AUDIT_CANON_DEPTH_MAX + 4];

	(void)state;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (audit_canon_check(refused[i], strlen(refused[i]), NULL,
		        NULL) != TSI_ERR_PARSE)
			fail_msg("accepted: %s", refused[i]);
	v = json_real(4.5);
	assert_null(audit_canon_dumps(v, AUDIT_FORMAT_V2, 64, NULL, &err));
	assert_int_equal(err, TSI_ERR_INVALID_ARG);
	json_decref(v);
	v = json_integer(AUDIT_CANON_INT_MAX + 1);
	assert_null(audit_canon_dumps(v, AUDIT_FORMAT_V2, 64, NULL, &err));
	assert_int_equal(err, TSI_ERR_INVALID_ARG);
	json_decref(v);
	v = json_stringn_nocheck("\xff", 1);
	assert_null(audit_canon_dumps(v, AUDIT_FORMAT_V2, 64, NULL, &err));
	assert_int_equal(err, TSI_ERR_INVALID_ARG);
	json_decref(v);
	/* 32 containers deep is the limit, for both sides */
	for (i = 0; i < AUDIT_CANON_DEPTH_MAX; i++) {
		deep[i] = '[';
		deep[2 * AUDIT_CANON_DEPTH_MAX - 1 - i] = ']';
	}
	assert_int_equal(audit_canon_check(deep, 2 * AUDIT_CANON_DEPTH_MAX,
	                     NULL, NULL),
	    TSI_OK);
	v = json_loadb(deep, 2 * AUDIT_CANON_DEPTH_MAX, 0, NULL);
	assert_non_null(v);
	free(dump2(v, NULL));
	v = json_pack("[o]", v);
	assert_null(audit_canon_dumps(v, AUDIT_FORMAT_V2, 1024, NULL, &err));
	assert_int_equal(err, TSI_ERR_INVALID_ARG);
	json_decref(v);
	memmove(deep + 1, deep, 2 * AUDIT_CANON_DEPTH_MAX);
	deep[0] = '[';
	deep[2 * AUDIT_CANON_DEPTH_MAX + 1] = ']';
	assert_int_equal(audit_canon_check(deep, 2 * AUDIT_CANON_DEPTH_MAX + 2,
	                     NULL, NULL),
	    TSI_ERR_PARSE);
	/* a bounded output says so */
	v = json_string("0123456789");
	assert_null(audit_canon_dumps(v, AUDIT_FORMAT_V2, 11, NULL, &err));
	assert_int_equal(err, TSI_ERR_TOO_LARGE);
	json_decref(v);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* A random code point, weighted to what differs between the forms and
 * the sort orders: controls, ASCII, Latin-1, U+E000..U+FFFF, astral. */
static long
rnd_cp(void)
{
	long cp;

	switch (rnd() % 8) {
	case 0: return (long)(rnd() % 0x20);
	case 1:
	case 2:
	case 3: return 0x20 + (long)(rnd() % 0x5f);
	case 4: return 0x7f + (long)(rnd() % 0x100);
	case 5: return 0xe000 + (long)(rnd() % 0x2000);
	case 6: return 0x10000 + (long)(rnd() % 0x100000);
	default:
		do
			cp = (long)(rnd() % 0xe000);
		while (cp >= 0xd800);
		return cp;
	}
}

static size_t
put_utf8(char *o, long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Short strings that share prefixes often, so that sorting compares deep
 * into them. */
static size_t
rnd_str(char *o, size_t cap, int key)
{
	static const long shared[] = { 'a', 0xe9, 0xfb01, 0x1f600, 0x1f, 'b' };
	size_t n = 0, i, len = rnd() % 6;
	long cp;

	for (i = 0; i < len && n + 4 < cap; i++) {
		cp = rnd() % 2 ? shared[rnd() % 6] : rnd_cp();
		if (cp == 0 && key)
			cp = 1; /* jansson parses no NUL in a key back */
		n += put_utf8(o + n, cp);
	}
	return n;
}

static json_t *
rnd_value(int depth)
{
	char s[64];
	size_t n;
	json_t *c;
	int64_t i;

	switch (rnd() % (depth >= 4 ? 5 : 7)) {
	case 0:
		/* anywhere in the range, its ends, and small ones */
		i = (int64_t)(((uint64_t)rnd() << 32 | rnd()) %
		        (uint64_t)(2 * AUDIT_CANON_INT_MAX + 1)) -
		    AUDIT_CANON_INT_MAX;
		if (rnd() % 4 == 0)
			i = rnd() % 2 ? AUDIT_CANON_INT_MAX
			              : -AUDIT_CANON_INT_MAX;
		else if (rnd() % 3 == 0)
			i = (int64_t)(rnd() % 201) - 100;
		return json_integer((json_int_t)i);
	case 1:
		return rnd() % 3 == 0 ? json_true()
		    : rnd() % 2       ? json_false()
		                      : json_null();
	case 2:
	case 3: n = rnd_str(s, sizeof(s), 0); return json_stringn(s, n);
	case 4:
		c = json_array();
		for (n = rnd() % 4; n > 0; n--)
			json_array_append_new(c, rnd_value(depth + 1));
		return c;
	default:
		c = json_object();
		for (n = rnd() % 6; n > 0; n--) {
			size_t kl = rnd_str(s, sizeof(s), 1);

			json_object_setn_new(c, s, kl, rnd_value(depth + 1));
		}
		return c;
	}
}

/* Consecutive keys of every object of v ascend in UTF-16 code units, as
 * iconv encodes them (big-endian units compare as bytes). */
static void
check_order(iconv_t cd, const json_t *v)
{
	char prev[512], cur[512], *in, *out;
	size_t pl = 0, cl, il, ol, i;
	const char *k;
	json_t *e;
	void *it;
	int first = 1;

	if (json_is_array(v)) {
		json_array_foreach (v, i, e)
			check_order(cd, e);
		return;
	}
	if (!json_is_object(v))
		return;
	for (it = json_object_iter((json_t *)v); it != NULL;
	     it = json_object_iter_next((json_t *)v, it)) {
		k = json_object_iter_key(it);
		in = (char *)k;
		il = json_object_iter_key_len(it);
		out = cur;
		ol = sizeof(cur);
		iconv(cd, NULL, NULL, NULL, NULL);
		assert_true(iconv(cd, &in, &il, &out, &ol) != (size_t)-1);
		cl = sizeof(cur) - ol;
		if (!first) {
			int c = memcmp(prev, cur, pl < cl ? pl : cl);

			if (c > 0 || (c == 0 && pl >= cl))
				fail_msg("keys out of UTF-16 order");
		}
		memcpy(prev, cur, cl);
		pl = cl;
		first = 0;
		check_order(cd, json_object_iter_value(it));
	}
}

/* The oracle's verdict on bytes: canonical when jansson parses them and
 * their canonical form is the same bytes; -1 when it cannot tell (jansson
 * parses no NUL inside a key, which the form allows). */
static int
oracle_canonical(const char *b, size_t n)
{
	json_error_t jerr;
	json_t *v = json_loadb(b, n,
	    JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
	char *out;
	size_t len = 0;
	int err, ok;

	if (v == NULL)
		return json_error_code(&jerr) == json_error_null_byte_in_key
		    ? -1
		    : 0;
	out = audit_canon_dumps(v, AUDIT_FORMAT_V2, n + 1, &len, &err);
	ok = out != NULL && len == n && memcmp(out, b, n) == 0;
	free(out);
	json_decref(v);
	return ok;
}

static void
mutate(char *b, size_t *n, size_t cap)
{
	static const char bytes[] = " \"\\u0-.eE,:{}[]Aaf1\x7f\x80\xbf\xff";
	size_t at = *n ? rnd() % *n : 0;

	switch (rnd() % 3) {
	case 0:
		if (*n > 0)
			b[at] = bytes[rnd() % (sizeof(bytes) - 1)];
		break;
	case 1:
		if (*n > 0) {
			memmove(b + at, b + at + 1, *n - at - 1);
			(*n)--;
		}
		break;
	default:
		if (*n < cap) {
			memmove(b + at + 1, b + at, *n - at);
			b[at] = bytes[rnd() % (sizeof(bytes) - 1)];
			(*n)++;
		}
		break;
	}
}

#define RANDOM_RECORDS 100000

static void
test_random_against_jansson(void **state)
{
	iconv_t cd = iconv_open("UTF-16BE", "UTF-8");
	char *out, mut[4096];
	size_t len, mn, agree_rejected = 0, agree_accepted = 0, unknown = 0;
	int verdict;
	json_t *v, *back;
	json_error_t jerr;
	int i;

	(void)state;
	assert_true(cd != (iconv_t)-1);
	for (i = 0; i < RANDOM_RECORDS; i++) {
		v = json_object();
		json_object_set_new(v, "op", json_string("read"));
		json_object_set_new(v, "claims", rnd_value(1));
		json_object_set_new(v, "x", rnd_value(0));
		out = dump2(v, &len);
		assert_int_equal(audit_canon_check(out, len, NULL, NULL),
		    TSI_OK);
		back = json_loadb(out, len,
		    JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
		if (back == NULL)
			fail_msg("jansson cannot parse %s: %s", out, jerr.text);
		if (!json_equal(v, back))
			fail_msg("parsed back to another value: %s", out);
		check_order(cd, back);
		/* the reader accepts exactly what the oracle calls canonical */
		if (len < sizeof(mut) - 1) {
			memcpy(mut, out, len);
			mn = len;
			mutate(mut, &mn, sizeof(mut));
			verdict = oracle_canonical(mut, mn);
			if (verdict < 0)
				unknown++;
			else if ((audit_canon_check(mut, mn, NULL, NULL) ==
			             TSI_OK) != verdict)
				fail_msg("reader and oracle disagree on %.*s",
				    (int)mn, mut);
			else if (verdict)
				agree_accepted++;
			else
				agree_rejected++;
		}
		json_decref(back);
		json_decref(v);
		free(out);
	}
	iconv_close(cd);
	/* both verdicts were exercised */
	assert_true(agree_rejected > RANDOM_RECORDS / 2);
	assert_true(agree_accepted > 100);
	assert_true(unknown < RANDOM_RECORDS / 100);
}

/* Format 1 is what jansson 2.14 wrote: the pinned copy matches the
 * installed jansson's dump (the library these logs were written with),
 * reals and integers beyond 2^53 included. */
static void
test_v1_is_jansson(void **state)
{
	char *a, *b;
	size_t len;
	json_t *v;
	int i, err;

	(void)state;
	for (i = 0; i < 20000; i++) {
		v = json_object();
		json_object_set_new(v, "c", rnd_value(1));
		json_object_set_new(v, "r",
		    json_real(
		        (double)(int32_t)rnd() / (double)(1 + rnd() % 1000)));
		json_object_set_new(v, "e",
		    json_real(rnd() % 2 ? 1e300 : 2.5e-8));
		json_object_set_new(v, "w", json_real((double)(rnd() % 100)));
		json_object_set_new(v, "i",
		    json_integer(rnd() % 2 ? INT64_MAX : INT64_MIN));
		a = audit_canon_dumps(v, AUDIT_FORMAT_V1, 1 << 20, &len, &err);
		b = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT);
		assert_non_null(a);
		assert_non_null(b);
		if (strlen(b) != len || memcmp(a, b, len) != 0)
			fail_msg("format 1 differs from jansson:\n ours    %s\n"
			         " jansson %s",
			    a, b);
		free(a);
		free(b);
		json_decref(v);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8785_vectors),
		cmocka_unit_test(test_outside_subset),
		cmocka_unit_test(test_random_against_jansson),
		cmocka_unit_test(test_v1_is_jansson),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
