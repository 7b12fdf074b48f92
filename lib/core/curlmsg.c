/*
 * curlmsg.c - a failed libcurl transfer in words that name the fix.
 *
 * Which side spoke TLS is read from the URL's scheme: an https:// request
 * that fails in the handshake with OpenSSL's "wrong version number" (or
 * "packet length too long", "record layer failure": the reply was not a
 * TLS record) reached a plain HTTP server; an http:// request that gets
 * nothing, or bytes that are not HTTP, most likely reached a TLS server
 * (which closes the connection or answers with a TLS alert).
 */
#include "tsi/curlmsg.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int
has_scheme(const char *url, const char *scheme)
{
	size_t n = strlen(scheme);

	return url != NULL && strncasecmp(url, scheme, n) == 0 &&
	    strncmp(url + n, "://", 3) == 0;
}

static int
contains(const char *s, const char *needle)
{
	return s != NULL && strstr(s, needle) != NULL;
}

/* The handshake of an https:// request read something that is not TLS. */
static int
not_tls_reply(const char *detail)
{
	return contains(detail, "wrong version number") ||
	    contains(detail, "packet length too long") ||
	    contains(detail, "record layer failure") ||
	    contains(detail, "unknown protocol");
}

/* The peer closed the connection before the TLS handshake could finish. */
static int
closed_in_handshake(const char *detail)
{
	return contains(detail, "unexpected eof") ||
	    contains(detail, "Connection reset") ||
	    contains(detail, "SSL_ERROR_SYSCALL");
}

const char *
tsi_curl_explain(int cc, const char *detail, const char *url,
    const char *ca_var, char *out, size_t outlen)
{
	const char *why = detail != NULL && *detail != '\0'
	    ? detail
	    : curl_easy_strerror((CURLcode)cc);
	const char *var = ca_var != NULL ? ca_var : "the CA file setting";
	int n;

	if (outlen == 0)
		return out;
	switch (cc) {
	case CURLE_PEER_FAILED_VERIFICATION:
		n = snprintf(out, outlen,
		    "the server's TLS certificate could "
		    "not be verified (%s): set %s to the file of the CA that "
		    "issued it",
		    why, var);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		n = snprintf(out, outlen,
		    "the CA file cannot be used (%s): set "
		    "%s to a readable PEM file of the CA",
		    why, var);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		if (has_scheme(url, "https") && not_tls_reply(why))
			n = snprintf(out, outlen,
			    "HTTPS request to an HTTP "
			    "server: the server does not speak TLS; use an "
			    "http:// address or enable TLS on the server");
		else if (has_scheme(url, "https") && closed_in_handshake(why))
			/* A plain server may drop the connection on the
			 * ClientHello before OpenSSL reads any answer. */
			n = snprintf(out, outlen,
			    "HTTPS request to an HTTP "
			    "server? the connection closed during the TLS "
			    "handshake (%s); use an http:// address, or check "
			    "the address and %s",
			    why, var);
		else
			n = snprintf(out, outlen,
			    "TLS handshake failed (%s); "
			    "check the address and %s",
			    why, var);
		break;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
		if (has_scheme(url, "http")) {
			n = snprintf(out, outlen,
			    "HTTP request to an HTTPS "
			    "server? the server gave no HTTP answer (%s); use "
			    "an https:// address and set %s to the CA file",
			    why, var);
			break;
		}
		/* FALLTHROUGH */
	default: n = snprintf(out, outlen, "%s", why); break;
	}
	if (n < 0)
		out[0] = '\0';
	return out;
}
