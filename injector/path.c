/* Lexical host-path arithmetic for the hostPath refusal rule. */
#include "injector.h"
#include "tsi/err.h"

#include <string.h>

int
tsi_injector_path_normalise(const char *in, char *out, size_t outlen)
{
	size_t len = 0, seg;
	const char *p = in;

	if (in == NULL || out == NULL || outlen < 2 || in[0] != '/')
		return TSI_ERR_INVALID_ARG;
	out[0] = '\0';
	while (*p != '\0') {
		while (*p == '/')
			p++;
		seg = strcspn(p, "/");
		if (seg == 0)
			break;
		if (seg == 1 && p[0] == '.') {
			/* "." names the same directory */
		} else if (seg == 2 && p[0] == '.' && p[1] == '.') {
			/* ".." drops the last segment; above "/" is "/" */
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			out[len] = '\0';
		} else {
			if (outlen - len < seg + 2)
				return TSI_ERR_TOO_LARGE;
			out[len++] = '/';
			memcpy(out + len, p, seg);
			len += seg;
			out[len] = '\0';
		}
		p += seg;
	}
	if (len == 0) {
		out[0] = '/';
		out[1] = '\0';
	}
	return TSI_OK;
}

/* Nonzero when normalised a is b or a directory above b. */
static int
contains(const char *a, const char *b)
{
	size_t n = strlen(a);

	if (strcmp(a, "/") == 0)
		return 1;
	return strncmp(a, b, n) == 0 && (b[n] == '\0' || b[n] == '/');
}

int
tsi_injector_path_overlaps(const char *a, const char *b)
{
	return contains(a, b) || contains(b, a);
}
