/* log_capture.h - the log tests' capture of one line (header-only). */
#ifndef TSI_LOG_CAPTURE_H
#define TSI_LOG_CAPTURE_H

#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "tsi/log.h"

/*
 * Runs fn with the log redirected to a pipe; buf (size bytes) receives the
 * raw text, which must be exactly one line. Returns the line parsed; the
 * caller owns it.
 */
static inline json_t *
log_capture(void (*fn)(void), char *buf, size_t size)
{
	int p[2];
	ssize_t n;
	json_t *j;

	assert_int_equal(pipe(p), 0);
	tsi_log_set_fd(p[1]);
	fn();
	tsi_log_set_fd(2);
	close(p[1]);
	n = read(p[0], buf, size - 1);
	close(p[0]);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_int_equal(buf[n - 1], '\n');
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
	j = json_loads(buf, 0, NULL);
	assert_non_null(j);
	return j;
}

#endif /* TSI_LOG_CAPTURE_H */
