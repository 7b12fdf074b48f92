/*
 * b64url.c - strict base64 and base64url for JWS.
 *
 * OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock do the arithmetic; this file only
 * adds the strictness a token verifier needs: one accepted encoding per byte
 * string (no padding in base64url, no whitespace, no non-alphabet bytes, and
 * the unused low bits of the last character must be zero), so that a token
 * cannot be altered without changing its signed text.
 */
#include "tsi/b64url.h"
#include "tsi/buf.h"
#include "tsi/err.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define B64_MAX_IN (64u * 1024 * 1024)

/* Value of a base64 character in the given alphabet (62nd, 63rd chars), or -1. */
static int
b64_val(unsigned char c, char c62, char c63)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (unsigned char)c62)
		return 62;
	if (c == (unsigned char)c63)
		return 63;
	return -1;
}

static int
encode(const void *in, size_t len, int url, char **out)
{
	char *o;
	size_t olen, i;
	int n;

	if ((in == NULL && len > 0) || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if (len > B64_MAX_IN)
		return TSI_ERR_TOO_LARGE;
	olen = (len + 2) / 3 * 4;
	if ((o = malloc(olen + 1)) == NULL)
		return TSI_ERR_ALLOC;
	n = len ? EVP_EncodeBlock((unsigned char *)o, in, (int)len) : 0;
	if (n < 0 || (size_t)n != olen) {
		free(o);
		return TSI_ERR_INTERNAL;
	}
	o[olen] = '\0';
	if (url) {
		for (i = 0; i < olen; i++) {
			if (o[i] == '+')
				o[i] = '-';
			else if (o[i] == '/')
				o[i] = '_';
			else if (o[i] == '=') {
				o[i] = '\0';
				break;
			}
		}
	}
	*out = o;
	return TSI_OK;
}

/*
 * Decodes len characters of in. url: base64url without padding; otherwise
 * standard base64 with mandatory padding.
 */
static int
decode(const char *in, size_t len, int url, unsigned char **out, size_t *outlen)
{
	char *std = NULL;
	unsigned char *o = NULL;
	size_t nchars = len, stdlen, rawlen, i, pad = 0;
	int v, n, ret = TSI_ERR_PARSE;

	if ((in == NULL && len > 0) || out == NULL || outlen == NULL)
		return TSI_ERR_INVALID_ARG;
	if (len > B64_MAX_IN)
		return TSI_ERR_TOO_LARGE;
	if (!url) {
		if (len % 4 != 0)
			return TSI_ERR_PARSE;
		while (pad < 2 && nchars > 0 && in[nchars - 1] == '=') {
			pad++;
			nchars--;
		}
	}
	if (nchars % 4 == 1)
		return TSI_ERR_PARSE;
	for (i = 0; i < nchars; i++)
		if (b64_val((unsigned char)in[i], url ? '-' : '+',
		        url ? '_' : '/') < 0)
			return TSI_ERR_PARSE;
	if (!url && pad != (4 - nchars % 4) % 4)
		return TSI_ERR_PARSE;
	/* Canonical form: the bits below the last full byte must be zero. */
	if (nchars % 4 != 0) {
		v = b64_val((unsigned char)in[nchars - 1], url ? '-' : '+',
		    url ? '_' : '/');
		if ((nchars % 4 == 2 && (v & 0x0f) != 0) ||
		    (nchars % 4 == 3 && (v & 0x03) != 0))
			return TSI_ERR_PARSE;
	}
	rawlen = nchars / 4 * 3 +
	    (nchars % 4 == 2          ? 1
	            : nchars % 4 == 3 ? 2
	                              : 0);
	stdlen = (nchars + 3) / 4 * 4;
	if ((std = malloc(stdlen + 1)) == NULL ||
	    (o = malloc(stdlen / 4 * 3 + 1)) == NULL) {
		ret = TSI_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < nchars; i++)
		std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	for (; i < stdlen; i++)
		std[i] = '=';
	std[stdlen] = '\0';
	n = stdlen ? EVP_DecodeBlock(o, (unsigned char *)std, (int)stdlen) : 0;
	if (n < 0 || (size_t)n != stdlen / 4 * 3)
		goto out;
	o[rawlen] = 0;
	*out = o;
	*outlen = rawlen;
	o = NULL;
	ret = TSI_OK;
out:
	tsi_freezero(std, stdlen + 1);
	if (o != NULL)
		tsi_freezero(o, stdlen / 4 * 3 + 1);
	return ret;
}

int
tsi_b64url_encode(const void *in, size_t len, char **out)
{
	return encode(in, len, 1, out);
}

int
tsi_b64url_decode(const char *in, size_t len, unsigned char **out,
    size_t *outlen)
{
	return decode(in, len, 1, out, outlen);
}

int
tsi_b64_encode(const void *in, size_t len, char **out)
{
	return encode(in, len, 0, out);
}

int
tsi_b64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
	return decode(in, len, 0, out, outlen);
}
