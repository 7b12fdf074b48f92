/* The one bounded whole-file reader (tsi/file.h). */
#include "tsi/file.h"
#include "tsi/buf.h"
#include "tsi/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The checks that need the open file: kind and mode. */
static int
check_fd(int fd, const char *path, unsigned flags, char *err, size_t errlen)
{
	struct stat st;

	if ((flags & (TSI_FILE_REGULAR | TSI_FILE_PRIVATE)) == 0)
		return TSI_OK;
	if (fstat(fd, &st) != 0) {
		tsi_errf(err, errlen, "%s: %s", path, strerror(errno));
		return TSI_ERR_IO;
	}
	if (!S_ISREG(st.st_mode)) {
		tsi_errf(err, errlen, "%s: not a regular file", path);
		return TSI_ERR_DENIED;
	}
	if ((flags & TSI_FILE_PRIVATE) && (st.st_mode & 077) != 0) {
		tsi_errf(err, errlen,
		    "%s: readable by group or others (mode %04o); "
		    "it must be mode 0600 or stricter",
		    path, (unsigned)(st.st_mode & 07777));
		return TSI_ERR_DENIED;
	}
	return TSI_OK;
}

int
tsi_file_read(const char *path, size_t max, unsigned flags, char **out,
    size_t *outlen, char *err, size_t errlen)
{
	struct tsi_buf *b = NULL;
	char chunk[4096];
	size_t len;
	ssize_t n;
	int fd = -1, oflags = O_RDONLY | O_CLOEXEC, r = TSI_ERR_IO;

	if ((flags & TSI_FILE_DASH_STDIN) && strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else {
		/* Not blocked by a FIFO before the kind is checked. */
		if (flags & (TSI_FILE_REGULAR | TSI_FILE_PRIVATE))
			oflags |= O_NONBLOCK;
		if (flags & TSI_FILE_NOFOLLOW)
			oflags |= O_NOFOLLOW;
		if ((fd = open(path, oflags)) < 0) {
			tsi_errf(err, errlen, "%s: %s", path,
			    errno == ELOOP && (flags & TSI_FILE_NOFOLLOW)
			        ? "is a symbolic link"
			        : strerror(errno));
			return errno == ENOENT ? TSI_ERR_NOT_FOUND
			    : errno == ELOOP && (flags & TSI_FILE_NOFOLLOW)
			    ? TSI_ERR_DENIED
			    : TSI_ERR_IO;
		}
	}
	if ((r = check_fd(fd, path, flags, err, errlen)) != TSI_OK)
		goto out;
	/* One byte more than max is room to see that the file is too big. */
	if (max == (size_t)-1 || (b = tsi_buf_new(max + 1)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	for (;;) {
		len = max + 1 - tsi_buf_len(b);
		if (len > sizeof(chunk))
			len = sizeof(chunk);
		if (len == 0)
			break;
		if ((n = read(fd, chunk, len)) < 0) {
			if (errno == EINTR)
				continue;
			tsi_errf(err, errlen, "%s: %s", path, strerror(errno));
			r = TSI_ERR_IO;
			goto out;
		}
		if (n == 0)
			break;
		(void)tsi_buf_put(b, chunk, (size_t)n); /* fits: len bounds n */
	}
	if (tsi_buf_len(b) > max) {
		tsi_errf(err, errlen, "%s: larger than %zu bytes", path, max);
		r = TSI_ERR_TOO_LARGE;
		goto out;
	}
	if ((flags & TSI_FILE_NONEMPTY) && tsi_buf_len(b) == 0) {
		tsi_errf(err, errlen, "%s: empty", path);
		r = TSI_ERR_PARSE;
		goto out;
	}
	if ((*out = tsi_buf_take(b, outlen)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	r = TSI_OK;
out:
	explicit_bzero(chunk, sizeof(chunk));
	tsi_buf_free(b);
	if (fd >= 0 && fd != STDIN_FILENO)
		close(fd);
	return r;
}
