/*
 * audit_query.c - GET /v1/sys/audit/releases: the audit log read back by
 * filters, as JSON or CSV, for tokens whose role has the audit capability
 * (or root). The read is itself recorded.
 */
#include "vault.h"
#include "routes.h"
#include "auditlog.h"
#include "http.h"
#include "token_eval.h"

#include "tsi/audit.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A CSV answer's bound: 1000 records (the largest limit) of at most 64 KiB
 * each, every byte a doubled quote at worst, and the header. */
#define CSV_MAX (1000u * 2u * 65536u + 4096u)

struct collect {
	json_t *arr;         /* JSON answer */
	struct tsi_buf *csv; /* or CSV answer */
	int failed;
};

static int
collect_cb(const json_t *rec, void *arg)
{
	struct collect *c = arg;

	if (c->csv != NULL
	        ? tsi_audit_csv_row(rec, c->csv) != TSI_OK
	        : json_array_append_new(c->arr, json_deep_copy(rec)) != 0) {
		c->failed = 1;
		return 1;
	}
	return 0;
}

static const char *const query_names[] = { "since", "until", "decision", "path",
	"cluster-name", "datacenter", "image", "namespace", "limit", "after",
	"op", "status", "format" };
#define NQUERY (sizeof(query_names) / sizeof(query_names[0]))

struct unknown_arg {
	char name[72];
	int found;
};

/* The iterator over the query: stops at the first name not in
 * query_names, kept (printable, bounded) for the error. A filter spelt
 * wrongly would otherwise match everything. */
static int
unknown_cb(void *cls, const char *key)
{
	struct unknown_arg *u = cls;
	size_t i, n;

	for (i = 0; i < NQUERY; i++)
		if (key != NULL && strcmp(key, query_names[i]) == 0)
			return 0;
	u->found = 1;
	for (n = 0; key != NULL && key[n] != '\0' && n < sizeof(u->name) - 4;
	     n++)
		u->name[n] = (key[n] >= 0x20 && key[n] < 0x7f) ? key[n] : '?';
	if (key != NULL && key[n] != '\0') {
		memcpy(u->name + n, "...", 3);
		n += 3;
	}
	u->name[n] = '\0';
	return 1;
}

/* A refused or failed read of the log, recorded then answered. */
static int
audit_query_answer(struct vault_request *r, struct vault_audit_rec *a,
    const char *decision, const char *reason, unsigned status, const char *msg)
{
	a->decision = decision;
	a->reason = reason;
	a->status = status;
	if (vault_audit(r, a) != TSI_OK)
		return vault_respond_audit_failed(r);
	return vault_respond_error(r, status, msg);
}

int
vault_audit_releases(struct vault *v, struct vault_request *r,
    struct vault_answer *ans)
{
	const char *const *names = query_names;
	char *arg[NQUERY] = { 0 };
	struct unknown_arg unk;
	struct timespec now;
	char msg[256];
	struct tsi_audit_query q;
	struct tsi_policy_set *p = NULL;
	struct tsi_decision d;
	struct collect c = { NULL, NULL, 0 };
	struct vault_audit_rec a;
	json_t *filters = NULL, *extra = NULL;
	const char *reason = NULL;
	uint64_t next = 0, cursor = 0;
	int ret;
	size_t i, ncount;
	int bad = 0, rc;

