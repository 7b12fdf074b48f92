/*
 * test_log_keys.c - which log keys are redacted (tsi_log_key_is_secret), and
 * the line format around them (escapes, numbers, the timestamp).
 *
 * The key scan is checked class by class, and against a reference: the plain
 * strcasecmp/strcasestr scan it replaced, over every combination of up to
 * three fragments of the secret names and random byte strings.
 */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "tsi/log.h"
#include "log_capture.h"

/* The definition before the one-pass scan, kept as the oracle. */
static int
reference_is_secret(const char *key)
{
	static const char *const words[] = { "token", "jwt", "secret",
		"password", "passwd", "key", "value", "authorization", "cookie",
		"credential", "private" };
	size_t i;

	if (key == NULL)
		return 0;
	if (strcasecmp(key, "kid") == 0 || strcasecmp(key, "accessor") == 0 ||
	    strcasecmp(key, "token_accessor") == 0 ||
	    strcasecmp(key, "key_id") == 0 ||
	    strcasecmp(key, "token_ttl") == 0 ||
	    strcasecmp(key, "token_policies") == 0)
		return 0;
	if (strcasecmp(key, "data") == 0)
		return 1;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasestr(key, words[i]) != NULL)
			return 1;
	return 0;
}

static void
expect_keys(const char *const *keys, size_t n, int secret)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (tsi_log_key_is_secret(keys[i]) != secret)
			fail_msg("key \"%s\": expected %s", keys[i],
			    secret ? "secret" : "not secret");
	}
}
#define EXPECT(secret, ...) \
	do { \
		static const char *const k_[] = { __VA_ARGS__ }; \
		expect_keys(k_, sizeof(k_) / sizeof(k_[0]), (secret)); \
	} while (0)

/* Identifiers of secrets: never redacted, whole key only, any case. */
static void
test_exceptions(void **state)
{
	(void)state;
	EXPECT(0, "kid", "KID", "Kid", "accessor", "ACCESSOR", "token_accessor",
	    "Token_Accessor", "key_id", "KEY_ID", "token_ttl", "TOKEN_TTL",
	    "token_policies", "Token_Policies");
	/* Not whole keys: the words inside them decide. */
	EXPECT(1, "kid_key", "my_token_ttl", "token_ttl_secret", "key_id2",
	    "token_accessor_x", "xtoken_policies", "token-ttl", "token ttl");
	EXPECT(0, "kids", "accessors", "kid_id", "akid");
}

/* "data" is secret only as the whole key. */
static void
test_data_exact(void **state)
{
	(void)state;
	EXPECT(1, "data", "DATA", "Data", "dAtA");
	EXPECT(0, "database", "metadata", "data_path", "dat", "ata", "data_");
}

/* Each word, alone, in any case, and at the start, end and middle. */
static void
test_words_anywhere(void **state)
{
	(void)state;
	EXPECT(1, "token", "TOKEN", "ToKeN", "client_token", "x-vault-token",
	    "tokens", "tokenizer");
	EXPECT(1, "jwt", "JWT", "login_jwt", "jwt_b64", "myJwtX");
	EXPECT(1, "secret", "SECRET", "client_secret", "secretive",
	    "x_Secret_y");
	EXPECT(1, "password", "PASSWORD", "db_password", "password2");
	EXPECT(1, "passwd", "PassWd", "old_passwd_hash");
	EXPECT(1, "key", "KEY", "api_key", "keys", "monkey", "keyring",
	    "xKeYx");
	EXPECT(1, "value", "VALUE", "secret_value", "values", "xvaluex");
	EXPECT(1, "authorization", "Authorization", "proxy-authorization",
	    "AUTHORIZATIONS");
	EXPECT(1, "cookie", "Cookie", "set-cookie", "cookies");
	EXPECT(1, "credential", "Credentials", "aws_credential_file");
	EXPECT(1, "private", "PRIVATE", "private_key", "is_private");
}

/* Near misses and ordinary keys stay readable. */
static void
test_near_misses(void **state)
{
	(void)state;
	EXPECT(0, "", "pid", "uid", "aud", "namespace", "pod", "exe", "exp",
	    "path", "version", "reason", "error", "tok", "toke", "tken", "jw",
	    "jtw", "secre", "pass", "passw", "passwor", "ke", "k_ey", "valu",
	    "authorisation", "authorizatio", "cooki", "credentia", "privat",
	    "t0ken", "k\xc3\xa9y", "v\x01alue");
	assert_int_equal(tsi_log_key_is_secret(NULL), 0);
}

