/*
 * audit_writer.c - tsi_audit_open/append/close/status: the group committer.
 *
 * Invariants (docs/audit.md "Group commit"):
 * - tsi_audit_append returns TSI_OK only after the batch holding its record
 *   was committed by a durable transaction of the backend.
 * - A record whose caller timed out while it was still queued is removed
 *   from the queue and is never written.
 * - A record whose caller timed out while its batch was being written may
 *   land; the committer then appends an "audit.late_commit" record naming
 *   its seq, so the log says that this record was not acknowledged.
 * - The in-memory head advances only after a successful commit.
 *
 * The store is reached only through the backend's ops (audit_backend.h):
 * nothing here knows LMDB.
 */
#include "audit_backend.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

enum ent_state {
	ENT_QUEUED,
	ENT_INFLIGHT,
	ENT_DONE
};

struct entry {
	struct audit_prep *rec; /* serialised record, owned */
	enum ent_state state;
	int abandoned; /* failed by the timer while INFLIGHT */
	uint64_t seq;
	long long deadline; /* CLOCK_MONOTONIC us: fail after this */
	tsi_audit_done_cb cb;
	void *arg;
	struct entry *prev, *next;
};

struct tsi_audit {
	const struct tsi_audit_backend_ops *ops;
	void *be; /* the backend's state (ops->open) */
	struct tsi_audit_opts o;
	pthread_t thr;
	int thr_started;

	pthread_mutex_t mu;
	pthread_cond_t work_cv;  /* committer waits for entries */
	pthread_cond_t timer_cv; /* the timer waits for the next deadline */
	struct entry *qhead, *qtail;
	size_t qlen;
	struct entry **inflight; /* the batch being written (committer's) */
	size_t n_inflight;
	int committer_idle; /* waiting on work_cv: signal it */
	int hold_us;        /* opts.commit_delay_us: one slice */
	int hold_slices;    /* at most this many slices a hold */
	int timer_idle;     /* waiting on timer_cv without a deadline */
	int stop;
	int timer_stop;
	pthread_t timer;
	int timer_started;
	uint64_t *late; /* seqs committed after their caller gave up */
	size_t nlate, late_cap;
	/* status, under mu */
	int healthy;
	uint64_t committed, failed, last_seq, commits;
	char last_error[128];
	int hold_before_ms, hold_inflight_ms; /* test hooks */
	long long retain_seconds; /* from opts, changed by set_retention */
	size_t retain_bytes;
	size_t free_est; /* room left at the last commit or prune */
	uint64_t reserve_refused, prune_held;
	int retention_held;
	/* tsi_audit_set_durable_cb; durable_mu is held while it runs, so
	 * that clearing it waits for a call in progress */
	pthread_mutex_t durable_mu;
	tsi_audit_durable_cb durable_cb;
	void *durable_arg;

	/* owned by the committer thread */
	struct audit_point head;
	long long last_time_us;
	long long last_sign_us;
	uint64_t signed_seq;
	long long next_house_us;
};

static long long
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void
deadline_ts(struct timespec *ts, long long us_from_now)
{
	long long t = mono_us() + us_from_now;

	ts->tv_sec = (time_t)(t / 1000000);
	ts->tv_nsec = (long)(t % 1000000) * 1000;
}

static void
set_error(struct tsi_audit *a, const struct audit_be_err *err)
{
	pthread_mutex_lock(&a->mu);
	a->healthy = 0;
	snprintf(a->last_error, sizeof(a->last_error), "%s: %s", err->step,
	    err->msg);
	pthread_mutex_unlock(&a->mu);
	tsi_log(TSI_LOG_ERROR, "audit.commit_failed", TSI_LS("step", err->step),
	    TSI_LS("error", err->msg));
}

/* Records the room the backend measured (an estimate that only decides
 * when unauthenticated records are refused). */
static void
note_room(struct tsi_audit *a, size_t room)
{
	if (room == AUDIT_ROOM_UNKNOWN)
		return;
	pthread_mutex_lock(&a->mu);
	a->free_est = room;
	pthread_mutex_unlock(&a->mu);
}

