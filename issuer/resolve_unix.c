/*
 * resolve_unix.c - host workloads: pid -> uid, executable, its SHA-256.
 *
 * The executable is read through <proc_root>/<pid>/exe, so the digest is of
 * the file that runs even if the path now names another file. Digests are
 * cached by (device, inode, size, mtime, ctime) of that file. ctime cannot
 * be set by users, but file times are coarse (a clock tick): a file changed
 * twice within one tick keeps its times, so a digest is cached only when the
 * file's last change is at least CACHE_SETTLE_S old; any later change then
 * moves ctime. A file changed more recently is hashed on every request.
 */
#include "issuer/resolve.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define EXE_CACHE_SLOTS 64
#define CACHE_SETTLE_S 2

struct exe_cache_entry {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	char digest[72];
	int used;
};

static struct exe_cache_entry exe_cache[EXE_CACHE_SLOTS];
static unsigned exe_cache_next;
/* Read-locked by every request (readers never wait for each other). */
static pthread_rwlock_t exe_cache_mu = PTHREAD_RWLOCK_INITIALIZER;

static int
same_file(const struct exe_cache_entry *e, const struct stat *st)
{
	return e->used && e->dev == st->st_dev && e->ino == st->st_ino &&
	    e->size == st->st_size && e->mtime.tv_sec == st->st_mtim.tv_sec &&
	    e->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	    e->ctime.tv_sec == st->st_ctim.tv_sec &&
	    e->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static int
cache_get(const struct stat *st, char digest[72])
{
	int i, hit = 0;

	pthread_rwlock_rdlock(&exe_cache_mu);
	for (i = 0; i < EXE_CACHE_SLOTS && !hit; i++)
		if (same_file(&exe_cache[i], st)) {
			memcpy(digest, exe_cache[i].digest, 72);
			hit = 1;
		}
	pthread_rwlock_unlock(&exe_cache_mu);
	return hit;
}

static void
cache_put(const struct stat *st, const char digest[72])
{
	struct exe_cache_entry *e;
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec - st->st_ctim.tv_sec < CACHE_SETTLE_S ||
	    now.tv_sec - st->st_mtim.tv_sec < CACHE_SETTLE_S)
		return;
	pthread_rwlock_wrlock(&exe_cache_mu);
	e = &exe_cache[exe_cache_next++ % EXE_CACHE_SLOTS];
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = st->st_size;
	e->mtime = st->st_mtim;
	e->ctime = st->st_ctim;
	memcpy(e->digest, digest, 72);
	e->used = 1;
	pthread_rwlock_unlock(&exe_cache_mu);
}

/* cancel (may be NULL): checked between reads, so a stopping server does
 * not wait for a large file. */
static int
hash_fd(int fd, const int *cancel, char digest[72])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char buf[65536], md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	ssize_t n;
	int r = TSI_ERR_CRYPTO, i;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return TSI_ERR_ALLOC;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	for (;;) {
		if (cancel != NULL &&
		    __atomic_load_n(cancel, __ATOMIC_RELAXED)) {
			r = TSI_ERR_IO;
			goto out;
		}
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = TSI_ERR_IO;
			goto out;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			goto out;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		goto out;
	memcpy(digest, "sha256:", 7);
	for (i = 0; i < 32; i++) {
		digest[7 + 2 * i] = hex[md[i] >> 4];
		digest[8 + 2 * i] = hex[md[i] & 15];
	}
	digest[71] = '\0';
	r = TSI_OK;
out:
	EVP_MD_CTX_free(ctx);
	return r;
}

/*
 * The hashing threads. A job is owned by the request that asked for it
 * (struct tsi_resolve_state); a hashing thread holds it from submit until
 * it marks it done and calls its wake, and never touches it after. Job
 * state is read and written under the hasher's mutex.
 *
 * A request for a file that is already being hashed (the same device,
 * inode, size and times) follows that job instead of queueing its own:
 * the threads of one program asking at once, or a program changed in the
 * last seconds (never cached), would otherwise find their uid's hashing
 * slot taken by their own file and be refused. A follower is woken with
 * the result of the job it follows, before that job's own request.
 */
