/*
 * resolve_kubelet.c - Kubernetes workloads: pid -> container -> pod.
 *
 * The pod list comes from the node's kubelet (GET /pods over HTTPS, bearer
 * token and CA from files), cached for kubelet_cache_ms and refreshed when a
 * container is not found in it. Only a running container identifies a
 * caller. The pod's images are the digests the runtime reports
 * (containerStatuses, initContainerStatuses and ephemeralContainerStatuses
 * imageID), normalised to sha256:<hex>, minus the trusted sidecar images.
 */
#include "issuer/resolve.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define KUBELET_TOKEN_MAX 65536
#define KUBELET_MIN_REFRESH_MS 100
#define KUBELET_BACKOFF_MIN_MS 250
#define KUBELET_BACKOFF_MAX_MS 5000
/* How long past kubelet_cache_ms a list still answers for a container it
 * holds while a newer one is being fetched or the kubelet fails. */
#define KUBELET_STALE_MS 30000
/* The longest a caller waits for a fetch another caller started (the
 * fetch itself gives up after 3 s). */
#define KUBELET_WAIT_MS 5000
#define K8S_NAME_MAX 253

/*
 * The lock guards the list and the fetch state only: no one holds it while
 * a fetch runs. A fetched list is never changed, only replaced, so a
 * caller looks it up outside the lock through its own reference. One fetch
 * runs at a time; callers that need it wait for it on cv, and a failed
 * fetch sets a back-off during which no fetch is tried (503 at once).
 */