static struct audit_prep *
late_record(uint64_t seq)
{
	struct audit_prep *p = NULL;
	json_t *rec;

	rec = json_pack("{s:s,s:s,s:s,s:I}", "op", "audit.late_commit",
	    "decision", "error", "reason",
	    "the record ref_seq was committed "
	    "after its caller had timed out and failed the request (503): "
	    "nothing was released for it",
	    "ref_seq", (json_int_t)seq);
	if (rec != NULL && audit_prep_make(rec, &p) != TSI_OK)
		p = NULL;
	json_decref(rec);
	return p;
}

static void
prune_held(void *arg, int held)
{
	struct tsi_audit *a = arg;

	pthread_mutex_lock(&a->mu);
	if (held && !a->retention_held)
		tsi_log(TSI_LOG_WARN, "audit.retention_held",
		    TSI_LS("reason",
		        "allowed decisions younger "
		        "than the minimum age are kept"));
	a->retention_held = held;
	a->prune_held += held ? 1 : 0;
	pthread_mutex_unlock(&a->mu);
}

/* One retention pass through the backend (opts.keep_allow_s is the floor
 * under which allowed decisions are kept). */
static int
prune_txn(struct tsi_audit *a, long long cutoff, size_t bytes, size_t force_n,
    size_t max, size_t *pruned)
{
	struct audit_prune_req q;
	size_t room = AUDIT_ROOM_UNKNOWN;
	int r;

	memset(&q, 0, sizeof(q));
	q.cutoff_us = cutoff;
	q.bytes = bytes;
	q.force_n = force_n;
	q.max = max;
	q.keep_allow_us = a->o.keep_allow_s > 0
	    ? audit_now_us() - a->o.keep_allow_s * 1000000LL
	    : 0;
	q.on_held = prune_held;
	q.arg = a;
	r = a->ops->prune(a->be, &q, pruned, &room);
	note_room(a, room);
	return r;
}

static void
retention(struct tsi_audit *a, long long *cutoff_us, size_t *bytes)
{
	pthread_mutex_lock(&a->mu);
	*cutoff_us = a->retain_seconds > 0
	    ? audit_now_us() - a->retain_seconds * 1000000LL
	    : 0;
	*bytes = a->retain_bytes;
	pthread_mutex_unlock(&a->mu);
}

/* The store is full: grow it (opts.map_max) or, when the operator bounded
 * the log by size, prune the oldest records. 1 when something was freed. */
static int
relieve_full(struct tsi_audit *a)
{
	size_t pruned = 0, bytes;
	long long cutoff;

	if (a->ops->make_room(a->be))
		return 1;
	retention(a, &cutoff, &bytes);
	if (bytes == 0)
		return 0;
	if (prune_txn(a, 0, bytes, 256, 256, &pruned) != TSI_OK || pruned == 0)
		return 0;
	tsi_log(TSI_LOG_WARN, "audit.pruned_when_full",
	    TSI_LI("records", (long long)pruned));
	return 1;
}

static void
housekeeping(struct tsi_audit *a)
{
	long long now = audit_now_us(), cutoff;
	size_t pruned = 0, total = 0, bytes;
	int i, r;

	retention(a, &cutoff, &bytes);
	if (cutoff > 0 || bytes > 0) {
		for (i = 0; i < 16; i++) {
			r = prune_txn(a, cutoff, bytes, 0, 1024, &pruned);
			if (r != TSI_OK) {
				tsi_log(TSI_LOG_ERROR, "audit.prune_failed",
				    TSI_LS("error", tsi_strerror(r)));
				break;
			}
			if (pruned == 0)
				break;
			total += pruned;
			pthread_mutex_lock(&a->mu);
			r = a->qhead != NULL;
			pthread_mutex_unlock(&a->mu);
			if (r)
				break; /* appends first; the rest next time */
		}
		if (total > 0)
			tsi_log(TSI_LOG_INFO, "audit.pruned",
			    TSI_LI("records", (long long)total));
	}
	if (a->o.head_signer != NULL && a->head.seq != a->signed_seq &&
	    now - a->last_sign_us >=
	        (long long)a->o.head_sign_interval_s * 1000000LL) {
		a->last_sign_us = now;
		if (a->ops->sign_head(a->be, a->o.head_signer, &a->head) ==
		    TSI_OK)
			a->signed_seq = a->head.seq;
	}
}

