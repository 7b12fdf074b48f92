/*
 * attest_int.h - shared between the lib/attest_*.c files only.
 */
#ifndef TSI_ATTEST_INT_H
#define TSI_ATTEST_INT_H

#include <stdint.h>
#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include "tsi/attest.h"

/* The digest for a TPM hash algorithm id; NULL when not supported. */
const EVP_MD *tsi_attest_md(uint16_t alg);

/* The parsed public area, borrowed until tsi_tpm_pub_free. */
const TPMT_PUBLIC *tsi_tpm_pub_area(const struct tsi_tpm_pub *p);

#endif /* TSI_ATTEST_INT_H */
