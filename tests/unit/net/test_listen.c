/*
 * Listen addresses (lib/net/listen.c): one rule for tsi-vault and
 * tsi-attest and tsi-injector, which each had a parser of their own that
 * disagreed (an empty host, port 0, a sign or blanks before the port,
 * host lengths).
 * The table holds the addresses both programs' configurations, defaults
 * and tests use, and the cases where the copies differed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tsi/err.h"
#include "tsi/net.h"

struct listen_case {
	const char *in;
	int family; /* 0: refused */
	unsigned port;
	int loopback; /* tsi_net_listen_is_loopback */
};

static const struct listen_case cases[] = {
	/* defaults and test addresses of tsi-vault, tsi-attest, tsi-injector
	 * and the chart */
	{ "127.0.0.1:8200", AF_INET, 8200, 1 },
	{ "127.0.0.1:8300", AF_INET, 8300, 1 },
	{ "0.0.0.0:8200", AF_INET, 8200, 0 },
	{ "0.0.0.0:1", AF_INET, 1, 0 },
	{ "0.0.0.0:8443", AF_INET, 8443, 0 },
	{ "127.0.0.1:1", AF_INET, 1, 1 },
	{ "127.0.0.1:65535", AF_INET, 65535, 1 },
	{ "127.5.6.7:42000", AF_INET, 42000, 1 },
	{ "10.0.0.1:443", AF_INET, 443, 0 },
	{ "[::1]:8200", AF_INET6, 8200, 1 },
	{ "[::]:8200", AF_INET6, 8200, 0 },
	{ "[fe80::1]:8443", AF_INET6, 8443, 0 },
	{ "::1:8200", AF_INET6, 8200, 1 }, /* last colon is the port's */
	/* tsi-vault took an empty host as every IPv4 address (tsi-attest and
	 * tsi-injector did not); kept */
	{ ":8200", AF_INET, 8200, 0 },
	/* port 0 (the kernel picks): tsi-vault and tsi-injector took it */
	{ "127.0.0.1:0", AF_INET, 0, 1 },
	/* refused by one copy or another, now by the rule */
	{ "127.0.0.1:+80", 0, 0, -1 }, /* strtol/strtoul took a sign */
	{ "127.0.0.1: 80", 0, 0, -1 }, /* ... and blanks */
	{ "127.0.0.1:-0", 0, 0, -1 },
	{ "127.0.0.1:080000", 0, 0, -1 },
	{ "127.0.0.1:65536", 0, 0, -1 },
	{ "127.0.0.1:", 0, 0, -1 },
	{ "[::1]:", 0, 0, -1 },
	{ "[]:80", 0, 0, -1 },
	{ "[::1]80", 0, 0, -1 },
	{ "[::1:80", 0, 0, -1 },
	{ "localhost:8200", 0, 0, -1 }, /* names are not resolved */
	{ "127.0.0.1", 0, 0, -1 },
	{ "8200", 0, 0, -1 },
	{ "", 0, 0, -1 },
	{ "1234567890123456789012345678901234567890123456789012345678901234"
	  "5:80",
	    0, 0, -1 },
};

static void
test_rule(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct listen_case *c = &cases[i];
		int r = tsi_net_parse_listen(c->in, &ss, &len);

		if ((r == TSI_OK) != (c->family != 0) ||
		    (r == TSI_OK && ss.ss_family != c->family))
			print_message("case '%s': %d family %d\n", c->in, r,
			    (int)ss.ss_family);
		assert_int_equal(tsi_net_listen_is_loopback(c->in),
		    c->loopback);
		if (c->family == 0) {
			assert_int_equal(r, TSI_ERR_PARSE);
			continue;
		}
		assert_int_equal(r, TSI_OK);
		assert_int_equal(ss.ss_family, c->family);
		if (c->family == AF_INET) {
			assert_int_equal(len, sizeof(struct sockaddr_in));
			assert_int_equal(ntohs(((struct sockaddr_in *)&ss)
			                           ->sin_port),
			    c->port);
		} else {
			assert_int_equal(len, sizeof(struct sockaddr_in6));
			assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)
			                           ->sin6_port),
			    c->port);
		}
	}
	assert_int_equal(tsi_net_parse_listen(NULL, &ss, &len), TSI_ERR_PARSE);
	assert_int_equal(tsi_net_listen_is_loopback(NULL), -1);
}

/* A second listener on a bound address fails with the reason; the first
 * was not made with SO_REUSEPORT, which would have let it share. */
static void
test_second_listener_refused(void **state)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	char addr[64], err[256] = "";
	int fd1 = -1, fd2 = -1, i;

	(void)state;
	/* A free port: the kernel picks one, it is released and listened on
	 * again (retried when another test took it meanwhile). */
	for (i = 0; i < 20 && fd1 < 0; i++) {
		int probe = socket(AF_INET, SOCK_STREAM, 0);

		assert_true(probe >= 0);
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(bind(probe, (struct sockaddr *)&a, sizeof(a)),
		    0);
		assert_int_equal(getsockname(probe, (struct sockaddr *)&a,
		                     &alen),
		    0);
		close(probe);
		snprintf(addr, sizeof(addr), "127.0.0.1:%u",
		    (unsigned)ntohs(a.sin_port));
		if (tsi_net_listen(addr, &fd1, err, sizeof(err)) != TSI_OK)
			fd1 = -1;
	}
	assert_true(fd1 >= 0);
	assert_int_equal(tsi_net_listen(addr, &fd2, err, sizeof(err)),
	    TSI_ERR_IO);
	assert_non_null(strstr(err, "address in use"));
	close(fd1);
	assert_int_equal(tsi_net_listen("localhost:1", &fd2, err, sizeof(err)),
	    TSI_ERR_CONFIG);
	assert_non_null(strstr(err, "cannot parse"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule),
		cmocka_unit_test(test_second_listener_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
