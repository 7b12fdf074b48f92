/* The atomic writer: mode, content, atomicity, symlinks never followed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "sidecar/sidecar.h"
#include "tsi/err.h"

struct fx {
	char dir[64];
	int fd;
};

static int
rm_rf(const char *path)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/tsi-sc-writer-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (tsi_sidecar_dir_open(f->dir, &f->fd, err, sizeof(err)) != TSI_OK)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	close(f->fd);
	(void)chmod(f->dir, 0700);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static char *
slurp(const char *path, size_t *len)
{
	static char buf[1 << 20];
	int fd = open(path, O_RDONLY | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/* Nothing but the expected names in dir (no temporary file left). */
static int
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (strncmp(e->d_name, ".tsi-tmp-", 9) == 0)
			fail_msg("temporary file %s left behind", e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static void
test_content_and_mode(void **state)
{
	struct fx *f = *state;
	char path[128], err[256];
	struct stat sb;
	size_t len;
	char *got;

	assert_int_equal(tsi_sidecar_write_file(f->fd, "record.json",
	                     "{\"a\":1}\n", 8, err, sizeof(err)),
	    TSI_OK);
	snprintf(path, sizeof(path), "%s/record.json", f->dir);
	assert_int_equal(lstat(path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0400);
	got = slurp(path, &len);
	assert_non_null(got);
	assert_int_equal(len, 8);
	assert_memory_equal(got, "{\"a\":1}\n", 8);
	/* Overwrite (the old file is 0400: rename replaces it anyway). */
	assert_int_equal(tsi_sidecar_write_file(f->fd, "record.json", "v2", 2,
	                     err, sizeof(err)),
	    TSI_OK);
	got = slurp(path, &len);
	assert_int_equal(len, 2);
	assert_memory_equal(got, "v2", 2);
	/* Subdirectories are created 0700. */
	assert_int_equal(tsi_sidecar_write_file(f->fd, "db/creds/pw", "x", 1,
	                     err, sizeof(err)),
	    TSI_OK);
	snprintf(path, sizeof(path), "%s/db/creds", f->dir);
	assert_int_equal(lstat(path, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(count_entries(f->dir), 2);
	/* Empty content is a valid file. */
	assert_int_equal(tsi_sidecar_write_file(f->fd, "empty", "", 0, err,
	                     sizeof(err)),
	    TSI_OK);
	snprintf(path, sizeof(path), "%s/empty", f->dir);
	assert_int_equal(lstat(path, &sb), 0);
	assert_int_equal(sb.st_size, 0);
}

static void
test_symlink_at_dest_not_followed(void **state)
{
	struct fx *f = *state;
	char victim[128], link[128], err[256];
	struct stat sb;
	size_t len;
	char *got;
	int fd;

	/* A file outside the destination directory, and a link to it. */
	snprintf(victim, sizeof(victim), "%s-victim", f->dir);
	fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "original", 8), 8);
	close(fd);
	snprintf(link, sizeof(link), "%s/record.json", f->dir);
	assert_int_equal(symlink(victim, link), 0);

	assert_int_equal(tsi_sidecar_write_file(f->fd, "record.json", "secret",
	                     6, err, sizeof(err)),
	    TSI_OK);
	/* The victim is untouched; the link was replaced by a regular file. */
	got = slurp(victim, &len);
	assert_non_null(got);
	assert_int_equal(len, 8);
	assert_memory_equal(got, "original", 8);
	assert_int_equal(lstat(link, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0400);
	unlink(victim);
}

static void
test_symlinked_dir_not_followed(void **state)
{
	struct fx *f = *state;
	char outside[128], link[128], probe[160], err[256];
	struct stat sb;

	snprintf(outside, sizeof(outside), "%s-outside", f->dir);
	assert_int_equal(mkdir(outside, 0700), 0);
	snprintf(link, sizeof(link), "%s/db", f->dir);
	assert_int_equal(symlink(outside, link), 0);

	assert_int_equal(tsi_sidecar_write_file(f->fd, "db/pw", "x", 1, err,
	                     sizeof(err)),
	    TSI_ERR_IO);
	assert_non_null(strstr(err, "symlink"));
	snprintf(probe, sizeof(probe), "%s/pw", outside);
	assert_int_equal(lstat(probe, &sb), -1);
	assert_int_equal(errno, ENOENT);
	/* Removal does not follow it either. */
	{
		int fd = open(probe, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		close(fd);
	}
	assert_int_equal(tsi_sidecar_remove_file(f->fd, "db/pw", err,
	                     sizeof(err)),
	    TSI_ERR_IO);
	assert_int_equal(lstat(probe, &sb), 0);
	unlink(probe);
	rmdir(outside);
}

static void
test_remove(void **state)
{
	struct fx *f = *state;
	char path[128], err[256];
	struct stat sb;

	assert_int_equal(tsi_sidecar_write_file(f->fd, "a/b", "x", 1, err,
	                     sizeof(err)),
	    TSI_OK);
	assert_int_equal(tsi_sidecar_remove_file(f->fd, "a/b", err,
	                     sizeof(err)),
	    TSI_OK);
	snprintf(path, sizeof(path), "%s/a/b", f->dir);
	assert_int_equal(lstat(path, &sb), -1);
	/* Absent file or absent directory: nothing to do, success. */
	assert_int_equal(tsi_sidecar_remove_file(f->fd, "a/b", err,
	                     sizeof(err)),
	    TSI_OK);
	assert_int_equal(tsi_sidecar_remove_file(f->fd, "zz/b", err,
	                     sizeof(err)),
	    TSI_OK);
}

static void
test_failure_leaves_old_file(void **state)
{
	struct fx *f = *state;
	char path[128], err[256];
	size_t len;
	char *got;
	pid_t pid;
	int status;

	assert_int_equal(tsi_sidecar_write_file(f->fd, "keep", "old", 3, err,
	                     sizeof(err)),
	    TSI_OK);
	/* A write that fails half-way (file size limit) in a child. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static char big[65536];
		struct rlimit rl = { 4096, 4096 };
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(3);
		_exit(tsi_sidecar_write_file(f->fd, "keep", big, sizeof(big),
		          err, sizeof(err)) == TSI_ERR_IO
		        ? 0
		        : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	snprintf(path, sizeof(path), "%s/keep", f->dir);
	got = slurp(path, &len);
	assert_non_null(got);
	assert_int_equal(len, 3);
	assert_memory_equal(got, "old", 3);
	assert_int_equal(count_entries(f->dir), 1); /* no temporary left */
}

static void
test_dir_in_the_way(void **state)
{
	struct fx *f = *state;
	char path[128], err[256];

	snprintf(path, sizeof(path), "%s/d", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/d/x", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(tsi_sidecar_write_file(f->fd, "d", "x", 1, err,
	                     sizeof(err)),
	    TSI_ERR_IO);
	assert_int_equal(count_entries(f->dir), 1);
}

/*
 * Readers never see a partial file: a child rewrites the file with two
 * large, different contents while the parent reads it; every read must be
 * one of the two, whole.
 */
static void
test_no_partial_file(void **state)
{
	struct fx *f = *state;
	enum {
		N = 256 * 1024
	};
	char *a = malloc(N), *b = malloc(N), path[128], err[256];
	size_t len;
	char *got;
	pid_t pid;
	int i, seen_a = 0, seen_b = 0, status;

	assert_non_null(a);
	assert_non_null(b);
	memset(a, 'A', N);
	memset(b, 'B', N);
	assert_int_equal(tsi_sidecar_write_file(f->fd, "big", a, N, err,
	                     sizeof(err)),
	    TSI_OK);
	snprintf(path, sizeof(path), "%s/big", f->dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (i = 0; i < 60; i++)
			if (tsi_sidecar_write_file(f->fd, "big",
			        (i & 1) ? a : b, N, err, sizeof(err)) != TSI_OK)
				_exit(1);
		_exit(0);
	}
	for (;;) {
		int done = waitpid(pid, &status, WNOHANG) == pid;
		got = slurp(path, &len);
		assert_non_null(got); /* the name always exists */
		assert_int_equal(len, N);
		if (got[0] == 'A') {
			assert_int_equal(got[N - 1], 'A');
			assert_null(memchr(got, 'B', N));
			seen_a++;
		} else {
			assert_int_equal(got[0], 'B');
			assert_null(memchr(got, 'A', N));
			seen_b++;
		}
		if (done)
			break;
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(seen_a + seen_b > 0);
	assert_int_equal(count_entries(f->dir), 1);
	free(a);
	free(b);
}

/* count_entries, but temporary files are counted instead of failing. */
static int
count_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, ".tsi-tmp-", 9) == 0)
			n++;
	closedir(d);
	return n;
}

/*
 * A batch: staged files are invisible under their names until the commit,
 * then all in place at once, whole and 0400, old content replaced.
 */
static void
test_batch_commit(void **state)
{
	struct fx *f = *state;
	static const char *rel[] = { "a", "b", "sub/c", "sub/d", "old" };
	struct tsi_sidecar_staged st[5];
	char path[128], err[256], errs[5][256], content[16];
	int res[5], i;
	struct stat sb;
	size_t len;
	char *got;

	assert_int_equal(tsi_sidecar_write_file(f->fd, "old", "before", 6, err,
	                     sizeof(err)),
	    TSI_OK);
	for (i = 0; i < 5; i++) {
		snprintf(content, sizeof(content), "content-%d", i);
		assert_int_equal(tsi_sidecar_stage_file(f->fd, rel[i], content,
		                     strlen(content), &st[i], err, sizeof(err)),
		    TSI_OK);
	}
	/* Staged: only temporaries, the old file still old. */
	snprintf(path, sizeof(path), "%s/a", f->dir);
	assert_int_equal(lstat(path, &sb), -1);
	snprintf(path, sizeof(path), "%s/old", f->dir);
	got = slurp(path, &len);
	assert_non_null(got);
	assert_memory_equal(got, "before", 6);
	assert_int_equal(count_tmp(f->dir), 3);
	snprintf(path, sizeof(path), "%s/sub", f->dir);
	assert_int_equal(count_tmp(path), 2);

	tsi_sidecar_commit_files(st, 5, res, &errs[0][0], sizeof(errs[0]));
	for (i = 0; i < 5; i++) {
		assert_int_equal(res[i], TSI_OK);
		assert_int_equal(st[i].fd, -1);
		assert_int_equal(st[i].parent, -1);
		snprintf(path, sizeof(path), "%s/%s", f->dir, rel[i]);
		assert_int_equal(lstat(path, &sb), 0);
		assert_int_equal(sb.st_mode & 07777, 0400);
		snprintf(content, sizeof(content), "content-%d", i);
		got = slurp(path, &len);
		assert_non_null(got);
		assert_int_equal(len, strlen(content));
		assert_memory_equal(got, content, len);
	}
	assert_int_equal(count_entries(f->dir), 4); /* a b old sub */
	snprintf(path, sizeof(path), "%s/sub", f->dir);
	assert_int_equal(count_entries(path), 2);
}

/* A dropped staged file leaves nothing; dropping twice is harmless. */
static void
test_batch_drop(void **state)
{
	struct fx *f = *state;
	struct tsi_sidecar_staged st;
	char err[256];

	assert_int_equal(tsi_sidecar_stage_file(f->fd, "x/y", "v", 1, &st, err,
	                     sizeof(err)),
	    TSI_OK);
	tsi_sidecar_stage_drop(&st);
	tsi_sidecar_stage_drop(&st);
	assert_int_equal(st.fd, -1);
	assert_int_equal(count_entries(f->dir), 1); /* the directory x only */
	assert_int_equal(count_tmp(f->dir), 0);
}

/* One entry that cannot be put in place fails alone, leaves no temporary. */
static void
test_batch_one_fails(void **state)
{
	struct fx *f = *state;
	struct tsi_sidecar_staged st[3];
	char path[128], err[256], errs[3][256];
	int res[3];
	size_t len;
	char *got;

	snprintf(path, sizeof(path), "%s/d", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/d/x", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(tsi_sidecar_stage_file(f->fd, "p", "1", 1, &st[0], err,
	                     sizeof(err)),
	    TSI_OK);
	assert_int_equal(tsi_sidecar_stage_file(f->fd, "d", "2", 1, &st[1], err,
	                     sizeof(err)),
	    TSI_OK);
	assert_int_equal(tsi_sidecar_stage_file(f->fd, "q", "3", 1, &st[2], err,
	                     sizeof(err)),
	    TSI_OK);
	tsi_sidecar_commit_files(st, 3, res, &errs[0][0], sizeof(errs[0]));
	assert_int_equal(res[0], TSI_OK);
	assert_int_equal(res[1], TSI_ERR_IO);
	assert_non_null(strstr(errs[1], "cannot rename into d"));
	assert_int_equal(res[2], TSI_OK);
	snprintf(path, sizeof(path), "%s/q", f->dir);
	got = slurp(path, &len);
	assert_non_null(got);
	assert_memory_equal(got, "3", 1);
	assert_int_equal(count_entries(f->dir), 3); /* p d q, no temporary */
}

