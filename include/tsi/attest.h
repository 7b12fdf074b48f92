/*
 * attest.h - verification of TPM evidence for node enrollment.
 *
 * Everything here works on the TPM's wire (marshalled) forms, as a node sends
 * them: TPM2B_PUBLIC, TPM2B_ATTEST, TPMT_SIGNATURE. The bytes are untrusted:
 * each parser requires the whole input to be consumed by exactly one
 * structure and refuses trailing bytes. No TPM is needed: the server side of
 * TPM2_MakeCredential is computed in software (OpenSSL).
 *
 * The EK's identity across tsi is the SHA-256 of the DER
 * SubjectPublicKeyInfo of its public key (lower-case hex), whether it comes
 * from an EK certificate or from a TPM2B_PUBLIC.
 */
#ifndef TSI_ATTEST_H
#define TSI_ATTEST_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* A parsed TPM2B_PUBLIC. Opaque; free with tsi_tpm_pub_free. */
struct tsi_tpm_pub;

/* Largest TPM name: 2-byte algorithm + SHA-512 digest. */
#define TSI_TPM_NAME_MAX 66
/* Largest TPM digest we handle (SHA-512). */
#define TSI_TPM_DIGEST_MAX 64

/* TPMA_OBJECT bits checked here (TPM 2.0 Part 2, 8.3). */
#define TSI_TPMA_FIXED_TPM 0x00000002u
#define TSI_TPMA_FIXED_PARENT 0x00000010u
#define TSI_TPMA_SENSITIVE_ORIGIN 0x00000020u
#define TSI_TPMA_USER_WITH_AUTH 0x00000040u
#define TSI_TPMA_RESTRICTED 0x00010000u
#define TSI_TPMA_DECRYPT 0x00020000u
#define TSI_TPMA_SIGN 0x00040000u

/* Parses a marshalled TPM2B_PUBLIC (len bytes, borrowed for the call) into
 * *out (caller frees with tsi_tpm_pub_free). Computes the object's name and,
 * for RSA and NIST P-256/P-384 ECC keys, its public key as an EVP_PKEY.
 * TSI_ERR_PARSE when the bytes are not exactly one TPM2B_PUBLIC;
 * TSI_ERR_UNSUPPORTED for a name algorithm other than SHA-256/384/512 or a
 * key type other than RSA/ECC. */
int tsi_tpm_pub_parse(const uint8_t *buf, size_t len, struct tsi_tpm_pub **out);

/* Accepts NULL. */
void tsi_tpm_pub_free(struct tsi_tpm_pub *p);

/* The object's name, nameAlg || H(TPMT_PUBLIC), borrowed until the free. */
const uint8_t *tsi_tpm_pub_name(const struct tsi_tpm_pub *p, size_t *len);

/* The TPMA_OBJECT attributes. */
uint32_t tsi_tpm_pub_attrs(const struct tsi_tpm_pub *p);

/* The public key, borrowed until the free (never NULL after a parse). */
EVP_PKEY *tsi_tpm_pub_pkey(const struct tsi_tpm_pub *p);

/* Checks an attestation key: ECC P-256, nameAlg SHA-256, scheme ECDSA with
 * SHA-256, fixedTPM|fixedParent|sensitiveDataOrigin|restricted|sign set and
 * decrypt clear. TSI_ERR_DENIED with the first failed check in why. */
int tsi_attest_check_ak(const struct tsi_tpm_pub *ak, char *why, size_t whylen);

/* Checks the signing key a node certificate will be issued for: ECC P-256,
 * fixedTPM|fixedParent|sign (non-duplicable, so certified in this TPM means
 * it stays in this TPM), decrypt clear. TSI_ERR_DENIED with why. */
int tsi_attest_check_signing_key(const struct tsi_tpm_pub *key, char *why,
    size_t whylen);

