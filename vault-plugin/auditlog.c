/*
 * auditlog.c - what tsi-vault writes to the audit log (the query endpoint,
 * GET /v1/sys/audit/releases, is audit_query.c).
 *
 * Invariant: every login, read, write, list and delete, allowed or denied,
 * has its record durably committed (tsi_audit_append returned TSI_OK) before
 * its response is queued. When the append fails the caller answers 503 and
 * releases nothing. Records carry the token's accessor, never the token.
 */
#include "vault.h"
#include "settings.h"
#include "login_limit.h"
#include "auditlog.h"
#include "routes.h"
#include "http.h"

#include "tsi/audit.h"
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
 * modified once stored (tokens.h), and a slot holds a reference to the
 * object it is keyed by, so its address cannot be reused by another
 * object while the slot names it. Direct-mapped; a miss replaces the slot.
 */
#define CLAIMS_SLOTS 256

struct claims_slot {
	pthread_mutex_t mu;
	json_t *claims;             /* referenced */
	struct tsi_audit_claims *c; /* referenced */
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
		    TSI_LS("route",
		        r->route != NULL ? r->route->metric : "other"),
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
	rec = json_pack("{sssssIsssssssssssssI}", "op", a->op, "path",
	    a->path ? a->path : "", "version", (json_int_t)a->version,
	    "decision", a->decision, "rule", a->rule ? a->rule : "", "reason",
	    a->reason ? a->reason : "", "accessor",
	    a->accessor ? a->accessor : "", "remote", r->remote, "request_id",
	    r->request_id, "status", (json_int_t)a->status);
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
		if (json_object_set_new(rec, "phase", json_string(a->phase)) !=
		        0 ||
		    (a->ref_seq != 0 &&
		        json_object_set_new(rec, "ref_seq",
		            json_integer((json_int_t)a->ref_seq)) != 0)) {
			json_decref(rec);
			rec = NULL;
		}
	}
	if (rec != NULL && cc == NULL) {
		/* A token's claims are never modified once stored (tokens.h):
		 * the record takes a reference, not a copy. */
		if (json_object_set_new(rec, "claims",
		        a->claims ? json_incref((json_t *)a->claims)
		                  : json_object()) != 0) {
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
		return TSI_OK; /* the outcome decides what is sent */
	}
	if (cc != NULL) {
		/* the waiting path takes the whole record */
		json_object_set_new(rec, "claims",
		    json_incref((json_t *)a->claims));
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

	snprintf(reason, sizeof(reason),
	    "%u logins refused: over %lld failed "
	    "logins in %u s",
	    count, r->v->set->login_fail_limit, window);
	vault_time_str((long long)start * 1000000, ws, sizeof(ws));
	rec = json_pack("{sssssIsssssssssssssIsosssIsIss}", "op",
	    "login.throttled", "path", "auth/trusted-identity/login", "version",
	    (json_int_t)0, "decision", "deny", "rule", "login_failure_limit",
	    "reason", reason, "accessor", "", "remote", src, "request_id", "",
	    "status", (json_int_t)429, "claims", json_object(), "source", src,
	    "count", (json_int_t)count, "window_s", (json_int_t)window,
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