struct tsi_hash_job {
	struct tsi_hash_job *next;
	struct tsi_exe_hasher *h;
	struct tsi_hash_job *leader; /* followed job, or NULL */
	int fd;                      /* the executable, opened and checked */
	uid_t uid;
	struct stat st;
	struct tsi_wake wake;
	int done, r;
	char digest[72];
};

struct tsi_exe_hasher {
	long long max_size;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct tsi_hash_job *head, *tail;
	size_t n_jobs; /* queued and running */
	struct {
		uid_t uid;
		unsigned n;
	} busy[TSI_EXE_HASH_QUEUE];
	/* Jobs queued or being hashed, which a request may follow. */
	struct tsi_hash_job *active[TSI_EXE_HASH_QUEUE];
	struct tsi_hash_job *followers; /* linked by next */
	size_t n_followers;
	int stopping;
	pthread_t th[TSI_EXE_HASH_THREADS];
	int n_th;
};

/* The count of jobs of uid (under mu); add: +1 or -1. 0 when the table has
 * no room (cannot happen: it has a slot per job). */
static unsigned *
uid_slot(struct tsi_exe_hasher *h, uid_t uid)
{
	size_t i, free_i = TSI_EXE_HASH_QUEUE;

	for (i = 0; i < TSI_EXE_HASH_QUEUE; i++) {
		if (h->busy[i].n > 0 && h->busy[i].uid == uid)
			return &h->busy[i].n;
		if (h->busy[i].n == 0 && free_i == TSI_EXE_HASH_QUEUE)
			free_i = i;
	}
	if (free_i == TSI_EXE_HASH_QUEUE)
		return NULL;
	h->busy[free_i].uid = uid;
	return &h->busy[free_i].n;
}

static int
same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	    a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Ends the followers of j (done, under mu) with j's result and wakes them,
 * a batch at a time outside the lock; j itself is not yet woken, so it
 * stays allocated, and it is no longer active, so none is added. */
static void
wake_followers(struct tsi_exe_hasher *h, struct tsi_hash_job *j)
{
	struct tsi_wake w[16];
	struct tsi_hash_job **pp, *f;
	size_t n, i;

	do {
		n = 0;
		for (pp = &h->followers;
		     (f = *pp) != NULL && n < sizeof(w) / sizeof(w[0]);) {
			if (f->leader != j) {
				pp = &f->next;
				continue;
			}
			*pp = f->next;
			h->n_followers--;
			f->r = j->r;
			memcpy(f->digest, j->digest, sizeof(f->digest));
			f->done = 1;
			w[n++] = f->wake; /* f may be freed once woken */
		}
		pthread_mutex_unlock(&h->mu);
		for (i = 0; i < n; i++)
			w[i].fn(w[i].arg);
		pthread_mutex_lock(&h->mu);
	} while (n == sizeof(w) / sizeof(w[0]));
}

static void *
hash_thread(void *arg)
{
	struct tsi_exe_hasher *h = arg;
	struct tsi_hash_job *j;
	struct tsi_wake w;
	unsigned *n;
	char digest[72];
	size_t i;
	int r;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (h->head == NULL && !h->stopping)
			pthread_cond_wait(&h->cv, &h->mu);
		if ((j = h->head) == NULL)
			break; /* stopping, nothing left */
		if ((h->head = j->next) == NULL)
			h->tail = NULL;
		pthread_mutex_unlock(&h->mu);
		r = hash_fd(j->fd, &h->stopping, digest);
		if (r == TSI_OK)
			cache_put(&j->st, digest);
		close(j->fd);
		pthread_mutex_lock(&h->mu);
		j->fd = -1;
		j->r = r;
		if (r == TSI_OK)
			memcpy(j->digest, digest, sizeof(digest));
		h->n_jobs--;
		if ((n = uid_slot(h, j->uid)) != NULL && *n > 0)
			(*n)--;
		for (i = 0; i < TSI_EXE_HASH_QUEUE; i++)
			if (h->active[i] == j)
				h->active[i] = NULL;
		wake_followers(h, j);
		j->done = 1;
		w = j->wake;
		pthread_mutex_unlock(&h->mu);
		w.fn(w.arg); /* j may be freed from here on */
		pthread_mutex_lock(&h->mu);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

int
tsi_exe_hasher_new(long long max_size, struct tsi_exe_hasher **out)
{
	struct tsi_exe_hasher *h;
	int i;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return TSI_ERR_ALLOC;
	h->max_size = max_size;
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		free(h);
		return TSI_ERR_INTERNAL;
	}
	if (pthread_cond_init(&h->cv, NULL) != 0) {
		pthread_mutex_destroy(&h->mu);
		free(h);
		return TSI_ERR_INTERNAL;
	}
	for (i = 0; i < TSI_EXE_HASH_THREADS; i++) {
		if (pthread_create(&h->th[i], NULL, hash_thread, h) != 0) {
			tsi_exe_hasher_free(h);
			return TSI_ERR_INTERNAL;
		}
		h->n_th++;
	}
	*out = h;
	return TSI_OK;
}

