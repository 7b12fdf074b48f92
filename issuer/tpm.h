/*
 * tpm.h - the issuer's TPM-resident signing key (the only code that talks
 * ESAPI lives in tpm.c).
 *
 * The key is an ECC P-256 ECDSA-SHA256 signing key, a child of a storage
 * primary key of the owner hierarchy created from a fixed template. Its
 * public and (TPM-encrypted) private blobs are kept in <state_dir>/tpm-key.blob
 * (0600), so the same key - and the same kid - comes back after issuer and
 * TPM restarts. The private part never leaves the TPM in the clear.
 *
 * One ESYS context per process (swtpm serves one client at a time); every
 * TPM command is serialised by a mutex. A command that fails because the TPM
 * cannot be reached marks the TPM unavailable and returns
 * TSI_ERR_TPM_UNAVAILABLE; later calls reconnect (TCTI, ESYS, key) so the
 * issuer recovers without a restart. Callers never wait for the mutex more
 * than TSI_TPM_WAIT_MS: a hung TPM yields TSI_ERR_TPM_UNAVAILABLE, not a hung
 * request.
 */
#ifndef TSI_ISSUER_TPM_H
#define TSI_ISSUER_TPM_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "tsi/signer.h"

#define TSI_TPM_WAIT_MS 800          /* longest wait for the TPM mutex */
#define TSI_TPM_RECONNECT_MS 200     /* at most one reconnect try per period */
#define TSI_TPM_HANG_MS 500          /* a command in flight longer: "hangs" */
#define TSI_TPM_FRESH_MS 200         /* a success this recent needs no probe */
#define TSI_TPM_KEY_FILE "tpm-key.blob"

struct tsi_tpm;

/* Connects to the TPM through the TCTI config string tcti (borrowed, e.g.
 * "swtpm:host=127.0.0.1,port=2321" or "device:/dev/tpmrm0") and loads the
 * signing key from state_dir (borrowed), creating and saving it on first use.
 * When the key file exists but the TPM cannot be reached, succeeds with the
 * TPM marked unavailable (the public key comes from the file); without a key
 * file an unreachable TPM is TSI_ERR_TPM_UNAVAILABLE.
 * *out: caller frees with tsi_tpm_free. */
int tsi_tpm_open(const char *tcti, const char *state_dir, struct tsi_tpm **out);

/* Closes the ESYS context and frees. Accepts NULL. Signers made from t must
 * be freed first. */
void tsi_tpm_free(struct tsi_tpm *t);

/* Signs a SHA-256 digest with the TPM key: sig = r||s, each half 32 bytes
 * big-endian. TSI_ERR_TPM_UNAVAILABLE when the TPM cannot be reached (or is
 * busy for more than TSI_TPM_WAIT_MS), TSI_ERR_TPM when it refuses. */
int tsi_tpm_sign(struct tsi_tpm *t, const uint8_t digest[32], uint8_t sig[64]);

/* The key's public half, borrowed for t's life. Never NULL after open. */
EVP_PKEY *tsi_tpm_pub(const struct tsi_tpm *t);

/* Probes the TPM (reconnecting if needed). TSI_OK when the key is loaded and
 * answers (or answered a command within TSI_TPM_FRESH_MS); otherwise an error
 * with a one-line reason in reason. Also the watchdog: a command in flight
 * for more than TSI_TPM_HANG_MS is cut (its TCTI connection shut down, so it
 * fails as an I/O error) and the check fails at once. Call it periodically
 * from a thread of its own (the monitor does). */
int tsi_tpm_check(struct tsi_tpm *t, char *reason, size_t reasonlen);

/* A tsi_signer whose signatures come from tsi_tpm_sign (tpm_signer.c).
 * t is borrowed and must outlive the signer. *out: tsi_signer_free. */
int tsi_tpm_signer(struct tsi_tpm *t, struct tsi_signer **out);

#endif /* TSI_ISSUER_TPM_H */
