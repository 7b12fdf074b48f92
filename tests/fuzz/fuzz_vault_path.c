/* Fuzzes tsi-vault's URL handling: percent-decoding of the path and query
 * (vault_pct_decode) and the KV path syntax (vault_kv_path_valid). Checks
 * the invariants: a decoded string has no control byte or NUL, is never
 * longer than its input, and a valid KV path has no empty, "." or ".."
 * segment. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vault.h"
#include "parse.h"
#include "store.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_path(const char *p, int dir_ok)
{
	const char *seg = p, *s;

	if (!vault_kv_path_valid(p, dir_ok))
		return;
	if (strlen(p) > KV_PATH_MAX)
		abort();
	for (s = p;; s++) {
		if (*s == '/' || *s == '\0') {
			size_t len = (size_t)(s - seg);
			if (len == 0 && !(dir_ok && (*s == '\0')))
				abort();
			if ((len == 1 && seg[0] == '.') ||
			    (len == 2 && memcmp(seg, "..", 2) == 0))
				abort();
			if (*s == '\0')
				break;
			seg = s + 1;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in, *out = NULL;
	size_t i, n;
	int rc;

	if ((in = malloc(size + 1)) == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	rc = vault_pct_decode(in, 4 * KV_PATH_MAX, &out);
	if (rc == TSI_OK) {
		n = strlen(out);
		if (n > strlen(in))
			abort();
		for (i = 0; i < n; i++)
			if ((unsigned char)out[i] < 0x20 ||
			    (unsigned char)out[i] == 0x7f)
				abort();
		check_path(out, 0);
		check_path(out, 1);
		free(out);
	} else if (out != NULL)
		abort();
	check_path(in, 0);
	free(in);
	return 0;
}
