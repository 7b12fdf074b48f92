/*
 * The LMDB KV backend's stored form of a path's metadata: kv_meta_decode
 * (static in store_lmdb.c, included here) parses kv_meta_encode's text
 * without jansson and anything else through it: both must agree. What the
 * backend does is the backend-neutral suite's (tests/unit/vault/storage).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store_lmdb.c"

static void
meta_equal(const struct kv_meta *a, const struct kv_meta *b)
{
	size_t i;

	assert_int_equal(a->current, b->current);
	assert_int_equal(a->oldest, b->oldest);
	assert_int_equal(a->created_us, b->created_us);
	assert_int_equal(a->updated_us, b->updated_us);
	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		assert_int_equal(a->versions[i].version,
		    b->versions[i].version);
		assert_int_equal(a->versions[i].created_us,
		    b->versions[i].created_us);
		assert_int_equal(a->versions[i].deleted_us,
		    b->versions[i].deleted_us);
		assert_int_equal(a->versions[i].destroyed,
		    b->versions[i].destroyed);
	}
}

/* kv_meta_decode through jansson, as the store parsed before. */
static void
decode_json(const char *text, struct kv_meta *m)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err), *arr, *e;
	size_t i;

	assert_non_null(j);
	memset(m, 0, sizeof(*m));
	m->current = (uint64_t)json_integer_value(json_object_get(j, "cur"));
	m->oldest = (uint64_t)json_integer_value(json_object_get(j, "old"));
	m->created_us = json_integer_value(json_object_get(j, "ct"));
	m->updated_us = json_integer_value(json_object_get(j, "ut"));
	arr = json_object_get(j, "v");
	m->n = json_array_size(arr);
	m->versions = calloc(m->n + 1, sizeof(*m->versions));
	json_array_foreach (arr, i, e) {
		m->versions[i].version =
		    (uint64_t)json_integer_value(json_array_get(e, 0));
		m->versions[i].created_us =
		    json_integer_value(json_array_get(e, 1));
		m->versions[i].deleted_us =
		    json_integer_value(json_array_get(e, 2));
		m->versions[i].destroyed =
		    (int)json_integer_value(json_array_get(e, 3));
	}
	json_decref(j);
}

static void
test_meta_decode(void **state)
{
	static const char *const other[] = {
		/* not the encoder's form, still valid: the general parse */
		"{ \"cur\": 2, \"old\": 1, \"ct\": 5, \"ut\": 6, "
		"\"v\": [[1, 5, 0, 0], [2, 6, 7, 1]] }",
		"{\"v\":[[3,1,2,0]],\"ut\":4,\"ct\":3,\"old\":3,\"cur\":3}",
		"{\"cur\":1,\"old\":1,\"ct\":-5,\"ut\":0,\"v\":[[1,-5,0,0]],"
		"\"extra\":true}",
		"{\"cur\":9223372036854775807,\"old\":-9223372036854775808,"
		"\"ct\":0,\"ut\":0,\"v\":[]}",
	};
	static const char *const bad[] = {
		"",
		"{",
		"[]",
		"{\"cur\":1}",
		"{\"cur\":1,\"v\":[[1,2,3]]}",
		"{\"cur\":1,\"old\":1,\"ct\":0,\"ut\":0,\"v\":[[1,2,3,4]]",
		"{\"cur\":01,\"old\":1,\"ct\":0,\"ut\":0,\"v\":[]}",
		"{\"cur\":1,\"old\":1,\"ct\":0,\"ut\":0,\"v\":[[1,2,3,4],]}",
		"{\"cur\":99999999999999999999,\"old\":1,\"ct\":0,\"ut\":0,"
		"\"v\":[]}",
	};
	struct kv_meta m, back, ref;
	char *text;
	size_t i, k;

	(void)state;
	srand(7);
	for (i = 0; i < 500; i++) {
		memset(&m, 0, sizeof(m));
		m.n = (size_t)rand() % 12;
		m.versions = calloc(m.n + 1, sizeof(*m.versions));
		for (k = 0; k < m.n; k++) {
			m.versions[k].version = (uint64_t)rand() << 20 | k;
			m.versions[k].created_us = (long long)rand() << 21;
			m.versions[k].deleted_us =
			    rand() % 2 ? -(long long)rand() : 0;
			m.versions[k].destroyed = rand() % 2;
		}
		m.current = (uint64_t)rand() * (i % 3);
		m.oldest = i % 2 ? (uint64_t)INT64_MAX : (uint64_t)rand();
		m.created_us = i % 5 ? (long long)rand() : INT64_MIN;
		m.updated_us = (long long)rand() * 1000000;
		assert_int_equal(kv_meta_encode(&m, &text), TSI_OK);
		assert_int_equal(kv_meta_decode(text, strlen(text), &back),
		    TSI_OK);
		meta_equal(&back, &m);
		decode_json(text, &ref);
		meta_equal(&back, &ref);
		kv_meta_clear(&back);
		kv_meta_clear(&ref);
		kv_meta_clear(&m);
		free(text);
	}
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		assert_int_equal(kv_meta_decode(other[i], strlen(other[i]),
		                     &back),
		    TSI_OK);
		decode_json(other[i], &ref);
		meta_equal(&back, &ref);
		kv_meta_clear(&back);
		kv_meta_clear(&ref);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (kv_meta_decode(bad[i], strlen(bad[i]), &back) !=
		    TSI_ERR_STORE)
			fail_msg("accepted: %s", bad[i]);
		assert_null(back.versions);
	}
}

/* Settings and custom_metadata survive the stored form, in key order. */
static void
test_meta_settings(void **state)
{
	struct kv_pair cm[2] = { { "b", "2" }, { "a", "1 \"q\"" } };
	struct kv_meta m, back;
	char *text;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.max_versions = 3;
	m.cas_required = 1;
	m.delete_after_s = 90;
	m.ncustom = 2;
	m.custom = cm;
	assert_int_equal(kv_meta_encode(&m, &text), TSI_OK);
	assert_int_equal(kv_meta_decode(text, strlen(text), &back), TSI_OK);
	assert_int_equal(back.max_versions, 3);
	assert_int_equal(back.cas_required, 1);
	assert_int_equal(back.delete_after_s, 90);
	assert_int_equal(back.ncustom, 2);
	assert_string_equal(back.custom[0].key, "a");
	assert_string_equal(back.custom[0].value, "1 \"q\"");
	assert_string_equal(back.custom[1].key, "b");
	kv_meta_clear(&back);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta_decode),
		cmocka_unit_test(test_meta_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
