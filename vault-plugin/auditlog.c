/*
 * auditlog.c - what tsi-vault writes to the audit log, and the HTTP query
 * endpoint GET /v1/sys/audit/releases.
 *
 * Invariant: every login, read, write, list and delete, allowed or denied,
 * has its record durably committed (tsi_audit_append returned TSI_OK) before
 * its response is queued. When the append fails the caller answers 503 and
 * releases nothing. Records carry the token's accessor, never the token.
 */
#include "vault.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * A token's claims, checked for secrets and serialised once
 * (tsi_audit_claims_new) instead of in every record: a cache keyed by the
 * claims object itself. That is sound because a token's claims are never
 * modified once stored (vault.h), and a slot holds a reference to the
 * object it is keyed by, so its address cannot be reused by another
 * object while the slot names it. Direct-mapped; a miss replaces the slot.
 */
#define CLAIMS_SLOTS 256

struct claims_slot {
	pthread_mutex_t mu;
	json_t *claims;                 /* referenced */
	struct tsi_audit_claims *c;     /* referenced */
};

static struct claims_slot claims_cache[CLAIMS_SLOTS];
static pthread_once_t claims_once = PTHREAD_ONCE_INIT;

static void
claims_cache_init(void)
{
	size_t i;

	for (i = 0; i < CLAIMS_SLOTS; i++)
		pthread_mutex_init(&claims_cache[i].mu, NULL);
}

/* The serialised claims (a reference: tsi_audit_claims_unref), or NULL
 * when they cannot be made (the record then takes the general path, which
 * reports the problem). */
static struct tsi_audit_claims *
claims_get(const json_t *claims)
{
	struct claims_slot *s;
	struct tsi_audit_claims *c = NULL, *old_c;
	json_t *old;
	uint64_t h = (uint64_t)(uintptr_t)claims;

	pthread_once(&claims_once, claims_cache_init);
	h = (h >> 4) * UINT64_C(0x9e3779b97f4a7c15);
	s = &claims_cache[h >> 56 & (CLAIMS_SLOTS - 1)];
	pthread_mutex_lock(&s->mu);
	if (s->claims == claims)
		c = tsi_audit_claims_ref(s->c);
	pthread_mutex_unlock(&s->mu);
	if (c != NULL)
		return c;
	if (tsi_audit_claims_new(claims, &c) != TSI_OK)
		return NULL;
	pthread_mutex_lock(&s->mu);
	old = s->claims;
	old_c = s->c;
	s->claims = json_incref((json_t *)claims);
	s->c = tsi_audit_claims_ref(c);
	pthread_mutex_unlock(&s->mu);
	json_decref(old);
	tsi_audit_claims_unref(old_c);
	return c;
}

/*
 * Whether a decision is about an unauthenticated caller: no valid token
 * and no verified identity (a login whose JWT was refused, a request
 * without a token). Such records may not use the audit space reserved for
 * authenticated callers (docs/audit.md "Hostile load").
 */
static unsigned
audit_flags(const struct vault_request *r, const struct vault_audit_rec *a)
{
	if (r->authed || (a->claims != NULL && json_object_size(a->claims) > 0))
		return 0;
	return TSI_AUDIT_UNAUTH;
}

void
vault_audit_async_init(struct vault *v)
{
	pthread_mutex_init(&v->async_mu, NULL);
	pthread_cond_init(&v->async_cv, NULL);
	v->async_pending = 0;
	v->async_stopping = 0;
}

void
vault_audit_async_quiesce(struct vault *v)
{
	pthread_mutex_lock(&v->async_mu);
	v->async_stopping = 1;
	while (v->async_pending > 0)
		pthread_cond_wait(&v->async_cv, &v->async_mu);
	pthread_mutex_unlock(&v->async_mu);
}

/* Counts a callback to come (1), or 0 when the server is stopping (then
 * wait for the record instead). */
static int
async_begin(struct vault *v)
{
	int ok;

	pthread_mutex_lock(&v->async_mu);
	ok = !v->async_stopping;
	if (ok)
		v->async_pending++;
	pthread_mutex_unlock(&v->async_mu);
	return ok;
}