/* While unhealthy and idle: a synced write of a few records' size tells
 * whether commits work again (disk space back, the map pruned). */
static void
probe(struct tsi_audit *a)
{
	int r = a->ops->probe(a->be);

	if (r == TSI_OK) {
		pthread_mutex_lock(&a->mu);
		a->healthy = 1;
		a->last_error[0] = '\0';
		pthread_mutex_unlock(&a->mu);
		tsi_log(TSI_LOG_INFO, "audit.recovered");
	} else if (r == TSI_ERR_STORE_FULL) {
		relieve_full(a);
	}
}

/* Unlinks en from the queue (under mu). */
static void
unlink_queued(struct tsi_audit *a, struct entry *en)
{
	if (en->prev != NULL)
		en->prev->next = en->next;
	else
		a->qhead = en->next;
	if (en->next != NULL)
		en->next->prev = en->prev;
	else
		a->qtail = en->prev;
	en->prev = en->next = NULL;
	a->qlen--;
}

/* Remembers, under mu, that seq landed after its caller was failed. */
static void
note_late(struct tsi_audit *a, uint64_t seq)
{
	tsi_log(TSI_LOG_WARN, "audit.late_commit",
	    TSI_LI("seq", (long long)seq));
	if (a->nlate == a->late_cap) {
		size_t nc = a->late_cap ? a->late_cap * 2 : 8;
		uint64_t *nl = realloc(a->late, nc * sizeof(*nl));

		if (nl != NULL) {
			a->late = nl;
			a->late_cap = nc;
		}
	}
	if (a->nlate < a->late_cap)
		a->late[a->nlate++] = seq;
}

/* Runs the callbacks of a list of finished entries (linked by next) and
 * frees them. Without mu. */
static void
finish_list(struct entry *list, int rc)
{
	struct entry *en;

	while ((en = list) != NULL) {
		list = en->next;
		en->cb(en->arg, rc, rc == TSI_OK ? en->seq : 0);
		audit_prep_free(en->rec);
		free(en);
	}
}

static void
tell_durable(struct tsi_audit *a, uint64_t seq)
{
	pthread_mutex_lock(&a->durable_mu);
	if (a->durable_cb != NULL)
		a->durable_cb(a->durable_arg, seq);
	pthread_mutex_unlock(&a->durable_mu);
}

void
tsi_audit_set_durable_cb(struct tsi_audit *a, tsi_audit_durable_cb cb,
    void *arg)
{
	pthread_mutex_lock(&a->durable_mu);
	a->durable_cb = cb;
	a->durable_arg = arg;
	pthread_mutex_unlock(&a->durable_mu);
}

/*
 * The committer: one thread that takes queued records in batches, writes
 * each batch in one synced transaction and answers its callers. One pass
 * of its loop is: housekeeping when due (committer_house), wait for work
 * (wait_for_work), perhaps hold for company (hold_for_company), take a
 * batch (take_batch), write it (commit_batch), answer (settle_batch).
 */
struct crun {
	struct entry **batch;     /* batch_max slots */
	struct audit_prep **recs; /* batch_max slots: the batch's records */
	size_t n;                 /* records in the batch being written */
	size_t last_n;            /* records in the previous batch */
	uint64_t *late;           /* late annotations written with the batch */
	size_t n_late;
	int from_idle; /* the last wait found nothing to do */
	int hold_in;   /* test hook: sleep with the batch in flight */
};

/* Whether there is nothing to write (under mu): late annotations wait
 * while commits fail (the probe says when they work again). */
static int
nothing_to_write(const struct tsi_audit *a)
{
	return a->qhead == NULL && (a->nlate == 0 || !a->healthy);
}

/* Retention, the signed head and, while commits fail, the probe: about
 * once a second. Without mu. */
static void
committer_house(struct tsi_audit *a)
{
	int healthy;

	if (mono_us() < a->next_house_us)
		return;
	housekeeping(a);
	pthread_mutex_lock(&a->mu);
	healthy = a->healthy;
	pthread_mutex_unlock(&a->mu);
	if (!healthy)
		probe(a);
	a->next_house_us = mono_us() + 1000000;
}