void
tsi_exe_hasher_stop(struct tsi_exe_hasher *h)
{
	int i;

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	__atomic_store_n(&h->stopping, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	/* The threads drain the queue (each job cut short) and wake every
	 * request before they end. */
	for (i = 0; i < h->n_th; i++)
		pthread_join(h->th[i], NULL);
	h->n_th = 0;
}

void
tsi_exe_hasher_free(struct tsi_exe_hasher *h)
{
	if (h == NULL)
		return;
	tsi_exe_hasher_stop(h);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

void
tsi_resolve_state_clear(struct tsi_resolve_state *st)
{
	if (st == NULL)
		return;
	free(st->job); /* done, or never submitted */
	memset(st, 0, sizeof(*st));
}

/* Queues the hashing of fd (taken on success). */
static int
hash_submit(struct tsi_exe_hasher *h, int fd, uid_t uid, const struct stat *st,
    const struct tsi_wake *wake, struct tsi_hash_job **out)
{
	struct tsi_hash_job *j;
	unsigned *n;
	size_t i;
	int r = TSI_ERR_IO;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return TSI_ERR_ALLOC;
	j->h = h;
	j->fd = fd;
	j->uid = uid;
	j->st = *st;
	j->wake = *wake;
	pthread_mutex_lock(&h->mu);
	for (i = 0; !h->stopping && i < TSI_EXE_HASH_QUEUE; i++)
		if (h->active[i] != NULL && same_stat(&h->active[i]->st, st) &&
		    h->n_followers < TSI_EXE_HASH_FOLLOWERS) {
			j->leader = h->active[i];
			j->fd = -1;
			j->next = h->followers;
			h->followers = j;
			h->n_followers++;
			pthread_mutex_unlock(&h->mu);
			close(fd); /* the job followed has its own */
			*out = j;
			return TSI_OK;
		}
	if (h->stopping || h->n_jobs >= TSI_EXE_HASH_QUEUE ||
	    (n = uid_slot(h, uid)) == NULL || *n >= TSI_EXE_HASH_PER_UID) {
		pthread_mutex_unlock(&h->mu);
		free(j);
		return r;
	}
	(*n)++;
	h->n_jobs++;
	/* A free slot: there are as many as jobs allowed. */
	for (i = 0; i < TSI_EXE_HASH_QUEUE; i++)
		if (h->active[i] == NULL) {
			h->active[i] = j;
			break;
		}
	if (h->tail != NULL)
		h->tail->next = j;
	else
		h->head = j;
	h->tail = j;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	*out = j;
	return TSI_OK;
}

/* The digest of a finished job: 1 and *r set when done, 0 while not. */
static int
job_result(struct tsi_hash_job *j, int *r, char digest[72])
{
	int done;

	pthread_mutex_lock(&j->h->mu);
	if ((done = j->done) != 0) {
		*r = j->r;
		memcpy(digest, j->digest, 72);
	}
	pthread_mutex_unlock(&j->h->mu);
	return done;
}

int
tsi_unix_resolve(const char *proc_root, pid_t pid, uid_t uid,
    const struct tsi_peer *bind, struct tsi_exe_hasher *h,
    struct tsi_resolve_state *rs, const struct tsi_wake *wake,
    struct tsi_workload **out)
{
	struct tsi_workload *w = NULL;
	char path[512], exe[PATH_MAX], digest[72];
	struct stat st, st2;
	ssize_t n;
	int fd = -1, r, len;

	len = snprintf(path, sizeof(path), "%s/%ld/exe", proc_root, (long)pid);
	if (len < 0 || (size_t)len >= sizeof(path))
		return TSI_ERR_TOO_LARGE;
	if ((n = readlink(path, exe, sizeof(exe) - 1)) <= 0) {
		tsi_log(TSI_LOG_INFO, "resolve.no_exe", TSI_LI("pid", pid),
		    TSI_LS("error", strerror(errno)));
		return TSI_ERR_UNIDENTIFIED;
	}
	exe[n] = '\0';
	/* The identity of the file that runs (stat follows the link to it)
	 * finds a known digest without opening the file: one syscall, not
	 * open + fstat + close. Only an unknown file is opened and hashed,
	 * and only if what was opened is still the file that was stat'ed. */
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		tsi_log(TSI_LOG_INFO, "resolve.no_exe", TSI_LI("pid", pid),
		    TSI_LS("error", strerror(errno)));
		return TSI_ERR_UNIDENTIFIED;
	}
	/* The process may have exec'd since it connected: its identity is
	 * the program it ran then, and it no longer runs it. */
	if (bind != NULL &&
	    (!bind->has_exe || st.st_dev != bind->exe_dev ||
	        st.st_ino != bind->exe_ino)) {
		tsi_log(TSI_LOG_WARN, "resolve.exe_changed", TSI_LI("pid", pid),
		    TSI_LS("exe", exe));
		return TSI_ERR_UNIDENTIFIED;
	}
	if (rs != NULL && rs->job != NULL) {
		/* Asked again after the wake: the hashing thread's answer,
		 * for the file recorded at accept (checked above). */
		if (!job_result(rs->job, &r, digest))
			return TSI_ERR_INTERNAL;
		if (r != TSI_OK)
			return TSI_ERR_IO;
	} else if (!cache_get(&st, digest)) {
		if (h != NULL && st.st_size > h->max_size) {
			tsi_log(TSI_LOG_WARN, "resolve.exe_too_large",
			    TSI_LI("pid", pid), TSI_LI("uid", uid),
			    TSI_LS("exe", exe), TSI_LI("size", st.st_size),
			    TSI_LI("max_exe_size", h->max_size));
			return TSI_ERR_UNIDENTIFIED;
		}
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
		    fstat(fd, &st2) != 0 || !S_ISREG(st2.st_mode) ||
		    st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
			tsi_log(TSI_LOG_INFO, "resolve.no_exe",
			    TSI_LI("pid", pid),
			    TSI_LS("error",
			        fd < 0 ? strerror(errno)
			               : "the executable changed while it was "
			                 "opened"));
			r = TSI_ERR_UNIDENTIFIED;
			goto out;
		}
		if (h != NULL) {
			/* Never on the thread that serves other callers. */
			if (rs == NULL || wake == NULL) {
				r = TSI_ERR_INVALID_ARG;
				goto out;
			}
			if ((r = hash_submit(h, fd, uid, &st2, wake,
			         &rs->job)) != TSI_OK) {
				tsi_log(TSI_LOG_WARN, "resolve.hash_busy",
				    TSI_LI("pid", pid), TSI_LI("uid", uid),
				    TSI_LS("exe", exe));
				goto out;
			}
			return TSI_ERR_AGAIN; /* fd is the job's now */
		}
		if ((r = hash_fd(fd, NULL, digest)) != TSI_OK)
			goto out;
		cache_put(&st2, digest);
	}
	r = TSI_ERR_ALLOC;
	if ((w = tsi_workload_new(TSI_WORKLOAD_UNIX)) == NULL)
		goto out;
	w->uid = uid;
	if ((w->exe = strdup(exe)) == NULL)
		goto out;
	if ((r = tsi_workload_add_image(w, digest)) != TSI_OK ||
	    (r = tsi_workload_add_image_name(w, exe)) != TSI_OK)
		goto out;
	*out = w;
	w = NULL;
	r = TSI_OK;
out:
	if (fd >= 0)
		close(fd);
	tsi_workload_free(w);
	return r;
}