static const char *const fragments[] = {
	"",
	"token",
	"TOKEN",
	"tok",
	"en",
	"jwt",
	"jw",
	"t",
	"secret",
	"secre",
	"password",
	"passwd",
	"pass",
	"wd",
	"key",
	"ke",
	"y",
	"K",
	"value",
	"valu",
	"authorization",
	"cookie",
	"credential",
	"private",
	"priv",
	"data",
	"DATA",
	"kid",
	"accessor",
	"token_accessor",
	"key_id",
	"token_ttl",
	"token_policies",
	"_",
	"-",
	"x",
	"id",
	"ttl",
	"\xff",
};

/* Every concatenation of three fragments, and random strings. */
static void
test_same_as_reference(void **state)
{
	const size_t nf = sizeof(fragments) / sizeof(fragments[0]);
	char key[128];
	size_t a, b, c, checked = 0;
	unsigned int seed = 12345;
	int i, j, len;

	(void)state;
	for (a = 0; a < nf; a++)
		for (b = 0; b < nf; b++)
			for (c = 0; c < nf; c++) {
				len = snprintf(key, sizeof(key), "%s%s%s",
				    fragments[a], fragments[b], fragments[c]);
				assert_true(
				    len >= 0 && (size_t)len < sizeof(key));
				if (tsi_log_key_is_secret(key) !=
				    reference_is_secret(key))
					fail_msg("key \"%s\" differs from the "
					         "reference",
					    key);
				checked++;
			}
	/* Random keys over letters of the words, '_' and any byte. */
	for (i = 0; i < 200000; i++) {
		static const char alpha[] = "tokenjwsecrpadvyuhizlKTOJ_-";

		len = (int)(rand_r(&seed) % 20);
		for (j = 0; j < len; j++) {
			unsigned int r = (unsigned int)rand_r(&seed);

			key[j] = (r & 0x700) ? alpha[r % (sizeof(alpha) - 1)]
			                     : (char)(1 + r % 255);
		}
		key[len] = '\0';
		if (tsi_log_key_is_secret(key) != reference_is_secret(key))
			fail_msg("random key %d differs from the reference", i);
		checked++;
	}
	assert_true(checked > 200000);
}

/* --- the line around the keys ---------------------------------------------- */

static char line[16384];

static json_t *
capture(void (*fn)(void))
{
	return log_capture(fn, line, sizeof(line));
}

static void
emit_mixed(void)
{
	tsi_log(TSI_LOG_INFO, "ev", TSI_LS("Authorization", "Bearer x"),
	    TSI_LS("token_ttl", "300"), TSI_LS("kid", "k-1"),
	    TSI_LS("set-cookie", "c=1"), TSI_LI("api_key", 42),
	    TSI_LS("ctl",
	        "a\x01"
	        "b\x7f"
	        "c\"d\\e\n"),
	    TSI_LI("neg", -7), TSI_LI("min", LLONG_MIN),
	    TSI_LI("max", LLONG_MAX), TSI_LI("zero", 0), TSI_LS("empty", ""),
	    TSI_LS("nul", NULL));
}

static void
test_line_fields(void **state)
{
	json_t *j;
	regex_t re;
	const char *ts;

	(void)state;
	tsi_log_init("test", TSI_LOG_DEBUG);
	j = capture(emit_mixed);
	assert_string_equal(json_string_value(
	                        json_object_get(j, "Authorization")),
	    "[redacted]");
	assert_string_equal(json_string_value(json_object_get(j, "set-cookie")),
	    "[redacted]");
	assert_string_equal(json_string_value(json_object_get(j, "api_key")),
	    "[redacted]");
	assert_string_equal(json_string_value(json_object_get(j, "token_ttl")),
	    "300");
	assert_string_equal(json_string_value(json_object_get(j, "kid")),
	    "k-1");
	assert_string_equal(json_string_value(json_object_get(j, "ctl")),
	    "a\x01"
	    "b\x7f"
	    "c\"d\\e\n");
	assert_non_null(strstr(line, "\"a\\u0001b\\u007fc\\\"d\\\\e\\u000a\""));
	assert_int_equal(json_integer_value(json_object_get(j, "neg")), -7);
	assert_int_equal(json_integer_value(json_object_get(j, "min")),
	    LLONG_MIN);
	assert_int_equal(json_integer_value(json_object_get(j, "max")),
	    LLONG_MAX);
	assert_non_null(strstr(line, "\"zero\":0,"));
	assert_string_equal(json_string_value(json_object_get(j, "empty")), "");
	assert_true(json_is_null(json_object_get(j, "nul")));
	ts = json_string_value(json_object_get(j, "ts"));
	assert_non_null(ts);
	assert_int_equal(regcomp(&re,
	                     "^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T"
	                     "[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\.[0-9]{3}Z$",
	                     REG_EXTENDED),
	    0);
	assert_int_equal(regexec(&re, ts, 0, NULL, 0), 0);
	regfree(&re);
	json_decref(j);
}