/* The audit callback of an async request: records the outcome, resumes
 * the connection, and no longer touches r. */
static void
async_done(void *arg, int rc, uint64_t seq)
{
	struct vault_request *r = arg;
	struct vault *v = r->v;
	const struct vault_io *io = r->io;
	void *ctx = r->io_ctx;

	(void)seq;
	if (rc != TSI_OK) {
		__atomic_fetch_add(&v->metrics.audit_append_failures, 1,
		    __ATOMIC_RELAXED);
		tsi_log(TSI_LOG_ERROR, "audit.append_failed",
		    TSI_LS("request_id", r->request_id),
		    TSI_LS("route", vault_route_metric(r->route)),
		    TSI_LS("error", tsi_strerror(rc)));
	}
	__atomic_store_n(&r->audit_rc, rc, __ATOMIC_RELEASE);
	__atomic_store_n(&r->audit_done, 1, __ATOMIC_RELEASE);
	/* From here on the server may answer, close and free r. */
	io->resume(ctx);
	pthread_mutex_lock(&v->async_mu);
	if (--v->async_pending == 0 && v->async_stopping)
		pthread_cond_broadcast(&v->async_cv);
	pthread_mutex_unlock(&v->async_mu);
}

int
vault_audit(struct vault_request *r, const struct vault_audit_rec *a)
{
	struct tsi_audit_claims *cc = NULL;
	json_t *rec;
	uint64_t seq = 0;
	unsigned flags = audit_flags(r, a);
	int rc;

	/* With claims: serialised once per token, the record carries the
	 * rest (the stored bytes are the same: tsi_audit_submit_claims). */
	if (a->claims != NULL && json_object_size(a->claims) > 0)
		cc = claims_get(a->claims);
	rec = json_pack("{sssssIsssssssssssssI}",
	    "op", a->op,
	    "path", a->path ? a->path : "",
	    "version", (json_int_t)a->version,
	    "decision", a->decision,
	    "rule", a->rule ? a->rule : "",
	    "reason", a->reason ? a->reason : "",
	    "accessor", a->accessor ? a->accessor : "",
	    "remote", r->remote,
	    "request_id", r->request_id,
	    "status", (json_int_t)a->status);
	/* A created token's name, so that a record says which admin it was
	 * (the token's accessor alone ends with the token). */
	if (rec != NULL && r->authed && r->tok.display_name[0] != '\0' &&
	    json_object_set_new(rec, "display_name",
	    json_string(r->tok.display_name)) != 0) {
		json_decref(rec);
		rec = NULL;
	}
	/* The role the token came from, so that a record says under which
	 * role a workload received what (login records name theirs in
	 * extra). */
	if (rec != NULL && r->authed && r->tok.role[0] != '\0' &&
	    json_object_set_new(rec, "role", json_string(r->tok.role)) != 0) {
		json_decref(rec);
		rec = NULL;
	}
	if (rec != NULL && a->extra != NULL &&
	    json_object_update_missing(rec, (json_t *)a->extra) != 0) {
		json_decref(rec);
		rec = NULL;
	}
	if (rec != NULL && a->phase != NULL) {
		/* The decision of a change says nothing of its outcome. */
		if (strcmp(a->phase, "decision") == 0)
			json_object_del(rec, "status");
		if (json_object_set_new(rec, "phase", json_string(a->phase)) != 0 ||
		    (a->ref_seq != 0 && json_object_set_new(rec, "ref_seq",
		    json_integer((json_int_t)a->ref_seq)) != 0)) {
			json_decref(rec);
			rec = NULL;
		}
	}
	if (rec != NULL && cc == NULL) {
		/* A token's claims are never modified once stored (vault.h):
		 * the record takes a reference, not a copy. */
		if (json_object_set_new(rec, "claims", a->claims ?
		    json_incref((json_t *)a->claims) : json_object()) != 0) {
			json_decref(rec);
			rec = NULL;
		}
	}
	if (rec == NULL) {
		tsi_audit_claims_unref(cc);
		tsi_log(TSI_LOG_ERROR, "audit.record_failed",
		    TSI_LS("request_id", r->request_id),
		    TSI_LS("reason", "cannot build record (bad UTF-8?)"));
		__atomic_fetch_add(&r->v->metrics.audit_append_failures, 1,
		    __ATOMIC_RELAXED);
		return TSI_ERR_AUDIT;
	}
	if (r->audit_async && !r->audit_submitted && r->io != NULL &&
	    async_begin(r->v)) {
		/* Suspended first: the callback may come before submit returns,
		 * and resuming a connection that is not suspended is undefined. */
		r->io->suspend(r->io_ctx);
		r->audit_submitted = 1;
		rc = tsi_audit_submit_flags(r->v->audit, rec, cc, flags,
		    async_done, r);
		json_decref(rec);
		tsi_audit_claims_unref(cc);
		if (rc != TSI_OK)
			async_done(r, rc, 0);
		return TSI_OK;   /* the outcome decides what is sent */
	}
	if (cc != NULL) {
		/* the waiting path takes the whole record */
		json_object_set_new(rec, "claims", json_incref((json_t *)a->claims));
		tsi_audit_claims_unref(cc);
	}
	rc = tsi_audit_append_flags(r->v->audit, rec, flags, &seq);
	json_decref(rec);
	if (rc != TSI_OK) {
		__atomic_fetch_add(&r->v->metrics.audit_append_failures, 1,
		    __ATOMIC_RELAXED);
		tsi_log(TSI_LOG_ERROR, "audit.append_failed",
		    TSI_LS("request_id", r->request_id), TSI_LS("op", a->op),
		    TSI_LS("error", tsi_strerror(rc)));
		return TSI_ERR_AUDIT;
	}
	if (a->seq_out != NULL)
		*a->seq_out = seq;
	return TSI_OK;
}