struct tsi_kubelet {
	const struct tsi_issuer_config *cfg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	json_t *pods;
	long long fetched_ms;
	int fetching;
	unsigned long long done; /* fetches finished, ok or not */
	int last_ok;
	long long retry_ms; /* no fetch before (after a failure) */
	long long backoff_ms;
	/* Requests that must not hold their thread wait here for the fetch
	 * the client's own thread runs (started on first need). */
	struct tsi_resolve_state *waiters;
	pthread_t thread;
	int has_thread, want_fetch, stopping;
};

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int
name_ok(const char *s)
{
	size_t i, n;

	if (s == NULL || (n = strlen(s)) == 0 || n > K8S_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* The runtime-independent id in "containerd://<hex>", "cri-o://<hex>". */
static const char *
status_id(const json_t *st)
{
	const char *cid = jstr(st, "containerID"), *p;

	if (cid == NULL)
		return NULL;
	p = strstr(cid, "://");
	return p ? p + 3 : cid;
}

static const char *const status_lists[] = { "initContainerStatuses",
	"containerStatuses", "ephemeralContainerStatuses", NULL };
static const char *const spec_lists[] = { "initContainers", "containers",
	"ephemeralContainers", NULL };

/* How many statuses in the pod name the container with this id; *first:
 * the first of them. */
static size_t
count_status(const json_t *pod, const char *id, const json_t **first)
{
	const json_t *status = json_object_get(pod, "status");
	const char *const *l;
	size_t n = 0;

	for (l = status_lists; *l != NULL; l++) {
		const json_t *arr = json_object_get(status, *l), *st;
		size_t i;

		json_array_foreach (arr, i, st) {
			const char *sid = status_id(st);
			if (sid != NULL && strcmp(sid, id) == 0 && n++ == 0)
				*first = st;
		}
	}
	return n;
}

static int
is_sidecar(const char *digest, char *const *sidecars, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(digest, sidecars[i]) == 0)
			return 1;
	return 0;
}

/* Whether the container named `name` in this pod runs a sidecar image. */
static int
container_is_sidecar(const json_t *pod, const char *name, char *const *sidecars,
    size_t n)
{
	const json_t *status = json_object_get(pod, "status");
	const char *const *l;
	char d[72];

	for (l = status_lists; *l != NULL; l++) {
		const json_t *arr = json_object_get(status, *l), *st;
		size_t i;

		json_array_foreach (arr, i, st) {
			const char *sn = jstr(st, "name");
			if (sn != NULL && strcmp(sn, name) == 0 &&
			    tsi_image_digest_normalize(jstr(st, "imageID"),
			        d) == TSI_OK)
				return is_sidecar(d, sidecars, n);
		}
	}
	return 0;
}

static int
describe_pod(const json_t *pod, const json_t *caller, char *const *sidecars,
    size_t n_sidecars, struct tsi_workload **out)
{
	const json_t *meta = json_object_get(pod, "metadata");
	const json_t *spec = json_object_get(pod, "spec");
	const json_t *status = json_object_get(pod, "status");
	const char *ns = jstr(meta, "namespace"), *name = jstr(meta, "name");
	const char *sa = jstr(spec, "serviceAccountName");
	const char *cname = jstr(caller, "name");
	const char *const *l;
	struct tsi_workload *w = NULL;
	char d[72];
	int r = TSI_ERR_PARSE;

	if (sa == NULL)
		sa = jstr(spec, "serviceAccount");
	if (sa == NULL)
		sa = "default"; /* what the API server fills in */
	if (!name_ok(ns) || !name_ok(name) || !name_ok(sa) || !name_ok(cname)) {
		tsi_log(TSI_LOG_WARN, "resolve.bad_pod",
		    TSI_LS("reason",
		        "namespace, name, service account or container name "
		        "missing or invalid"));
		return TSI_ERR_PARSE;
	}
	if ((w = tsi_workload_new(TSI_WORKLOAD_K8S)) == NULL)
		return TSI_ERR_ALLOC;
	if ((w->namespace = strdup(ns)) == NULL ||
	    (w->pod = strdup(name)) == NULL ||
	    (w->service_account = strdup(sa)) == NULL ||
	    (w->container = strdup(cname)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	/* The caller runs: its image must be known. */
	if (tsi_image_digest_normalize(jstr(caller, "imageID"), d) != TSI_OK) {
		tsi_log(TSI_LOG_WARN, "resolve.bad_image", TSI_LS("pod", name),
		    TSI_LS("container", cname));
		r = TSI_ERR_PARSE;
		goto out;
	}
	for (l = status_lists; *l != NULL; l++) {
		const json_t *arr = json_object_get(status, *l), *st;
		size_t i;

		json_array_foreach (arr, i, st) {
			const char *iid = jstr(st, "imageID");
			/* A container that has not started has no image yet. */
			if (iid == NULL || iid[0] == '\0')
				continue;
			if (tsi_image_digest_normalize(iid, d) != TSI_OK) {
				tsi_log(TSI_LOG_WARN, "resolve.bad_image",
				    TSI_LS("pod", name),
				    TSI_LS("container", jstr(st, "name")));
				r = TSI_ERR_PARSE;
				goto out;
			}
			if (is_sidecar(d, sidecars, n_sidecars))
				continue;
			if ((r = tsi_workload_add_image(w, d)) != TSI_OK)
				goto out;
		}
	}
	for (l = spec_lists; *l != NULL; l++) {
		const json_t *arr = json_object_get(spec, *l), *c;
		size_t i;

		json_array_foreach (arr, i, c) {
			const char *img = jstr(c, "image"),
			           *cn = jstr(c, "name");
			if (img == NULL || cn == NULL || !name_ok(img))
				continue;
			if (container_is_sidecar(pod, cn, sidecars, n_sidecars))
				continue;
			if ((r = tsi_workload_add_image_name(w, img)) != TSI_OK)
				goto out;
		}
	}
	*out = w;
	w = NULL;
	r = TSI_OK;
out:
	tsi_workload_free(w);
	return r;
}

int
tsi_kubelet_pod_lookup(const json_t *podlist, const char *id,
    char *const *sidecars, size_t n_sidecars, const char *node_name,
    struct tsi_workload **out)
{
	const json_t *items, *pod, *found = NULL, *st = NULL, *pst;
	const char *node;
	size_t i, n = 0, k;

	if (podlist == NULL || id == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if (!json_is_array(items = json_object_get(podlist, "items")))
		return TSI_ERR_PARSE;
	/* Every pod is looked at: a container id claimed twice (two pods,
	 * or twice in one) names nobody, whichever comes first. */
	json_array_foreach (items, i, pod) {
		if ((k = count_status(pod, id, &pst)) == 0)
			continue;
		if (n == 0) {
			found = pod;
			st = pst;
		}
		n += k;
	}
	if (n == 0)
		return TSI_ERR_UNIDENTIFIED;
	if (n > 1) {
		tsi_log(TSI_LOG_WARN, "resolve.ambiguous_container",
		    TSI_LS("container_id", id), TSI_LI("claims", (long long)n));
		return TSI_ERR_UNIDENTIFIED;
	}
	if (json_object_get(json_object_get(st, "state"), "running") == NULL) {
		tsi_log(TSI_LOG_INFO, "resolve.not_running",
		    TSI_LS("container", jstr(st, "name")));
		return TSI_ERR_UNIDENTIFIED;
	}
	node = jstr(json_object_get(found, "spec"), "nodeName");
	if (node_name != NULL &&
	    (node == NULL || strcmp(node, node_name) != 0)) {
		tsi_log(TSI_LOG_WARN, "resolve.other_node",
		    TSI_LS("pod_node", node ? node : ""));
		return TSI_ERR_UNIDENTIFIED;
	}
	return describe_pod(found, st, sidecars, n_sidecars, out);
}

int
tsi_kubelet_new(const struct tsi_issuer_config *cfg, struct tsi_kubelet **out)
{
	struct tsi_kubelet *k;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return TSI_ERR_ALLOC;
	k->cfg = cfg;
	if (pthread_mutex_init(&k->mu, NULL) != 0) {
		free(k);
		return TSI_ERR_INTERNAL;
	}
	if (pthread_cond_init(&k->cv, NULL) != 0) {
		pthread_mutex_destroy(&k->mu);
		free(k);
		return TSI_ERR_INTERNAL;
	}
	*out = k;
	return TSI_OK;
}

void
tsi_kubelet_free(struct tsi_kubelet *k)
{
	if (k == NULL)
		return;
	tsi_kubelet_stop(k);
	json_decref(k->pods);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

struct fetch_body {
	CURL *c;
	struct tsi_podlist_parser *parser;
};

static size_t
write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct fetch_body *b = ud;
	long status = 0;

	/* An error page is not a pod list: its status says what failed. */
	(void)curl_easy_getinfo(b->c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return size * n;
	if (tsi_podlist_parser_feed(b->parser, p, size * n) != TSI_OK)
		return 0; /* not a pod list, or over a bound: stop */
	return size * n;
}

/* "Authorization: Bearer <token>" from the token file; *hdr: tsi_strfree. */
static int
bearer_header(const char *path, char **hdr)
{
	char *tok = NULL, *h = NULL;
	size_t len = 0, hl;
	int r;

	if ((r = tsi_read_small_file(path, KUBELET_TOKEN_MAX, &tok, &len)) !=
	    TSI_OK)
		return r;
	while (len > 0 &&
	    (tok[len - 1] == '\n' || tok[len - 1] == '\r' ||
	        tok[len - 1] == ' '))
		tok[--len] = '\0';
	hl = len + sizeof("Authorization: Bearer ");
	if (len == 0 || memchr(tok, '\n', len) != NULL) {
		r = TSI_ERR_PARSE;
		goto out;
	}
	if ((h = malloc(hl)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	(void)snprintf(h, hl, "Authorization: Bearer %s", tok);
	*hdr = h;
	r = TSI_OK;
out:
	tsi_freezero(tok, len);
	return r;
}

/* Cuts a transfer short when the issuer stops. */
static int
progress_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	const struct tsi_kubelet *k = ud;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return __atomic_load_n(&k->stopping, __ATOMIC_RELAXED) ? 1 : 0;
}

int
tsi_kubelet_fetch(struct tsi_kubelet *k, json_t **out)
{
	const struct tsi_issuer_config *cfg = k->cfg;
	struct curl_slist *hdrs = NULL, *h2;
	struct tsi_podlist_parser *body = NULL;
	struct fetch_body fb;
	char url[2048], *auth = NULL, curlerr[CURL_ERROR_SIZE];
	CURL *c = NULL;
	CURLcode cc;
	long status = 0;
	json_t *j = NULL;
	int r = TSI_ERR_IO, n;

	n = snprintf(url, sizeof(url), "%s/pods", cfg->kubelet_url);
	if (n < 0 || (size_t)n >= sizeof(url))
		return TSI_ERR_TOO_LARGE;
	if (cfg->kubelet_token_file != NULL &&
	    (r = bearer_header(cfg->kubelet_token_file, &auth)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "kubelet.token",
		    TSI_LS("path", cfg->kubelet_token_file),
		    TSI_LS("error", tsi_strerror(r)));
		return TSI_ERR_IO;
	}
	r = TSI_ERR_ALLOC;
	if (tsi_podlist_parser_new(&body) != TSI_OK ||
	    (c = curl_easy_init()) == NULL)
		goto out;
	if (auth != NULL) {
		if ((h2 = curl_slist_append(hdrs, auth)) == NULL)
			goto out;
		hdrs = h2;
	}
	if ((h2 = curl_slist_append(hdrs, "Accept: application/json")) == NULL)
		goto out;
	hdrs = h2;
	curlerr[0] = '\0';
	(void)curl_easy_setopt(c, CURLOPT_URL, url);
	(void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	fb.c = c;
	fb.parser = body;
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &fb);
	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	(void)curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
	(void)curl_easy_setopt(c, CURLOPT_XFERINFODATA, k);
	(void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	/* Time, not memory, is what a large list costs: long enough for a
	 * list far larger than any node's at loopback speed. */
	(void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	(void)curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	(void)curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	(void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curlerr);
	if (cfg->kubelet_ca_file != NULL)
		(void)curl_easy_setopt(c, CURLOPT_CAINFO, cfg->kubelet_ca_file);
	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		if (cc == CURLE_WRITE_ERROR) {
			/* The parser's verdict, known before the end. */
			r = tsi_podlist_parser_finish(body, &j);
			tsi_log(TSI_LOG_ERROR, "kubelet.parse",
			    TSI_LS("error", tsi_strerror(r)));
			goto out;
		}
		tsi_log(TSI_LOG_ERROR, "kubelet.fetch", TSI_LS("url", url),
		    TSI_LS("error",
		        curlerr[0] ? curlerr : curl_easy_strerror(cc)));
		r = TSI_ERR_IO;
		goto out;
	}
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		tsi_log(TSI_LOG_ERROR, "kubelet.fetch", TSI_LS("url", url),
		    TSI_LI("status", status));
		r = TSI_ERR_IO;
		goto out;
	}
	if ((r = tsi_podlist_parser_finish(body, &j)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "kubelet.parse",
		    TSI_LS("error", "not a complete list of pod objects"));
		goto out;
	}
	*out = j;
	r = TSI_OK;
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	tsi_podlist_parser_free(body);
	tsi_strfree(auth);
	return r;
}

static int
container_of(const char *proc_root, pid_t pid, char id[65])
{
	char path[512], *text = NULL;
	size_t len = 0;
	int n, r;

	n = snprintf(path, sizeof(path), "%s/%ld/cgroup", proc_root, (long)pid);
	if (n < 0 || (size_t)n >= sizeof(path))
		return TSI_ERR_TOO_LARGE;
	if ((r = tsi_read_small_file(path, TSI_CGROUP_MAX_BYTES, &text,
	         &len)) != TSI_OK)
		return r;
	r = tsi_cgroup_container_id(text, len, id);
	free(text);
	return r;
}

static int
lookup(struct tsi_kubelet *k, json_t *pods, const char *id,
    struct tsi_workload **out)
{
	const struct tsi_issuer_config *cfg = k->cfg;

	return tsi_kubelet_pod_lookup(pods, id, cfg->sidecar_images,
	    cfg->n_sidecar_images, cfg->node_name, out);
}

/* Wakes the waiters taken off the list (outside the lock): each is its
 * request's, and is not touched after its wake. */
static void
wake_all(struct tsi_resolve_state *w)
{
	struct tsi_resolve_state *next;
	struct tsi_wake wk;

	for (; w != NULL; w = next) {
		next = w->next_waiter;
		w->next_waiter = NULL;
		wk = w->wake;
		wk.fn(wk.arg);
	}
}

/* Runs one fetch (called with mu held and fetching set; returns with mu
 * held): the lock is released for the fetch itself. *woken: the waiters
 * to wake once the lock is released. */
static void
fetch_locked(struct tsi_kubelet *k, struct tsi_resolve_state **woken)
{
	json_t *fresh = NULL;
	int r;

	pthread_mutex_unlock(&k->mu);
	r = tsi_kubelet_fetch(k, &fresh);
	pthread_mutex_lock(&k->mu);
	if (r == TSI_OK) {
		json_decref(k->pods);
		k->pods = fresh;
		k->fetched_ms = mono_ms();
		k->backoff_ms = 0;
		k->retry_ms = 0;
	} else {
		k->backoff_ms = k->backoff_ms == 0 ? KUBELET_BACKOFF_MIN_MS
		                                   : k->backoff_ms * 2;
		if (k->backoff_ms > KUBELET_BACKOFF_MAX_MS)
			k->backoff_ms = KUBELET_BACKOFF_MAX_MS;
		k->retry_ms = mono_ms() + k->backoff_ms;
		tsi_log(TSI_LOG_WARN, "kubelet.backoff",
		    TSI_LI("retry_in_ms", k->backoff_ms));
	}
	k->last_ok = r == TSI_OK;
	k->fetching = 0;
	k->done++;
	*woken = k->waiters;
	k->waiters = NULL;
	pthread_cond_broadcast(&k->cv);
}

static void *
fetch_thread(void *arg)
{
	struct tsi_kubelet *k = arg;
	struct tsi_resolve_state *woken;

	pthread_mutex_lock(&k->mu);
	for (;;) {
		while (!k->want_fetch && !k->stopping)
			pthread_cond_wait(&k->cv, &k->mu);
		if (k->stopping)
			break;
		k->want_fetch = 0;
		woken = NULL;
		fetch_locked(k, &woken);
		pthread_mutex_unlock(&k->mu);
		wake_all(woken);
		pthread_mutex_lock(&k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

void
tsi_kubelet_stop(struct tsi_kubelet *k)
{
	struct tsi_resolve_state *woken;

	if (k == NULL)
		return;
	pthread_mutex_lock(&k->mu);
	__atomic_store_n(&k->stopping, 1, __ATOMIC_RELAXED);
	woken = k->waiters;
	k->waiters = NULL;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	wake_all(woken);
	if (k->has_thread) {
		pthread_join(k->thread, NULL);
		k->has_thread = 0;
	}
}

/* A miss that must not hold its thread: queued for the fetch the client's
 * thread runs. TSI_ERR_AGAIN when queued (with mu held). */
static int
wait_async(struct tsi_kubelet *k, struct tsi_resolve_state *st,
    const struct tsi_wake *wake)
{
	if (k->stopping)
		return TSI_ERR_IO;
	if (!k->has_thread) {
		if (pthread_create(&k->thread, NULL, fetch_thread, k) != 0)
			return TSI_ERR_IO;
		k->has_thread = 1;
	}
	st->wake = *wake;
	st->next_waiter = k->waiters;
	k->waiters = st;
	st->kubelet_waited = 1;
	if (!k->fetching) {
		k->fetching = 1;
		k->want_fetch = 1;
		pthread_cond_broadcast(&k->cv);
	}
	return TSI_ERR_AGAIN;
}

/* id -> workload from the cached list, fetching when it must (on this
 * thread without wake; on the client's thread, TSI_ERR_AGAIN, with). */
static int
list_resolve(struct tsi_kubelet *k, const char *id,
    struct tsi_resolve_state *st, const struct tsi_wake *wake,
    struct tsi_workload **out)
{
	struct tsi_resolve_state *woken = NULL;
	const struct tsi_issuer_config *cfg = k->cfg;
	json_t *pods = NULL;
	unsigned long long seen;
	struct timespec until;
	long long now, age;
	int r = TSI_ERR_UNIDENTIFIED, stale_ok;

	/* A fresh list answers for what it holds without any wait. */
	pthread_mutex_lock(&k->mu);
	now = mono_ms();
	age = now - k->fetched_ms;
	stale_ok = k->fetching || now < k->retry_ms;
	if (k->pods != NULL &&
	    (age < cfg->kubelet_cache_ms ||
	        (stale_ok && age < cfg->kubelet_cache_ms + KUBELET_STALE_MS)))
		pods = json_incref(k->pods);
	pthread_mutex_unlock(&k->mu);
	if (pods != NULL) {
		r = lookup(k, pods, id, out);
		json_decref(pods);
		pods = NULL;
		if (r != TSI_ERR_UNIDENTIFIED)
			return r;
	}
	/* A miss may be a pod newer than the list: one fetch, whoever
	 * asks, not more often than KUBELET_MIN_REFRESH_MS, none while
	 * backing off after a failure. */
	pthread_mutex_lock(&k->mu);
	now = mono_ms();
	if (wake != NULL && st != NULL && st->kubelet_waited) {
		/* Woken after the fetch it waited for: its list answers. */
		if (!k->last_ok) {
			pthread_mutex_unlock(&k->mu);
			return TSI_ERR_IO;
		}
	} else if (wake != NULL && st != NULL &&
	    (k->fetching ||
	        (now >= k->retry_ms &&
	            (k->pods == NULL ||
	                now - k->fetched_ms >= KUBELET_MIN_REFRESH_MS)))) {
		r = wait_async(k, st, wake);
		pthread_mutex_unlock(&k->mu);
		return r;
	} else if (wake != NULL && st != NULL && now < k->retry_ms) {
		pthread_mutex_unlock(&k->mu);
		return TSI_ERR_IO;
	} else if (wake != NULL && st != NULL) {
		/* The list is under KUBELET_MIN_REFRESH_MS old: it answers. */
	} else if (k->fetching) {
		seen = k->done;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += KUBELET_WAIT_MS / 1000;
		while (k->fetching && k->done == seen)
			if (pthread_cond_timedwait(&k->cv, &k->mu, &until) != 0)
				break;
		if (k->done == seen || !k->last_ok) {
			pthread_mutex_unlock(&k->mu);
			return TSI_ERR_IO;
		}
	} else if (now < k->retry_ms) {
		pthread_mutex_unlock(&k->mu);
		return TSI_ERR_IO;
	} else if (k->pods == NULL ||
	    now - k->fetched_ms >= KUBELET_MIN_REFRESH_MS) {
		k->fetching = 1;
		fetch_locked(k, &woken);
		if (!k->last_ok) {
			pthread_mutex_unlock(&k->mu);
			wake_all(woken);
			/* Whatever failed (unreachable, refused, a
			 * malformed or truncated list), the caller may be
			 * fine: 503, retry. */
			return TSI_ERR_IO;
		}
	}
	/* The list just fetched, or one under KUBELET_MIN_REFRESH_MS old. */
	if (k->pods != NULL)
		pods = json_incref(k->pods);
	pthread_mutex_unlock(&k->mu);
	wake_all(woken);
	if (pods == NULL)
		return TSI_ERR_IO;
	r = lookup(k, pods, id, out);
	json_decref(pods);
	return r;
}

static int
kubelet_resolve(struct tsi_kubelet *k, pid_t pid, const char *expect,
    struct tsi_resolve_state *st, const struct tsi_wake *wake,
    struct tsi_workload **out)
{
	const struct tsi_issuer_config *cfg = k->cfg;
	char id[65];
	int r;

	if ((r = container_of(cfg->proc_root, pid, id)) != TSI_OK) {
		tsi_log(TSI_LOG_INFO, "resolve.no_container",
		    TSI_LI("pid", pid), TSI_LS("error", tsi_strerror(r)));
		return TSI_ERR_UNIDENTIFIED;
	}
	if (expect != NULL && strcmp(expect, id) != 0) {
		tsi_log(TSI_LOG_WARN, "resolve.container_changed",
		    TSI_LI("pid", pid), TSI_LS("container_id", id),
		    TSI_LS("at_accept", expect));
		return TSI_ERR_UNIDENTIFIED;
	}
	if ((r = list_resolve(k, id, st, wake, out)) == TSI_ERR_AGAIN)
		return r;
	if (r == TSI_ERR_UNIDENTIFIED)
		tsi_log(TSI_LOG_INFO, "resolve.unknown_container",
		    TSI_LI("pid", pid), TSI_LS("container_id", id));
	return r;
}

int
tsi_kubelet_resolve(struct tsi_kubelet *k, pid_t pid, struct tsi_workload **out)
{
	return kubelet_resolve(k, pid, NULL, NULL, NULL, out);
}

int
tsi_kubelet_resolve_peer(struct tsi_kubelet *k, const struct tsi_peer *p,
    struct tsi_resolve_state *st, const struct tsi_wake *wake,
    struct tsi_workload **out)
{
	if (p->container[0] == '\0') {
		tsi_log(TSI_LOG_INFO, "resolve.no_container",
		    TSI_LI("pid", p->pid),
		    TSI_LS("error", "in no container when it connected"));
		return TSI_ERR_UNIDENTIFIED;
	}
	return kubelet_resolve(k, p->pid, p->container, st, wake, out);
}
