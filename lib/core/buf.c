#include "tsi/buf.h"
#include "tsi/err.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tsi_buf {
	uint8_t *d; /* allocation, cap + 1 bytes (room for the NUL) */
	size_t cap; /* allocated payload capacity */
	size_t off; /* read offset */
	size_t len; /* bytes written */
	size_t max; /* hard limit on len */
};

struct tsi_buf *
tsi_buf_new(size_t max)
{
	struct tsi_buf *b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->cap = max < 256 ? max : 256;
	if ((b->d = calloc(1, b->cap + 1)) == NULL) {
		free(b);
		return NULL;
	}
	b->max = max;
	return b;
}

void
tsi_freezero(void *p, size_t n)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, n);
	free(p);
}

void
tsi_strfree(char *s)
{
	if (s != NULL)
		tsi_freezero(s, strlen(s));
}

void
tsi_buf_free(struct tsi_buf *b)
{
	if (b == NULL)
		return;
	tsi_freezero(b->d, b->cap + 1);
	free(b);
}

static int
reserve(struct tsi_buf *b, size_t n)
{
	size_t need, ncap;
	uint8_t *nd;

	if (b->max - b->len < n)
		return TSI_ERR_TOO_LARGE;
	need = b->len + n;
	if (need <= b->cap)
		return TSI_OK;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > b->max / 2 ? b->max : ncap * 2;
	/* Not realloc: the old block may hold secrets and must be wiped. */
	if ((nd = calloc(1, ncap + 1)) == NULL)
		return TSI_ERR_ALLOC;
	memcpy(nd, b->d, b->len);
	tsi_freezero(b->d, b->cap + 1);
	b->d = nd;
	b->cap = ncap;
	return TSI_OK;
}

int
tsi_buf_put(struct tsi_buf *b, const void *data, size_t n)
{
	int r;

	if (b == NULL || (data == NULL && n > 0))
		return TSI_ERR_INVALID_ARG;
	if ((r = reserve(b, n)) != TSI_OK)
		return r;
	if (n > 0)
		memcpy(b->d + b->len, data, n);
	b->len += n;
	b->d[b->len] = '\0';
	return TSI_OK;
}

int
tsi_buf_puts(struct tsi_buf *b, const char *s)
{
	if (s == NULL)
		return TSI_ERR_INVALID_ARG;
	return tsi_buf_put(b, s, strlen(s));
}

int
tsi_buf_putf(struct tsi_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	if (b == NULL || fmt == NULL)
		return TSI_ERR_INVALID_ARG;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return TSI_ERR_INTERNAL;
	if ((r = reserve(b, (size_t)n)) != TSI_OK)
		return r;
	va_start(ap, fmt);
	/* reserve() left at least n + 1 bytes (cap + 1 allocation). */
	if (vsnprintf((char *)b->d + b->len, (size_t)n + 1, fmt, ap) != n) {
		va_end(ap);
		b->d[b->len] = '\0';
		return TSI_ERR_INTERNAL;
	}
	va_end(ap);
	b->len += (size_t)n;
	return TSI_OK;
}

const uint8_t *
tsi_buf_ptr(const struct tsi_buf *b)
{
	return b->d + b->off;
}

const char *
tsi_buf_str(const struct tsi_buf *b)
{
	return (const char *)b->d + b->off;
}

size_t
tsi_buf_len(const struct tsi_buf *b)
{
	return b->len - b->off;
}

size_t
tsi_buf_max(const struct tsi_buf *b)
{
	return b->max;
}

int
tsi_buf_get(struct tsi_buf *b, void *out, size_t n)
{
	if (b == NULL)
		return TSI_ERR_INVALID_ARG;
	if (b->len - b->off < n)
		return TSI_ERR_PARSE;
	if (out != NULL && n > 0)
		memcpy(out, b->d + b->off, n);
	b->off += n;
	return TSI_OK;
}

void
tsi_buf_reset(struct tsi_buf *b)
{
	if (b == NULL)
		return;
	OPENSSL_cleanse(b->d, b->cap + 1);
	b->len = 0;
	b->off = 0;
}

char *
tsi_buf_take(struct tsi_buf *b, size_t *len)
{
	size_t n = tsi_buf_len(b);
	char *s;

	if ((s = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(s, b->d + b->off, n);
	s[n] = '\0';
	if (len != NULL)
		*len = n;
	tsi_buf_reset(b);
	return s;
}
