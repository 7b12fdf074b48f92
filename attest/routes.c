/*
 * routes.c - the route table, the admin check, and the small answers
 * (node CA, health, metrics).
 *
 * A route is {method, path, exact-or-prefix, handler, flags}. Admin routes
 * need "Authorization: Bearer <admin token>"; the enrollment routes need
 * nothing, since what they trust is the TPM's evidence, never the caller.
 */
#include "attest.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
	ROUTE_ADMIN = 1,
	ROUTE_PREFIX = 2
};

typedef void (*route_fn)(struct attest *, const struct attest_req *,
    struct attest_answer *);

struct route {
	const char *method; /* NULL: the handler checks the method */
	const char *path;
	route_fn fn;
	unsigned flags;
};

long long
attest_now(void)
{
	return (long long)time(NULL);
}

void
attest_answer_clear(struct attest_answer *ans)
{
	json_decref(ans->json);
	free(ans->text);
	memset(ans, 0, sizeof(*ans));
}

void
attest_answer_error(struct attest_answer *ans, unsigned status, const char *msg)
{
	json_decref(ans->json);
	ans->status = status;
	ans->json = json_pack("{s[s]}", "errors", msg);
}

int
attest_admin_ok(const struct attest *a, const char *token)
{
	unsigned char want[32], got[32];
	size_t i;
	int ok = 0;

	if (token == NULL || *token == '\0' || strlen(token) > ATTEST_TOKEN_MAX)
		return 0;
	if (EVP_Digest(token, strlen(token), got, NULL, EVP_sha256(), NULL) !=
	    1)
		return 0;
	/* Hashes of equal length: the comparison time says nothing about
	 * how much of a token was right. */
	for (i = 0; i < a->set->n_admin_tokens; i++) {
		const char *t = a->set->admin_tokens[i];
		if (EVP_Digest(t, strlen(t), want, NULL, EVP_sha256(), NULL) ==
		        1 &&
		    CRYPTO_memcmp(want, got, sizeof(got)) == 0)
			ok = 1;
	}
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

int
attest_audit(struct attest *a, const struct attest_req *req, const char *op,
    const char *path, const char *decision, const char *reason,
    const json_t *claims)
{
	json_t *rec;
	uint64_t seq = 0;
	int r;

	rec = json_pack("{ssssssssssssso?}", "op", op, "path", path ? path : "",
	    "decision", decision, "reason", reason ? reason : "", "remote",
	    req->remote ? req->remote : "", "request_id", req->request_id,
	    "claims", claims ? json_deep_copy(claims) : NULL);
	if (rec == NULL)
		return TSI_ERR_ALLOC;
	if (json_object_get(rec, "claims") == NULL)
		json_object_del(rec, "claims");
	r = tsi_audit_append(a->audit, rec, &seq);
	json_decref(rec);
	if (r != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "audit.failed", TSI_LS("op", op),
		    TSI_LS("error", tsi_strerror(r)));
		return TSI_ERR_AUDIT;
	}
	return TSI_OK;
}

static void
h_node_ca(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans)
{
	(void)req;
	if ((ans->text = strdup(a->node_ca_pem)) == NULL) {
		attest_answer_error(ans, 500, "internal error");
		return;
	}
	ans->status = 200;
	ans->content_type = "application/x-pem-file";
}

static void
h_health(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans)
{
	struct tsi_audit_status st;

	(void)req;
	memset(&st, 0, sizeof(st));
	tsi_audit_status(a->audit, &st);
	ans->status = 200;
	ans->json = json_pack("{sssIss}", "status", "ok", "uptime",
	    (json_int_t)(attest_now() - a->started), "version", TSI_VERSION);
}

static void
h_metrics(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans)
{
	struct attest_metrics m;
	char buf[1024];
	int n;

	(void)req;
	m = a->metrics;
	n = snprintf(buf, sizeof(buf),
	    "# TYPE tsi_attest_requests_total counter\n"
	    "tsi_attest_requests_total %llu\n"
	    "# TYPE tsi_attest_enroll_total counter\n"
	    "tsi_attest_enroll_total{step=\"start\",result=\"ok\"} %llu\n"
	    "tsi_attest_enroll_total{step=\"start\",result=\"refused\"} %llu\n"
	    "tsi_attest_enroll_total{step=\"finish\",result=\"ok\"} %llu\n"
	    "tsi_attest_enroll_total{step=\"finish\",result=\"refused\"} %llu\n"
	    "# TYPE tsi_attest_reloads_total counter\n"
	    "tsi_attest_reloads_total{result=\"ok\"} %llu\n"
	    "tsi_attest_reloads_total{result=\"failed\"} %llu\n",
	    m.requests, m.start_ok, m.start_refused, m.enroll_ok,
	    m.enroll_refused, m.reloads_ok, m.reloads_failed);
	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    (ans->text = strdup(buf)) == NULL) {
		attest_answer_error(ans, 500, "internal error");
		return;
	}
	ans->status = 200;
	ans->content_type = "text/plain; version=0.0.4";
}

static const struct route routes[] = {
	{ "GET", "/v1/node-ca", h_node_ca, 0 },
	{ "GET", "/v1/health", h_health, 0 },
	{ "GET", "/v1/metrics", h_metrics, 0 },
	{ "POST", "/v1/enroll/start", attest_enroll_start, 0 },
	{ "POST", "/v1/enroll/finish", attest_enroll_finish, 0 },
	{ "POST", "/v1/nodes", attest_nodes_register, ROUTE_ADMIN },
	{ "GET", "/v1/nodes", attest_nodes_list, ROUTE_ADMIN },
	{ NULL, "/v1/nodes/", attest_nodes_node, ROUTE_ADMIN | ROUTE_PREFIX },
};

void
attest_dispatch(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans)
{
	const struct route *match = NULL;
	int path_known = 0;
	size_t i;

	memset(ans, 0, sizeof(*ans));
	__atomic_fetch_add(&a->metrics.requests, 1, __ATOMIC_RELAXED);
	if (req->method == NULL || req->path == NULL) {
		attest_answer_error(ans, 400, "bad request");
		return;
	}
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];
		int hit = (r->flags & ROUTE_PREFIX)
		    ? strncmp(req->path, r->path, strlen(r->path)) == 0 &&
		        req->path[strlen(r->path)] != '\0'
		    : strcmp(req->path, r->path) == 0;
		if (!hit)
			continue;
		path_known = 1;
		if (r->method == NULL || strcmp(r->method, req->method) == 0) {
			match = r;
			break;
		}
	}
	if (match == NULL) {
		attest_answer_error(ans, path_known ? 405 : 404,
		    path_known ? "method not allowed" : "not found");
		return;
	}
	if ((match->flags & ROUTE_ADMIN) && !attest_admin_ok(a, req->token)) {
		tsi_log(TSI_LOG_WARN, "admin.denied", TSI_LS("path", req->path),
		    TSI_LS("remote", req->remote));
		attest_answer_error(ans, 403, "permission denied");
		return;
	}
	match->fn(a, req, ans);
	if (ans->status == 0)
		attest_answer_error(ans, 500, "internal error");
}
