/*
 * priv_proto.h - the messages between tsi-issuer's privileged signer and
 * its unprivileged front end (docs/issuer.md, "Privilege separation").
 *
 * One message is one SOCK_SEQPACKET datagram: a fixed header (type, id,
 * payload length, each a 32-bit integer in host order: both ends are the
 * same binary on the same host) and a payload whose shape the type fixes.
 * Payload fields are u32, i64, and strings (u32 length, then the bytes, no
 * NUL). Every request type has its own bound on the payload; a message
 * whose size is not header + length, whose type is not in the table, whose
 * fields do not fill the payload exactly, or whose strings break their
 * rules is TSI_ERR_PARSE (or TSI_ERR_TOO_LARGE), never more.
 *
 *   request            payload                                answer payload
 *   IDENTIFY (+ fd)    -                                      status, handle, pid, uid, gid, container
 *   RELEASE            handle                                 status
 *   SIGN               handle, aud, container, claims         status, exp, token, exe | status, reason
 *   JWKS               -                                      status, jwks JSON
 *   HEALTH             -                                      status, reason, kid, cluster, datacenter
 *   WAKE (signer ->)   handle                                 (no answer)
 *
 * Enrollment (docs/attestation.md), the front end's client of tsi-attest
 * asking the TPM for evidence about itself. Every operation acts on objects
 * the signer fixes (the TCG EK, the AK of the fixed template, the signing
 * key); the front end gives only the verifier's nonce, PCR selection and
 * credential:
 *   ATT_EK             -                                      status, ek_cert (DER, may be empty), ek_pub
 *   ATT_AK             -                                      status, ak_pub
 *   ATT_KEY            -                                      status, key_pub, csr (PEM)
 *   ATT_ACTIVATE       id_object, enc_secret (TPM2Bs)         status, secret
 *   ATT_CERTIFY        nonce                                  status, attest, signature
 *   ATT_QUOTE          nonce, pcr mask                        status, attest, signature, pcr values
 *   NODE_STATE         -                                      status, valid, renew_at
 *   NODE_INSTALL       certificate, ca (PEM)                  status, reason
 *
 * TPM structures travel in their wire form (TPM2B_*, TPMT_SIGNATURE); pcr
 * values are 32 bytes for each bit of the mask, lowest PCR first.
 * NODE_INSTALL's certificate is checked by the signer (for its own TPM key,
 * a location, signed by the CA given, valid now) before it is written; then
 * the signer switches to it.
 *
 * Every answer starts with an i32 status (TSI_OK or a TSI_ERR_*); only an
 * answer with TSI_OK carries the fields after it (SIGN's error carries a
 * reason). SIGN's claims are the front end's description of a Kubernetes
 * workload as JSON (empty for host workloads, whose every field the signer
 * finds itself); decoding checks their schema and gives a tsi_workload.
 */
#ifndef TSI_ISSUER_PRIV_PROTO_H
#define TSI_ISSUER_PRIV_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "issuer/workload.h"

enum tsi_priv_type {
	TSI_PRIV_IDENTIFY = 1,
	TSI_PRIV_RELEASE = 2,
	TSI_PRIV_SIGN = 3,
	TSI_PRIV_JWKS = 4,
	TSI_PRIV_HEALTH = 5,
	TSI_PRIV_WAKE = 6,
	TSI_PRIV_ATT_EK = 7,
	TSI_PRIV_ATT_AK = 8,
	TSI_PRIV_ATT_KEY = 9,
	TSI_PRIV_ATT_ACTIVATE = 10,
	TSI_PRIV_ATT_CERTIFY = 11,
	TSI_PRIV_ATT_QUOTE = 12,
	TSI_PRIV_NODE_STATE = 13,
	TSI_PRIV_NODE_INSTALL = 14,
};
#define TSI_PRIV_TYPE_LAST TSI_PRIV_NODE_INSTALL

/* An answer's type is its request's with this bit set. */
#define TSI_PRIV_ANSWER 0x80000000u

#define TSI_PRIV_HDR 12u
/* The largest datagram either side sends or accepts. */
#define TSI_PRIV_MSG_MAX ((size_t)65536)
/* Request payload bounds (the signer reads nothing larger). */
#define TSI_PRIV_CLAIMS_MAX ((size_t)32768)
#define TSI_PRIV_SIGN_MAX \
	((size_t)(4 + 4 + 256 + 4 + 64 + 4) + TSI_PRIV_CLAIMS_MAX)
#define TSI_PRIV_REASON_MAX 255u
#define TSI_PRIV_FIELD_MAX 1024u /* one claims string */
#define TSI_PRIV_EXE_MAX 4096u   /* a host workload's exe path */
#define TSI_PRIV_TOKEN_MAX 49152u
/* Enrollment fields. A TPM2B in a request is its u16 size (big-endian)
 * and exactly that many bytes, 2..TSI_PRIV_TPM2B_MAX in all. */
#define TSI_PRIV_TPM2B_MAX 1024u
#define TSI_PRIV_NONCE_MAX 64u /* TPM2B_DATA's buffer */
#define TSI_PRIV_PCRS 24u      /* the SHA-256 bank */
#define TSI_PRIV_EK_CERT_MAX 8192u
#define TSI_PRIV_CSR_MAX 8192u
#define TSI_PRIV_CERT_MAX 16384u /* NODE_INSTALL's certificate, PEM */
#define TSI_PRIV_CA_MAX 32768u   /* its CA (a bundle at most this long) */
#define TSI_PRIV_SECRET_MAX 64u  /* an activated credential */

