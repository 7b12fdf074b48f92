/*
 * metrics.c - request counters and latency histograms. Counters are updated
 * with atomic adds from every server thread; no lock on the request path.
 * Their Prometheus text (GET /v1/sys/metrics) is sys_metrics.c's, which
 * reads every module; this file depends on none, so that struct vault can
 * hold the counters.
 */
#include "metrics.h"

#include "tsi/err.h"

#include <stdlib.h>
#include <string.h>

const unsigned vault_metric_status_codes[VAULT_STATUS_SLOTS - 1] = { 200, 204,
	400, 403, 404, 405, 412, 413, 429, 500, 503 };
const double vault_metric_bucket_le[VAULT_HIST_BUCKETS - 1] = { 0.0005, 0.001,
	0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5 };

void
vault_metrics_labels(struct vault_metrics *m, const char *const *labels,
    size_t n)
{
	size_t i;

	if (n > VAULT_METRIC_ROUTES)
		n = VAULT_METRIC_ROUTES;
	for (i = 0; i < n; i++)
		m->labels[i] = labels[i];
	m->nlabels = n;
}

/* The label's slot: the same static string as a rule (a pointer compare),
 * else by text; the last slot for one not in the list. */
static size_t
label_slot(const struct vault_metrics *m, const char *label)
{
	size_t i;

	for (i = 0; i < m->nlabels; i++)
		if (m->labels[i] == label)
			return i;
	for (i = 0; i < m->nlabels; i++)
		if (strcmp(m->labels[i], label) == 0)
			return i;
	return m->nlabels > 0 ? m->nlabels - 1 : 0;
}

void
vault_metrics_request(struct vault_metrics *m, const char *label,
    unsigned status)
{
	size_t i;

	for (i = 0; i < VAULT_STATUS_SLOTS - 1; i++)
		if (vault_metric_status_codes[i] == status)
			break;
	__atomic_fetch_add(&m->req[label_slot(m, label)][i], 1,
	    __ATOMIC_RELAXED);
}

void
vault_metrics_observe(struct vault_hist *h, long long us)
{
	size_t i;

	if (us < 0)
		us = 0;
	for (i = 0; i < VAULT_HIST_BUCKETS - 1; i++)
		if ((double)us / 1e6 <= vault_metric_bucket_le[i])
			break;
	__atomic_fetch_add(&h->bucket[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum_us, (uint64_t)us, __ATOMIC_RELAXED);
}
