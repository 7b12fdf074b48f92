/*
 * b64url.h - base64url (RFC 4648 section 5, no padding) and standard
 * base64, strict in both directions. Part of the core layer: JWT parts,
 * JWK members and x5c certificates are encoded with it, and so is anything
 * else that needs it, without pulling in the token layer.
 */
#ifndef TSI_B64URL_H
#define TSI_B64URL_H

#include <stddef.h>

/* base64url without padding. *out: caller frees with free(). */
int tsi_b64url_encode(const void *in, size_t len, char **out);
/* Strict: rejects padding, whitespace and non-alphabet bytes.
 * *out: caller frees with tsi_freezero(*out, *outlen). */
int tsi_b64url_decode(const char *in, size_t len, unsigned char **out,
    size_t *outlen);

/* Standard base64 with padding (the x5c form). Same ownership and
 * strictness (padding required and canonical, no whitespace) as above. */
int tsi_b64_encode(const void *in, size_t len, char **out);
int tsi_b64_decode(const char *in, size_t len, unsigned char **out,
    size_t *outlen);

#endif /* TSI_B64URL_H */
