/*
 * Request bodies sent with Transfer-Encoding: chunked (no Content-Length,
 * so the server learns the size only while reading): a body of exactly the
 * limit is accepted, one byte more gets 413 {"errors": [...]} with nothing
 * written, with and without "Expect: 100-continue", on KV writes and on
 * login; a body far over the limit has its connection dropped; the server
 * keeps serving on new and on kept-alive connections.
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
#include "tsi/buf.h"
#include "tsi/err.h"

#define MAX_BODY 100000 /* max_body in the test's config */

/* The body handed to curl piece by piece, never with its size. */
struct src {
	const char *p;
	size_t len, off;
	size_t piece; /* at most this much per read callback */
	size_t sent;
};

static size_t
reader(char *out, size_t sz, size_t n, void *arg)
{
	struct src *s = arg;
	size_t k = sz * n;

	if (k > s->piece)
		k = s->piece;
	if (k > s->len - s->off)
		k = s->len - s->off;
	memcpy(out, s->p + s->off, k);
	s->off += k;
	s->sent += k;
	return k;
}

static size_t
collect(char *p, size_t sz, size_t n, void *arg)
{
	struct tsi_buf *b = arg;

	return tsi_buf_put(b, p, sz * n) == TSI_OK ? sz * n : 0;
}

/* POSTs body chunked on handle c (NULL: a new one). expect: send
 * "Expect: 100-continue". Returns the status, or -1 when no answer came
 * back; *json gets the parsed answer (may be NULL). */
static long
post_chunked(struct vfx *f, CURL *c, const char *path, const char *token,
    const char *body, int expect, json_t **json, long *connects)
{
	struct curl_slist *h = NULL;
	struct tsi_buf *b = tsi_buf_new(1 << 20);
	struct src s = { body, strlen(body), 0, 7000, 0 };
	char url[512], th[300];
	CURL *own = NULL;
	CURLcode rc;
	long status = -1;
	char *text;

	*json = NULL;
	assert_non_null(b);
	if (c == NULL)
		c = own = curl_easy_init();
	else
		curl_easy_reset(c);
	snprintf(url, sizeof(url), "%s%s", f->addr, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, f->tls_ca);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, reader);
	curl_easy_setopt(c, CURLOPT_READDATA, &s);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	h = curl_slist_append(h, "Transfer-Encoding: chunked");
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, expect ? "Expect: 100-continue" : "Expect:");
	if (token != NULL) {
		snprintf(th, sizeof(th), "X-Vault-Token: %s", token);
		h = curl_slist_append(h, th);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (connects != NULL)
			curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, connects);
		text = tsi_buf_take(b, NULL);
		if (text != NULL && text[0] != '\0')
			*json = json_loads(text, 0, NULL);
		free(text);
	} else
		fprintf(stderr, "curl: %s\n", curl_easy_strerror(rc));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	tsi_buf_free(b);
	if (own != NULL)
		curl_easy_cleanup(own);
	return status;
}

/* A KV write body of exactly n bytes: {"data":{"v":"xxx..."}}. */
static char *
kv_body(size_t n)
{
	static const char head[] = "{\"data\":{\"v\":\"", tail[] = "\"}}";
	char *b = malloc(n + 1);
	size_t h = sizeof(head) - 1, t = sizeof(tail) - 1;

	assert_non_null(b);
	assert_true(n > h + t);
	memcpy(b, head, h);
	memset(b + h, 'x', n - h - t);
	memcpy(b + n - t, tail, t + 1);
	assert_int_equal(strlen(b), n);
	return b;
}

static void
assert_413(json_t *j)
{
	const char *msg;

	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "errors")), 1);
	msg =
	    json_string_value(json_array_get(json_object_get(j, "errors"), 0));
	assert_non_null(msg);
	assert_non_null(strstr(msg, "too large"));
}