/* Under mu. With nothing to write and no stop asked, waits until signalled
 * or housekeeping is due, and returns 1: the loop starts over. Appenders
 * signal only an idle committer: while it writes, new records just queue
 * for the next batch. */
static int
wait_for_work(struct tsi_audit *a, struct crun *c)
{
	struct timespec ts;

	if (!nothing_to_write(a) || a->stop)
		return 0;
	a->committer_idle = 1;
	deadline_ts(&ts, a->next_house_us - mono_us());
	pthread_cond_timedwait(&a->work_cv, &a->mu, &ts);
	a->committer_idle = 0;
	c->from_idle = 1;
	return 1;
}

/*
 * Group-commit hold (docs/audit.md "Group-commit hold"), under mu: the
 * first record after an idle spell often has company on its way (a
 * client's parallel requests). When there is a sign of concurrency (the
 * last batch had two or more records, or two are already queued) wait
 * while records keep arriving, at least one per slice, for at most
 * hold_slices slices. A lone caller (one record per batch) never waits;
 * commits that follow one another need no hold (what arrives during one
 * commit is the next batch). Appenders do not signal a holding committer
 * (committer_idle is 0); close does.
 */
static void
hold_for_company(struct tsi_audit *a, struct crun *c)
{
	struct timespec ts;
	size_t seen;
	int slices;

	if (!c->from_idle || a->hold_us <= 0 || a->stop ||
	    (c->last_n < 2 && a->qlen < 2))
		return;
	seen = a->qlen;
	for (slices = 0; slices < a->hold_slices && a->qlen < a->o.batch_max;
	     slices++) {
		deadline_ts(&ts, a->hold_us);
		while (!a->stop &&
		    pthread_cond_timedwait(&a->work_cv, &a->mu, &ts) !=
		        ETIMEDOUT)
			;
		if (a->qlen <= seen || a->stop)
			break;
		seen = a->qlen;
	}
}

/* Under mu (released and retaken around the test hook's sleep): moves up
 * to batch_max queued records in flight and takes the late annotations.
 * 0 when there is nothing to write after all (every record timed out
 * while held). */
static int
take_batch(struct tsi_audit *a, struct crun *c)
{
	struct entry *en;

	if (a->hold_before_ms > 0) {
		pthread_mutex_unlock(&a->mu);
		usleep((useconds_t)a->hold_before_ms * 1000);
		pthread_mutex_lock(&a->mu);
	}
	c->hold_in = a->hold_inflight_ms;
	for (c->n = 0; c->n < a->o.batch_max && a->qhead != NULL; c->n++) {
		en = a->qhead;
		unlink_queued(a, en);
		en->state = ENT_INFLIGHT;
		c->batch[c->n] = en;
	}
	if (c->n == 0 && (a->nlate == 0 || !a->healthy))
		return 0;
	a->inflight = c->batch;
	a->n_inflight = c->n;
	c->last_n = c->n;
	c->late = a->late;
	c->n_late = a->nlate;
	a->late = NULL;
	a->nlate = a->late_cap = 0;
	return 1;
}

/* The late annotations' records (*out: free_late), or -1 when out of
 * memory. */
static int
make_late(const struct crun *c, struct audit_prep ***out)
{
	struct audit_prep **lr;
	size_t i;

	*out = NULL;
	if (c->n_late == 0)
		return 0;
	if ((lr = calloc(c->n_late, sizeof(*lr))) == NULL)
		return -1;
	for (i = 0; i < c->n_late; i++)
		if ((lr[i] = late_record(c->late[i])) == NULL)
			break;
	*out = lr;
	return i == c->n_late ? 0 : -1;
}

static void
free_late(struct audit_prep **lr, size_t n)
{
	size_t i;

	if (lr == NULL)
		return;
	for (i = 0; i < n; i++)
		audit_prep_free(lr[i]);
	free(lr);
}

/* Without mu: writes the batch, making room and retrying when the store
 * is full. Returns TSI_OK or the backend's TSI_ERR_*; on success each
 * entry has its seq and a->head has advanced. */
