/*
 * listen.c - listen addresses and listening sockets for tsi's HTTP servers
 * (tsi-attest; tsi-vault's copy of the same code is to call this too).
 * The rule is in tsi/net.h.
 */
#include "tsi/net.h"
#include "tsi/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HOST_MAX 64 /* longer than any numeric IPv6 address */

/* PORT: 1 to 5 decimal digits, 0..65535. strtoul would take leading
 * blanks, a sign and an empty string. */
static int
parse_port(const char *s, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i == 5)
			return TSI_ERR_PARSE;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (i == 0 || v > 65535)
		return TSI_ERR_PARSE;
	*out = v;
	return TSI_OK;
}

int
tsi_net_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	char host[HOST_MAX];
	const char *h, *colon;
	unsigned port;
	size_t hl;

	if (s == NULL || ss == NULL || len == NULL)
		return TSI_ERR_PARSE;
	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':' || rb == s + 1)
			return TSI_ERR_PARSE; /* "[]:p" is no address */
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return TSI_ERR_PARSE;
		h = s;
		hl = (size_t)(colon - s);
	}
	if (hl >= sizeof(host) || parse_port(colon + 1, &port) != TSI_OK)
		return TSI_ERR_PARSE;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (hl == 0) {
		a4->sin_family = AF_INET;
		a4->sin_addr.s_addr = htonl(INADDR_ANY);
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		return TSI_OK;
	}
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		return TSI_OK;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return TSI_OK;
	}
	memset(ss, 0, sizeof(*ss));
	return TSI_ERR_PARSE;
}

int
tsi_net_listen_is_loopback(const char *s)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (tsi_net_parse_listen(s, &ss, &len) != TSI_OK)
		return -1;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >>
		           24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
}

int
tsi_net_listen(const char *s, int *fd, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int r = TSI_ERR_IO, sock = -1, one = 1;

	if (tsi_net_parse_listen(s, &ss, &sslen) != TSI_OK) {
		tsi_errf(err, errlen,
		    "listen: cannot parse address '%s' "
		    "(expected ADDRESS:PORT)",
		    s != NULL ? s : "");
		return TSI_ERR_CONFIG;
	}
	if ((sock = socket(ss.ss_family,
	         SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
		tsi_errf(err, errlen, "listen %s: socket: %s", s,
		    strerror(errno));
		goto out;
	}
	if (ss.ss_family == AF_INET6 &&
	    setsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) !=
	        0) {
		tsi_errf(err, errlen, "listen %s: IPV6_V6ONLY: %s", s,
		    strerror(errno));
		goto out;
	}
	if (setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) !=
	        0 ||
	    bind(sock, (struct sockaddr *)&ss, sslen) != 0 ||
	    listen(sock, 1024) != 0) {
		tsi_errf(err, errlen, "listen %s: %s", s,
		    errno == EADDRINUSE
		        ? "address in use (is another server running there?)"
		        : strerror(errno));
		goto out;
	}
	*fd = sock;
	sock = -1; /* transferred */
	r = TSI_OK;
out:
	if (sock >= 0)
		close(sock);
	return r;
}
