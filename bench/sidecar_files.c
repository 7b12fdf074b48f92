/*
 * sidecar_files.c - the file floor of tsi-sidecar's figure: what any program
 * must do to put N small files durably in place in a directory: for each
 * file create a temporary file, write it, fsync it, rename it over its name;
 * then fsync the directory once. Nothing else (no path walk, no symlink
 * checks, no rendering).
 *
 *   sidecar_files --dir D [--files 10] [--bytes 35] [--rounds 7]
 *
 * Each round uses a fresh subdirectory of D (created before its clock
 * starts, as bench/run creates the sidecar's) and is timed with
 * CLOCK_MONOTONIC. Three ways are measured, rounds alternating:
 *   seq: one file after the other (open, write, fsync, rename), then the
 *        directory;
 *   par: every file written (writeback started) first, then all fsyncs at
 *        once (a thread each, so the filesystem can cover them with one
 *        journal commit), the renames, then the directory;
 *   pre: every file written (writeback started) first, then the fsyncs one
 *        after the other in this thread, the renames, the directory.
 * Prints one JSON object: {"files", "bytes", "rounds", "seq_ms", "par_ms",
 * "pre_ms" (medians), "floor_ms" (the smallest median), "seq_runs_ms",
 * "par_runs_ms", "pre_runs_ms"}.
 * Exit 0, 1 on an I/O failure, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 64
#define MAX_ROUNDS 101

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: sidecar_files --dir D [--files N] [--bytes B] "
	    "[--rounds R]\n");
	return 2;
}

static int
write_tmp(int dfd, int i, const char *data, size_t len)
{
	char name[32];
	int fd;

	(void)snprintf(name, sizeof(name), ".tmp-%d", i);
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
rename_in(int dfd, int i)
{
	char from[32], to[32];

	(void)snprintf(from, sizeof(from), ".tmp-%d", i);
	(void)snprintf(to, sizeof(to), "s%d", i);
	return renameat(dfd, from, dfd, to);
}

struct job {
	int fd, err;
};

static void *
sync_job(void *arg)
{
	struct job *j = arg;

	j->err = fsync(j->fd) != 0 ? errno : 0;
	return NULL;
}

/* One round in directory dfd; returns its ms, or -1 on failure. */
static double
round_seq(int dfd, int n, const char *data, size_t len)
{
	double t0 = now_ms();
	int i, fd;

	for (i = 0; i < n; i++) {
		if ((fd = write_tmp(dfd, i, data, len)) < 0)
			return -1;
		if (fsync(fd) != 0) {
			close(fd);
			return -1;
		}
		close(fd);
		if (rename_in(dfd, i) != 0)
			return -1;
	}
	if (fsync(dfd) != 0)
		return -1;
	return now_ms() - t0;
}

static double
round_pre(int dfd, int n, const char *data, size_t len)
{
	int fds[MAX_FILES];
	double t0 = now_ms();
	int i, bad = 0;

	for (i = 0; i < n; i++) {
		if ((fds[i] = write_tmp(dfd, i, data, len)) < 0)
			return -1;
		(void)sync_file_range(fds[i], 0, 0, SYNC_FILE_RANGE_WRITE);
	}
	for (i = 0; i < n; i++) {
		bad |= fsync(fds[i]) != 0;
		close(fds[i]);
	}
	if (bad)
		return -1;
	for (i = 0; i < n; i++)
		if (rename_in(dfd, i) != 0)
			return -1;
	if (fsync(dfd) != 0)
		return -1;
	return now_ms() - t0;
}