/* More files than are synced at once: every one in place, in three
 * directories, no temporary left. */
static void
test_batch_many(void **state)
{
	struct fx *f = *state;
	enum {
		N = 40
	};
	struct tsi_sidecar_staged st[N];
	static char errs[N][256];
	char rel[N][32];
	char path[128], err[256], content[16];
	int res[N], i;
	size_t len;
	char *got;

	for (i = 0; i < N; i++) {
		snprintf(rel[i], sizeof(rel[i]), "%s/f%d",
		    i % 3 == 0       ? "x"
		        : i % 3 == 1 ? "y/z"
		                     : ".",
		    i);
		if (i % 3 == 2)
			snprintf(rel[i], sizeof(rel[i]), "f%d", i);
		snprintf(content, sizeof(content), "v%d", i);
		assert_int_equal(tsi_sidecar_stage_file(f->fd, rel[i], content,
		                     strlen(content), &st[i], err, sizeof(err)),
		    TSI_OK);
	}
	tsi_sidecar_commit_files(st, N, res, &errs[0][0], sizeof(errs[0]));
	for (i = 0; i < N; i++) {
		assert_int_equal(res[i], TSI_OK);
		snprintf(path, sizeof(path), "%s/%.31s", f->dir, rel[i]);
		snprintf(content, sizeof(content), "v%d", i);
		got = slurp(path, &len);
		assert_non_null(got);
		assert_int_equal(len, strlen(content));
		assert_memory_equal(got, content, len);
	}
	assert_int_equal(count_entries(f->dir), 2 + 13); /* x y f2 f5 ... */
	snprintf(path, sizeof(path), "%s/x", f->dir);
	assert_int_equal(count_entries(path), 14);
	snprintf(path, sizeof(path), "%s/y/z", f->dir);
	assert_int_equal(count_entries(path), 13);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_content_and_mode, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_symlink_at_dest_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinked_dir_not_followed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_leaves_old_file,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_in_the_way, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_partial_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_batch_commit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_batch_drop, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_batch_one_fails, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_batch_many, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