/* Checks an endorsement key public area: RSA-2048 with an AES-128/256 CFB
 * storage symmetric (what MakeCredential needs), restricted|decrypt,
 * fixedTPM|fixedParent. TSI_ERR_DENIED with why. */
int tsi_attest_check_ek(const struct tsi_tpm_pub *ek, char *why, size_t whylen);

/* SHA-256 of the DER SubjectPublicKeyInfo of pub, lower-case hex with NUL. */
int tsi_attest_key_sha256(EVP_PKEY *pub, char hex[65]);

/* Verifies an EK certificate to the trust anchors in ek_ca (borrowed; every
 * certificate in it is a trust anchor, intermediates included, so an
 * operator may pin a manufacturer's issuing CA), with extra untrusted
 * intermediates in chain (may be NULL). The certificate must carry
 * keyEncipherment. why gets OpenSSL's verification error when it fails.
 * TSI_ERR_BAD_CERT when it does not verify. */
int tsi_attest_ek_cert_verify(X509 *cert, STACK_OF(X509) *chain,
    STACK_OF(X509) *ek_ca, char *why, size_t whylen);

/* TPM2_MakeCredential in software (TPM 2.0 Part 1, 24; Part 3, 12.6): seals
 * credential (1..64 bytes, borrowed) to the object named obj_name for the
 * TPM holding ek (an RSA EK accepted by tsi_attest_check_ek). *blob gets a
 * marshalled TPM2B_ID_OBJECT, *secret a marshalled TPM2B_ENCRYPTED_SECRET;
 * the caller frees both with free(). */
int tsi_attest_make_credential(const struct tsi_tpm_pub *ek,
    const uint8_t *obj_name, size_t name_len, const uint8_t *credential,
    size_t cred_len, uint8_t **blob, size_t *blob_len, uint8_t **secret,
    size_t *secret_len);

/* What a verified TPMS_ATTEST said. */
struct tsi_attest_info {
	uint16_t type;                     /* TPM2_ST_ATTEST_* */
	uint8_t extra[TSI_TPM_DIGEST_MAX]; /* extraData (qualifying data) */
	size_t extra_len;
	uint64_t clock; /* clockInfo.clock, ms */
	uint32_t reset_count, restart_count;
	/* ATTEST_CERTIFY: the certified object's name. */
	uint8_t name[TSI_TPM_NAME_MAX];
	size_t name_len;
	/* ATTEST_QUOTE: the selected SHA-256 PCRs as a bit mask (bit i = PCR
	 * i, PCRs 0..23), whether any other bank was selected, the digest. */
	uint32_t pcr_mask;
	int other_banks;
	uint8_t pcr_digest[TSI_TPM_DIGEST_MAX];
	size_t pcr_digest_len;
};

/* TPM_ST_ATTEST_* values (Part 2, 6.9). */
#define TSI_ATTEST_CERTIFY 0x8017
#define TSI_ATTEST_QUOTE 0x8018

/* Verifies that attest (a marshalled TPM2B_ATTEST) is a TPM-generated
 * structure (magic TPM_GENERATED_VALUE) signed by ak with sig (a marshalled
 * TPMT_SIGNATURE, ECDSA with SHA-256), and fills *info. Inputs borrowed.
 * TSI_ERR_PARSE on malformed bytes, TSI_ERR_DENIED (with why) when the
 * magic, scheme or signature is wrong. */
int tsi_attest_verify(const uint8_t *attest, size_t attest_len,
    const uint8_t *sig, size_t sig_len, const struct tsi_tpm_pub *ak,
    struct tsi_attest_info *info, char *why, size_t whylen);

/* SHA-256 over the PCR values in selection order (ascending index), as a
 * quote's pcrDigest is computed for one SHA-256 bank. values: count
 * 32-byte digests, borrowed. */
int tsi_attest_pcr_digest(const uint8_t (*values)[32], size_t count,
    uint8_t out[32]);

#endif /* TSI_ATTEST_H */