static double
round_par(int dfd, int n, const char *data, size_t len)
{
	struct job jobs[MAX_FILES];
	pthread_t tid[MAX_FILES];
	int started[MAX_FILES];
	double t0 = now_ms();
	int i, bad = 0;

	for (i = 0; i < n; i++) {
		if ((jobs[i].fd = write_tmp(dfd, i, data, len)) < 0)
			return -1;
		(void)sync_file_range(jobs[i].fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	}
	for (i = 1; i < n; i++)
		started[i] =
		    pthread_create(&tid[i], NULL, sync_job, &jobs[i]) == 0;
	(void)sync_job(&jobs[0]);
	for (i = 1; i < n; i++) {
		if (started[i])
			pthread_join(tid[i], NULL);
		else
			(void)sync_job(&jobs[i]);
	}
	for (i = 0; i < n; i++) {
		bad |= jobs[i].err != 0;
		close(jobs[i].fd);
	}
	if (bad)
		return -1;
	for (i = 0; i < n; i++)
		if (rename_in(dfd, i) != 0)
			return -1;
	if (fsync(dfd) != 0)
		return -1;
	return now_ms() - t0;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
print_runs(const char *key, const double *v, int n)
{
	int i;

	printf(", \"%s\": [", key);
	for (i = 0; i < n; i++)
		printf("%s%.3f", i ? ", " : "", v[i]);
	printf("]");
}

int
main(int argc, char **argv)
{
	const char *dir = NULL;
	long files = 10, bytes = 35, rounds = 7;
	static const char *const mode[3] = { "seq", "par", "pre" };
	double runs[3][MAX_ROUNDS], sorted[MAX_ROUNDS], med[3], floor_ms;
	char *data = NULL, sub[4096];
	int i, m, dfd, ret = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--files") == 0 && i + 1 < argc)
			files = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc)
			bytes = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = strtol(argv[++i], NULL, 10);
		else
			return usage();
	}
	if (dir == NULL || files < 1 || files > MAX_FILES || bytes < 1 ||
	    bytes > 1 << 20 || rounds < 1 || rounds > MAX_ROUNDS)
		return usage();
	if ((data = malloc((size_t)bytes)) == NULL)
		goto out;
	memset(data, 'x', (size_t)bytes);
	for (i = 0; i < rounds; i++) {
		for (m = 0; m < 3; m++) {
			double t;

			if (snprintf(sub, sizeof(sub), "%s/round-%d-%s", dir, i,
			        mode[m]) >= (int)sizeof(sub))
				return usage();
			if (mkdir(sub, 0700) != 0 ||
			    (dfd = open(sub,
			         O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
				fprintf(stderr, "sidecar_files: %s: %s\n", sub,
				    strerror(errno));
				goto out;
			}
			t = m == 0
			    ? round_seq(dfd, (int)files, data, (size_t)bytes)
			    : m == 1
			    ? round_par(dfd, (int)files, data, (size_t)bytes)
			    : round_pre(dfd, (int)files, data, (size_t)bytes);
			close(dfd);
			if (t < 0) {
				fprintf(stderr, "sidecar_files: %s: %s\n", sub,
				    strerror(errno));
				goto out;
			}
			runs[m][i] = t;
		}
	}
	for (m = 0; m < 3; m++) {
		memcpy(sorted, runs[m], sizeof(double) * (size_t)rounds);
		qsort(sorted, (size_t)rounds, sizeof(double), cmp);
		med[m] = sorted[rounds / 2];
	}
	floor_ms = med[0];
	for (m = 1; m < 3; m++)
		if (med[m] < floor_ms)
			floor_ms = med[m];
	printf("{\"files\": %ld, \"bytes\": %ld, \"rounds\": %ld", files, bytes,
	    rounds);
	for (m = 0; m < 3; m++)
		printf(", \"%s_ms\": %.3f", mode[m], med[m]);
	printf(", \"floor_ms\": %.3f", floor_ms);
	for (m = 0; m < 3; m++) {
		char key[32];

		(void)snprintf(key, sizeof(key), "%s_runs_ms", mode[m]);
		print_runs(key, runs[m], (int)rounds);
	}
	printf("}\n");
	ret = 0;
out:
	free(data);
	return ret;
}