/* --- lines from many threads never interleave --------------------------- */

#define SHORT_THREADS 4
#define SHORT_LINES 300
#define LONG_LINES 30

static void *
log_short(void *arg)
{
	int i;

	for (i = 0; i < SHORT_LINES; i++)
		tsi_log(TSI_LOG_INFO, "short",
		    TSI_LI("thread", (long)(intptr_t)arg), TSI_LI("i", i),
		    TSI_LS("path", "secret/data/x"));
	return NULL;
}

static void *
log_long(void *arg)
{
	static char big[6000]; /* more than PIPE_BUF: written in parts */
	int i;

	(void)arg;
	memset(big, 'L', sizeof(big) - 1);
	for (i = 0; i < LONG_LINES; i++)
		tsi_log(TSI_LOG_INFO, "long", TSI_LI("i", i),
		    TSI_LS("big", big));
	return NULL;
}

struct drain {
	int fd;
	char *buf;
	size_t len, cap;
};

static void *
drain_pipe(void *arg)
{
	struct drain *d = arg;
	ssize_t n;

	/* A slow reader: the pipe fills, so a long line's write waits half
	 * done, which is when another thread's line could get in between. */
	while (d->cap - d->len > 1024 &&
	    (n = read(d->fd, d->buf + d->len, 1024)) > 0) {
		d->len += (size_t)n;
		usleep(20);
	}
	d->buf[d->len] = '\0';
	return NULL;
}

static void
test_lines_never_interleave(void **state)
{
	pthread_t w[SHORT_THREADS + 1], r;
	struct drain d;
	int p[2], i, shorts = 0, longs = 0;
	char *line_p, *save = NULL;

	(void)state;
	tsi_log_init("test", TSI_LOG_DEBUG);
	assert_int_equal(pipe(p), 0);
	d.fd = p[0];
	d.len = 0;
	d.cap = 4 * 1024 * 1024;
	assert_non_null(d.buf = malloc(d.cap));
	assert_int_equal(pthread_create(&r, NULL, drain_pipe, &d), 0);
	tsi_log_set_fd(p[1]);
	assert_int_equal(pthread_create(&w[0], NULL, log_long, NULL), 0);
	for (i = 1; i <= SHORT_THREADS; i++)
		assert_int_equal(pthread_create(&w[i], NULL, log_short,
		                     (void *)(intptr_t)i),
		    0);
	for (i = 0; i <= SHORT_THREADS; i++)
		pthread_join(w[i], NULL);
	tsi_log_set_fd(2);
	close(p[1]);
	pthread_join(r, NULL);
	close(p[0]);
	assert_true(d.len > 0 && d.buf[d.len - 1] == '\n');
	/* Every line is one whole JSON object. */
	for (line_p = d.buf; *line_p != '\0'; line_p = save) {
		char *nl = strchr(line_p, '\n');
		json_t *j;
		const char *ev;

		assert_non_null(nl);
		*nl = '\0';
		save = nl + 1;
		if ((j = json_loads(line_p, 0, NULL)) == NULL)
			fail_msg("not one JSON line: %.80s", line_p);
		ev = json_string_value(json_object_get(j, "event"));
		assert_non_null(ev);
		if (strcmp(ev, "short") == 0)
			shorts++;
		else if (strcmp(ev, "long") == 0) {
			assert_int_equal(strlen(json_string_value(
			                     json_object_get(j, "big"))),
			    5999);
			longs++;
		}
		json_decref(j);
	}
	assert_int_equal(shorts, SHORT_THREADS * SHORT_LINES);
	assert_int_equal(longs, LONG_LINES);
	free(d.buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exceptions),
		cmocka_unit_test(test_data_exact),
		cmocka_unit_test(test_words_anywhere),
		cmocka_unit_test(test_near_misses),
		cmocka_unit_test(test_same_as_reference),
		cmocka_unit_test(test_line_fields),
		cmocka_unit_test(test_lines_never_interleave),
	};

	unsetenv("TSI_LOG_LEVEL");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
