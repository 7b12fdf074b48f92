/*
 * proc.c - small bounded reads from /proc (or a test's proc_root).
 */
#include "issuer/proc.h"

#include "tsi/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
tsi_read_small_file(const char *path, size_t max, char **out, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	ssize_t got;
	int fd, r = TSI_ERR_IO;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT || errno == ESRCH ? TSI_ERR_NOT_FOUND
		                                         : TSI_ERR_IO;
	if ((buf = malloc(max + 1)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	/* Read one byte past max to tell "exactly max" from "too long". */
	while (n <= max && (got = read(fd, buf + n, max + 1 - n)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		n += (size_t)got;
	}
	if (n > max) {
		r = TSI_ERR_TOO_LARGE;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
	if (len != NULL)
		*len = n;
	r = TSI_OK;
out:
	free(buf);
	close(fd);
	return r;
}

/* Field 22 of the text of a stat file. */
static int
parse_starttime(char *text, unsigned long long *out)
{
	char *p, *end;
	unsigned long long v;
	int field;

	/* The command name (field 2) may hold spaces and ')': fields are
	 * counted from the last ')'. */
	if ((p = strrchr(text, ')')) == NULL)
		return TSI_ERR_PARSE;
	p++;
	for (field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		if ((p = strchr(p, ' ')) == NULL)
			return TSI_ERR_PARSE;
	}
	while (*p == ' ')
		p++;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno != 0 || end == p)
		return TSI_ERR_PARSE;
	*out = v;
	return TSI_OK;
}

int
tsi_proc_starttime(const char *proc_root, pid_t pid, unsigned long long *out)
{
	char path[512], *text = NULL;
	int n, r;

	n = snprintf(path, sizeof(path), "%s/%ld/stat", proc_root, (long)pid);
	if (n < 0 || (size_t)n >= sizeof(path))
		return TSI_ERR_TOO_LARGE;
	if ((r = tsi_read_small_file(path, 4096, &text, NULL)) != TSI_OK)
		return r;
	r = parse_starttime(text, out);
	free(text);
	return r;
}

int
tsi_proc_stat_open(const char *proc_root, pid_t pid)
{
	char path[512];
	int n;

	n = snprintf(path, sizeof(path), "%s/%ld/stat", proc_root, (long)pid);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	return open(path, O_RDONLY | O_CLOEXEC);
}

int
tsi_proc_starttime_fd(int fd, unsigned long long *out)
{
	char text[4097];
	ssize_t got;

	do
		got = pread(fd, text, sizeof(text) - 1, 0);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return errno == ESRCH ? TSI_ERR_NOT_FOUND : TSI_ERR_IO;
	if (got == 0)
		return TSI_ERR_NOT_FOUND;
	if ((size_t)got == sizeof(text) - 1)
		return TSI_ERR_TOO_LARGE;
	text[got] = '\0';
	return parse_starttime(text, out);
}
