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

#define TSI_TPM_WAIT_MS 800      /* longest wait for the TPM mutex */
#define TSI_TPM_RECONNECT_MS 200 /* at most one reconnect try per period */
#define TSI_TPM_HANG_MS 500      /* a command in flight longer: "hangs" */
#define TSI_TPM_FRESH_MS 200     /* a success this recent needs no probe */
#define TSI_TPM_KEY_FILE "tpm-key.blob"
/* Commands that make keys from a seed (an RSA EK above all) may take
 * seconds on a loaded software TPM; the watchdog gives them this long. */
#define TSI_TPM_SLOW_MS 15000

/* Enrollment (docs/attestation.md): where the TCG EK and its certificate
 * live, and the PCR bank the issuer quotes. */
#define TSI_TPM_EK_CERT_NV 0x01c00002u /* RSA-2048 EK certificate (DER) */
#define TSI_TPM_EK_HANDLE 0x81010001u  /* persistent RSA-2048 EK */
#define TSI_TPM_PCRS 24                /* PCRs of the SHA-256 bank */
#define TSI_TPM_NONCE_MAX 64           /* qualifyingData (TPM2B_DATA) */
#define TSI_TPM_EK_CERT_MAX 8192

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

/*
 * Enrollment evidence. Every structure comes back in its TPM wire form
 * (Tss2_MU_*_Marshal), which is what the enrollment protocol sends. Each
 * call creates the objects it needs (the EK when it is not persistent, the
 * AK, a policy session) and flushes them before it returns, whatever the
 * outcome: swtpm has no resource manager and only a few object slots.
 *
 * The AK is a primary key of the endorsement hierarchy made from one fixed
 * template, so every call gets the same key back and nothing is stored:
 *   type ECC, nameAlg SHA-256, attributes fixedTPM | fixedParent |
 *   sensitiveDataOrigin | userWithAuth | restricted | sign (0x00050072),
 *   empty authPolicy, symmetric NULL, scheme ECDSA/SHA-256, curve NIST P-256,
 *   kdf NULL, unique x and y of size 0; empty sensitive, outsideInfo and
 *   creationPCR.
 * Same TSI_ERR_TPM_UNAVAILABLE / TSI_ERR_TPM split as tsi_tpm_sign.
 * Byte outputs: caller frees with free().
 */

/* The EK certificate from NV TSI_TPM_EK_CERT_NV, DER (trailing padding after
 * the DER cut off; *cert NULL and *cert_len 0 when the TPM has no such
 * index), and the RSA EK's TPM2B_PUBLIC: the persistent TSI_TPM_EK_HANDLE if
 * present, otherwise made with CreatePrimary from the TCG default RSA-2048
 * EK template (and flushed). */
int tsi_tpm_ek(struct tsi_tpm *t, uint8_t **cert, size_t *cert_len,
    uint8_t **ek_pub, size_t *ek_pub_len);

/* The AK's TPM2B_PUBLIC. */
int tsi_tpm_ak_pub(struct tsi_tpm *t, uint8_t **pub, size_t *len);

/* The signing key's TPM2B_PUBLIC (from the key file, no TPM command).
 * TSI_ERR_UNSUPPORTED when the key is not fixedTPM | fixedParent | sign (a
 * duplicable key proves nothing about the TPM it is in). */
int tsi_tpm_key_pub(struct tsi_tpm *t, uint8_t **pub, size_t *len);

/* TPM2_Certify of the signing key by the AK with qualifyingData = nonce
 * (1..TSI_TPM_NONCE_MAX bytes, borrowed): TPM2B_ATTEST and TPMT_SIGNATURE. */
int tsi_tpm_certify(struct tsi_tpm *t, const uint8_t *nonce, size_t nonce_len,
    uint8_t **attest, size_t *attest_len, uint8_t **sig, size_t *sig_len);

/* TPM2_ActivateCredential(AK, EK) under a policy session satisfied with
 * PolicySecret(TPM_RH_ENDORSEMENT). blob is a marshalled TPM2B_ID_OBJECT,
 * enc_secret a marshalled TPM2B_ENCRYPTED_SECRET (both borrowed, untrusted:
 * TSI_ERR_PARSE unless each is exactly one structure). The recovered secret
 * goes to out (outcap bytes, at least 64), its length to *outlen; the caller
 * wipes it. TSI_ERR_TPM when the TPM refuses (a credential made for another
 * EK or another AK name). */
int tsi_tpm_activate(struct tsi_tpm *t, const uint8_t *blob, size_t blob_len,
    const uint8_t *enc_secret, size_t enc_secret_len, uint8_t *out,
    size_t outcap, size_t *outlen);

/* Reads the SHA-256 PCRs whose bits are set in mask (bit i = PCR i, i < 24)
 * into values[i]; other rows are left alone. */
int tsi_tpm_pcr_read(struct tsi_tpm *t, uint32_t mask,
    uint8_t values[TSI_TPM_PCRS][32]);

/* TPM2_Quote by the AK over the SHA-256 PCRs in mask (nonzero) with
 * qualifyingData = nonce: TPM2B_ATTEST, TPMT_SIGNATURE, and the PCR values
 * it covers in values (checked here against the quote's pcrDigest, read
 * again if a PCR changed in between). */
int tsi_tpm_quote(struct tsi_tpm *t, const uint8_t *nonce, size_t nonce_len,
    uint32_t mask, uint8_t **attest, size_t *attest_len, uint8_t **sig,
    size_t *sig_len, uint8_t values[TSI_TPM_PCRS][32]);

#endif /* TSI_ISSUER_TPM_H */