static int
commit_batch(struct tsi_audit *a, struct crun *c)
{
	struct audit_be_err err = { "put", "Cannot allocate memory" };
	struct audit_prep **late = NULL;
	uint64_t first = a->head.seq + 1;
	size_t i, room = AUDIT_ROOM_UNKNOWN;
	int rc, tries;

	if (c->hold_in > 0)
		usleep((useconds_t)c->hold_in * 1000);
	for (i = 0; i < c->n; i++)
		c->recs[i] = c->batch[i]->rec;
	if (make_late(c, &late) != 0) {
		rc = TSI_ERR_ALLOC;
		goto out;
	}
	for (tries = 0;; tries++) {
		rc = a->ops->append_batch(a->be, c->recs, c->n, late, c->n_late,
		    &a->head, &a->last_time_us, &room, &err);
		if (rc == TSI_ERR_STORE_FULL && tries < 4 && relieve_full(a))
			continue;
		break;
	}
	if (rc == TSI_OK) {
		for (i = 0; i < c->n; i++)
			c->batch[i]->seq = first + i;
		note_room(a, room);
	}
out:
	free_late(late, c->n_late);
	if (rc != TSI_OK)
		set_error(a, &err);
	return rc;
}

/* Under mu, after commit_batch: the status, the late annotations (kept for
 * the next batch when this one failed), and the entries whose callers are
 * to be answered, returned as a list for finish_list. Abandoned entries
 * (their callers were failed by the timer) are freed here, and noted late
 * when they landed. */
static struct entry *
settle_batch(struct tsi_audit *a, struct crun *c, int rc)
{
	struct entry *en, *done = NULL, **dtail = &done;
	size_t i;

	a->inflight = NULL;
	a->n_inflight = 0;
	if (rc == 0) {
		a->healthy = 1;
		a->last_error[0] = '\0';
		a->committed += c->n;
		a->commits++;
		a->last_seq = a->head.seq;
		free(c->late);
	} else if (c->n_late > 0) {
		free(a->late);
		a->late = c->late;
		a->nlate = a->late_cap = c->n_late;
	} else {
		free(c->late);
	}
	c->late = NULL;
	for (i = 0; i < c->n; i++) {
		en = c->batch[i];
		if (en->abandoned) {
			if (rc == 0)
				note_late(a, en->seq);
			audit_prep_free(en->rec);
			free(en);
			continue;
		}
		if (rc != 0)
			a->failed++;
		en->state = ENT_DONE;
		en->next = NULL;
		*dtail = en;
		dtail = &en->next;
	}
	if (a->stop && rc != 0) {
		/* draining on close: fail what is left rather than spin */
		while ((en = a->qhead) != NULL) {
			unlink_queued(a, en);
			en->state = ENT_DONE;
			a->failed++;
			*dtail = en;
			dtail = &en->next;
		}
		free(a->late);
		a->late = NULL;
		a->nlate = a->late_cap = 0;
	}
	return done;
}

