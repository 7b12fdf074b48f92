/*
 * tsi-vault's KV read path without jansson in the loop:
 *  - vault_kv_read_answer (kv.c) splices the stored value's text into the
 *    answer; it must give byte for byte what the JSON path gave
 *    (json_loadb of the value, vault_envelope, json_dumps), over fixed odd
 *    values and random ones;
 *  (kv_meta_decode, the LMDB store's own parse, is test_kv_lmdb_meta.c's.)
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
#include "kv.h"
#include "http.h"
#include "routes.h"
#include "store.h"
#include "tsi/buf.h"
#include "tsi/err.h"

/* What kv.c answered before: parse the value, pack, envelope, dump. */
static char *
reference(const char *id, const char *pt, const struct kv_version_meta *m,
    const char *custom)
{
	struct vault_request r;
	char ct[40], dt[40] = "";
	json_t *data = NULL, *meta, *body, *cm = json_null();
	json_error_t err;
	char *text;

	memset(&r, 0, sizeof(r));
	snprintf(r.request_id, sizeof(r.request_id), "%s", id);
	assert_non_null(r.route = vault_route_find("GET", "secret/data/x"));
	if (pt != NULL)
		assert_non_null(data = json_loads(pt, 0, &err));
	vault_time_str(m->created_us, ct, sizeof(ct));
	if (m->deleted_us != 0)
		vault_time_str(m->deleted_us, dt, sizeof(dt));
	if (custom != NULL)
		assert_non_null(cm = json_loads(custom, 0, &err));
	meta = json_pack("{sssosssbsI}", "created_time", ct, "custom_metadata",
	    cm, "deletion_time", dt, "destroyed", m->destroyed, "version",
	    (json_int_t)m->version);
	body = vault_envelope(&r,
	    json_pack("{soso}", "data", data ? data : json_null(), "metadata",
	        meta),
	    NULL);
	assert_non_null(body);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	assert_non_null(text);
	return text;
}

/* Stores value as do_write does (json_dumps compact of the parsed "data")
 * and compares both answers. */
static void
check_value(const json_t *value, const struct kv_version_meta *m,
    const char *custom)
{
	const char *id = "0f8fad5b-d9cb-469f-a165-70867728950e";
	char *pt, *want, *got = NULL;

	assert_non_null(pt = json_dumps(value, JSON_COMPACT));
	want = reference(id, pt, m, custom);
	assert_int_equal(vault_kv_read_answer(id, pt, strlen(pt), m, custom,
	                     &got),
	    TSI_OK);
	if (strcmp(want, got) != 0)
		fail_msg("answers differ for %s:\n want %s\n got  %s", pt, want,
		    got);
	free(want);
	tsi_strfree(got);
	free(pt);
}

static void
test_fixed_values(void **state)
{
	static const char *const values[] = {
		"{}",
		"{\"password\":\"correct-horse-battery-staple\"}",
		"{\"a\":\"quote \\\" backslash \\\\ slash / tab \\t nl \\n\"}",
		"{\"ctl\":\"\\u0001\\u001f\\u007f\"}",
		"{\"utf8\":\"caf\\u00e9 \\u2603 "
		"\\ud83d\\ude00\",\"\\u00e9\":1}",
		"{\"n\":[1,-2,0,9223372036854775807,-9223372036854775808]}",
		"{\"r\":[0.1,1.0,-0.0,1e300,2.5e-300,3.141592653589793]}",
		"{\"b\":[true,false,null],\"o\":{\"z\":{},\"a\":[]}}",
		"{\"deep\":{\"a\":{\"b\":{\"c\":{\"d\":[[[\"e\"]]]}}}}}",
		"{\"z\":1,\"a\":2,\"m\":3}",
		"{\"dup\":1,\"dup\":2}",
		"{\"html\":\"</script><!-- & '\"}",
	};
	struct kv_version_meta m = { 7, 1764000000123456LL, 0, 0 };
	json_error_t err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		json_t *v = json_loads(values[i], 0, &err);
		if (v == NULL)
			fail_msg("%s: %s", values[i], err.text);
		check_value(v, &m, NULL);
		json_decref(v);
	}
}

