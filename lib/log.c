#include "tsi/log.h"

#include <openssl/err.h>
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
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

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

int
tsi_log_key_is_secret(const char *key)
{
	/* Substrings: "client_token" and "x-vault-token" contain "token". */
	static const char *const words[] = { "token", "jwt", "secret",
		"password", "passwd", "key", "value", "authorization", "cookie",
		"credential", "private" };
	static const char *const exact[] = { "data" };
	size_t i;

	if (key == NULL)
		return 0;
	/* Identifiers of secrets are not secrets. */
	if (strcasecmp(key, "kid") == 0 || strcasecmp(key, "accessor") == 0 ||
	    strcasecmp(key, "token_accessor") == 0 || strcasecmp(key, "key_id") == 0 ||
	    strcasecmp(key, "token_ttl") == 0 || strcasecmp(key, "token_policies") == 0)
		return 0;
	for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcasecmp(key, exact[i]) == 0)
			return 1;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasestr(key, words[i]) != NULL)
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

static void
put_json_string(struct line *l, const char *s)
{
	char esc[8];
	const unsigned char *p;

	put_raw(l, "\"", 1);
	for (p = (const unsigned char *)(s ? s : ""); *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put_raw(l, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			int n = snprintf(esc, sizeof(esc), "\\u%04x", *p);
			if (n > 0 && (size_t)n < sizeof(esc))
				put_raw(l, esc, (size_t)n);
		} else {
			put_raw(l, (const char *)p, 1);
		}
	}
	put_raw(l, "\"", 1);
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
	struct tm tm;
	char tbuf[64], num[32];
	size_t i;
	int k;
	ssize_t w;
	size_t done, last_ok;

	if (level < log_min)
		return;
	l.off = 0;
	l.truncated = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	k = snprintf(tbuf, sizeof(tbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec / 1000000);
	if (k < 0 || (size_t)k >= sizeof(tbuf))
		tbuf[0] = '\0';
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
			k = snprintf(num, sizeof(num), "%lld", f->i);
			if (k > 0 && (size_t)k < sizeof(num))
				put_raw(&l, num, (size_t)k);
			else
				put_str(&l, "0");
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
		if (l.off > LINE_MAX_BYTES - 32) /* the event name itself was huge */
			l.off = 0;
		if (l.off == 0)
			put_str(&l, "{\"event\":\"log.line_too_long\"");
		put_str(&l, ",\"truncated\":true");
	}
	put_str(&l, "}\n");

	pthread_mutex_lock(&log_mu);
	for (done = 0; done < l.off; done += (size_t)w) {
		w = write(log_fd, l.buf + done, l.off - done);
		if (w <= 0)
			break;
	}
	pthread_mutex_unlock(&log_mu);
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
