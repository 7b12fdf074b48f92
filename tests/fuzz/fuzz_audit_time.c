/* Fuzzes tsi_audit_parse_time, which reads the since/until query
 * parameters of GET /v1/sys/audit/releases (untrusted), and the CSV row
 * writer on the record it may make of them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsi/audit.h"
#include "tsi/buf.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	long long us = -1;
	struct tsi_buf *b;
	json_t *rec;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (tsi_audit_parse_time(s, 1764000000LL * 1000000, &us) == TSI_OK &&
	    us < 0)
		abort(); /* an accepted time is never before the epoch */
	if ((rec = json_pack("{sIss}", "seq", (json_int_t)1, "path", "x")) !=
	        NULL &&
	    (b = tsi_buf_new(4096)) != NULL) {
		json_object_set_new(rec, "reason", json_stringn(s, size));
		if (tsi_audit_csv_row(rec, b) == TSI_OK &&
		    tsi_buf_str(b)[tsi_buf_len(b) - 1] != '\n')
			abort();
		tsi_buf_free(b);
	}
	json_decref(rec);
	free(s);
	return 0;
}
