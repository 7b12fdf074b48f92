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
	    e->size == st->st_size &&
	    e->mtime.tv_sec == st->st_mtim.tv_sec &&
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

static int
hash_fd(int fd, char digest[72])
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

int
tsi_unix_resolve(const char *proc_root, pid_t pid, uid_t uid,
    const struct tsi_peer *bind, struct tsi_workload **out)
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
	if (bind != NULL && (!bind->has_exe || st.st_dev != bind->exe_dev ||
	    st.st_ino != bind->exe_ino)) {
		tsi_log(TSI_LOG_WARN, "resolve.exe_changed", TSI_LI("pid", pid),
		    TSI_LS("exe", exe));
		return TSI_ERR_UNIDENTIFIED;
	}
	if (!cache_get(&st, digest)) {
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
		    fstat(fd, &st2) != 0 || !S_ISREG(st2.st_mode) ||
		    st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
			tsi_log(TSI_LOG_INFO, "resolve.no_exe", TSI_LI("pid",
			    pid), TSI_LS("error", fd < 0 ? strerror(errno) :
			    "the executable changed while it was opened"));
			r = TSI_ERR_UNIDENTIFIED;
			goto out;
		}
		if ((r = hash_fd(fd, digest)) != TSI_OK)
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
