/*
 * sys_metrics.c - GET /v1/sys/metrics: the Prometheus text of the counters
 * (metrics.c) and of what every module reports (tokens, connection slots,
 * failed-login limits, the audit log).
 */
#include "vault.h"
#include "routes.h"
#include "sinks.h"
#include "login_limit.h"
#include "metrics.h"
#include "guard.h"
#include "http.h"
#include "tokens.h"

#include "tsi/audit.h"
#include "tsi/buf.h"
#include "tsi/err.h"

#include <stdlib.h>
#include <string.h>

static int
render_hist(struct tsi_buf *b, const char *name, const char *help,
    struct vault_hist *h)
{
	uint64_t cum = 0;
	size_t i;
	int r;

	if ((r = tsi_buf_putf(b, "# HELP %s %s\n# TYPE %s histogram\n", name,
	         help, name)) != TSI_OK)
		return r;
	for (i = 0; i < VAULT_HIST_BUCKETS; i++) {
		cum += __atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED);
		if (i < VAULT_HIST_BUCKETS - 1)
			r = tsi_buf_putf(b, "%s_bucket{le=\"%g\"} %llu\n", name,
			    vault_metric_bucket_le[i], (unsigned long long)cum);
		else
			r = tsi_buf_putf(b, "%s_bucket{le=\"+Inf\"} %llu\n",
			    name, (unsigned long long)cum);
		if (r != TSI_OK)
			return r;
	}
	return tsi_buf_putf(b, "%s_sum %.6f\n%s_count %llu\n", name,
	    (double)__atomic_load_n(&h->sum_us, __ATOMIC_RELAXED) / 1e6, name,
	    (unsigned long long)__atomic_load_n(&h->count, __ATOMIC_RELAXED));
}