	if (strcmp(r->method, "GET") != 0)
		return vault_respond_error(r, 405, "method not allowed");
	/* Reading the log is itself recorded: who asked, with which
	 * filters, and how many records came back (or why not). */
	memset(&a, 0, sizeof(a));
	a.op = "audit.query";
	a.path = "sys/audit/releases";
	memset(&q, 0, sizeof(q));
	for (i = 0; i < NQUERY; i++)
		arg[i] = vault_query_arg(r, names[i], &bad);
	if ((filters = json_object()) == NULL) {
		ret = vault_respond_error(r, 500, "internal error");
		goto out;
	}
	for (i = 0; i < NQUERY; i++)
		if (arg[i] != NULL &&
		    json_object_set_new(filters, names[i],
		        json_stringn(arg[i], strnlen(arg[i], 512))) != 0) {
			/* not UTF-8: kept out of the record, but noted */
			json_object_set_new(filters, names[i],
			    json_string("(not UTF-8)"));
		}
	if ((extra = json_pack("{sO}", "filters", filters)) == NULL) {
		ret = vault_respond_error(r, 500, "internal error");
		goto out;
	}
	a.extra = extra;
	if (vault_req_auth(r, &reason) != TSI_OK) {
		a.rule = "token";
		ret = audit_query_answer(r, &a, "deny", reason, 403,
		    "permission denied");
		goto out;
	}
	a.claims = r->tok.claims;
	a.accessor = r->tok.accessor;
	/* Root skips roles but not guardrails (docs/policy.md); created
	 * tokens are checked against each of their roles. */
	p = vault_policy_get(r->v);
	memset(&d, 0, sizeof(d));
	if (r->tok.root)
		rc = tsi_policy_eval_root(p, r->tok.claims,
		    "sys/audit/releases", TSI_CAP_AUDIT, &d);
	else
		rc = vault_token_eval(p, &r->tok, "sys/audit/releases",
		    TSI_CAP_AUDIT, &d);
	tsi_policy_unref(p);
	p = NULL;
	a.rule = d.rule;
	if (rc != TSI_OK) {
		ret = audit_query_answer(r, &a, "deny", d.reason, 403,
		    "permission denied");
		goto out;
	}
	if (bad) {
		ret = audit_query_answer(r, &a, "error", "bad query encoding",
		    400, "bad query encoding");
		goto out;
	}
	memset(&unk, 0, sizeof(unk));
	if (r->io != NULL && r->io->query_each != NULL)
		r->io->query_each(r->io_ctx, unknown_cb, &unk);
	if (unk.found) {
		snprintf(msg, sizeof(msg),
		    "unknown query parameter '%s'; known: "
		    "since until decision op status path cluster-name "
		    "datacenter "
		    "image namespace limit after format",
		    unk.name);
		ret = audit_query_answer(r, &a, "error",
		    "unknown query parameter", 400, msg);
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if ((arg[0] &&
	        tsi_audit_parse_time(arg[0],
	            (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000,
	            &q.since_us) != TSI_OK) ||
	    (arg[1] &&
	        tsi_audit_parse_time(arg[1],
	            (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000,
	            &q.until_us) != TSI_OK)) {
		ret = audit_query_answer(r, &a, "error", "bad since/until", 400,
		    "since/until: RFC 3339 time (…Z), unix seconds, or an age "
		    "like 30m, 24h, 7d");
		goto out;
	}
	if (arg[10] != NULL)
		q.op = arg[10];
	if (arg[11] != NULL) {
		char *end;
		long st;

		errno = 0;
		st = strtol(arg[11], &end, 10);
		if (errno || *end || arg[11][0] == '\0' || st < 100 ||
		    st > 599) {
			ret = audit_query_answer(r, &a, "error", "bad status",
			    400, "status: an HTTP status, 100 to 599");
			goto out;
		}
		q.status = (int)st;
	}
	if (arg[12] != NULL && strcmp(arg[12], "json") != 0 &&
	    strcmp(arg[12], "csv") != 0) {
		ret = audit_query_answer(r, &a, "error", "bad format", 400,
		    "format: json or csv");
		goto out;
	}
	if (arg[2] && strcmp(arg[2], "allow") != 0 &&
	    strcmp(arg[2], "deny") != 0 && strcmp(arg[2], "error") != 0) {
		ret = audit_query_answer(r, &a, "error", "bad decision", 400,
		    "decision: allow, deny or error");
		goto out;
	}
	q.decision = arg[2];
	q.path_prefix = arg[3];
	q.cluster_name = arg[4];
	q.datacenter = arg[5];
	q.image = arg[6];
	q.namespace_ = arg[7];
	if (arg[8] != NULL) {
		char *end;
		unsigned long long n;
		errno = 0;
		n = strtoull(arg[8], &end, 10);
		if (errno || *end || arg[8][0] == '\0' || n == 0 || n > 1000) {
			ret = audit_query_answer(r, &a, "error", "bad limit",
			    400, "limit: 1 to 1000");
			goto out;
		}
		q.limit = (size_t)n;
	}
	if (arg[9] != NULL) {
		char *end;
		errno = 0;
		q.after_seq = strtoull(arg[9], &end, 10);
		if (errno || *end || arg[9][0] == '\0') {
			ret = audit_query_answer(r, &a, "error", "bad after",
			    400, "after: a record seq");
			goto out;
		}
	}
	if (arg[12] != NULL && strcmp(arg[12], "csv") == 0) {
		if ((c.csv = tsi_buf_new(CSV_MAX)) == NULL ||
		    tsi_buf_puts(c.csv, tsi_audit_csv_header()) != TSI_OK) {
			ret = vault_respond_error(r, 500, "internal error");
			goto out;
		}
	} else if ((c.arr = json_array()) == NULL) {
		ret = vault_respond_error(r, 500, "internal error");
		goto out;
	}
	pthread_mutex_lock(&r->v->reader_mu);
	if (r->v->audit_reader == NULL &&
	    tsi_audit_reader_open(r->v->audit_dir, &r->v->audit_reader) !=
	        TSI_OK)
		r->v->audit_reader = NULL;
	rc = r->v->audit_reader ? tsi_audit_query_cursor(r->v->audit_reader, &q,
	                              collect_cb, &c, &next, &cursor)
	                        : TSI_ERR_STORE;
	pthread_mutex_unlock(&r->v->reader_mu);
	if (rc != TSI_OK || c.failed) {
		tsi_log(TSI_LOG_ERROR, "audit.query_failed",
		    TSI_LS("error", tsi_strerror(rc)));
		ret = audit_query_answer(r, &a, "error", "query failed", 503,
		    "audit log unavailable");
		goto out;
	}
	if (c.csv != NULL) {
		/* count the rows: every record's row ends in one '\n' that is
		 * not inside a quoted cell */
		const char *t = tsi_buf_str(c.csv);
		size_t k, rows = 0;
		int quoted = 0;

		for (k = 0; t[k] != '\0'; k++) {
			if (t[k] == '"')
				quoted = !quoted;
			else if (t[k] == '\n' && !quoted)
				rows++;
		}
		ncount = rows - 1;
	} else {
		ncount = json_array_size(c.arr);
	}
	/* Recorded before the answer: records that leave are counted. */
	json_object_set_new(extra, "count", json_integer((json_int_t)ncount));
	a.decision = "allow";
	a.reason = "records returned";
	a.status = 200;
	if (vault_audit(r, &a) != TSI_OK) {
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	if (c.csv != NULL) {
		ret = vault_respond_text(r, 200, "text/csv; charset=utf-8",
		    tsi_buf_take(c.csv, NULL));
	} else {
		/* next_after: set only while more records match (paging);
		 * cursor: always, what a poller passes as after next time. */
		char nb[32], cb[32];
		json_t *data;

		snprintf(cb, sizeof(cb), "%llu", (unsigned long long)cursor);
		data = json_pack("{sOsIss}", "records", c.arr, "count",
		    (json_int_t)json_array_size(c.arr), "cursor", cb);
		if (data != NULL && next != 0) {
			snprintf(nb, sizeof(nb), "%llu",
			    (unsigned long long)next);
			json_object_set_new(data, "next_after",
			    json_string(nb));
		}
		ret = vault_respond(r, 200, vault_envelope(r, data, NULL));
	}
out:
	tsi_buf_free(c.csv);
	json_decref(filters);
	json_decref(extra);
	json_decref(c.arr);
	for (i = 0; i < NQUERY; i++)
		free(arg[i]);
	return ret;
}
