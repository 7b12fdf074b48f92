/*
 * log.h - JSON-lines logging on stderr.
 *
 * One line per event: {"ts":"...","level":"info","prog":"tsi-vault","event":"kv.read",...}.
 * Fields are typed key/value pairs. Values of keys that name secrets (token,
 * jwt, secret, password, key, value, data, client_token, authorization, ...)
 * are replaced by "[redacted]" whatever the caller passes: a safety net, not a
 * licence to pass secrets. Thread-safe; each line is one write(2).
 *
 *   tsi_log(TSI_LOG_INFO, "token.issued", TSI_LS("sub", sub), TSI_LI("ttl", 300));
 */
#ifndef TSI_LOG_H
#define TSI_LOG_H

#include <stddef.h>

enum tsi_log_level {
	TSI_LOG_DEBUG = 0,
	TSI_LOG_INFO = 1,
	TSI_LOG_WARN = 2,
	TSI_LOG_ERROR = 3,
};

enum tsi_log_type {
	TSI_LOG_T_NONE = 0,
	TSI_LOG_T_STR,
	TSI_LOG_T_INT
};

struct tsi_log_field {
	const char *key;
	enum tsi_log_type type;
	const char *s;
	long long i;
};

#define TSI_LS(k, v) ((struct tsi_log_field){ (k), TSI_LOG_T_STR, (v), 0 })
#define TSI_LI(k, v) \
	((struct tsi_log_field){ (k), TSI_LOG_T_INT, NULL, (long long)(v) })

/* Set the program name shown in every line (borrowed: must outlive logging)
 * and the minimum level. TSI_LOG_LEVEL=debug|info|warn|error overrides. */
void tsi_log_init(const char *prog, enum tsi_log_level min_level);

/* Redirect output to fd (default 2). For tests. */
void tsi_log_set_fd(int fd);

/* Write one line. fields may be NULL when n is 0. */
void tsi_log_fields(enum tsi_log_level level, const char *event,
    const struct tsi_log_field *fields, size_t n);

/* Write one line with the OpenSSL error queue (drained) as field "openssl". */
void tsi_log_openssl(enum tsi_log_level level, const char *event);

/* Nonzero when key names a secret and its value would be redacted. */
int tsi_log_key_is_secret(const char *key);

#define tsi_log(level, event, ...) \
	do { \
		const struct tsi_log_field tsi_f_[] = { \
			{ NULL, TSI_LOG_T_NONE, NULL, 0 }, __VA_ARGS__ \
		}; \
		tsi_log_fields((level), (event), tsi_f_ + 1, \
		    sizeof(tsi_f_) / sizeof(tsi_f_[0]) - 1); \
	} while (0)

#endif /* TSI_LOG_H */
