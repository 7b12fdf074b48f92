#include "tsi/log.h"

#include <openssl/err.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192

static const char *log_prog = "tsi";
static enum tsi_log_level log_min = TSI_LOG_INFO;
static int log_fd = 2;
/*
 * Lines never interleave. A write(2) of at most PIPE_BUF bytes is not split
 * by the kernel (pipes: POSIX; regular files: the inode lock; Unix stream
 * sockets: one buffer; terminals: the tty write lock), so such lines only
 * share a read lock, which threads take without waiting for each other (a
 * mutex here made logging threads sleep and wake each other: a thread
 * wake-up per contended line). A longer line may be written in parts and
 * takes the lock exclusively; writers are preferred, so a steady stream of
 * short lines cannot keep a long one waiting.
 */
static pthread_rwlock_t log_mu =
    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

void
tsi_log_init(const char *prog, enum tsi_log_level min_level)
{
	const char *env = getenv("TSI_LOG_LEVEL");

	if (prog != NULL)
		log_prog = prog;
	log_min = min_level;
	if (env == NULL)
		return;
	if (strcasecmp(env, "debug") == 0)
		log_min = TSI_LOG_DEBUG;
	else if (strcasecmp(env, "info") == 0)
		log_min = TSI_LOG_INFO;
	else if (strcasecmp(env, "warn") == 0)
		log_min = TSI_LOG_WARN;
	else if (strcasecmp(env, "error") == 0)
		log_min = TSI_LOG_ERROR;
}

void
tsi_log_set_fd(int fd)
{
	log_fd = fd;
}

/*
 * Whether a log key names a secret, decided in one pass over the key (this
 * runs for every field of every line). The set of names:
 *   - never secret, whole key: kid, accessor, token_accessor, key_id,
 *     token_ttl, token_policies (identifiers and settings of secrets);
 *   - secret, whole key: data;
 *   - secret, anywhere in the key: token, jwt, secret, password, passwd,
 *     key, value, authorization, cookie, credential, private (so
 *     "client_token" and "x-vault-token" are secret).
 * All comparisons are ASCII case-insensitive (as strcasecmp/strcasestr in
 * the C locale). tests/unit/log checks every class against the plain
 * strcasestr scan this replaced.
 */

/* Lower-case ASCII letter of c, or 0 when c is not a letter. */
static unsigned char
lower_letter(unsigned char c)
{
	c |= 0x20; /* maps exactly 'A'-'Z' and 'a'-'z' into 'a'-'z' */
	return c >= 'a' && c <= 'z' ? c : 0;
}

/* Nonzero when p starts with word (lower-case letters), in any case.
 * Stops at the first difference, so it never reads past p's end. */
static int
starts_with_word(const char *p, const char *word)
{
	for (; *word != '\0'; p++, word++)
		if (lower_letter((unsigned char)*p) != (unsigned char)*word)
			return 0;
	return 1;
}

/* Nonzero when key (of length len) is word (lower-case letters and '_'),
 * in any case. */
static int
is_word(const char *key, size_t len, const char *word)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];

		if (word[i] == '\0' ||
		    (c == '_' ? c : lower_letter(c)) != (unsigned char)word[i])
			return 0;
	}
	return word[len] == '\0';
}

/* Nonzero when one of the secret words starts at p: one switch on the
 * first letter, then at most three comparisons. */
static int
secret_word_at(const char *p)
{
	switch (lower_letter((unsigned char)*p)) {
	case 'a': return starts_with_word(p, "authorization");
	case 'c':
		return starts_with_word(p, "cookie") ||
		    starts_with_word(p, "credential");
	case 'j': return starts_with_word(p, "jwt");
	case 'k': return starts_with_word(p, "key");
	case 'p':
		return starts_with_word(p, "passwd") ||
		    starts_with_word(p, "password") ||
		    starts_with_word(p, "private");
	case 's': return starts_with_word(p, "secret");
	case 't': return starts_with_word(p, "token");
	case 'v': return starts_with_word(p, "value");
	default: return 0;
	}
}

int
tsi_log_key_is_secret(const char *key)
{
	size_t len;

	if (key == NULL)
		return 0;
	len = strlen(key);
	/* Whole-key names first: the exceptions win over the words. */
	switch (len) {
	case 3:
		if (is_word(key, len, "kid"))
			return 0;
		break;
	case 4:
		if (is_word(key, len, "data"))
			return 1;
		break;
	case 6:
		if (is_word(key, len, "key_id"))
			return 0;
		break;
	case 8:
		if (is_word(key, len, "accessor"))
			return 0;
		break;
	case 9:
		if (is_word(key, len, "token_ttl"))
			return 0;
		break;
	case 14:
		if (is_word(key, len, "token_accessor") ||
		    is_word(key, len, "token_policies"))
			return 0;
		break;
	default: break;
	}
	for (; *key != '\0'; key++)
		if (secret_word_at(key))
			return 1;
	return 0;
}

/* Appends to line at *off; on overflow marks the line truncated. */
struct line {
	char buf[LINE_MAX_BYTES];
	size_t off;
	int truncated;
};

static void
put_raw(struct line *l, const char *s, size_t n)
{
	/* Keep room for the closing "}\n". */
	if (l->truncated || LINE_MAX_BYTES - 3 - l->off < n) {
		l->truncated = 1;
		return;
	}
	memcpy(l->buf + l->off, s, n);
	l->off += n;
}

static void
put_str(struct line *l, const char *s)
{
	put_raw(l, s, strlen(s));
}

/* Appends s as a JSON string; runs of bytes that need no escaping are
 * copied at once. */
