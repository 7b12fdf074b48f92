/*
 * audit_writer.c - tsi_audit_open/append/close/status: the group committer.
 *
 * Invariants (docs/audit.md "Group commit"):
 * - tsi_audit_append returns TSI_OK only after the batch holding its record
 *   was committed by a synced LMDB transaction.
 * - A record whose caller timed out while it was still queued is removed
 *   from the queue and is never written.
 * - A record whose caller timed out while its batch was being written may
 *   land; the committer then appends an "audit.late_commit" record naming
 *   its seq, so the log says that this record was not acknowledged.
 * - The in-memory head advances only after a successful commit.
 */
#include "audit_int.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

enum ent_state { ENT_QUEUED, ENT_INFLIGHT, ENT_DONE };

struct entry {
	struct audit_prep *rec; /* serialised record, owned */
	enum ent_state state;
	int abandoned;        /* failed by the timer while INFLIGHT */
	uint64_t seq;
	long long deadline;   /* CLOCK_MONOTONIC us: fail after this */
	tsi_audit_done_cb cb;
	void *arg;
	struct entry *prev, *next;
};

struct tsi_audit {
	struct audit_env *e;
	struct tsi_audit_opts o;
	int lockfd;
	pthread_t thr;
	int thr_started;

	pthread_mutex_t mu;
	pthread_cond_t work_cv;   /* committer waits for entries */
	pthread_cond_t timer_cv;  /* the timer waits for the next deadline */
	struct entry *qhead, *qtail;
	size_t qlen;
	struct entry **inflight;  /* the batch being written (committer's) */
	size_t n_inflight;
	int committer_idle;       /* waiting on work_cv: signal it */
	int hold_us;              /* opts.commit_delay_us: one slice */
	int hold_slices;          /* at most this many slices a hold */
	int timer_idle;           /* waiting on timer_cv without a deadline */
	int stop;
	int timer_stop;
	pthread_t timer;
	int timer_started;
	uint64_t *late;           /* seqs committed after their caller gave up */
	size_t nlate, late_cap;
	/* status, under mu */
	int healthy;
	uint64_t committed, failed, last_seq, commits;
	char last_error[128];
	int hold_before_ms, hold_inflight_ms; /* test hooks */
	long long retain_seconds; /* from opts, changed by set_retention */
	size_t retain_bytes;
	size_t free_est;          /* room left at the last commit or prune */
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
set_error(struct tsi_audit *a, const char *what, int rc)
{
	pthread_mutex_lock(&a->mu);
	a->healthy = 0;
	snprintf(a->last_error, sizeof(a->last_error), "%s: %s", what,
	    mdb_strerror(rc));
	pthread_mutex_unlock(&a->mu);
	tsi_log(TSI_LOG_ERROR, "audit.commit_failed", TSI_LS("step", what),
	    TSI_LS("error", mdb_strerror(rc)));
}

/* Records the room left after a transaction whose live pages were live:
 * the largest map the log may have, less those pages. An estimate (the
 * free list and LMDB's copy-on-write pages are not counted apart), which
 * only decides when unauthenticated records are refused. */
static void
note_live(struct tsi_audit *a, size_t live)
{
	MDB_envinfo info;
	size_t max;

	if (mdb_env_info(a->e->env, &info) != 0)
		return;
	max = info.me_mapsize > a->o.map_max ? info.me_mapsize : a->o.map_max;
	pthread_mutex_lock(&a->mu);
	a->free_est = live < max ? max - live : 0;
	pthread_mutex_unlock(&a->mu);
}

/* The batch's write cursors: records, and one per index. */
struct batch_cursors {
	MDB_cursor *rec;
	struct audit_index_cursors idx;
};

static int
put_record(struct batch_cursors *bc, const struct audit_prep *p,
    struct audit_point *h, long long *t, uint64_t *seq_out)
{
	uint8_t kb[8], hash[AUDIT_HASH_LEN];
	char *body = NULL;
	size_t len = 0;
	MDB_val k = { 8, kb }, v;
	long long now = audit_now_us();
	uint64_t seq = h->seq + 1;
	int rc;

