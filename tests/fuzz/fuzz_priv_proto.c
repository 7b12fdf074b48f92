/* Fuzzes the signer's request parser (issuer/priv_proto.c): whatever it
 * accepts is a request in the table with its fields in their rules, and a
 * SIGN's claims encode back to a text the parser accepts again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "issuer/priv_proto.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsi_priv_req q, q2;
	static struct tsi_priv_msg m;
	int r;

	r = tsi_priv_req_decode(data, size, &q);
	if (r != TSI_OK) {
		if (q.w != NULL)
			abort();
		if (r != TSI_ERR_PARSE && r != TSI_ERR_TOO_LARGE &&
		    r != TSI_ERR_UNSUPPORTED && r != TSI_ERR_ALLOC)
			abort();
		return 0;
	}
	if (q.type < TSI_PRIV_IDENTIFY || q.type > TSI_PRIV_TYPE_LAST ||
	    q.type == TSI_PRIV_WAKE)
		abort();
	if (q.type == TSI_PRIV_SIGN) {
		if (strlen(q.aud) == 0 || strlen(q.aud) > 256 ||
		    (q.w != NULL) != (q.container[0] != '\0'))
			abort();
		if (tsi_priv_enc_sign(&m, q.id, q.handle, q.aud, q.container,
		        q.w) != TSI_OK)
			abort();
		if (tsi_priv_req_decode(m.b, m.len, &q2) != TSI_OK)
			abort();
		if (strcmp(q2.aud, q.aud) != 0 || q2.handle != q.handle)
			abort();
		tsi_priv_req_clear(&q2);
	}
	tsi_priv_req_clear(&q);
	return 0;
}
