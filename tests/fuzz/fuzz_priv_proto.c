/* Fuzzes the signer's request parser (issuer/priv_proto.c): whatever it
 * accepts is a request in the table with its fields in their rules, and a
 * SIGN's claims encode back to a text the parser accepts again. An
 * accepted enrollment request has its fields inside the message and in
 * their rules (TPM2B framing, nonce 1..64 bytes, PCR mask nonzero below
 * 1 << 24, PEM text), and the front end's encoder writes it back to the
 * same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "issuer/priv_proto.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The field (p, n) lies inside the message (data, size). */
static void
inside(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
	uintptr_t at = (uintptr_t)p, base = (uintptr_t)data;

	if (n == 0)
		return;
	if (p == NULL || at < base || at - base > size ||
	    n > size - (at - base))
		abort();
}

static void
tpm2b_rules(const uint8_t *p, size_t n)
{
	if (n < 2 || n > TSI_PRIV_TPM2B_MAX ||
	    ((size_t)p[0] << 8 | p[1]) != n - 2)
		abort();
}

static void
pem_rules(const uint8_t *p, size_t n, size_t max)
{
	size_t i;

	if (n < 11 || n > max || memcmp(p, "-----BEGIN ", 11) != 0)
		abort();
	for (i = 0; i < n; i++)
		if (!((p[i] >= ' ' && p[i] <= '~') || p[i] == '\n' ||
		        p[i] == '\r'))
			abort();
}

/* A NUL-terminated copy of a field the rules say holds no NUL. */
static char *
text(const uint8_t *p, size_t n)
{
	char *t = malloc(n + 1);

	if (t == NULL)
		abort();
	memcpy(t, p, n);
	t[n] = '\0';
	return t;
}

/* An accepted enrollment request: its fields, and its encoding again. */
static void
check_enroll(const struct tsi_priv_req *q, const uint8_t *data, size_t size,
    struct tsi_priv_msg *m)
{
	struct tsi_priv_req q2;
	char *cert = NULL, *ca = NULL;
	int r = TSI_ERR_INTERNAL;

	if (q->w != NULL)
		abort();
	inside(q->a, q->alen, data, size);
	inside(q->b, q->blen, data, size);
	if (q->type != TSI_PRIV_ATT_QUOTE && q->mask != 0)
		abort();
	switch (q->type) {
	case TSI_PRIV_ATT_EK:
	case TSI_PRIV_ATT_AK:
	case TSI_PRIV_ATT_KEY:
	case TSI_PRIV_NODE_STATE:
		if (size != TSI_PRIV_HDR || q->alen != 0 || q->blen != 0)
			abort();
		tsi_priv_msg_begin(m, q->type, q->id);
		r = tsi_priv_msg_end(m);
		break;
	case TSI_PRIV_ATT_ACTIVATE:
		tpm2b_rules(q->a, q->alen);
		tpm2b_rules(q->b, q->blen);
		r = tsi_priv_enc_activate(m, q->id, q->a, q->alen, q->b,
		    q->blen);
		break;
	case TSI_PRIV_ATT_CERTIFY:
	case TSI_PRIV_ATT_QUOTE:
		if (q->alen == 0 || q->alen > TSI_PRIV_NONCE_MAX ||
		    q->blen != 0)
			abort();
		if (q->type == TSI_PRIV_ATT_QUOTE &&
		    (q->mask == 0 || q->mask >> TSI_PRIV_PCRS != 0))
			abort();
		r = tsi_priv_enc_nonce(m, q->type, q->id, q->a, q->alen,
		    q->mask);
		break;
	case TSI_PRIV_NODE_INSTALL:
		pem_rules(q->a, q->alen, TSI_PRIV_CERT_MAX);
		pem_rules(q->b, q->blen, TSI_PRIV_CA_MAX);
		cert = text(q->a, q->alen);
		ca = text(q->b, q->blen);
		r = tsi_priv_enc_install(m, q->id, cert, ca);
		break;
	default: abort();
	}
	if (r != TSI_OK || m->len != size || memcmp(m->b, data, size) != 0)
		abort();
	if (tsi_priv_req_decode(m->b, m->len, &q2) != TSI_OK ||
	    q2.type != q->type || q2.id != q->id || q2.alen != q->alen ||
	    q2.blen != q->blen || q2.mask != q->mask)
		abort();
	tsi_priv_req_clear(&q2);
	free(cert);
	free(ca);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsi_priv_req q, q2;
	static struct tsi_priv_msg m;
	int r;

	r = tsi_priv_req_decode(data, size, &q);
	if (r != TSI_OK) {
		if (q.w != NULL || q.a != NULL || q.b != NULL || q.alen != 0 ||
		    q.blen != 0 || q.mask != 0)
			abort();
		if (r != TSI_ERR_PARSE && r != TSI_ERR_TOO_LARGE &&
		    r != TSI_ERR_UNSUPPORTED && r != TSI_ERR_ALLOC)
			abort();
		return 0;
	}
	if (q.type < TSI_PRIV_IDENTIFY || q.type > TSI_PRIV_TYPE_LAST ||
	    q.type == TSI_PRIV_WAKE)
		abort();
	if (q.type == TSI_PRIV_SIGN) {
		if (strlen(q.aud) == 0 || strlen(q.aud) > 256 ||
		    (q.w != NULL) != (q.container[0] != '\0'))
			abort();
		if (tsi_priv_enc_sign(&m, q.id, q.handle, q.aud, q.container,
		        q.w) != TSI_OK)
			abort();
		if (tsi_priv_req_decode(m.b, m.len, &q2) != TSI_OK)
			abort();
		if (strcmp(q2.aud, q.aud) != 0 || q2.handle != q.handle)
			abort();
		tsi_priv_req_clear(&q2);
	}
	if (q.type >= TSI_PRIV_ATT_EK)
		check_enroll(&q, data, size, &m);
	tsi_priv_req_clear(&q);
	return 0;
}
