/*
 * tsi-vault's handlers without a socket: a request made in memory (its
 * headers and query through a struct vault_io of this file), the handler
 * called as the route table calls it, its struct vault_answer read back.
 * The KV store and the audit log are the real ones, on disk in a
 * temporary directory; the caller is the root token.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vault.h"
#include "tsi/audit.h"
#include "settings.h"
#include "crypto.h"
#include "login_limit.h"
#include "metrics.h"
#include "http.h"
#include "routes.h"
#include "tokens.h"
#include "store.h"
#include "mounts.h"
#include "tsi/buf.h"
#include "tsi/err.h"

#define ROOT_TOKEN "hvs.unit-root-token"

/* The request's headers and query, as name/value pairs. */
struct fake_conn {
	const char *headers[8][2];
	const char *query[8][2];
};

static const char *
lookup(const char *const (*kv)[2], const char *name)
{
	size_t i;

	for (i = 0; i < 8 && kv[i][0] != NULL; i++)
		if (strcasecmp(kv[i][0], name) == 0)
			return kv[i][1];
	return NULL;
}

static const char *
fake_header(void *ctx, const char *name)
{
	return lookup(((struct fake_conn *)ctx)->headers, name);
}

static const char *
fake_query(void *ctx, const char *name)
{
	return lookup(((struct fake_conn *)ctx)->query, name);
}

static void
fake_query_each(void *ctx, int (*fn)(void *arg, const char *name), void *arg)
{
	struct fake_conn *c = ctx;
	size_t i;

	for (i = 0; i < 8 && c->query[i][0] != NULL; i++)
		if (fn(arg, c->query[i][0]) != 0)
			return;
}

/* No async request here: a suspend would be a handler's mistake. */
static void
fake_suspend(void *ctx)
{
	fail_msg("suspend without audit_async");
}

static void
fake_resume(void *ctx)
{
	fail_msg("resume without audit_async");
}

static const struct vault_io fake_io = {
	fake_header,
	fake_query,
	fake_query_each,
	fake_suspend,
	fake_resume,
};

struct fixture {
	struct vault v;
	struct vault_settings set;
	char dir[64];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kv_store_opts ko = { .map_size = 1 << 22 };
	struct tsi_audit_opts ao;
	char accessor[VAULT_ACCESSOR_LEN + 1], path[128], *tok = NULL;
	const char *labels[VAULT_METRIC_ROUTES];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/tsi-handlers-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->set.cluster_name = strdup("unit-cluster");
	f->set.max_body = 1 << 20;
	f->v.set = &f->set;
	f->v.started = time(NULL);
	vault_uuid(f->v.cluster_id);
	pthread_mutex_init(&f->v.mu, NULL);
	pthread_mutex_init(&f->v.reader_mu, NULL);
	vault_metrics_labels(&f->v.metrics, labels,
	    vault_route_metrics(labels, VAULT_METRIC_ROUTES));
	assert_int_equal(vault_key_random(&f->v.key), TSI_OK);
	assert_int_equal(vault_tokens_new(16, &f->v.tokens), TSI_OK);
	assert_int_equal(vault_tokens_create(f->v.tokens, ROOT_TOKEN, "root",
	                     NULL, NULL, 0, 1, &tok, accessor),
	    TSI_OK);
	tsi_strfree(tok);
	assert_int_equal(vault_limiter_new(0, 60, 16, &f->v.login_limit),
	    TSI_OK);
	snprintf(path, sizeof(path), "lmdb://%s/kv", f->dir);
	assert_int_equal(kv_store_open(path, &ko, &f->v.store), TSI_OK);
	memset(&ao, 0, sizeof(ao));
	ao.map_size = 1 << 22;
	snprintf(path, sizeof(path), "%s/audit", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(tsi_audit_open(path, &ao, &f->v.audit), TSI_OK);
	*state = f;
	return 0;
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	tsi_audit_close(f->v.audit);
	f->v.store->ops->close(f->v.store);
	vault_tokens_free(f->v.tokens);
	vault_limiter_free(f->v.login_limit);
	vault_key_wipe(&f->v.key);
	free(f->set.cluster_name);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Makes the request as the server would (route from the table, body in a
 * bounded buffer) and calls its row's handler directly. */
static void
call(struct fixture *f, struct fake_conn *c, const char *method,
    const char *path, const char *body, struct vault_answer *ans)
{
	struct vault_request rq;

	memset(ans, 0, sizeof(*ans));
	assert_int_equal(vault_request_init(&rq, &f->v, method, path, ans),
	    TSI_OK);
	rq.io = &fake_io;
	rq.io_ctx = c;
	rq.route = vault_route_find(method, path);
	assert_non_null(rq.route);
	assert_non_null(rq.body = tsi_buf_new(1 << 16));
	if (body != NULL)
		assert_int_equal(tsi_buf_put(rq.body, body, strlen(body)),
		    TSI_OK);
	assert_int_equal(rq.route->handler(&f->v, &rq, ans), TSI_OK);
	assert_true(ans->ready);
	assert_int_equal(rq.audit_submitted, 0);
	vault_request_clear(&rq);
}

static json_t *
answer_json(const struct vault_answer *a)
{
	json_error_t err;
	json_t *j;

	assert_non_null(a->text);
	assert_string_equal(a->ctype, "application/json");
	j = json_loads(a->text, 0, &err);
	assert_non_null(j);
	return j;
}

static void
test_kv_write_then_read(void **state)
{
	struct fixture *f = *state;
	struct fake_conn c = { .headers = { { "X-Vault-Token", ROOT_TOKEN } } };
	struct vault_answer a;
	json_t *j;

	call(f, &c, "POST", "secret/data/app/db",
	    "{\"data\":{\"password\":\"s3cr3t\"}}", &a);
	assert_int_equal(a.status, 200);
	vault_answer_clear(&a);

	call(f, &c, "GET", "secret/data/app/db", NULL, &a);
	assert_int_equal(a.status, 200);
	j = answer_json(&a);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_object_get(j, "data"),
	                            "data"),
	                        "password")),
	    "s3cr3t");
	assert_string_equal(json_string_value(json_object_get(j, "mount_type")),
	    "kv");
	assert_int_equal(json_integer_value(
	                     json_object_get(json_object_get(json_object_get(j,
	                                                         "data"),
	                                         "metadata"),
	                         "version")),
	    1);
	json_decref(j);
	vault_answer_clear(&a);
	assert_null(a.text);
}