/* A decoded request. Strings are NUL-terminated copies; w is owned (NULL
 * unless a SIGN carried claims). Clear with tsi_priv_req_clear. */
struct tsi_priv_req {
	uint32_t type;
	uint32_t id;
	uint32_t handle;
	char aud[257];
	char container[65];
	struct tsi_workload *w;
	/* Enrollment: borrowed from the decoded message. ACTIVATE: a =
	 * id_object, b = enc_secret; CERTIFY and QUOTE: a = nonce;
	 * NODE_INSTALL: a = certificate, b = ca (NUL-free text, not
	 * terminated). */
	const uint8_t *a, *b;
	size_t alen, blen;
	uint32_t mask; /* QUOTE: bit i = PCR i, nonzero, below 1 << 24 */
};

/* Decodes one request datagram (msg, len: borrowed, untrusted). On any
 * failure out->type and out->id hold what could be read of the header (0
 * when not even that), so the caller can address an error answer.
 * TSI_ERR_PARSE for a malformed message, TSI_ERR_TOO_LARGE for one over
 * its type's bound, TSI_ERR_UNSUPPORTED for a type not in the table. */
int tsi_priv_req_decode(const uint8_t *msg, size_t len,
    struct tsi_priv_req *out);

/* Frees what a decoded request holds (not the struct). Accepts zeroed. */
void tsi_priv_req_clear(struct tsi_priv_req *r);

/* A message being built in a caller-owned buffer of TSI_PRIV_MSG_MAX. Once
 * a put failed (too large), every later put and tsi_priv_msg_end fail. */
struct tsi_priv_msg {
	uint8_t b[TSI_PRIV_MSG_MAX];
	size_t len;
	int failed;
};

void tsi_priv_msg_begin(struct tsi_priv_msg *m, uint32_t type, uint32_t id);
void tsi_priv_put_u32(struct tsi_priv_msg *m, uint32_t v);
void tsi_priv_put_i64(struct tsi_priv_msg *m, int64_t v);
void tsi_priv_put_str(struct tsi_priv_msg *m, const char *s, size_t len);
/* Writes the payload length into the header. TSI_ERR_TOO_LARGE when a
 * put did not fit. */
int tsi_priv_msg_end(struct tsi_priv_msg *m);

/* The request encoders (the front end's side). w: a Kubernetes workload,
 * NULL for a host workload. */
int tsi_priv_enc_sign(struct tsi_priv_msg *m, uint32_t id, uint32_t handle,
    const char *aud, const char *container, const struct tsi_workload *w);

/* ATT_ACTIVATE; ATT_CERTIFY (mask unused) or ATT_QUOTE (nonce, mask);
 * NODE_INSTALL. The payloadless requests need only tsi_priv_msg_begin. */
int tsi_priv_enc_activate(struct tsi_priv_msg *m, uint32_t id,
    const uint8_t *id_object, size_t id_len, const uint8_t *enc_secret,
    size_t secret_len);
int tsi_priv_enc_nonce(struct tsi_priv_msg *m, uint32_t type, uint32_t id,
    const uint8_t *nonce, size_t nonce_len, uint32_t mask);
int tsi_priv_enc_install(struct tsi_priv_msg *m, uint32_t id,
    const char *cert_pem, const char *ca_pem);

/* A reader over a received answer (borrowed msg). Gets fail once the
 * payload is short; tsi_priv_rd_end says whether it was used exactly. */
struct tsi_priv_rd {
	const uint8_t *p;
	size_t len, off;
	int failed;
};

/* Checks the header of an answer: its type must be want | ANSWER and the
 * sizes agree. Reads the status into *status. TSI_ERR_PARSE otherwise. */
int tsi_priv_ans_open(const uint8_t *msg, size_t len, uint32_t want,
    struct tsi_priv_rd *rd, uint32_t *id, int32_t *status);

uint32_t tsi_priv_get_u32(struct tsi_priv_rd *rd);
int64_t tsi_priv_get_i64(struct tsi_priv_rd *rd);
/* A string of at most max bytes with no NUL in it, copied to out (max + 1
 * bytes, NUL terminated). */
void tsi_priv_get_str(struct tsi_priv_rd *rd, char *out, size_t max);
/* A string of at most max bytes, borrowed from the message (not NUL
 * terminated): *s, *n. */
void tsi_priv_get_span(struct tsi_priv_rd *rd, const char **s, size_t *n,
    size_t max);
/* TSI_OK when every get succeeded and the payload is used up. */
int tsi_priv_rd_end(const struct tsi_priv_rd *rd);

/* The Kubernetes workload's claims as JSON (compact; *out: free) and back
 * (text borrowed, untrusted: exactly the keys namespace, pod,
 * service_account, container (strings of 1..TSI_PRIV_FIELD_MAX bytes),
 * images (sha256 digests) and image_names (strings), each present once,
 * nothing else; *out: tsi_workload_free). */
int tsi_priv_claims_encode(const struct tsi_workload *w, char **out,
    size_t *len);
int tsi_priv_claims_decode(const char *text, size_t len,
    struct tsi_workload **out);

#endif /* TSI_ISSUER_PRIV_PROTO_H */