static int
setup(void **state)
{
	struct vfx *f = calloc(1, sizeof(*f));
	char conf[64];

	assert_non_null(f);
	snprintf(conf, sizeof(conf), "max_body = %d;\n", MAX_BODY);
	assert_int_equal(vfx_init(f, NULL, conf), 0);
	assert_int_equal(vfx_start(f), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct vfx *f = *state;

	assert_int_equal(vfx_stop(f), 0);
	vfx_cleanup(f);
	free(f);
	return 0;
}

static void
test_kv_write_limit(void **state)
{
	struct vfx *f = *state;
	struct vresp r;
	json_t *j;
	char *at = kv_body(MAX_BODY), *over = kv_body(MAX_BODY + 1);
	int expect;

	for (expect = 0; expect <= 1; expect++) {
		/* Exactly the limit: stored. */
		assert_int_equal(post_chunked(f, NULL, "/v1/secret/data/c/at",
		                     f->root, at, expect, &j, NULL),
		    200);
		assert_int_equal(json_integer_value(
		                     json_object_get(json_object_get(j, "data"),
		                         "version")),
		    expect + 1);
		json_decref(j);
		/* One byte more: 413 with Vault's error shape. */
		assert_int_equal(post_chunked(f, NULL, "/v1/secret/data/c/over",
		                     f->root, over, expect, &j, NULL),
		    413);
		assert_413(j);
		json_decref(j);
		/* Nothing was written. */
		assert_int_equal(vfx_kv_get(f, f->root, "c/over", NULL), 404);
	}
	/* Much larger (10x the limit, sent in many chunks): the same 413. */
	free(over);
	over = kv_body(10 * MAX_BODY);
	assert_int_equal(post_chunked(f, NULL, "/v1/secret/data/c/over",
	                     f->root, over, 0, &j, NULL),
	    413);
	assert_413(j);
	json_decref(j);
	assert_int_equal(vfx_kv_get(f, f->root, "c/over", NULL), 404);
	/* The value stored at the limit is intact. */
	assert_int_equal(vfx_kv_get(f, f->root, "c/at", &r), 200);
	assert_int_equal(strlen(json_string_value(json_object_get(
	                     json_object_get(json_object_get(r.json, "data"),
	                         "data"),
	                     "v"))),
	    MAX_BODY - 17);
	vresp_clear(&r);
	free(at);
	free(over);
}

static void
test_login_and_no_token_limit(void **state)
{
	struct vfx *f = *state;
	json_t *j;
	/* Login and callers without a valid token: 64 KiB. */
	char *over = kv_body(64 * 1024 + 1);

	assert_int_equal(post_chunked(f, NULL,
	                     "/v1/auth/trusted-identity/login", NULL, over, 0,
	                     &j, NULL),
	    413);
	assert_413(j);
	json_decref(j);
	assert_int_equal(post_chunked(f, NULL, "/v1/secret/data/c/anon",
	                     "hvs.unknown", over, 0, &j, NULL),
	    413);
	assert_413(j);
	json_decref(j);
	/* Under it, an unknown token is refused as usual. */
	over[1000] = '\0';
	assert_int_equal(post_chunked(f, NULL, "/v1/secret/data/c/anon",
	                     "hvs.unknown", over, 0, &j, NULL),
	    403);
	json_decref(j);
	free(over);
}

static void
test_server_keeps_serving(void **state)
{
	struct vfx *f = *state;
	struct vresp r;
	CURL *c = curl_easy_init();
	json_t *j;
	long connects = 0;
	char *over = kv_body(3 * MAX_BODY);
	int i;

	/* Several refusals in a row on one handle: each answered. */
	for (i = 0; i < 3; i++) {
		assert_int_equal(post_chunked(f, c, "/v1/secret/data/c/loop",
		                     f->root, over, i & 1, &j, NULL),
		    413);
		assert_413(j);
		json_decref(j);
	}
	/* Far over (more than the 16 MiB the server reads on to answer):
	 * the connection is dropped unanswered, nothing is written. */
	free(over);
	over = kv_body(MAX_BODY + 17 * 1024 * 1024);
	assert_int_equal(post_chunked(f, c, "/v1/secret/data/c/loop", f->root,
	                     over, 0, &j, NULL),
	    -1);
	assert_null(j);
	assert_int_equal(vfx_kv_get(f, f->root, "c/loop", NULL), 404);
	/* A later request on the same handle (a new connection: the refused
	 * one was closed) and one on a fresh handle both work. */
	assert_int_equal(post_chunked(f, c, "/v1/secret/data/c/after", f->root,
	                     "{\"data\":{\"k\":\"v\"}}", 0, &j, &connects),
	    200);
	json_decref(j);
	assert_int_equal(connects, 1);
	assert_int_equal(vfx_http(f, NULL, "GET", "/v1/secret/data/c/after",
	                     f->root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_object_get(r.json, "data"),
	                            "data"),
	                        "k")),
	    "v");
	vresp_clear(&r);
	/* A chunked body under the limit keeps the connection alive. */
	assert_int_equal(post_chunked(f, c, "/v1/secret/data/c/after", f->root,
	                     "{\"data\":{\"k\":\"w\"}}", 0, &j, &connects),
	    200);
	json_decref(j);
	assert_int_equal(connects, 0);
	assert_int_equal(vfx_http(f, NULL, "GET", "/v1/sys/health", NULL, NULL,
	                     &r),
	    0);
	assert_int_equal(r.status, 200);
	vresp_clear(&r);
	curl_easy_cleanup(c);
	free(over);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_write_limit),
		cmocka_unit_test(test_login_and_no_token_limit),
		cmocka_unit_test(test_server_keeps_serving),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, setup, teardown);
}