static void
put_json_string(struct line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p, *run;
	char esc[6];

	put_raw(l, "\"", 1);
	p = run = (const unsigned char *)(s ? s : "");
	for (; *p != '\0'; p++) {
		if (*p != '"' && *p != '\\' && *p >= 0x20 && *p != 0x7f)
			continue;
		put_raw(l, (const char *)run, (size_t)(p - run));
		run = p + 1;
		esc[0] = '\\';
		if (*p == '"' || *p == '\\') {
			esc[1] = (char)*p;
			put_raw(l, esc, 2);
		} else {
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			put_raw(l, esc, 6);
		}
	}
	put_raw(l, (const char *)run, (size_t)(p - run));
	put_raw(l, "\"", 1);
}

/* Appends v in decimal (no printf: this runs for every number logged). */
static void
put_int(struct line *l, long long v)
{
	char digits[24];
	size_t n = sizeof(digits);
	unsigned long long u;

	u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do {
		digits[--n] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		digits[--n] = '-';
	put_raw(l, digits + n, sizeof(digits) - n);
}

/* Writes v as exactly width decimal digits (v < 10^width) at p. */
static void
fixed_digits(char *p, unsigned int v, int width)
{
	while (width-- > 0) {
		p[width] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of ts (UTC) into buf[25]; "" when the year
 * does not have four digits. */
static void
format_ts(const struct timespec *ts, char buf[25])
{
	struct tm tm;

	if (gmtime_r(&ts->tv_sec, &tm) == NULL || tm.tm_year + 1900 < 0 ||
	    tm.tm_year + 1900 > 9999) {
		buf[0] = '\0';
		return;
	}
	fixed_digits(buf, (unsigned int)(tm.tm_year + 1900), 4);
	buf[4] = '-';
	fixed_digits(buf + 5, (unsigned int)(tm.tm_mon + 1), 2);
	buf[7] = '-';
	fixed_digits(buf + 8, (unsigned int)tm.tm_mday, 2);
	buf[10] = 'T';
	fixed_digits(buf + 11, (unsigned int)tm.tm_hour, 2);
	buf[13] = ':';
	fixed_digits(buf + 14, (unsigned int)tm.tm_min, 2);
	buf[16] = ':';
	fixed_digits(buf + 17, (unsigned int)tm.tm_sec, 2);
	buf[19] = '.';
	fixed_digits(buf + 20, (unsigned int)(ts->tv_nsec / 1000000), 3);
	buf[23] = 'Z';
	buf[24] = '\0';
}

static const char *
level_name(enum tsi_log_level level)
{
	switch (level) {
	case TSI_LOG_DEBUG: return "debug";
	case TSI_LOG_INFO: return "info";
	case TSI_LOG_WARN: return "warn";
	case TSI_LOG_ERROR: return "error";
	}
	return "info";
}

void
tsi_log_fields(enum tsi_log_level level, const char *event,
    const struct tsi_log_field *fields, size_t n)
{
	struct line l;
	struct timespec ts;
	char tbuf[25];
	size_t i;
	ssize_t w;
	size_t done, last_ok;

	if (level < log_min)
		return;
	l.off = 0;
	l.truncated = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	format_ts(&ts, tbuf);
	put_str(&l, "{\"ts\":");
	put_json_string(&l, tbuf);
	put_str(&l, ",\"level\":");
	put_json_string(&l, level_name(level));
	put_str(&l, ",\"prog\":");
	put_json_string(&l, log_prog);
	put_str(&l, ",\"event\":");
	put_json_string(&l, event);
	last_ok = l.off;
	for (i = 0; i < n && !l.truncated; i++) {
		const struct tsi_log_field *f = &fields[i];
		if (f->key == NULL || f->type == TSI_LOG_T_NONE)
			continue;
		put_str(&l, ",");
		put_json_string(&l, f->key);
		put_str(&l, ":");
		if (tsi_log_key_is_secret(f->key)) {
			put_json_string(&l, "[redacted]");
		} else if (f->type == TSI_LOG_T_INT) {
			put_int(&l, f->i);
		} else if (f->s == NULL) {
			put_str(&l, "null");
		} else {
			put_json_string(&l, f->s);
		}
		if (!l.truncated)
			last_ok = l.off;
	}
	if (l.truncated) {
		/* Never emit a broken line: close what we have and flag it. */
		l.truncated = 0;
		l.off = last_ok;
		if (l.off >
		    LINE_MAX_BYTES - 32) /* the event name itself was huge */
			l.off = 0;
		if (l.off == 0)
			put_str(&l, "{\"event\":\"log.line_too_long\"");
		put_str(&l, ",\"truncated\":true");
	}
	put_str(&l, "}\n");

	if (l.off <= PIPE_BUF)
		pthread_rwlock_rdlock(&log_mu);
	else
		pthread_rwlock_wrlock(&log_mu);
	for (done = 0; done < l.off; done += (size_t)w) {
		w = write(log_fd, l.buf + done, l.off - done);
		if (w <= 0)
			break;
	}
	pthread_rwlock_unlock(&log_mu);
}

static int
openssl_cb(const char *str, size_t len, void *u)
{
	struct line *l = u;

	if (l->off > 0)
		put_raw(l, "; ", 2);
	while (len > 0 && (str[len - 1] == '\n'))
		len--;
	put_raw(l, str, len);
	return 1;
}

void
tsi_log_openssl(enum tsi_log_level level, const char *event)
{
	struct line l;

	l.off = 0;
	l.truncated = 0;
	ERR_print_errors_cb(openssl_cb, &l);
	l.buf[l.off < sizeof(l.buf) ? l.off : sizeof(l.buf) - 1] = '\0';
	tsi_log(level, event, TSI_LS("openssl", l.off ? l.buf : "no detail"));
}
