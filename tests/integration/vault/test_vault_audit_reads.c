/*
 * Reading the audit log leaves a record (issue 14.10): a query of
 * GET /v1/sys/audit/releases by the root token is itself in the log with
 * the asker's accessor, the filters and how many records came back; a
 * refused query (no token, a bad filter) is recorded with its refusal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static json_t *
records(struct vresp *r)
{
	return json_object_get(json_object_get(r->json, "data"), "records");
}

/* The last audit.query record, as the next query returns it. */
static json_t *
last_query_record(struct vfx *f, struct vresp *r)
{
	json_t *recs, *last = NULL, *e;
	size_t i;

	assert_int_equal(vfx_http(f, NULL, "GET",
	                     "/v1/sys/audit/releases?path=sys/audit/"
	                     "&limit=1000",
	                     f->root, NULL, r),
	    0);
	assert_int_equal(r->status, 200);
	recs = records(r);
	json_array_foreach (recs, i, e)
		if (strcmp(json_string_value(json_object_get(e, "op")),
		        "audit.query") == 0)
			last = e;
	return last;
}

static void
test_audit_reads_audited(void **state)
{
	struct vfx f;
	struct vresp r, r2;
	json_t *rec, *filters;

	(void)state;
	assert_int_equal(vfx_init(&f, NULL, NULL), 0);
	assert_int_equal(vfx_start(&f), 0);
	assert_int_equal(vfx_kv_put(&f, f.root, "q/one",
	                     "{\"data\":{\"v\":\"x\"}}"),
	    200);
	assert_int_equal(vfx_kv_get(&f, f.root, "q/one", NULL), 200);
	/* A query with filters: 1 record (the read) comes back. */
	assert_int_equal(vfx_http(&f, NULL, "GET",
	                     "/v1/sys/audit/releases?path=secret/data/q/"
	                     "&decision=allow&limit=50",
	                     f.root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(records(&r)), 3);
	vresp_clear(&r);
	rec = last_query_record(&f, &r2);
	assert_non_null(rec);
	assert_string_equal(json_string_value(json_object_get(rec, "decision")),
	    "allow");
	assert_int_equal(json_integer_value(json_object_get(rec, "count")), 3);
	assert_int_equal(json_integer_value(json_object_get(rec, "status")),
	    200);
	assert_true(
	    strlen(json_string_value(json_object_get(rec, "accessor"))) > 0);
	filters = json_object_get(rec, "filters");
	assert_string_equal(json_string_value(json_object_get(filters, "path")),
	    "secret/data/q/");
	assert_string_equal(json_string_value(
	                        json_object_get(filters, "decision")),
	    "allow");
	assert_string_equal(json_string_value(
	                        json_object_get(filters, "limit")),
	    "50");
	vresp_clear(&r2);
	/* Without a token: refused, and the refusal is in the log. */
	assert_int_equal(vfx_http(&f, NULL, "GET",
	                     "/v1/sys/audit/releases?datacenter=dal05", NULL,
	                     NULL, &r),
	    0);
	assert_int_equal(r.status, 403);
	vresp_clear(&r);
	rec = last_query_record(&f, &r2);
	assert_non_null(rec);
	assert_string_equal(json_string_value(json_object_get(rec, "decision")),
	    "deny");
	assert_int_equal(json_integer_value(json_object_get(rec, "status")),
	    403);
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(rec, "filters"),
	                            "datacenter")),
	    "dal05");
	vresp_clear(&r2);
	/* A bad filter: 400, recorded as an error. */
	assert_int_equal(vfx_http(&f, NULL, "GET",
	                     "/v1/sys/audit/releases?limit=0", f.root, NULL,
	                     &r),
	    0);
	assert_int_equal(r.status, 400);
	vresp_clear(&r);
	rec = last_query_record(&f, &r2);
	assert_non_null(rec);
	assert_int_equal(json_integer_value(json_object_get(rec, "status")),
	    400);
	vresp_clear(&r2);
	assert_int_equal(vfx_stop(&f), 0);
	vfx_cleanup(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_audit_reads_audited),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