static int
render(struct vault *v, struct tsi_buf *b)
{
	struct vault_metrics *m = &v->metrics;
	struct tsi_audit_status st;
	size_t ri, si;
	int r;

	r = tsi_buf_puts(b,
	    "# HELP tsi_vault_requests_total HTTP requests by "
	    "route and status.\n# TYPE tsi_vault_requests_total counter\n");
	for (ri = 0; r == TSI_OK && ri < m->nlabels; ri++)
		for (si = 0; r == TSI_OK && si < VAULT_STATUS_SLOTS; si++) {
			uint64_t n =
			    __atomic_load_n(&m->req[ri][si], __ATOMIC_RELAXED);
			char code[8];
			if (n == 0)
				continue;
			if (si < VAULT_STATUS_SLOTS - 1)
				snprintf(code, sizeof(code), "%u",
				    vault_metric_status_codes[si]);
			else
				snprintf(code, sizeof(code), "other");
			r = tsi_buf_putf(b,
			    "tsi_vault_requests_total{route=\"%s\","
			    "status=\"%s\"} %llu\n",
			    m->labels[ri], code, (unsigned long long)n);
		}
	if (r != TSI_OK)
		return r;
	if ((r = render_hist(b, "tsi_vault_login_duration_seconds",
	         "Login latency (JWT verification, policy, audit).",
	         &m->login)) != TSI_OK ||
	    (r = render_hist(b, "tsi_vault_read_duration_seconds",
	         "Secret read latency (policy, decrypt, audit).", &m->read)) !=
	        TSI_OK)
		return r;
	if ((r = vault_guard_metrics(v, b)) != TSI_OK ||
	    (r = vault_sinks_metrics(v, b)) != TSI_OK)
		return r;
	memset(&st, 0, sizeof(st));
	if (v->audit != NULL)
		tsi_audit_status(v->audit, &st);
	/* What hostile load does (docs/vault.md "Failed logins"). */
	if ((r = tsi_buf_putf(b,
	         "# HELP tsi_vault_login_throttled_total Logins refused with "
	         "429 by "
	         "the per-source failed-login limit.\n"
	         "# TYPE tsi_vault_login_throttled_total counter\n"
	         "tsi_vault_login_throttled_total %llu\n"
	         "# HELP tsi_vault_login_throttled_recorded_total Of those, "
	         "refusals in durable per-source records.\n"
	         "# TYPE tsi_vault_login_throttled_recorded_total counter\n"
	         "tsi_vault_login_throttled_recorded_total %llu\n"
	         "# HELP tsi_vault_login_throttled_sources Sources over their "
	         "failed-login limit now.\n"
	         "# TYPE tsi_vault_login_throttled_sources gauge\n"
	         "tsi_vault_login_throttled_sources %zu\n"
	         "# HELP tsi_vault_audit_free_bytes Room left in the audit log "
	         "(estimate).\n"
	         "# TYPE tsi_vault_audit_free_bytes gauge\n"
	         "tsi_vault_audit_free_bytes %zu\n"
	         "# HELP tsi_vault_audit_reserve_in_use 1 while the room left "
	         "is "
	         "within the reserve: unauthenticated records are refused.\n"
	         "# TYPE tsi_vault_audit_reserve_in_use gauge\n"
	         "tsi_vault_audit_reserve_in_use %d\n"
	         "# HELP tsi_vault_audit_reserve_refused_total Records of "
	         "unauthenticated callers refused to keep the reserve.\n"
	         "# TYPE tsi_vault_audit_reserve_refused_total counter\n"
	         "tsi_vault_audit_reserve_refused_total %llu\n"
	         "# HELP tsi_vault_audit_retention_held 1 while pruning by "
	         "size is "
	         "stopped by allowed decisions younger than "
	         "audit_release_min_age.\n"
	         "# TYPE tsi_vault_audit_retention_held gauge\n"
	         "tsi_vault_audit_retention_held %d\n",
	         (unsigned long long)__atomic_load_n(&m->login_throttled,
	             __ATOMIC_RELAXED),
	         (unsigned long long)
	             __atomic_load_n(&m->login_throttled_recorded,
	                 __ATOMIC_RELAXED),
	         vault_limiter_throttled(v->login_limit, time(NULL)),
	         st.free_bytes, st.reserve_in_use,
	         (unsigned long long)st.reserve_refused, st.retention_held)) !=
	    TSI_OK)
		return r;
	if ((r = tsi_buf_putf(b,
	         "# HELP tsi_vault_audit_healthy 1 when audit commits "
	         "succeed.\n"
	         "# TYPE tsi_vault_audit_healthy gauge\n"
	         "tsi_vault_audit_healthy %d\n"
	         "# HELP tsi_vault_audit_queue_depth Audit records waiting for "
	         "commit.\n"
	         "# TYPE tsi_vault_audit_queue_depth gauge\n"
	         "tsi_vault_audit_queue_depth %zu\n"
	         "# HELP tsi_vault_audit_committed_total Audit records "
	         "committed.\n"
	         "# TYPE tsi_vault_audit_committed_total counter\n"
	         "tsi_vault_audit_committed_total %llu\n"
	         "# HELP tsi_vault_audit_failures_total Audit appends that "
	         "failed.\n"
	         "# TYPE tsi_vault_audit_failures_total counter\n"
	         "tsi_vault_audit_failures_total %llu\n"
	         "# HELP tsi_vault_tokens Live tokens in memory.\n"
	         "# TYPE tsi_vault_tokens gauge\n"
	         "tsi_vault_tokens %zu\n"
	         "# HELP tsi_vault_policy_reloads_total SIGHUP reloads by "
	         "result.\n"
	         "# TYPE tsi_vault_policy_reloads_total counter\n"
	         "tsi_vault_policy_reloads_total{result=\"ok\"} %llu\n"
	         "tsi_vault_policy_reloads_total{result=\"failed\"} %llu\n",
	         st.healthy, st.queue_depth, (unsigned long long)st.committed,
	         (unsigned long long)st.failed, vault_tokens_count(v->tokens),
	         (unsigned long long)__atomic_load_n(&m->reloads_ok,
	             __ATOMIC_RELAXED),
	         (unsigned long long)__atomic_load_n(&m->reloads_failed,
	             __ATOMIC_RELAXED))) != TSI_OK)
		return r;
	return tsi_buf_putf(b,
	    "# HELP tsi_vault_policy_refusals_total Policy directories refused "
	    "at start-up or reload (the set in force stayed), by reason.\n"
	    "# TYPE tsi_vault_policy_refusals_total counter\n"
	    "tsi_vault_policy_refusals_total{reason=\"invalid\"} %llu\n"
	    "tsi_vault_policy_refusals_total{reason=\"dropped_rules\"} %llu\n"
	    "# HELP tsi_vault_policy_stale 1 while the policy set in force is "
	    "not the policy directory's files (refused, or the last good "
	    "set).\n"
	    "# TYPE tsi_vault_policy_stale gauge\n"
	    "tsi_vault_policy_stale %d\n",
	    (unsigned long long)__atomic_load_n(&m->policy_refused_invalid,
	        __ATOMIC_RELAXED),
	    (unsigned long long)__atomic_load_n(&m->policy_refused_dropped,
	        __ATOMIC_RELAXED),
	    __atomic_load_n(&m->policy_stale, __ATOMIC_RELAXED));
}

int
vault_sys_metrics(struct vault *v, struct vault_request *r,
    struct vault_answer *ans)
{
	struct tsi_buf *b;
	char *fmt, *text;
	int bad = 0;

	if (strcmp(r->method, "GET") != 0)
		return vault_respond_error(r, 405, "method not allowed");
	fmt = vault_query_arg(r, "format", &bad);
	if (bad || (fmt != NULL && strcmp(fmt, "prometheus") != 0)) {
		free(fmt);
		return vault_respond_error(r, 400,
		    "unsupported format; use format=prometheus");
	}
	free(fmt);
	if ((b = tsi_buf_new(256 * 1024)) == NULL)
		return vault_respond_error(r, 500, "internal error");
	if (render(r->v, b) != TSI_OK ||
	    (text = tsi_buf_take(b, NULL)) == NULL) {
		tsi_buf_free(b);
		return vault_respond_error(r, 500, "internal error");
	}
	tsi_buf_free(b);
	return vault_respond_text(r, 200, "text/plain; version=0.0.4", text);
}