	/* time never goes back along the chain: the indexes rely on it */
	if (now > *t)
		*t = now;
	if (audit_prep_seal(p, seq, *t, h->hash, hash, &body, &len) != TSI_OK)
		return ENOMEM;
	audit_be64_put(kb, seq);
	v.mv_size = len;
	v.mv_data = body;
	rc = mdb_cursor_put(bc->rec, &k, &v, MDB_APPEND);
	if (rc == 0)
		rc = audit_index_put_prep_c(&bc->idx, p, seq, *t);
	free(body);
	if (rc != 0)
		return rc;
	h->seq = seq;
	memcpy(h->hash, hash, AUDIT_HASH_LEN);
	if (seq_out != NULL)
		*seq_out = seq;
	return 0;
}

static struct audit_prep *
late_record(uint64_t seq)
{
	struct audit_prep *p = NULL;
	json_t *rec;

	rec = json_pack("{s:s,s:s,s:s,s:I}", "op", "audit.late_commit",
	    "decision", "error", "reason", "the record ref_seq was committed "
	    "after its caller had timed out and failed the request (503): "
	    "nothing was released for it", "ref_seq", (json_int_t)seq);
	if (rec != NULL && audit_prep_make(rec, &p) != TSI_OK)
		p = NULL;
	json_decref(rec);
	return p;
}

/* Writes a batch in one synced transaction. Returns an LMDB/errno code;
 * on success a->head has advanced and n_late annotations were written. */
static int
write_batch(struct tsi_audit *a, struct entry **b, size_t n,
    const uint64_t *late, size_t n_late, const char **step)
{
	MDB_txn *txn = NULL;
	struct batch_cursors bc;
	struct audit_point h = a->head;
	long long t = a->last_time_us;
	struct audit_prep *lr;
	size_t i, live = 0;
	int rc;

	memset(&bc, 0, sizeof(bc));
	*step = "txn_begin";
	if ((rc = mdb_txn_begin(a->e->env, NULL, 0, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, a->e->records, &bc.rec)) != 0) {
		bc.rec = NULL;
		goto out;
	}
	if ((rc = audit_index_cursors_open(a->e, txn, &bc.idx)) != 0)
		goto out;
	*step = "put";
	for (i = 0; i < n; i++)
		if ((rc = put_record(&bc, b[i]->rec, &h, &t, &b[i]->seq)) != 0)
			goto out;
	for (i = 0; i < n_late; i++) {
		if ((lr = late_record(late[i])) == NULL) {
			rc = ENOMEM;
			goto out;
		}
		rc = put_record(&bc, lr, &h, &t, NULL);
		audit_prep_free(lr);
		if (rc != 0)
			goto out;
	}
	if ((rc = audit_meta_put_point(a->e, txn, "head", &h)) != 0)
		goto out;
	audit_index_cursors_close(&bc.idx);
	mdb_cursor_close(bc.rec);
	bc.rec = NULL;
	if (a->o.reserve_bytes > 0)
		live = audit_live_bytes(a->e, txn);
	*step = "commit";
	rc = mdb_txn_commit(txn); /* synced: the env is not MDB_NOSYNC */
	txn = NULL;
	if (rc == 0) {
		a->head = h;
		a->last_time_us = t;
		if (a->o.reserve_bytes > 0)
			note_live(a, live);
	}
out:
	audit_index_cursors_close(&bc.idx);
	if (bc.rec != NULL)
		mdb_cursor_close(bc.rec);
	if (txn != NULL)
		mdb_txn_abort(txn);
	return rc;
}

static int
grow_map(struct tsi_audit *a, size_t size)
{
	int rc;

	pthread_rwlock_wrlock(&a->e->resize);
	rc = mdb_env_set_mapsize(a->e->env, size);
	pthread_rwlock_unlock(&a->e->resize);
	if (rc != 0)
		tsi_log(TSI_LOG_ERROR, "audit.map_grow_failed",
		    TSI_LS("error", mdb_strerror(rc)));
	else
		tsi_log(TSI_LOG_WARN, "audit.map_grown",
		    TSI_LI("map_size", (long long)size));
	return rc;
}

/* One pruning transaction. In a full map LMDB cannot even record deletions
 * (it copies pages on write), so then the map first grows by a small
 * reserve: 1/32 of it, at least 256 KiB. */
static int
prune_txn(struct tsi_audit *a, long long cutoff, size_t bytes, size_t force_n,
    size_t max, size_t *pruned)
{
	MDB_envinfo info;
	MDB_txn *txn = NULL;
	size_t reserve, live;
	long long keep = a->o.keep_allow_s > 0 ?
	    audit_now_us() - a->o.keep_allow_s * 1000000LL : 0;
	int attempt, r, rc, held = 0;

	for (attempt = 0; attempt < 2; attempt++) {
		*pruned = 0;
		if ((rc = mdb_txn_begin(a->e->env, NULL, 0, &txn)) != 0)
			return audit_mdb_err(rc);
		r = audit_prune_batch_keep(a->e, txn, cutoff, bytes, force_n, max,
		    keep, pruned, &held);
		if (r == TSI_OK) {
			pthread_mutex_lock(&a->mu);
			if (held && !a->retention_held)
				tsi_log(TSI_LOG_WARN, "audit.retention_held",
				    TSI_LS("reason", "allowed decisions younger "
				    "than the minimum age are kept"));
			a->retention_held = held;
			a->prune_held += held ? 1 : 0;
			pthread_mutex_unlock(&a->mu);
		}
		if (r == TSI_OK && *pruned == 0) {
			mdb_txn_abort(txn);
			return TSI_OK;
		}
		if (r == TSI_OK) {
			live = audit_live_bytes(a->e, txn);
			if ((rc = mdb_txn_commit(txn)) == 0) {
				note_live(a, live);
				return TSI_OK;
			}
			r = audit_mdb_err(rc);
		} else {
			mdb_txn_abort(txn);
		}
		*pruned = 0;
		if (r != TSI_ERR_STORE_FULL || attempt > 0)
			return r;
		mdb_env_info(a->e->env, &info);
		reserve = info.me_mapsize / 32;
		if (reserve < 256 * 1024)
			reserve = 256 * 1024;
		if (grow_map(a, info.me_mapsize + reserve) != 0)
			return r;
	}
	return r;
}

/* MDB_MAP_FULL: grow the map (opts.map_max) or, when the operator bounded
 * the log by size, prune the oldest records. 1 when something was freed. */
static void
retention(struct tsi_audit *a, long long *cutoff_us, size_t *bytes)
{
	pthread_mutex_lock(&a->mu);
	*cutoff_us = a->retain_seconds > 0 ?
	    audit_now_us() - a->retain_seconds * 1000000LL : 0;
	*bytes = a->retain_bytes;
	pthread_mutex_unlock(&a->mu);
}

static int
relieve_full(struct tsi_audit *a)
{
	MDB_envinfo info;
	size_t next, pruned = 0, bytes;
	long long cutoff;

	mdb_env_info(a->e->env, &info);
	if (a->o.map_max > info.me_mapsize) {
		next = info.me_mapsize * 2;
		if (next > a->o.map_max || next < info.me_mapsize)
			next = a->o.map_max;
		if (grow_map(a, next) == 0)
			return 1;
	}
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
	MDB_txn *txn = NULL;
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
	    now - a->last_sign_us >= (long long)a->o.head_sign_interval_s * 1000000LL) {
		a->last_sign_us = now;
		if (mdb_txn_begin(a->e->env, NULL, 0, &txn) == 0) {
			if (audit_meta_sign_head(a->e, txn, a->o.head_signer,
			    &a->head) == TSI_OK && mdb_txn_commit(txn) == 0)
				a->signed_seq = a->head.seq;
			else if (txn != NULL)
				mdb_txn_abort(txn);
			txn = NULL;
		}
	}
}

