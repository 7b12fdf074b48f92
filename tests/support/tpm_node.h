/*
 * tpm_node.h - a test node: one swtpm manufactured by swtpm_setup with an
 * EK certificate from a local CA, and the node side of enrollment done with
 * tpm2-tools (run by fork/exec with TPM2TOOLS_TCTI pointing at it).
 *
 * Objects are made persistent (SRK 0x81000001, signing key 0x81000002, AK
 * 0x81010002) so that no tool leaves a transient object behind: swtpm has no
 * resource manager and three object slots.
 */
#ifndef TSI_TEST_TPM_NODE_H
#define TSI_TEST_TPM_NODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tpm_node {
	pid_t pid;
	int port;
	char dir[256]; /* scratch: state/, files the tools write */
	char tcti[128];
};

#define TPM_NODE_EK 0x81010001u
#define TPM_NODE_AK 0x81010002u
#define TPM_NODE_SRK 0x81000001u
#define TPM_NODE_KEY 0x81000002u

/* A private directory for a local EK CA (swtpm_localca state); shared by
 * the nodes "made by the same manufacturer". 0 on success. */
int tpm_node_ca_dir(char *out, size_t len, const char *tag);

/* The PEM file of the CA that signs EK certificates of ca_dir (the
 * swtpm-localca root followed by its issuing CA). Written after the first
 * node is set up with ca_dir. 0 on success. */
int tpm_node_ca_pem(const char *ca_dir, char *out, size_t len);

/* swtpm_setup --create-ek-cert with the CA in ca_dir, then swtpm on a free
 * loopback port. 0 when it accepts connections. */
int tpm_node_start(struct tpm_node *n, const char *ca_dir);

/* Kills swtpm (by PID, reaped) and removes the scratch dir. */
void tpm_node_stop(struct tpm_node *n);

/* Runs a shell command line in n->dir with TPM2TOOLS_TCTI set; output goes
 * to n->dir/log. Returns the exit status (-1 when it could not run). */
int tpm_node_run(struct tpm_node *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Makes the AK (restricted P-256 primary in the endorsement hierarchy) and
 * a non-duplicable P-256 signing key, persistent, and writes ek.pub,
 * ek.pem (from NV 0x01c00002), ak.pub, key.pub. 0 on success. extra_key_attr
 * is appended to the signing key's attributes (NULL for none); ak_attrs
 * replaces the AK's attributes when not NULL. */
int tpm_node_make_keys(struct tpm_node *n, const char *ak_attrs);

/* Reads n->dir/name into *buf (caller frees). 0 on success. */
int tpm_node_read(const struct tpm_node *n, const char *name, uint8_t **buf,
    size_t *len);
/* Writes buf to n->dir/name. 0 on success. */
int tpm_node_write(const struct tpm_node *n, const char *name, const void *buf,
    size_t len);

/* A PEM CSR for the signing key (pub: its TPM2B_PUBLIC), signed in the TPM
 * with tpm2_sign; san (e.g. "URI:tsi:datacenter:x", may be NULL) is asked
 * for as a subjectAltName extension. *pem: caller frees. 0 on success. */
int tpm_node_csr(struct tpm_node *n, const uint8_t *key_pub, size_t key_len,
    const char *cn, const char *san, char **pem);

/* tpm2_activatecredential of (blob, secret) with the AK under an EK policy
 * session; *out (caller frees) the recovered credential. 0 on success. */
int tpm_node_activate(struct tpm_node *n, const uint8_t *blob, size_t blob_len,
    const uint8_t *secret, size_t secret_len, uint8_t **out, size_t *out_len);

/* TPM2_Certify of object (TPM_NODE_KEY: the signing key) by the AK with qualifying data nonce;
 * writes marshalled TPM2B_ATTEST / TPMT_SIGNATURE (caller frees). */
int tpm_node_certify(struct tpm_node *n, uint32_t object, const uint8_t *nonce,
    size_t nlen, uint8_t **att, size_t *att_len, uint8_t **sig,
    size_t *sig_len);

/* TPM2_Quote by the AK over sha256 PCRs 0..7 with nonce; the TPM2B_ATTEST,
 * TPMT_SIGNATURE and the 8 PCR values read right after (caller frees). */
int tpm_node_quote(struct tpm_node *n, const uint8_t *nonce, size_t nlen,
    uint8_t **att, size_t *att_len, uint8_t **sig, size_t *sig_len,
    uint8_t pcrs[8][32]);

/* Hex of bytes into out (2*len+1). */
void tpm_node_hex(const uint8_t *b, size_t len, char *out);

#endif
