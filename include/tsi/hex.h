/*
 * hex.h - hexadecimal digits of bytes, the one copy every program uses
 * (digests, request ids, EK hashes, audit chain hashes). Core layer.
 */
#ifndef TSI_HEX_H
#define TSI_HEX_H

#include <stddef.h>
#include <stdint.h>

/* n bytes as 2n lower-case digits and a NUL: out must hold 2n + 1. */
void tsi_hex_encode(const uint8_t *in, size_t n, char *out);

/* Upper-case digits are accepted too (what an operator may paste); the
 * default is lower case only, the form tsi writes, so that one value has
 * one spelling where spellings are compared (audit records). */
#define TSI_HEX_ANY_CASE 0x1

/* Exactly 2n digits (the whole NUL-terminated string) into n bytes; out
 * may be NULL to check only. TSI_ERR_PARSE otherwise (out then undefined). */
int tsi_hex_decode(const char *in, uint8_t *out, size_t n, unsigned flags);

#endif /* TSI_HEX_H */