static void *
committer(void *arg)
{
	struct tsi_audit *a = arg;
	struct crun c;
	struct entry *done;
	int rc;

	memset(&c, 0, sizeof(c));
	c.from_idle = 1;
	/* the hold's short waits: the default 50 us timer slack would
	 * double them */
	if (a->hold_us > 0)
		(void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	c.batch = calloc(a->o.batch_max, sizeof(*c.batch));
	c.recs = calloc(a->o.batch_max, sizeof(*c.recs));
	if (c.batch == NULL || c.recs == NULL) {
		free(c.batch);
		free(c.recs);
		tsi_log(TSI_LOG_ERROR, "audit.committer",
		    TSI_LS("error", "out of memory"));
		return NULL;
	}
	for (;;) {
		committer_house(a);
		pthread_mutex_lock(&a->mu);
		if (wait_for_work(a, &c)) {
			pthread_mutex_unlock(&a->mu);
			continue;
		}
		hold_for_company(a, &c);
		c.from_idle = 0;
		if (nothing_to_write(a) && a->stop)
			break;
		if (!take_batch(a, &c)) {
			pthread_mutex_unlock(&a->mu);
			continue;
		}
		pthread_mutex_unlock(&a->mu);
		rc = commit_batch(a, &c);
		pthread_mutex_lock(&a->mu);
		done = settle_batch(a, &c, rc);
		pthread_mutex_unlock(&a->mu);
		if (rc == 0)
			tell_durable(a, a->head.seq);
		finish_list(done, rc == 0 ? TSI_OK : TSI_ERR_AUDIT);
	}
	pthread_mutex_unlock(&a->mu);
	/* a final signed head, so that verify covers everything written */
	if (a->o.head_signer != NULL && a->head.seq != a->signed_seq) {
		a->last_sign_us = 0;
		a->o.head_sign_interval_s = 0;
		housekeeping(a);
	}
	free(c.batch);
	free(c.recs);
	return NULL;
}

/* The time bound, kept even while the committer is stuck (a hung fsync):
 * records still queued at their deadline are unlinked and failed; records
 * in the batch being written are failed and marked abandoned, and if they
 * land after all the committer annotates them (late_commit). The queue is
 * in deadline order, so only its head and the batch need looking at; the
 * timer sleeps until the earliest deadline, or until signalled when there
 * was none. */
#define TIMER_FAIL_MAX 64

static void *
timer_main(void *arg)
{
	struct tsi_audit *a = arg;
	struct entry *en, *expired, **etail;
	struct {
		tsi_audit_done_cb cb;
		void *arg;
	} fail[TIMER_FAIL_MAX];
	struct timespec ts;
	long long now, next;
	size_t i, nfail;

	pthread_mutex_lock(&a->mu);
	while (!a->timer_stop) {
		now = mono_us();
		expired = NULL;
		etail = &expired;
		nfail = 0;
		while ((en = a->qhead) != NULL && en->deadline <= now) {
			unlink_queued(a, en);
			en->state = ENT_DONE;
			a->failed++;
			*etail = en;
			etail = &en->next;
		}
		next = a->qhead != NULL ? a->qhead->deadline : 0;
		for (i = 0; i < a->n_inflight; i++) {
			en = a->inflight[i];
			if (en->abandoned)
				continue;
			if (en->deadline > now) {
				if (next == 0 || en->deadline < next)
					next = en->deadline;
				continue;
			}
			if (nfail == TIMER_FAIL_MAX) {
				next = now; /* the rest on the next round */
				break;
			}
			en->abandoned = 1;
			a->failed++;
			fail[nfail].cb = en->cb;
			fail[nfail].arg = en->arg;
			nfail++;
		}
		if (expired != NULL || nfail > 0) {
			pthread_mutex_unlock(&a->mu);
			tsi_log(TSI_LOG_ERROR, "audit.append_timeout",
			    TSI_LI("timeout_ms", a->o.commit_timeout_ms));
			finish_list(expired, TSI_ERR_AUDIT);
			for (i = 0; i < nfail; i++)
				fail[i].cb(fail[i].arg, TSI_ERR_AUDIT, 0);
			pthread_mutex_lock(&a->mu);
			continue;
		}
		if (next == 0) {
			a->timer_idle = 1;
			pthread_cond_wait(&a->timer_cv, &a->mu);
			a->timer_idle = 0;
		} else {
			ts.tv_sec = (time_t)(next / 1000000);
			ts.tv_nsec = (long)(next % 1000000) * 1000;
			pthread_cond_timedwait(&a->timer_cv, &a->mu, &ts);
		}
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int
tsi_audit_open(const char *dir, const struct tsi_audit_opts *opts,
    struct tsi_audit **out)
{
	return audit_open_backend(&audit_lmdb_backend, dir, opts, out);
}

int
audit_open_backend(const struct tsi_audit_backend_ops *ops, const char *dir,
    const struct tsi_audit_opts *opts, struct tsi_audit **out)
{
	struct tsi_audit *a = NULL;
	pthread_condattr_t ca;
	int r = TSI_ERR_INTERNAL;

	if (dir == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return TSI_ERR_ALLOC;
	a->ops = ops;
	if (opts != NULL)
		a->o = *opts;
	if (a->o.map_size == 0)
		a->o.map_size = AUDIT_DEFAULT_MAP;
	if (a->o.commit_timeout_ms <= 0)
		a->o.commit_timeout_ms = 2000;
	if (a->o.batch_max == 0)
		a->o.batch_max = 256;
	if (a->o.head_sign_interval_s <= 0)
		a->o.head_sign_interval_s = 60;
	a->hold_us = a->o.commit_delay_us > 0 ? a->o.commit_delay_us : 0;
	a->hold_slices = AUDIT_HOLD_SLICES;
	a->healthy = 1;
	a->retain_seconds = a->o.retain_seconds > 0 ? a->o.retain_seconds : 0;
	a->retain_bytes = a->o.retain_bytes;
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->durable_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->work_cv, &ca);
	pthread_cond_init(&a->timer_cv, &ca);
	pthread_condattr_destroy(&ca);

	if ((r = ops->open(dir, &a->o, &a->be)) != TSI_OK)
		goto out;
	if ((r = ops->load_head(a->be, &a->head, &a->last_time_us)) != TSI_OK)
		goto out;
	a->last_seq = a->head.seq;
	a->signed_seq = a->head.seq;
	note_room(a, ops->room(a->be));
	if (pthread_create(&a->thr, NULL, committer, a) != 0) {
		r = TSI_ERR_INTERNAL;
		goto out;
	}
	a->thr_started = 1;
	if (pthread_create(&a->timer, NULL, timer_main, a) != 0) {
		r = TSI_ERR_INTERNAL;
		goto out;
	}
	a->timer_started = 1;
	tsi_log(TSI_LOG_INFO, "audit.open", TSI_LS("dir", dir),
	    TSI_LI("head_seq", (long long)a->head.seq),
	    TSI_LI("map_size", (long long)a->o.map_size));
	*out = a;
	a = NULL;
	r = TSI_OK;
out:
	if (a != NULL)
		tsi_audit_close(a);
	return r;
}

void
tsi_audit_close(struct tsi_audit *a)
{
	if (a == NULL)
		return;
	if (a->thr_started) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_cond_signal(&a->work_cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thr, NULL);
	}
	if (a->timer_started) {
		/* the committer has drained the queue: nothing is left to time */
		pthread_mutex_lock(&a->mu);
		a->timer_stop = 1;
		pthread_cond_signal(&a->timer_cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->timer, NULL);
	}
	free(a->late);
	if (a->be != NULL)
		a->ops->close(a->be);
	pthread_cond_destroy(&a->work_cv);
	pthread_cond_destroy(&a->timer_cv);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->durable_mu);
	free(a);
}

int
tsi_audit_submit_flags(struct tsi_audit *a, const json_t *rec,
    const struct tsi_audit_claims *c, unsigned flags, tsi_audit_done_cb cb,
    void *arg)
{
	struct audit_prep *prep = NULL;
	int r;

	if (a == NULL || rec == NULL || cb == NULL)
		return TSI_ERR_INVALID_ARG;
	r = c != NULL ? audit_prep_make_claims(rec, c, &prep)
	              : audit_prep_make(rec, &prep);
	if (r != TSI_OK)
		return r;
	prep->flags = flags;
	return audit_submit_prep(a, prep, cb, arg);
}

int
tsi_audit_submit(struct tsi_audit *a, const json_t *rec, tsi_audit_done_cb cb,
    void *arg)
{
	struct audit_prep *prep = NULL;
	int r;

	if (a == NULL || rec == NULL || cb == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((r = audit_prep_make(rec, &prep)) != TSI_OK)
		return r;
	return audit_submit_prep(a, prep, cb, arg);
}

int
tsi_audit_submit_claims(struct tsi_audit *a, const json_t *rec,
    const struct tsi_audit_claims *c, tsi_audit_done_cb cb, void *arg)
{
	struct audit_prep *prep = NULL;
	int r;

	if (a == NULL || rec == NULL || c == NULL || cb == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((r = audit_prep_make_claims(rec, c, &prep)) != TSI_OK)
		return r;
	return audit_submit_prep(a, prep, cb, arg);
}

int
audit_submit_prep(struct tsi_audit *a, struct audit_prep *prep,
    tsi_audit_done_cb cb, void *arg)
{
	struct entry *en;

	if ((en = calloc(1, sizeof(*en))) == NULL) {
		audit_prep_free(prep);
		return TSI_ERR_ALLOC;
	}
	en->rec = prep;
	en->state = ENT_QUEUED;
	en->cb = cb;
	en->arg = arg;
	en->deadline = mono_us() + (long long)a->o.commit_timeout_ms * 1000;

	pthread_mutex_lock(&a->mu);
	if (a->stop) {
		pthread_mutex_unlock(&a->mu);
		audit_prep_free(prep);
		free(en);
		return TSI_ERR_AUDIT;
	}
	if ((prep->flags & TSI_AUDIT_UNAUTH) && a->o.reserve_bytes > 0 &&
	    a->free_est < a->o.reserve_bytes) {
		/* the rest of the room is for authenticated callers */
		a->reserve_refused++;
		pthread_mutex_unlock(&a->mu);
		audit_prep_free(prep);
		free(en);
		return TSI_ERR_AUDIT;
	}
	en->prev = a->qtail;
	if (a->qtail != NULL)
		a->qtail->next = en;
	else
		a->qhead = en;
	a->qtail = en;
	a->qlen++;
	/* one wake-up per batch, not per record */
	if (a->committer_idle) {
		a->committer_idle = 0;
		pthread_cond_signal(&a->work_cv);
	}
	if (a->timer_idle) {
		a->timer_idle = 0;
		pthread_cond_signal(&a->timer_cv);
	}
	pthread_mutex_unlock(&a->mu);
	return TSI_OK;
}

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int rc;
	uint64_t seq;
};

static void
waiter_done(void *arg, int rc, uint64_t seq)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->seq = seq;
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int
tsi_audit_append(struct tsi_audit *a, const json_t *rec, uint64_t *seq)
{
	return tsi_audit_append_flags(a, rec, 0, seq);
}

int
tsi_audit_append_flags(struct tsi_audit *a, const json_t *rec, unsigned flags,
    uint64_t *seq)
{
	struct waiter w;
	int r;

	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	if ((r = tsi_audit_submit_flags(a, rec, NULL, flags, waiter_done,
	         &w)) == TSI_OK) {
		/* the callback comes within the bound: the timer sees to it */
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		r = w.rc;
		if (r == TSI_OK && seq != NULL)
			*seq = w.seq;
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return r;
}

void
tsi_audit_status(struct tsi_audit *a, struct tsi_audit_status *st)
{
	memset(st, 0, sizeof(*st));
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	st->healthy = a->healthy;
	st->queue_depth = a->qlen;
	st->committed = a->committed;
	st->failed = a->failed;
	st->last_seq = a->last_seq;
	st->commits = a->commits;
	st->free_bytes = a->free_est;
	st->reserve_bytes = a->o.reserve_bytes;
	st->reserve_refused = a->reserve_refused;
	st->reserve_in_use =
	    a->o.reserve_bytes > 0 && a->free_est < a->o.reserve_bytes;
	st->prune_held = a->prune_held;
	st->retention_held = a->retention_held;
	snprintf(st->last_error, sizeof(st->last_error), "%s", a->last_error);
	pthread_mutex_unlock(&a->mu);
}

int
tsi_audit_prune(struct tsi_audit *a, size_t *pruned)
{
	size_t n = 0, total = 0, bytes;
	long long cutoff;
	int r = TSI_OK;

	if (a == NULL)
		return TSI_ERR_INVALID_ARG;
	retention(a, &cutoff, &bytes);
	do {
		if ((r = prune_txn(a, cutoff, bytes, 0, 1024, &n)) != TSI_OK)
			break;
		total += n;
	} while (n > 0);
	if (pruned != NULL)
		*pruned = total;
	return r;
}

void
tsi_audit_set_retention(struct tsi_audit *a, long long retain_seconds,
    size_t retain_bytes)
{
	pthread_mutex_lock(&a->mu);
	a->retain_seconds = retain_seconds > 0 ? retain_seconds : 0;
	a->retain_bytes = retain_bytes;
	pthread_mutex_unlock(&a->mu);
}

void
audit_test_hold(struct tsi_audit *a, int before_ms, int inflight_ms)
{
	pthread_mutex_lock(&a->mu);
	a->hold_before_ms = before_ms;
	a->hold_inflight_ms = inflight_ms;
	pthread_mutex_unlock(&a->mu);
}

int
audit_test_idle(struct tsi_audit *a)
{
	int idle;

	pthread_mutex_lock(&a->mu);
	idle = a->committer_idle && a->qhead == NULL && a->n_inflight == 0;
	pthread_mutex_unlock(&a->mu);
	return idle;
}
