/* Fuzzes the two parsers of tsi-attest's answers in the issuer's
 * enrollment client: whatever the bytes, either a refusal with a reason and
 * an empty result, or a result within the protocol's bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "issuer/enroll.h"
#include "tsi/err.h"
#include "tsi/log.h"
#include "tsi/x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct tsi_enroll_challenge ch;
	struct tsi_enroll_result res;
	char reason[256];

	if (!init) {
		tsi_log_init("fuzz_enroll_answer", TSI_LOG_ERROR);
		init = 1;
	}
	reason[0] = '\0';
	if (tsi_enroll_parse_start((const char *)data, size, &ch, reason,
	        sizeof(reason)) == TSI_OK) {
		if (strlen(ch.session) != 32 || strlen(ch.nonce_hex) != 64 ||
		    ch.blob == NULL || ch.blob_len > TSI_ENROLL_BLOB_MAX ||
		    ch.secret == NULL || ch.secret_len > TSI_ENROLL_BLOB_MAX ||
		    ch.pcr_mask == 0 || (ch.pcr_mask >> TSI_TPM_PCRS) != 0)
			abort();
		tsi_enroll_challenge_clear(&ch);
	} else if (reason[0] == '\0' || ch.blob != NULL || ch.secret != NULL)
		abort();
	reason[0] = '\0';
	if (tsi_enroll_parse_finish((const char *)data, size, &res, reason,
	        sizeof(reason)) == TSI_OK) {
		if (res.cert_pem == NULL || res.ca_pem == NULL ||
		    res.node == NULL || !tsi_location_value_ok(res.node) ||
		    res.expires_at <= 0)
			abort();
		tsi_enroll_result_clear(&res);
	} else if (reason[0] == '\0' || res.cert_pem != NULL)
		abort();
	return 0;
}
