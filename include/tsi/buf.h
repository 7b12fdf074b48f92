/*
 * buf.h - a bounded byte buffer for untrusted input.
 *
 * The maximum size is fixed when the buffer is made; appends beyond it fail
 * with TSI_ERR_TOO_LARGE and leave the buffer unchanged. The contents are
 * always followed by a NUL byte (not counted in the length), so text can be
 * read as a C string. A read offset lets parsers consume the buffer; reads
 * advance only on success. Memory is wiped when freed: buffers hold request
 * bodies, tokens and secret values.
 */
#ifndef TSI_BUF_H
#define TSI_BUF_H

#include <stddef.h>
#include <stdint.h>

struct tsi_buf;

/* A new empty buffer that will never hold more than max bytes.
 * Caller frees with tsi_buf_free. NULL when out of memory. */
struct tsi_buf *tsi_buf_new(size_t max);

/* Wipes and frees. Accepts NULL. */
void tsi_buf_free(struct tsi_buf *b);

/* Appends n bytes. TSI_ERR_TOO_LARGE when len + n > max (buffer unchanged). */
int tsi_buf_put(struct tsi_buf *b, const void *data, size_t n);

/* Appends a NUL-terminated string (without its NUL). */
int tsi_buf_puts(struct tsi_buf *b, const char *s);

/* Appends printf-formatted text; TSI_ERR_TOO_LARGE if it would not fit. */
int tsi_buf_putf(struct tsi_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Unread bytes, borrowed until the next change to b. Always NUL-terminated. */
const uint8_t *tsi_buf_ptr(const struct tsi_buf *b);
const char *tsi_buf_str(const struct tsi_buf *b);
size_t tsi_buf_len(const struct tsi_buf *b);
size_t tsi_buf_max(const struct tsi_buf *b);

/* Consumes n bytes into out (out may be NULL to skip).
 * TSI_ERR_PARSE when fewer than n bytes remain (nothing consumed). */
int tsi_buf_get(struct tsi_buf *b, void *out, size_t n);

/* Wipes the contents and resets length and read offset; keeps max. */
void tsi_buf_reset(struct tsi_buf *b);

/* Takes the contents as a malloc'd NUL-terminated string (caller frees with
 * free, or tsi_freezero for secrets); b is left empty. NULL on ALLOC. */
char *tsi_buf_take(struct tsi_buf *b, size_t *len);

/* Wipes n bytes at p, then frees p. Accepts NULL. */
void tsi_freezero(void *p, size_t n);

/* Wipes a NUL-terminated string, then frees it. Accepts NULL. */
void tsi_strfree(char *s);

#endif /* TSI_BUF_H */
