/*
 * Durability of what tsi-vault acknowledges: every KV commit and every
 * audit commit reaches the disk before the call returns. The crash tests
 * kill the server with SIGKILL, which keeps the kernel's page cache, so
 * they would not notice an environment opened with MDB_NOSYNC (or
 * MDB_NOMETASYNC, MDB_MAPASYNC): this test counts the syncs LMDB asks the
 * kernel for (fdatasync, fsync, msync with MS_SYNC) and the writes it
 * makes through an O_DSYNC descriptor (its meta pages: MDB_NOMETASYNC
 * writes them through the plain one, so that the last commit would be
 * durable only at the next).
 *
 * How: this executable defines fdatasync, fsync, msync and pwrite. liblmdb is a
 * shared library that calls them, so the dynamic linker binds its calls to
 * these definitions (the executable comes first in symbol lookup); each
 * counts the call and forwards it to the C library's (dlsym RTLD_NEXT). No
 * product hook and no LD_PRELOAD are needed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store.h"
#include "tsi/audit.h"
#include "tsi/err.h"

static unsigned long syncs;        /* atomic */
static unsigned long dsync_writes; /* atomic */

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	int fl = fcntl(fd, F_GETFL);

	if (real == NULL)
		real = (ssize_t(*)(int, const void *, size_t,
		    off_t))dlsym(RTLD_NEXT, "pwrite");
	if (fl != -1 && (fl & O_DSYNC) == O_DSYNC)
		__atomic_add_fetch(&dsync_writes, 1, __ATOMIC_SEQ_CST);
	return real != NULL ? real(fd, buf, len, off) : -1;
}

int
fdatasync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	__atomic_add_fetch(&syncs, 1, __ATOMIC_SEQ_CST);
	return real != NULL ? real(fd) : -1;
}

int
fsync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	__atomic_add_fetch(&syncs, 1, __ATOMIC_SEQ_CST);
	return real != NULL ? real(fd) : -1;
}

int
msync(void *addr, size_t len, int flags)
{
	static int (*real)(void *, size_t, int);

	if (real == NULL)
		real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");
	/* MS_ASYNC only schedules the write-back: not a sync. */
	if (flags & MS_SYNC)
		__atomic_add_fetch(&syncs, 1, __ATOMIC_SEQ_CST);
	return real != NULL ? real(addr, len, flags) : -1;
}

static unsigned long
sync_count(void)
{
	return __atomic_load_n(&syncs, __ATOMIC_SEQ_CST);
}

static unsigned long
dsync_count(void)
{
	return __atomic_load_n(&dsync_writes, __ATOMIC_SEQ_CST);
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static char *
tmpdir(void)
{
	char tmpl[] = "/tmp/tsi-durable-XXXXXX";

	return mkdtemp(tmpl) != NULL ? strdup(tmpl) : NULL;
}

static int
seal(void *arg, uint64_t version, uint8_t **blob, size_t *len)
{
	(void)arg;
	(void)version;
	if ((*blob = malloc(16)) == NULL)
		return TSI_ERR_ALLOC;
	memset(*blob, 0xa5, 16);
	*len = 16;
	return TSI_OK;
}

/* Each KV put and soft delete is synced before it returns. */
static void
test_kv_commits_synced(void **state)
{
	struct kv_store_opts o = { .map_size = 1 << 20 };
	struct kv_version_meta m;
	struct kv_store *s = NULL;
	char *dir = tmpdir(), path[32], url[300];
	unsigned long before, dbefore;
	int i;

	(void)state;
	assert_non_null(dir);
	assert_true(
	    snprintf(url, sizeof(url), "lmdb://%s", dir) < (int)sizeof(url));
	assert_int_equal(kv_store_open(url, &o, &s), TSI_OK);
	for (i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "p/%d", i);
		before = sync_count();
		dbefore = dsync_count();
		assert_int_equal(s->ops->put(s, path, -1, seal, NULL,
		                     1000000LL * (i + 1), &m),
		    TSI_OK);
		assert_true(sync_count() > before);
		assert_true(dsync_count() > dbefore);
	}
	before = sync_count();
	dbefore = dsync_count();
	assert_int_equal(s->ops->soft_delete(s, "p/0", 9000000LL, &m), TSI_OK);
	assert_true(sync_count() > before);
	assert_true(dsync_count() > dbefore);
	s->ops->close(s);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* Each audit record tsi_audit_append acknowledges was synced first. */
static void
test_audit_commits_synced(void **state)
{
	struct tsi_audit_opts o;
	struct tsi_audit *a = NULL;
	char *dir = tmpdir();
	unsigned long before, dbefore;
	uint64_t seq;
	json_t *rec;
	int i;

	(void)state;
	assert_non_null(dir);
	memset(&o, 0, sizeof(o));
	o.map_size = 1 << 20;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	for (i = 0; i < 5; i++) {
		rec = json_pack("{s:s, s:s, s:s, s:i}", "op", "read", "path",
		    "secret/data/x", "decision", "allow", "status", 200);
		assert_non_null(rec);
		before = sync_count();
		dbefore = dsync_count();
		assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
		assert_true(sync_count() > before);
		assert_true(dsync_count() > dbefore);
		json_decref(rec);
	}
	tsi_audit_close(a);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_commits_synced),
		cmocka_unit_test(test_audit_commits_synced),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
