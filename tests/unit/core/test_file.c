/*
 * tsi_file_read, the one bounded file reader, over the edge cases of its
 * former copies (the TLS and key readers: regular file, mode, empty; the
 * CLI readers: "-", the size bound; the issuer's key file: a symbolic link;
 * the root token: mode and size): empty, exactly max, max + 1, a directory,
 * a FIFO (refused without blocking), a symbolic link, permissions, absent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/file.h"

static char dir[] = "/tmp/tsi-test-file.XXXXXX";

static const char *
at(const char *name)
{
	static char p[256];

	assert_true(
	    snprintf(p, sizeof(p), "%s/%s", dir, name) < (int)sizeof(p));
	return p;
}

static void
put(const char *name, size_t n, mode_t mode)
{
	int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC, mode);
	size_t i;

	assert_true(fd >= 0);
	for (i = 0; i < n; i++)
		assert_int_equal(write(fd, "k", 1), 1);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static int
rd(const char *name, size_t max, unsigned flags, size_t *len, char *err,
    size_t errlen)
{
	char *out = NULL;
	int r;

	*len = (size_t)-1;
	err[0] = '\0';
	r = tsi_file_read(at(name), max, flags, &out, len, err, errlen);
	if (r == TSI_OK) {
		assert_non_null(out);
		assert_int_equal(out[*len], '\0');
		assert_int_equal(strspn(out, "k"), *len);
		tsi_freezero(out, *len + 1);
	} else
		assert_null(out);
	return r;
}

static void
test_sizes(void **state)
{
	char err[256];
	size_t len;

	(void)state;
	put("empty", 0, 0600);
	put("max", 100, 0600);
	put("over", 101, 0600);
	put("big", 100000, 0600);
	assert_int_equal(rd("empty", 100, 0, &len, err, sizeof(err)), TSI_OK);
	assert_int_equal(len, 0);
	assert_int_equal(rd("empty", 100, TSI_FILE_NONEMPTY, &len, err,
	                     sizeof(err)),
	    TSI_ERR_PARSE);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(rd("max", 100, TSI_FILE_REGULAR, &len, err,
	                     sizeof(err)),
	    TSI_OK);
	assert_int_equal(len, 100);
	assert_int_equal(rd("over", 100, TSI_FILE_REGULAR, &len, err,
	                     sizeof(err)),
	    TSI_ERR_TOO_LARGE);
	assert_non_null(strstr(err, "larger than 100 bytes"));
	assert_int_equal(rd("big", 100, 0, &len, err, sizeof(err)),
	    TSI_ERR_TOO_LARGE);
	assert_int_equal(rd("big", 100000, 0, &len, err, sizeof(err)), TSI_OK);
	assert_int_equal(len, 100000);
	assert_int_equal(rd("max", 0, 0, &len, err, sizeof(err)),
	    TSI_ERR_TOO_LARGE);
	assert_int_equal(rd("absent", 100, 0, &len, err, sizeof(err)),
	    TSI_ERR_NOT_FOUND);
	assert_non_null(strstr(err, "absent"));
}

static void
test_kinds(void **state)
{
	char err[256];
	size_t len;

	(void)state;
	put("target", 10, 0600);
	assert_int_equal(mkdir(at("sub"), 0700), 0);
	assert_int_equal(mkfifo(at("fifo"), 0600), 0);
	assert_int_equal(symlink("target", at("link")), 0);
	/* A directory: refused as not regular, or failing to read. */
	assert_int_equal(rd("sub", 100, TSI_FILE_REGULAR, &len, err,
	                     sizeof(err)),
	    TSI_ERR_DENIED);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(rd("sub", 100, 0, &len, err, sizeof(err)), TSI_ERR_IO);
	/* A FIFO with no writer: refused at once, not waited on. */
	assert_int_equal(rd("fifo", 100, TSI_FILE_REGULAR, &len, err,
	                     sizeof(err)),
	    TSI_ERR_DENIED);
	assert_int_equal(rd("fifo", 100, TSI_FILE_PRIVATE, &len, err,
	                     sizeof(err)),
	    TSI_ERR_DENIED);
	/* A symbolic link: followed unless refused. */
	assert_int_equal(rd("link", 100, TSI_FILE_REGULAR, &len, err,
	                     sizeof(err)),
	    TSI_OK);
	assert_int_equal(len, 10);
	assert_int_equal(rd("link", 100, TSI_FILE_NOFOLLOW, &len, err,
	                     sizeof(err)),
	    TSI_ERR_DENIED);
	assert_non_null(strstr(err, "symbolic link"));
}

static void
test_private(void **state)
{
	static const mode_t bad[] = { 0640, 0604, 0644, 0660, 0610, 0601 };
	char err[256];
	size_t i, len;

	(void)state;
	put("key", 32, 0600);
	assert_int_equal(rd("key", 64, TSI_FILE_PRIVATE, &len, err,
	                     sizeof(err)),
	    TSI_OK);
	put("key", 32, 0400);
	assert_int_equal(rd("key", 64, TSI_FILE_PRIVATE, &len, err,
	                     sizeof(err)),
	    TSI_OK);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put("key", 32, bad[i]);
		assert_int_equal(rd("key", 64, TSI_FILE_PRIVATE, &len, err,
		                     sizeof(err)),
		    TSI_ERR_DENIED);
		assert_non_null(strstr(err, "group or others"));
		/* Without the flag the mode does not matter. */
		assert_int_equal(rd("key", 64, 0, &len, err, sizeof(err)),
		    TSI_OK);
	}
}

/* "-" is standard input only when asked for. */
static void
test_dash(void **state)
{
	char *out = NULL, err[256];
	size_t len = 0;
	int saved, fd;

	(void)state;
	put("in", 7, 0600);
	assert_true((saved = dup(STDIN_FILENO)) >= 0);
	assert_true((fd = open(at("in"), O_RDONLY)) >= 0);
	assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
	close(fd);
	assert_int_equal(tsi_file_read("-", 100, TSI_FILE_DASH_STDIN, &out,
	                     &len, err, sizeof(err)),
	    TSI_OK);
	assert_int_equal(len, 7);
	assert_string_equal(out, "kkkkkkk");
	free(out);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
	assert_int_not_equal(tsi_file_read("-", 100, 0, &out, &len, err,
	                         sizeof(err)),
	    TSI_OK);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	static const char *const names[] = { "empty", "max", "over", "big",
		"target", "fifo", "link", "key", "in" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		(void)unlink(at(names[i]));
	(void)rmdir(at("sub"));
	return rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_private),
		cmocka_unit_test(test_dash),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
