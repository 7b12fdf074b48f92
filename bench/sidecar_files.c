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
 * CLOCK_MONOTONIC. Two ways are measured, rounds alternating:
 *   seq: one file after the other (open, write, fsync, rename), then the
 *        directory;
 *   par: every file written first, then all fsyncs at once (a thread each,
 *        so the filesystem can cover them with one journal commit), the
 *        renames, then the directory.
 * Prints one JSON object: {"files", "bytes", "rounds", "seq_ms", "par_ms"
 * (medians), "floor_ms" (the smaller median), "seq_runs_ms", "par_runs_ms"}.
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
	fprintf(stderr, "usage: sidecar_files --dir D [--files N] [--bytes B] "
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
		started[i] = pthread_create(&tid[i], NULL, sync_job,
		    &jobs[i]) == 0;
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
	double seq[MAX_ROUNDS], par[MAX_ROUNDS], s_seq[MAX_ROUNDS],
	    s_par[MAX_ROUNDS], ms_seq, ms_par;
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
		for (m = 0; m < 2; m++) {
			double t;

			if (snprintf(sub, sizeof(sub), "%s/round-%d-%s", dir, i,
			    m ? "par" : "seq") >= (int)sizeof(sub))
				return usage();
			if (mkdir(sub, 0700) != 0 ||
			    (dfd = open(sub, O_RDONLY | O_DIRECTORY |
				O_CLOEXEC)) < 0) {
				fprintf(stderr, "sidecar_files: %s: %s\n", sub,
				    strerror(errno));
				goto out;
			}
			t = m ? round_par(dfd, (int)files, data, (size_t)bytes) :
			    round_seq(dfd, (int)files, data, (size_t)bytes);
			close(dfd);
			if (t < 0) {
				fprintf(stderr, "sidecar_files: %s: %s\n", sub,
				    strerror(errno));
				goto out;
			}
			if (m)
				par[i] = t;
			else
				seq[i] = t;
		}
	}
	memcpy(s_seq, seq, sizeof(double) * (size_t)rounds);
	memcpy(s_par, par, sizeof(double) * (size_t)rounds);
	qsort(s_seq, (size_t)rounds, sizeof(double), cmp);
	qsort(s_par, (size_t)rounds, sizeof(double), cmp);
	ms_seq = s_seq[rounds / 2];
	ms_par = s_par[rounds / 2];
	printf("{\"files\": %ld, \"bytes\": %ld, \"rounds\": %ld, "
	    "\"seq_ms\": %.3f, \"par_ms\": %.3f, \"floor_ms\": %.3f", files,
	    bytes, rounds, ms_seq, ms_par, ms_seq < ms_par ? ms_seq : ms_par);
	print_runs("seq_runs_ms", seq, (int)rounds);
	print_runs("par_runs_ms", par, (int)rounds);
	printf("}\n");
	ret = 0;
out:
	free(data);
	return ret;
}
