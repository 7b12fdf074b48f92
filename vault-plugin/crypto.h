/*
 * crypto.h - the KV key and the sealing of KV values (crypto.c).
 */
#ifndef TSI_VAULT_CRYPTO_H
#define TSI_VAULT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

struct vault_key {
	unsigned char k[32];
};
/* The key file must be a regular file of mode 0600 (or stricter) holding 32
 * raw bytes or 64 hex digits (one trailing newline allowed). */
int vault_key_load(const char *path, struct vault_key *out, char *err,
    size_t errlen);
int vault_key_random(struct vault_key *out);
void vault_key_wipe(struct vault_key *k);
/* AES-256-GCM with path and version as associated data.
 * *blob: caller frees with tsi_freezero(*blob, *len). */
int vault_seal(const struct vault_key *k, const char *path, uint64_t version,
    const void *pt, size_t ptlen, uint8_t **blob, size_t *len);
/* *pt: NUL-terminated, caller frees with tsi_freezero(*pt, *ptlen + 1).
 * TSI_ERR_CRYPTO when the blob was altered or moved to another path/version. */
int vault_unseal(const struct vault_key *k, const char *path, uint64_t version,
    const uint8_t *blob, size_t len, char **pt, size_t *ptlen);
/* Random bytes as base64url; out must hold 4*(n+2)/3+1 bytes. */
int vault_random_b64(size_t n, char *out, size_t outlen);
/* A random UUID (v4) into out[37]. */
void vault_uuid(char out[37]);

#endif /* TSI_VAULT_CRYPTO_H */
