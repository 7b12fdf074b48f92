/*
 * Secret files: written atomically and without following symlinks.
 *
 * Every path is resolved one component at a time from the destination
 * directory's fd with O_NOFOLLOW, so nothing planted in the destination
 * directory (a symlink to /etc, say) can redirect a write or a removal. The
 * final component is never opened: the content goes to a fresh temporary
 * file (O_CREAT|O_EXCL) and is renamed over it, which replaces a symlink
 * instead of following it.
 */
#include "sidecar/sidecar.h"
#include "tsi/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int
tsi_sidecar_dir_open(const char *path, int *dirfd, char *err, size_t errlen)
{
	int fd;

	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		tsi_errf(err, errlen, "cannot create destination directory %s: %s",
		    path, strerror(errno));
		return TSI_ERR_IO;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		tsi_errf(err, errlen, "cannot open destination directory %s: %s",
		    path, strerror(errno));
		return TSI_ERR_IO;
	}
	*dirfd = fd;
	return TSI_OK;
}

/*
 * Walks the directory part of rel from dirfd. On success *parent is an fd of
 * the last directory (caller closes) and *base points into rel at the file
 * name. create: make missing directories (0700).
 */
static int
walk(int dirfd, const char *rel, int create, int *parent, const char **base,
    char *err, size_t errlen)
{
	char comp[256];
	const char *p = rel, *slash;
	int cur, next;
	size_t n;

	if ((cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 0)) < 0) {
		tsi_errf(err, errlen, "dup: %s", strerror(errno));
		return TSI_ERR_IO;
	}
	while ((slash = strchr(p, '/')) != NULL) {
		n = (size_t)(slash - p);
		if (n == 0 || n >= sizeof(comp)) {
			tsi_errf(err, errlen, "bad path component in %s", rel);
			close(cur);
			return TSI_ERR_INVALID_ARG;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
			tsi_errf(err, errlen, "'.' or '..' in %s", rel);
			close(cur);
			return TSI_ERR_INVALID_ARG;
		}
		if (create && mkdirat(cur, comp, 0700) != 0 && errno != EEXIST) {
			tsi_errf(err, errlen, "cannot create directory %s in %s: %s",
			    comp, rel, strerror(errno));
			close(cur);
			return TSI_ERR_IO;
		}
		next = openat(cur, comp,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			int e = errno;
			close(cur);
			if (e == ENOENT && !create)
				return TSI_ERR_NOT_FOUND;
			tsi_errf(err, errlen, "cannot open directory %s of %s: %s",
			    comp, rel,
			    (e == ELOOP || e == ENOTDIR) ?
				"it is a symlink or not a directory (not followed)" :
				strerror(e));
			return TSI_ERR_IO;
		}
		close(cur);
		cur = next;
		p = slash + 1;
	}
	if (*p == '\0' || strcmp(p, ".") == 0 || strcmp(p, "..") == 0) {
		tsi_errf(err, errlen, "no file name in %s", rel);
		close(cur);
		return TSI_ERR_INVALID_ARG;
	}
	*parent = cur;
	*base = p;
	return TSI_OK;
}

static int
write_all(int fd, const unsigned char *p, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int
tsi_sidecar_write_file(int dirfd, const char *rel, const void *data,
    size_t len, char *err, size_t errlen)
{
	unsigned char rnd[8];
	char tmp[32];
	const char *base;
	int parent = -1, fd = -1, r = TSI_ERR_IO, made = 0;

	if ((r = walk(dirfd, rel, 1, &parent, &base, err, errlen)) != TSI_OK)
		return r;
	r = TSI_ERR_IO;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		tsi_errf(err, errlen, "getrandom: %s", strerror(errno));
		goto out;
	}
	if (snprintf(tmp, sizeof(tmp), ".tsi-tmp-%02x%02x%02x%02x%02x%02x%02x%02x",
	    rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]) >=
	    (int)sizeof(tmp))
		goto out;
	fd = openat(parent, tmp,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		tsi_errf(err, errlen, "cannot create a temporary file for %s: %s",
		    rel, strerror(errno));
		goto out;
	}
	made = 1;
	if (write_all(fd, data, len) != 0) {
		tsi_errf(err, errlen, "cannot write %s: %s", rel, strerror(errno));
		goto out;
	}
	if (fsync(fd) != 0) {
		tsi_errf(err, errlen, "fsync %s: %s", rel, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0400) != 0) {
		tsi_errf(err, errlen, "fchmod %s: %s", rel, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		tsi_errf(err, errlen, "close %s: %s", rel, strerror(errno));
		goto out;
	}
	fd = -1;
	if (renameat(parent, tmp, parent, base) != 0) {
		tsi_errf(err, errlen, "cannot rename into %s: %s", rel,
		    errno == EISDIR ? "a directory is in the way" :
				      strerror(errno));
		goto out;
	}
	made = 0;
	if (fsync(parent) != 0) {
		tsi_errf(err, errlen, "fsync of the directory of %s: %s", rel,
		    strerror(errno));
		goto out;
	}
	r = TSI_OK;
out:
	if (fd >= 0)
		close(fd);
	if (made)
		(void)unlinkat(parent, tmp, 0);
	close(parent);
	return r;
}

int
tsi_sidecar_remove_file(int dirfd, const char *rel, char *err, size_t errlen)
{
	const char *base;
	int parent = -1, r;

	r = walk(dirfd, rel, 0, &parent, &base, err, errlen);
	if (r == TSI_ERR_NOT_FOUND)
		return TSI_OK;
	if (r != TSI_OK)
		return r;
	r = TSI_OK;
	if (unlinkat(parent, base, 0) != 0) {
		if (errno != ENOENT) {
			tsi_errf(err, errlen, "cannot remove %s: %s", rel,
			    strerror(errno));
			r = TSI_ERR_IO;
		}
	} else if (fsync(parent) != 0) {
		tsi_errf(err, errlen, "fsync of the directory of %s: %s", rel,
		    strerror(errno));
		r = TSI_ERR_IO;
	}
	close(parent);
	return r;
}
