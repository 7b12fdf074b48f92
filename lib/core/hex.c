/* hex.c - include/tsi/hex.h. */
#include "tsi/hex.h"

#include "tsi/err.h"

#include <stdint.h>
#include <string.h>

void
tsi_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
digit(char c, unsigned flags)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if ((flags & TSI_HEX_ANY_CASE) && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
tsi_hex_decode(const char *in, uint8_t *out, size_t n, unsigned flags)
{
	size_t i;
	int hi, lo;

	if (in == NULL || n > SIZE_MAX / 2 || strnlen(in, 2 * n + 1) != 2 * n)
		return TSI_ERR_PARSE;
	for (i = 0; i < n; i++) {
		if ((hi = digit(in[2 * i], flags)) < 0 ||
		    (lo = digit(in[2 * i + 1], flags)) < 0)
			return TSI_ERR_PARSE;
		if (out != NULL)
			out[i] = (uint8_t)(hi << 4 | lo);
	}
	return TSI_OK;
}