/* A record nobody waits for: its refusals counted once durable, its
 * failure counted and logged. */
struct note {
	struct vault *v;
	unsigned count;
};

static void
note_done(void *arg, int rc, uint64_t seq)
{
	struct note *n = arg;
	struct vault *v = n->v;

	(void)seq;
	if (rc == TSI_OK)
		__atomic_fetch_add(&v->metrics.login_throttled_recorded,
		    n->count, __ATOMIC_RELAXED);
	free(n);
	if (rc != TSI_OK) {
		__atomic_fetch_add(&v->metrics.audit_append_failures, 1,
		    __ATOMIC_RELAXED);
		tsi_log(TSI_LOG_ERROR, "audit.append_failed",
		    TSI_LS("op", "login.throttled"),
		    TSI_LS("error", tsi_strerror(rc)));
	}
}

struct throttled_arg {
	struct vault_request *r;
};

/* One record per source and window: how many failed logins the limit
 * refused (each answered 429, none recorded alone). */
static void
throttled_note(void *arg, const char *src, unsigned count, time_t start,
    unsigned window)
{
	struct throttled_arg *ta = arg;
	struct vault_request *r = ta->r;
	char reason[160], ws[40];
	struct note *n;
	json_t *rec;
	int rc;

	snprintf(reason, sizeof(reason), "%u logins refused: over %lld failed "
	    "logins in %u s", count, r->v->set->login_fail_limit, window);
	vault_time_str((long long)start * 1000000, ws, sizeof(ws));
	rec = json_pack("{sssssIsssssssssssssIsosssIsIss}",
	    "op", "login.throttled",
	    "path", "auth/trusted-identity/login",
	    "version", (json_int_t)0,
	    "decision", "deny",
	    "rule", "login_failure_limit",
	    "reason", reason,
	    "accessor", "",
	    "remote", src,
	    "request_id", "",
	    "status", (json_int_t)429,
	    "claims", json_object(),
	    "source", src,
	    "count", (json_int_t)count,
	    "window_s", (json_int_t)window,
	    "window_start", ws);
	if (rec == NULL || (n = malloc(sizeof(*n))) == NULL) {
		json_decref(rec);
		tsi_log(TSI_LOG_ERROR, "audit.record_failed",
		    TSI_LS("op", "login.throttled"),
		    TSI_LS("reason", "out of memory"));
		return;
	}
	n->v = r->v;
	n->count = count;
	rc = tsi_audit_submit_flags(r->v->audit, rec, NULL, TSI_AUDIT_UNAUTH,
	    note_done, n);
	json_decref(rec);
	if (rc != TSI_OK)
		note_done(n, rc, 0);
	tsi_log(TSI_LOG_WARN, "auth.throttled_window", TSI_LS("source", src),
	    TSI_LI("refused", count), TSI_LI("window_s", window));
}