/* While unhealthy and idle: a synced write of a few records' size tells
 * whether commits work again (disk space back, the map pruned). */
static void
probe(struct tsi_audit *a)
{
	MDB_txn *txn = NULL;
	static uint8_t b[16384];
	MDB_val k = { 5, "probe" }, v = { sizeof(b), b };
	int rc;

	audit_be64_put(b, (uint64_t)audit_now_us());
	if ((rc = mdb_txn_begin(a->e->env, NULL, 0, &txn)) == 0 &&
	    (rc = mdb_put(txn, a->e->meta, &k, &v, 0)) == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc == 0) {
		pthread_mutex_lock(&a->mu);
		a->healthy = 1;
		a->last_error[0] = '\0';
		pthread_mutex_unlock(&a->mu);
		tsi_log(TSI_LOG_INFO, "audit.recovered");
	} else if (rc == MDB_MAP_FULL) {
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
	tsi_log(TSI_LOG_WARN, "audit.late_commit", TSI_LI("seq", (long long)seq));
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

static void *
committer(void *arg)
{
	struct tsi_audit *a = arg;
	struct entry **batch = NULL, *en, *done = NULL, **dtail;
	uint64_t *late = NULL;
	size_t n, n_late, i;
	struct timespec ts;
	const char *step;
	int rc, tries, healthy, hold_in, from_idle = 1, slices;
	size_t seen, last_n = 0;

	/* the hold's short waits: the default 50 us timer slack would
	 * double them */
	if (a->hold_us > 0)
		(void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	if ((batch = calloc(a->o.batch_max, sizeof(*batch))) == NULL) {
		tsi_log(TSI_LOG_ERROR, "audit.committer", TSI_LS("error", "out of memory"));
		return NULL;
	}
	for (;;) {
		if (mono_us() >= a->next_house_us) {
			housekeeping(a);
			pthread_mutex_lock(&a->mu);
			healthy = a->healthy;
			pthread_mutex_unlock(&a->mu);
			if (!healthy)
				probe(a);
			a->next_house_us = mono_us() + 1000000;
		}
		pthread_mutex_lock(&a->mu);
		/* late annotations wait while commits fail (the probe says when) */
		if (a->qhead == NULL && (a->nlate == 0 || !a->healthy) && !a->stop) {
			/* appenders signal only an idle committer: while it
			 * writes, new records just queue for the next batch */
			a->committer_idle = 1;
			deadline_ts(&ts, a->next_house_us - mono_us());
			pthread_cond_timedwait(&a->work_cv, &a->mu, &ts);
			a->committer_idle = 0;
			from_idle = 1;
			pthread_mutex_unlock(&a->mu);
			continue;
		}
		/* Group-commit hold (docs/audit.md "Group-commit hold"): the
		 * first record after an idle spell often has company on its
		 * way (a client's parallel requests). When there is a sign of
		 * concurrency (the last batch had two or more records, or two
		 * are already queued) wait while records keep arriving, at
		 * least one per slice, for at most hold_slices slices. A lone
		 * caller (one record per batch) never waits; commits that
		 * follow one another need no hold (what arrives during one
		 * commit is the next batch). Appenders do not signal a
		 * holding committer (committer_idle is 0); close does. */
		if (from_idle && a->hold_us > 0 && !a->stop &&
		    (last_n >= 2 || a->qlen >= 2)) {
			seen = a->qlen;
			for (slices = 0; slices < a->hold_slices &&
			    a->qlen < a->o.batch_max; slices++) {
				deadline_ts(&ts, a->hold_us);
				while (!a->stop && pthread_cond_timedwait(
				    &a->work_cv, &a->mu, &ts) != ETIMEDOUT)
					;
				if (a->qlen <= seen || a->stop)
					break;
				seen = a->qlen;
			}
		}
		from_idle = 0;
		if (a->qhead == NULL && (a->nlate == 0 || !a->healthy) && a->stop)
			break;
		if (a->hold_before_ms > 0) {
			pthread_mutex_unlock(&a->mu);
			usleep((useconds_t)a->hold_before_ms * 1000);
			pthread_mutex_lock(&a->mu);
		}
		hold_in = a->hold_inflight_ms;
		for (n = 0; n < a->o.batch_max && a->qhead != NULL; n++) {
			en = a->qhead;
			unlink_queued(a, en);
			en->state = ENT_INFLIGHT;
			batch[n] = en;
		}
		if (n == 0 && (a->nlate == 0 || !a->healthy)) {
			pthread_mutex_unlock(&a->mu);
			continue; /* every record timed out while held */
		}
		a->inflight = batch;
		a->n_inflight = n;
		last_n = n;
		late = a->late;
		n_late = a->nlate;
		a->late = NULL;
		a->nlate = a->late_cap = 0;
		pthread_mutex_unlock(&a->mu);

		if (hold_in > 0)
			usleep((useconds_t)hold_in * 1000);
		for (tries = 0;; tries++) {
			rc = write_batch(a, batch, n, late, n_late, &step);
			if (rc == MDB_MAP_FULL && tries < 4 && relieve_full(a))
				continue;
			break;
		}
		if (rc != 0)
			set_error(a, step, rc);

		pthread_mutex_lock(&a->mu);
		a->inflight = NULL;
		a->n_inflight = 0;
		if (rc == 0) {
			a->healthy = 1;
			a->last_error[0] = '\0';
			a->committed += n;
			a->commits++;
			a->last_seq = a->head.seq;
			free(late);
		} else if (n_late > 0) {
			/* keep the annotations for the next batch */
			free(a->late);
			a->late = late;
			a->nlate = a->late_cap = n_late;
		} else {
			free(late);
		}
		late = NULL;
		done = NULL;
		dtail = &done;
		for (i = 0; i < n; i++) {
			en = batch[i];
			if (en->abandoned) {
				/* its caller was already failed by the timer */
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
		pthread_mutex_unlock(&a->mu);
		if (rc == 0)
			tell_durable(a, a->head.seq);
		finish_list(done, rc == 0 ? TSI_OK : TSI_ERR_AUDIT);
		done = NULL;
	}
	pthread_mutex_unlock(&a->mu);
	/* a final signed head, so that verify covers everything written */
	if (a->o.head_signer != NULL && a->head.seq != a->signed_seq) {
		a->last_sign_us = 0;
		a->o.head_sign_interval_s = 0;
		housekeeping(a);
	}
	free(batch);
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
	struct { tsi_audit_done_cb cb; void *arg; } fail[TIMER_FAIL_MAX];
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

static int
load_head(struct tsi_audit *a)
{
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	json_t *rec = NULL;
	struct audit_point meta;
	int r, rc;

	if ((rc = mdb_txn_begin(a->e->env, NULL, MDB_RDONLY, &txn)) != 0)
		return audit_mdb_err(rc);
	if ((r = audit_meta_get_point(a->e, txn, "head", &meta)) != TSI_OK)
		goto out;
	a->head = meta;
	a->last_time_us = 0;
	if ((rc = mdb_cursor_open(txn, a->e->records, &c)) != 0) {
		r = audit_mdb_err(rc);
		goto out;
	}
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 8 && audit_record_load(&v, &rec) == TSI_OK) {
		a->last_time_us = json_integer_value(json_object_get(rec, "time_us"));
		if (audit_be64_get(k.mv_data) != meta.seq)
			tsi_log(TSI_LOG_ERROR, "audit.head_mismatch",
			    TSI_LI("meta_seq", (long long)meta.seq),
			    TSI_LI("last_seq", (long long)audit_be64_get(k.mv_data)));
	}
	r = TSI_OK;
out:
	json_decref(rec);
	if (c != NULL)
		mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return r;
}

int
tsi_audit_open(const char *dir, const struct tsi_audit_opts *opts,
    struct tsi_audit **out)
{
	struct tsi_audit *a = NULL;
	pthread_condattr_t ca;
	char lockpath[4096];
	int r = TSI_ERR_INTERNAL;

	if (dir == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return TSI_ERR_ALLOC;
	a->lockfd = -1;
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

	if ((r = audit_env_acquire(dir, 1, a->o.map_size, &a->e)) != TSI_OK)
		goto out;
	/* One writer per log, across processes too: two committers would fork
	 * the chain. flock, unlike fcntl locks, is not dropped when another
	 * descriptor of the file is closed in this process. */
	if (snprintf(lockpath, sizeof(lockpath), "%s/writer.lock", dir) >=
	    (int)sizeof(lockpath)) {
		r = TSI_ERR_INVALID_ARG;
		goto out;
	}
	if ((a->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		r = TSI_ERR_IO;
		goto out;
	}
	if (flock(a->lockfd, LOCK_EX | LOCK_NB) != 0) {
		tsi_log(TSI_LOG_ERROR, "audit.open", TSI_LS("dir", dir),
		    TSI_LS("error", "another writer has this audit log open"));
		r = TSI_ERR_EXISTS;
		goto out;
	}
	if ((r = load_head(a)) != TSI_OK)
		goto out;
	a->last_seq = a->head.seq;
	a->signed_seq = a->head.seq;
	{
		MDB_txn *rt = NULL;

		if (mdb_txn_begin(a->e->env, NULL, MDB_RDONLY, &rt) == 0) {
			size_t live = audit_live_bytes(a->e, rt);

			mdb_txn_abort(rt);
			note_live(a, live);
		}
	}
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
	if (a->e != NULL)
		audit_env_release(a->e, 1);
	if (a->lockfd >= 0)
		close(a->lockfd);
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
	r = c != NULL ? audit_prep_make_claims(rec, c, &prep) :
	    audit_prep_make(rec, &prep);
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
tsi_audit_append_flags(struct tsi_audit *a, const json_t *rec,
    unsigned flags, uint64_t *seq)
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
	st->reserve_in_use = a->o.reserve_bytes > 0 &&
	    a->free_est < a->o.reserve_bytes;
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
