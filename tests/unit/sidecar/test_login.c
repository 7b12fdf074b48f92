/*
 * The login answer is untrusted: a hostile or impersonated server must not
 * be able to put a CR/LF (extra headers) or an unbounded value into the
 * X-Vault-Token header of the reads. A fake server on loopback answers
 * tsi_sidecar_login with chosen client tokens.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sidecar/sidecar.h"
#include "tsi/buf.h"
#include "tsi/err.h"

struct fake {
	int lfd;
	int port;
	const char *token; /* the client_token it answers */
	pthread_t t;
};

/* Answers one request (whatever it is) with a login response carrying
 * f->token, then closes. */
static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	char req[8192], body[2048], resp[4096];
	size_t n = 0;
	ssize_t got;
	int fd, bl, rl;

	if ((fd = accept(f->lfd, NULL, NULL)) < 0)
		return NULL;
	/* Reads the head and the JSON body (the login is small). */
	while (n < sizeof(req) - 1) {
		char *h;
		if ((got = read(fd, req + n, sizeof(req) - 1 - n)) <= 0)
			break;
		n += (size_t)got;
		req[n] = '\0';
		if ((h = strstr(req, "\r\n\r\n")) != NULL &&
		    strchr(h, '}') != NULL)
			break;
	}
	bl = snprintf(body, sizeof(body),
	    "{\"auth\":{\"client_token\":\"%s\","
	    "\"accessor\":\"a\",\"policies\":[],\"lease_duration\":300}}",
	    f->token);
	rl = snprintf(resp, sizeof(resp),
	    "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: %d\r\nConnection: close\r\n"
	    "\r\n%s",
	    bl, body);
	if (rl > 0 && write(fd, resp, (size_t)rl) < 0)
		perror("fake server write");
	close(fd);
	return NULL;
}

static void
fake_start(struct fake *f, const char *token)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	f->token = token;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
	f->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&f->t, NULL, fake_main, f), 0);
}

static void
fake_stop(struct fake *f)
{
	pthread_join(f->t, NULL);
	close(f->lfd);
}

/* Logs in against a fake server answering token; returns the result. */
static int
login_with(const char *token, char **out)
{
	struct tsi_sidecar_settings st;
	struct tsi_sidecar_http *h = NULL;
	struct fake f;
	const char *argv[] = { "tsi-sidecar", "--once" };
	char addr[64], err[512] = "";
	volatile sig_atomic_t stop = 0;
	long long lease = 0;
	int r;

	*out = NULL;
	fake_start(&f, token);
	snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", f.port);
	setenv("VAULT_ADDR", addr, 1);
	setenv("TSI_ALLOW_HTTP", "1", 1);
	setenv("TSI_ROLE", "demo", 1);
	setenv("TSI_SECRETS",
	    "[{\"name\":\"a\",\"path\":\"p\",\"dest\":\"a\"}]", 1);
	setenv("TSI_RETRY_MAX", "1", 1);
	assert_int_equal(tsi_sidecar_settings_load(2, (char **)argv, &st, err,
	                     sizeof(err)),
	    TSI_OK);
	assert_int_equal(tsi_sidecar_http_new(&st, &stop, &h), TSI_OK);
	r = tsi_sidecar_login(h, "header.claims.sig", out, &lease, err,
	    sizeof(err));
	if (r != TSI_OK)
		assert_non_null(strstr(err, "client_token"));
	tsi_sidecar_http_free(h);
	tsi_sidecar_settings_clear(&st);
	fake_stop(&f);
	return r;
}

static void
test_good_tokens(void **state)
{
	static const char *const good[] = {
		"hvs.AbCdEf0123456789-_xyz",
		"s.abcdefghijklmnopqrstuvwx",
		"hvb.AAAAAQJ",
		"x",
	};
	char *tok;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(login_with(good[i], &tok), TSI_OK);
		assert_string_equal(tok, good[i]);
		tsi_strfree(tok);
	}
}

static void
test_hostile_tokens(void **state)
{
	char long_tok[TSI_SIDECAR_TOKEN_MAX + 2];
	static const char *const bad[] = {
		"hvs.abc\\r\\nX-Injected: 1", /* JSON escapes: CR LF */
		"hvs.abc\\nHost: evil.example",
		"hvs.abc def",
		"hvs.abc\\u0000def",
		"hvs.abc;x=1",
		"hvs.abc:",
		"hvs.\\u00e9t\\u00e9",
		"hvs.abc\\t",
	};
	char *tok;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(login_with(bad[i], &tok), TSI_ERR_PARSE);
		assert_null(tok);
	}
	/* Bounded length: 256 is fine, 257 is not. */
	memset(long_tok, 'a', sizeof(long_tok));
	long_tok[TSI_SIDECAR_TOKEN_MAX] = '\0';
	assert_int_equal(login_with(long_tok, &tok), TSI_OK);
	tsi_strfree(tok);
	long_tok[TSI_SIDECAR_TOKEN_MAX] = 'a';
	long_tok[TSI_SIDECAR_TOKEN_MAX + 1] = '\0';
	assert_int_equal(login_with(long_tok, &tok), TSI_ERR_PARSE);
	assert_null(tok);
}

static void
test_token_ok(void **state)
{
	(void)state;
	assert_true(tsi_sidecar_token_ok("hvs.abc-_.9"));
	assert_false(tsi_sidecar_token_ok(""));
	assert_false(tsi_sidecar_token_ok("a\r\nb"));
	assert_false(tsi_sidecar_token_ok("a b"));
	assert_false(tsi_sidecar_token_ok("a\x7f"));
	assert_false(tsi_sidecar_token_ok("a\xc3\xa9"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_ok),
		cmocka_unit_test(test_good_tokens),
		cmocka_unit_test(test_hostile_tokens),
	};

	tsi_sidecar_curl_init(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
