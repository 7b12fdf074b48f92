/*
 * metrics.h - request counters and latency histograms (metrics.c).
 */
#ifndef TSI_VAULT_METRICS_H
#define TSI_VAULT_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Request counters are labelled by route metric (routes.c); the labels are
 * set once at start-up (vault_metrics_labels). */
#define VAULT_METRIC_ROUTES 16

#define VAULT_HIST_BUCKETS 12
struct vault_hist {
	uint64_t bucket[VAULT_HIST_BUCKETS]; /* cumulative at render time */
	uint64_t count;
	uint64_t sum_us;
};
#define VAULT_STATUS_SLOTS 12
/* The status codes counted apart (the last slot: any other), and the
 * histograms' upper bounds in seconds (the last bucket: +Inf). */
extern const unsigned vault_metric_status_codes[VAULT_STATUS_SLOTS - 1];
extern const double vault_metric_bucket_le[VAULT_HIST_BUCKETS - 1];
struct vault_metrics {
	const char *labels[VAULT_METRIC_ROUTES]; /* static strings */
	size_t nlabels;
	uint64_t req[VAULT_METRIC_ROUTES][VAULT_STATUS_SLOTS];
	struct vault_hist login;
	struct vault_hist read;
	uint64_t audit_append_failures;
	uint64_t reloads_ok, reloads_failed;
	/* Policy directories refused (the set in force stayed): invalid,
	 * or a file that had rules and has none; stale is 1 while the set in
	 * force is not the directory's files. */
	uint64_t policy_refused_invalid, policy_refused_dropped;
	int policy_stale;
	uint64_t login_throttled;          /* logins answered 429 */
	uint64_t login_throttled_recorded; /* of those, in durable records */
};
/* The route labels counters are kept under (borrowed: static strings;
 * the last one takes any label not in the list). Before any request. */
void vault_metrics_labels(struct vault_metrics *m, const char *const *labels,
    size_t n);
/* Counts a request answered status under label (one of the labels). */
void vault_metrics_request(struct vault_metrics *m, const char *label,
    unsigned status);
void vault_metrics_observe(struct vault_hist *h, long long us);

#endif /* TSI_VAULT_METRICS_H */
