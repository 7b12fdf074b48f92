/* Fuzzes the strict reader of the audit record's canonical form
 * (lib/audit/audit_canon.c), which verify runs over stored bytes (untrusted: the
 * log may have been edited), against jansson as the oracle: bytes the
 * reader accepts parse and are written back as the same bytes; bytes that
 * jansson parses and that write back as themselves are accepted. The
 * member spans the reader reports lie inside the input and strip cleanly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "lib/audit/audit_canon.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct spans {
	size_t size, last_end;
	int bad;
	size_t off, end;
	int found;
};

static int
member(void *arg, const char *key, size_t klen, size_t off, size_t end)
{
	struct spans *s = arg;

	if (off < s->last_end || end <= off || end > s->size)
		s->bad = 1;
	s->last_end = end;
	if (!s->found) {
		s->off = off;
		s->end = end;
		s->found = 1;
	}
	(void)key;
	(void)klen;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spans s = { size, 0, 0, 0, 0, 0 };
	json_t *v;
	char *out = NULL, *stripped;
	size_t len = 0, slen = 0;
	int accepted, canonical = 0, err;

	accepted =
	    audit_canon_check((const char *)data, size, member, &s) == TSI_OK;
	if (s.bad)
		abort();
	v = json_loadb((const char *)data, size,
	    JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
	if (v != NULL) {
		out =
		    audit_canon_dumps(v, AUDIT_FORMAT_V2, size + 1, &len, &err);
		canonical =
		    out != NULL && len == size && memcmp(out, data, size) == 0;
	}
	/* jansson parses no NUL inside a key: the one value it cannot be the
	 * oracle for */
	if (accepted != canonical &&
	    !(accepted && v == NULL &&
	        memmem(data, size, "\\u0000", 6) != NULL))
		abort();
	if (accepted && s.found && size > 2) {
		if ((stripped = malloc(size)) == NULL)
			abort();
		if (audit_canon_strip_member((const char *)data, size, s.off,
		        s.end, stripped, &slen) != TSI_OK ||
		    audit_canon_check(stripped, slen, NULL, NULL) != TSI_OK)
			abort();
		free(stripped);
	}
	free(out);
	json_decref(v);
	return 0;
}