void
vault_audit_throttled(struct vault_request *r)
{
	struct throttled_arg ta = { r };

	vault_limiter_drain(r->v->login_limit, time(NULL), throttled_note, &ta,
	    8);
}

int
vault_respond_audit_failed(struct vault_request *r)
{
	return vault_respond_error(r, 503,
	    "audit log unavailable; request not processed");
}

/* A CSV answer's bound: 1000 records (the largest limit) of at most 64 KiB
 * each, every byte a doubled quote at worst, and the header. */
#define CSV_MAX (1000u * 2u * 65536u + 4096u)

struct collect {
	json_t *arr;          /* JSON answer */
	struct tsi_buf *csv;  /* or CSV answer */
	int failed;
};

static int
collect_cb(const json_t *rec, void *arg)
{
	struct collect *c = arg;

	if (c->csv != NULL ? tsi_audit_csv_row(rec, c->csv) != TSI_OK :
	    json_array_append_new(c->arr, json_deep_copy(rec)) != 0) {
		c->failed = 1;
		return 1;
	}
	return 0;
}

static const char *const query_names[] = { "since", "until", "decision",
	"path", "cluster-name", "datacenter", "image", "namespace", "limit",
	"after", "op", "status", "format" };
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
	for (n = 0; key != NULL && key[n] != '\0' && n < sizeof(u->name) - 4; n++)
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
    const char *decision, const char *reason, unsigned status,
    const char *msg)
{
	a->decision = decision;
	a->reason = reason;
	a->status = status;
	if (vault_audit(r, a) != TSI_OK)
		return vault_respond_audit_failed(r);
	return vault_respond_error(r, status, msg);
}

int
vault_audit_releases(struct vault *v, struct vault_request *r, struct vault_answer *ans)
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
		if (arg[i] != NULL && json_object_set_new(filters, names[i],
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
		snprintf(msg, sizeof(msg), "unknown query parameter '%s'; known: "
		    "since until decision op status path cluster-name datacenter "
		    "image namespace limit after format", unk.name);
		ret = audit_query_answer(r, &a, "error",
		    "unknown query parameter", 400, msg);
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if ((arg[0] && tsi_audit_parse_time(arg[0], (long long)now.tv_sec *
	    1000000 + now.tv_nsec / 1000, &q.since_us) != TSI_OK) ||
	    (arg[1] && tsi_audit_parse_time(arg[1], (long long)now.tv_sec *
	    1000000 + now.tv_nsec / 1000, &q.until_us) != TSI_OK)) {
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
		if (errno || *end || arg[11][0] == '\0' || st < 100 || st > 599) {
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
	if (arg[2] && strcmp(arg[2], "allow") != 0 && strcmp(arg[2], "deny") != 0 &&
	    strcmp(arg[2], "error") != 0) {
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
	    tsi_audit_reader_open(r->v->audit_dir, &r->v->audit_reader) != TSI_OK)
		r->v->audit_reader = NULL;
	rc = r->v->audit_reader ? tsi_audit_query_cursor(r->v->audit_reader,
	    &q, collect_cb, &c, &next, &cursor) : TSI_ERR_STORE;
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
			snprintf(nb, sizeof(nb), "%llu", (unsigned long long)next);
			json_object_set_new(data, "next_after", json_string(nb));
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
