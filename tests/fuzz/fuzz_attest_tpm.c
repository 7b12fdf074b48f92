/* Fuzzes the parsers of TPM wire structures a node sends (lib/attest_*.c):
 * TPM2B_PUBLIC, and TPM2B_ATTEST + TPMT_SIGNATURE verified against a fixed
 * AK. The first byte picks the parser; the rest is the input. A parse
 * either fails cleanly or yields a key and name; a fuzzed attest never
 * verifies (the AK's private key is not in the input). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsi/attest.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A TPM2B_PUBLIC of a restricted P-256 ECDSA signing key (the AK shape),
 * with a point on the curve (the generator). */
static const uint8_t ak_pub[] = {
	0x00,
	0x58,
	0x00,
	0x23,
	0x00,
	0x0b,
	0x00,
	0x05,
	0x00,
	0x72,
	0x00,
	0x00,
	0x00,
	0x10,
	0x00,
	0x18,
	0x00,
	0x0b,
	0x00,
	0x03,
	0x00,
	0x10,
	0x00,
	0x20,
	0x6b,
	0x17,
	0xd1,
	0xf2,
	0xe1,
	0x2c,
	0x42,
	0x47,
	0xf8,
	0xbc,
	0xe6,
	0xe5,
	0x63,
	0xa4,
	0x40,
	0xf2,
	0x77,
	0x03,
	0x7d,
	0x81,
	0x2d,
	0xeb,
	0x33,
	0xa0,
	0xf4,
	0xa1,
	0x39,
	0x45,
	0xd8,
	0x98,
	0xc2,
	0x96,
	0x00,
	0x20,
	0x4f,
	0xe3,
	0x42,
	0xe2,
	0xfe,
	0x1a,
	0x7f,
	0x9b,
	0x8e,
	0xe7,
	0xeb,
	0x4a,
	0x7c,
	0x0f,
	0x9e,
	0x16,
	0x2b,
	0xce,
	0x33,
	0x57,
	0x6b,
	0x31,
	0x5e,
	0xce,
	0xcb,
	0xb6,
	0x40,
	0x68,
	0x37,
	0xbf,
	0x51,
	0xf5,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tsi_tpm_pub *ak;
	struct tsi_tpm_pub *p = NULL;
	struct tsi_attest_info info;
	char why[256];
	size_t alen, nlen;

	if (ak == NULL &&
	    tsi_tpm_pub_parse(ak_pub, sizeof(ak_pub), &ak) != TSI_OK)
		abort();
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		if (tsi_tpm_pub_parse(data + 1, size - 1, &p) == TSI_OK) {
			if (tsi_tpm_pub_pkey(p) == NULL ||
			    tsi_tpm_pub_name(p, &nlen) == NULL || nlen < 34)
				abort();
			(void)tsi_attest_check_ak(p, why, sizeof(why));
			(void)tsi_attest_check_ek(p, why, sizeof(why));
			(void)tsi_attest_check_signing_key(p, why, sizeof(why));
			tsi_tpm_pub_free(p);
		}
		return 0;
	}
	/* attest length in the second byte pair, signature after it. */
	if (size < 3)
		return 0;
	alen = ((size_t)data[1] << 8 | data[2]);
	if (alen > size - 3)
		return 0;
	if (tsi_attest_verify(data + 3, alen, data + 3 + alen, size - 3 - alen,
	        ak, &info, why, sizeof(why)) == TSI_OK)
		abort();
	return 0;
}