static void
test_meta_shapes(void **state)
{
	const char *id = "6a1c3c5e-6a39-4c2f-9a7a-6f8c2b1d0e11";
	struct kv_version_meta ms[] = {
		{ 1, 0, 0, 0 },
		{ 2, 1764000000000000LL, 1764000001999999LL, 0 },
		{ 3, 1764000000000001LL, 0, 1 },
		{ (1ULL << 53), 253402300799000000LL, 253402300799999999LL, 1 },
	};
	json_t *v = json_pack("{ss}", "k", "v");
	char *want, *got;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		check_value(v, &ms[i], NULL);
		/* the path's custom_metadata, as the metadata shows it */
		check_value(v, &ms[i],
		    "{\"owner\":\"team \\\"a\\\"\","
		    "\"tier\":\"caf\xc3\xa9\"}");
		/* a deleted version: "data": null */
		want = reference(id, NULL, &ms[i], NULL);
		assert_int_equal(vault_kv_read_answer(id, NULL, 0, &ms[i], NULL,
		                     &got),
		    TSI_OK);
		assert_string_equal(got, want);
		free(want);
		tsi_strfree(got);
	}
	json_decref(v);
}

/* Random JSON: strings of any code point (escapes, control bytes,
 * multi-byte UTF-8), integers, reals, nesting. */
static void
rand_str(char *out, size_t cap)
{
	size_t n = (size_t)rand() % 12, i, o = 0;

	for (i = 0; i < n && o + 5 < cap; i++) {
		unsigned c, pick = (unsigned)rand() % 6;

		if (pick == 0)
			c = 1 + (unsigned)rand() % 0x1f;
		else if (pick == 1)
			c = "\"\\/"[rand() % 3];
		else if (pick == 2)
			c = 0x80 + (unsigned)rand() % 0x780;
		else if (pick == 3)
			c = 0x800 + (unsigned)rand() % 0xd000;
		else if (pick == 4)
			c = 0x10000 + (unsigned)rand() % 0xfffff;
		else
			c = 0x20 + (unsigned)rand() % 0x5f;
		if (c < 0x80)
			out[o++] = (char)c;
		else if (c < 0x800) {
			out[o++] = (char)(0xc0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			out[o++] = (char)(0xe0 | c >> 12);
			out[o++] = (char)(0x80 | (c >> 6 & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else {
			out[o++] = (char)(0xf0 | c >> 18);
			out[o++] = (char)(0x80 | (c >> 12 & 0x3f));
			out[o++] = (char)(0x80 | (c >> 6 & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		}
	}
	out[o] = '\0';
}

static json_t *
rand_json(int depth)
{
	char s[64];
	json_t *j;
	int i, n, pick = rand() % (depth < 4 ? 8 : 5);

	switch (pick) {
	case 0: rand_str(s, sizeof(s)); return json_string(s);
	case 1:
		return json_integer(((json_int_t)rand() << 31 ^ rand()) *
		    (rand() % 2 ? 1 : -1));
	case 2:
		return json_real((double)rand() / (rand() + 1) *
		    (rand() % 2 ? 1e-200 : 1e200));
	case 3: return rand() % 2 ? json_true() : json_null();
	case 4: return json_real((double)rand() / 7);
	case 5:
		j = json_array();
		n = rand() % 5;
		for (i = 0; i < n; i++)
			json_array_append_new(j, rand_json(depth + 1));
		return j;
	default:
		j = json_object();
		n = rand() % 6;
		for (i = 0; i < n; i++) {
			rand_str(s, sizeof(s));
			json_object_set_new(j, s, rand_json(depth + 1));
		}
		return j;
	}
}

static void
test_random_values(void **state)
{
	struct kv_version_meta m = { 1, 1764000000000000LL, 0, 0 };
	char key[64];
	int i, k, n;

	(void)state;
	srand(20261123);
	for (i = 0; i < 2000; i++) {
		json_t *v = json_object();
		n = 1 + rand() % 5;
		for (k = 0; k < n; k++) {
			rand_str(key, sizeof(key));
			json_object_set_new(v, key, rand_json(0));
		}
		m.version = (uint64_t)(1 + rand() % 1000);
		m.deleted_us =
		    rand() % 3 == 0 ? 1764000000000000LL + rand() : 0;
		m.destroyed = rand() % 5 == 0;
		check_value(v, &m, NULL);
		json_decref(v);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_values),
		cmocka_unit_test(test_meta_shapes),
		cmocka_unit_test(test_random_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
