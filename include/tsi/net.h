/*
 * net.h - the listening side of tsi's servers: one rule for a listen
 * address ("HOST:PORT", "[IPV6]:PORT") and one way to bind it.
 *
 * HOST is a numeric IPv4 or IPv6 address, or empty for every IPv4
 * address (":8200"); no names are resolved, so what is bound is what the
 * configuration says. PORT is 0 to 65535, decimal digits only; 0 asks
 * the kernel for a free port (tests read it back from the server).
 */
#ifndef TSI_NET_H
#define TSI_NET_H

#include <stddef.h>
#include <sys/socket.h>

/* Parses s into *ss / *len. TSI_OK, or TSI_ERR_PARSE (s NULL included). */
int tsi_net_parse_listen(const char *s, struct sockaddr_storage *ss,
    socklen_t *len);

/* 1 when s is a loopback address (127.0.0.0/8, ::1), 0 when not, -1 when
 * it does not parse. */
int tsi_net_listen_is_loopback(const char *s);

/*
 * A listening TCP socket on s (non-blocking, close-on-exec; IPv6 sockets
 * IPv6 only), backlog 1024. SO_REUSEADDR only, never SO_REUSEPORT: a
 * second server on the same address fails here, with the reason, instead
 * of sharing the port and taking half of the first one's requests.
 * *fd: caller closes (or hands it to the HTTP server). On failure err
 * holds a one-line reason: TSI_ERR_CONFIG (s does not parse) or TSI_ERR_IO.
 */
int tsi_net_listen(const char *s, int *fd, char *err, size_t errlen);

#endif /* TSI_NET_H */