static void
test_kv_read_refusals(void **state)
{
	struct fixture *f = *state;
	struct fake_conn none = { { { NULL, NULL } }, { { NULL, NULL } } };
	struct fake_conn root = { .headers = {
		                      { "X-Vault-Token", ROOT_TOKEN } } };
	struct fake_conn wrong = {
		.headers = { { "X-Vault-Token", "hvs.not-a-token" } }
	};
	struct vault_answer a;

	/* No token, an unknown one: 403, nothing said about the secret. */
	call(f, &none, "GET", "secret/data/app/db", NULL, &a);
	assert_int_equal(a.status, 403);
	assert_non_null(strstr(a.text, "permission denied"));
	vault_answer_clear(&a);
	call(f, &wrong, "GET", "secret/data/app/db", NULL, &a);
	assert_int_equal(a.status, 403);
	vault_answer_clear(&a);
	/* A secret never written: Vault's empty errors. */
	call(f, &root, "GET", "secret/data/never/written", NULL, &a);
	assert_int_equal(a.status, 404);
	assert_string_equal(a.text, "{\"errors\":[]}");
	vault_answer_clear(&a);
}

static void
test_sys_health(void **state)
{
	struct fixture *f = *state;
	struct fake_conn c = { { { NULL, NULL } }, { { NULL, NULL } } };
	struct fake_conn bad = { .query = { { "activecode", "abc" } } };
	struct fake_conn code = { .query = { { "activecode", "299" } } };
	struct vault_answer a;
	json_t *j;

	call(f, &c, "GET", "sys/health", NULL, &a);
	assert_int_equal(a.status, 200);
	j = answer_json(&a);
	assert_true(json_is_true(json_object_get(j, "initialized")));
	assert_true(json_is_false(json_object_get(j, "sealed")));
	assert_true(json_is_true(json_object_get(j, "audit_healthy")));
	assert_string_equal(json_string_value(
	                        json_object_get(j, "cluster_name")),
	    "unit-cluster");
	json_decref(j);
	vault_answer_clear(&a);

	call(f, &code, "GET", "sys/health", NULL, &a);
	assert_int_equal(a.status, 299);
	vault_answer_clear(&a);
	call(f, &bad, "GET", "sys/health", NULL, &a);
	assert_int_equal(a.status, 400);
	vault_answer_clear(&a);
	call(f, &c, "POST", "sys/health", NULL, &a);
	assert_int_equal(a.status, 405);
	vault_answer_clear(&a);
}

/* A path no row takes: the table's own 404, with Vault's message. */
static void
test_unknown_route(void **state)
{
	struct fixture *f = *state;
	struct fake_conn c = { { { NULL, NULL } }, { { NULL, NULL } } };
	struct vault_request rq;
	struct vault_answer a;

	memset(&a, 0, sizeof(a));
	assert_null(vault_route_find("GET", "kv/data/x"));
	assert_int_equal(vault_request_init(&rq, &f->v, "GET", "kv/data/x", &a),
	    TSI_OK);
	rq.io = &fake_io;
	rq.io_ctx = &c;
	assert_int_equal(vault_route_call(&f->v, &rq, &a), TSI_OK);
	assert_int_equal(a.status, 404);
	assert_non_null(
	    strstr(a.text, "no handler for route \\\"kv/data/x\\\""));
	assert_string_equal(vault_route_metric(rq.route), "other");
	vault_request_clear(&rq);
	vault_answer_clear(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kv_write_then_read, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kv_read_refusals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sys_health, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unknown_route, setup,
		    teardown),
	};

	vault_policy_mounts_register();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
