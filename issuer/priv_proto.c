/*
 * priv_proto.c - encoding and decoding of the signer's requests (see
 * priv_proto.h). Pure: no I/O, no global state.
 */
#include "issuer/priv_proto.h"

#include "issuer/config.h"
#include "tsi/err.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

void
tsi_priv_msg_begin(struct tsi_priv_msg *m, uint32_t type, uint32_t id)
{
	uint32_t zero = 0;

	memcpy(m->b, &type, 4);
	memcpy(m->b + 4, &id, 4);
	memcpy(m->b + 8, &zero, 4);
	m->len = TSI_PRIV_HDR;
	m->failed = 0;
}

static void
put(struct tsi_priv_msg *m, const void *p, size_t n)
{
	if (m->failed || sizeof(m->b) - m->len < n) {
		m->failed = 1;
		return;
	}
	memcpy(m->b + m->len, p, n);
	m->len += n;
}

void
tsi_priv_put_u32(struct tsi_priv_msg *m, uint32_t v)
{
	put(m, &v, 4);
}

void
tsi_priv_put_i64(struct tsi_priv_msg *m, int64_t v)
{
	put(m, &v, 8);
}

void
tsi_priv_put_str(struct tsi_priv_msg *m, const char *s, size_t len)
{
	if (len > UINT32_MAX) {
		m->failed = 1;
		return;
	}
	tsi_priv_put_u32(m, (uint32_t)len);
	put(m, s, len);
}

int
tsi_priv_msg_end(struct tsi_priv_msg *m)
{
	uint32_t n;

	if (m->failed)
		return TSI_ERR_TOO_LARGE;
	n = (uint32_t)(m->len - TSI_PRIV_HDR);
	memcpy(m->b + 8, &n, 4);
	return TSI_OK;
}

/* The reader. */

static const uint8_t *
get(struct tsi_priv_rd *rd, size_t n)
{
	const uint8_t *p;

	if (rd->failed || rd->len - rd->off < n) {
		rd->failed = 1;
		return NULL;
	}
	p = rd->p + rd->off;
	rd->off += n;
	return p;
}

uint32_t
tsi_priv_get_u32(struct tsi_priv_rd *rd)
{
	const uint8_t *p = get(rd, 4);
	uint32_t v = 0;

	if (p != NULL)
		memcpy(&v, p, 4);
	return v;
}

int64_t
tsi_priv_get_i64(struct tsi_priv_rd *rd)
{
	const uint8_t *p = get(rd, 8);
	int64_t v = 0;

	if (p != NULL)
		memcpy(&v, p, 8);
	return v;
}

void
tsi_priv_get_span(struct tsi_priv_rd *rd, const char **s, size_t *n, size_t max)
{
	uint32_t len = tsi_priv_get_u32(rd);
	const uint8_t *p;

	*s = "";
	*n = 0;
	if (rd->failed)
		return;
	if (len > max) {
		rd->failed = 1;
		return;
	}
	if ((p = get(rd, len)) == NULL)
		return;
	*s = (const char *)p;
	*n = len;
}

void
tsi_priv_get_str(struct tsi_priv_rd *rd, char *out, size_t max)
{
	const char *s;
	size_t n;

	out[0] = '\0';
	tsi_priv_get_span(rd, &s, &n, max);
	if (rd->failed)
		return;
	if (memchr(s, '\0', n) != NULL) {
		rd->failed = 1;
		return;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

int
tsi_priv_rd_end(const struct tsi_priv_rd *rd)
{
	return !rd->failed && rd->off == rd->len ? TSI_OK : TSI_ERR_PARSE;
}

/* Header: type, id, length; the length must be the rest of the datagram. */
static int
open_msg(const uint8_t *msg, size_t len, struct tsi_priv_rd *rd, uint32_t *type,
    uint32_t *id)
{
	uint32_t n;

	*type = 0;
	*id = 0;
	if (len < TSI_PRIV_HDR)
		return TSI_ERR_PARSE;
	memcpy(type, msg, 4);
	memcpy(id, msg + 4, 4);
	memcpy(&n, msg + 8, 4);
	if (len > TSI_PRIV_MSG_MAX)
		return TSI_ERR_TOO_LARGE;
	if (n != len - TSI_PRIV_HDR)
		return TSI_ERR_PARSE;
	rd->p = msg + TSI_PRIV_HDR;
	rd->len = n;
	rd->off = 0;
	rd->failed = 0;
	return TSI_OK;
}

int
tsi_priv_ans_open(const uint8_t *msg, size_t len, uint32_t want,
    struct tsi_priv_rd *rd, uint32_t *id, int32_t *status)
{
	uint32_t type, st;
	int r;

	if ((r = open_msg(msg, len, rd, &type, id)) != TSI_OK)
		return r;
	if (type != (want | TSI_PRIV_ANSWER))
		return TSI_ERR_PARSE;
	st = tsi_priv_get_u32(rd);
	if (rd->failed)
		return TSI_ERR_PARSE;
	*status = (int32_t)st;
	return TSI_OK;
}

/* The claims of a Kubernetes workload. */

static int
str_ok(const json_t *v)
{
	size_t n;

	if (!json_is_string(v))
		return 0;
	n = json_string_length(v);
	/* jansson allows NUL inside a string: not in a claim. */
	return n > 0 && n <= TSI_PRIV_FIELD_MAX &&
	    strlen(json_string_value(v)) == n;
}

static int
dup_str(const json_t *o, const char *key, char **out)
{
	const json_t *v = json_object_get(o, key);

	if (!str_ok(v))
		return TSI_ERR_PARSE;
	if ((*out = strdup(json_string_value(v))) == NULL)
		return TSI_ERR_ALLOC;
	return TSI_OK;
}

int
tsi_priv_claims_decode(const char *text, size_t len, struct tsi_workload **out)
{
	static const char *const keys[] = { "namespace", "pod",
		"service_account", "container", "images", "image_names" };
	struct tsi_workload *w = NULL;
	json_t *o = NULL, *a, *v;
	size_t i, k, nkeys = sizeof(keys) / sizeof(keys[0]);
	int r = TSI_ERR_PARSE;

	if (len > TSI_PRIV_CLAIMS_MAX) {
		r = TSI_ERR_TOO_LARGE;
		goto out;
	}
	/* jansson refuses text that is not UTF-8, and duplicate keys here. */
	if ((o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(o) || json_object_size(o) != nkeys)
		goto out;
	for (k = 0; k < nkeys; k++)
		if (json_object_get(o, keys[k]) == NULL)
			goto out;
	if ((w = tsi_workload_new(TSI_WORKLOAD_K8S)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if ((r = dup_str(o, "namespace", &w->namespace)) != TSI_OK ||
	    (r = dup_str(o, "pod", &w->pod)) != TSI_OK ||
	    (r = dup_str(o, "service_account", &w->service_account)) !=
	        TSI_OK ||
	    (r = dup_str(o, "container", &w->container)) != TSI_OK)
		goto out;
	r = TSI_ERR_PARSE;
	a = json_object_get(o, "images");
	if (!json_is_array(a) || json_array_size(a) > TSI_WORKLOAD_MAX_IMAGES)
		goto out;
	json_array_foreach (a, i, v) {
		if (!str_ok(v) || !tsi_issuer_is_digest(json_string_value(v)))
			goto out;
		if ((r = tsi_workload_add_image(w, json_string_value(v))) !=
		    TSI_OK)
			goto out;
		r = TSI_ERR_PARSE;
	}
	a = json_object_get(o, "image_names");
	if (!json_is_array(a) || json_array_size(a) > TSI_WORKLOAD_MAX_IMAGES)
		goto out;
	json_array_foreach (a, i, v) {
		if (!str_ok(v))
			goto out;
		if ((r = tsi_workload_add_image_name(w,
		         json_string_value(v))) != TSI_OK)
			goto out;
		r = TSI_ERR_PARSE;
	}
	*out = w;
	w = NULL;
	r = TSI_OK;
out:
	tsi_workload_free(w);
	json_decref(o);
	return r;
}

int
tsi_priv_claims_encode(const struct tsi_workload *w, char **out, size_t *len)
{
	json_t *o = NULL, *imgs, *names;
	size_t i;
	int r = TSI_ERR_ALLOC;

	if (w->kind != TSI_WORKLOAD_K8S || w->namespace == NULL ||
	    w->pod == NULL || w->service_account == NULL ||
	    w->container == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((o = json_pack("{s:s, s:s, s:s, s:s, s:[], s:[]}", "namespace",
	         w->namespace, "pod", w->pod, "service_account",
	         w->service_account, "container", w->container, "images",
	         "image_names")) == NULL)
		goto out;
	imgs = json_object_get(o, "images");
	names = json_object_get(o, "image_names");
	for (i = 0; i < w->n_images; i++)
		if (json_array_append_new(imgs, json_string(w->images[i])) != 0)
			goto out;
	for (i = 0; i < w->n_image_names; i++)
		if (json_array_append_new(names,
		        json_string(w->image_names[i])) != 0)
			goto out;
	if ((*out = json_dumps(o, JSON_COMPACT)) == NULL)
		goto out;
	*len = strlen(*out);
	r = *len > TSI_PRIV_CLAIMS_MAX ? TSI_ERR_TOO_LARGE : TSI_OK;
	if (r != TSI_OK) {
		free(*out);
		*out = NULL;
	}
out:
	json_decref(o);
	return r;
}

/* The requests. */

static int
container_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0)
		return 1;
	if (n != 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		        (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int
aud_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 256)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return 0;
	return 1;
}

/* A TPM2B: its big-endian u16 size is the rest of the field. */
static int
tpm2b_ok(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;

	return n >= 2 && n <= TSI_PRIV_TPM2B_MAX &&
	    ((size_t)p[0] << 8 | p[1]) == n - 2;
}

/* PEM text: printable ASCII and line ends, beginning with a PEM line. */
static int
pem_ok(const char *s, size_t n)
{
	static const char begin[] = "-----BEGIN ";
	size_t i;

	if (n < sizeof(begin) - 1 || memcmp(s, begin, sizeof(begin) - 1) != 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= ' ' && s[i] <= '~') || s[i] == '\n' ||
		        s[i] == '\r'))
			return 0;
	return 1;
}

/* The enrollment requests' payloads (types past HEALTH). */
static int
decode_enroll(struct tsi_priv_rd *rd, struct tsi_priv_req *out)
{
	const char *a = "", *b = "";
	size_t alen = 0, blen = 0;

	switch (out->type) {
	case TSI_PRIV_ATT_EK:
	case TSI_PRIV_ATT_AK:
	case TSI_PRIV_ATT_KEY:
	case TSI_PRIV_NODE_STATE: return rd->len == 0 ? TSI_OK : TSI_ERR_PARSE;
	case TSI_PRIV_ATT_ACTIVATE:
		if (rd->len > 2 * (4 + TSI_PRIV_TPM2B_MAX))
			return TSI_ERR_TOO_LARGE;
		tsi_priv_get_span(rd, &a, &alen, TSI_PRIV_TPM2B_MAX);
		tsi_priv_get_span(rd, &b, &blen, TSI_PRIV_TPM2B_MAX);
		if (tsi_priv_rd_end(rd) != TSI_OK || !tpm2b_ok(a, alen) ||
		    !tpm2b_ok(b, blen))
			return TSI_ERR_PARSE;
		break;
	case TSI_PRIV_ATT_CERTIFY:
	case TSI_PRIV_ATT_QUOTE:
		if (rd->len > 4 + TSI_PRIV_NONCE_MAX + 4)
			return TSI_ERR_TOO_LARGE;
		tsi_priv_get_span(rd, &a, &alen, TSI_PRIV_NONCE_MAX);
		if (out->type == TSI_PRIV_ATT_QUOTE)
			out->mask = tsi_priv_get_u32(rd);
		if (tsi_priv_rd_end(rd) != TSI_OK || alen == 0)
			return TSI_ERR_PARSE;
		if (out->type == TSI_PRIV_ATT_QUOTE &&
		    (out->mask == 0 || out->mask >> TSI_PRIV_PCRS != 0))
			return TSI_ERR_PARSE;
		break;
	case TSI_PRIV_NODE_INSTALL:
		if (rd->len > 8 + TSI_PRIV_CERT_MAX + TSI_PRIV_CA_MAX)
			return TSI_ERR_TOO_LARGE;
		tsi_priv_get_span(rd, &a, &alen, TSI_PRIV_CERT_MAX);
		tsi_priv_get_span(rd, &b, &blen, TSI_PRIV_CA_MAX);
		if (tsi_priv_rd_end(rd) != TSI_OK || !pem_ok(a, alen) ||
		    !pem_ok(b, blen))
			return TSI_ERR_PARSE;
		break;
	default: return TSI_ERR_UNSUPPORTED;
	}
	out->a = (const uint8_t *)a;
	out->alen = alen;
	out->b = (const uint8_t *)b;
	out->blen = blen;
	return TSI_OK;
}

int
tsi_priv_req_decode(const uint8_t *msg, size_t len, struct tsi_priv_req *out)
{
	struct tsi_priv_rd rd;
	const char *claims;
	size_t n;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = open_msg(msg, len, &rd, &out->type, &out->id)) != TSI_OK)
		return r;
	switch (out->type) {
	case TSI_PRIV_IDENTIFY:
	case TSI_PRIV_JWKS:
	case TSI_PRIV_HEALTH: return rd.len == 0 ? TSI_OK : TSI_ERR_PARSE;
	case TSI_PRIV_RELEASE:
		if (rd.len != 4)
			return TSI_ERR_PARSE;
		out->handle = tsi_priv_get_u32(&rd);
		return TSI_OK;
	case TSI_PRIV_SIGN:
		if (rd.len > TSI_PRIV_SIGN_MAX)
			return TSI_ERR_TOO_LARGE;
		out->handle = tsi_priv_get_u32(&rd);
		tsi_priv_get_str(&rd, out->aud, sizeof(out->aud) - 1);
		tsi_priv_get_str(&rd, out->container,
		    sizeof(out->container) - 1);
		tsi_priv_get_span(&rd, &claims, &n, TSI_PRIV_CLAIMS_MAX);
		if (tsi_priv_rd_end(&rd) != TSI_OK || !aud_ok(out->aud) ||
		    !container_ok(out->container))
			return TSI_ERR_PARSE;
		/* Claims come with a container id and only then. */
		if ((n == 0) != (out->container[0] == '\0'))
			return TSI_ERR_PARSE;
		if (n == 0)
			return TSI_OK;
		if ((r = tsi_priv_claims_decode(claims, n, &out->w)) != TSI_OK)
			return r == TSI_ERR_ALLOC ? r : TSI_ERR_PARSE;
		return TSI_OK;
	case TSI_PRIV_WAKE: return TSI_ERR_UNSUPPORTED; /* the signer's */
	default:
		if ((r = decode_enroll(&rd, out)) != TSI_OK) {
			out->a = out->b = NULL;
			out->alen = out->blen = 0;
			out->mask = 0;
		}
		return r;
	}
}

void
tsi_priv_req_clear(struct tsi_priv_req *r)
{
	tsi_workload_free(r->w);
	r->w = NULL;
}

int
tsi_priv_enc_sign(struct tsi_priv_msg *m, uint32_t id, uint32_t handle,
    const char *aud, const char *container, const struct tsi_workload *w)
{
	char *claims = NULL;
	size_t n = 0;
	int r;

	if (w != NULL && (r = tsi_priv_claims_encode(w, &claims, &n)) != TSI_OK)
		return r;
	tsi_priv_msg_begin(m, TSI_PRIV_SIGN, id);
	tsi_priv_put_u32(m, handle);
	tsi_priv_put_str(m, aud, strlen(aud));
	tsi_priv_put_str(m, container, strlen(container));
	tsi_priv_put_str(m, claims != NULL ? claims : "", n);
	free(claims);
	return tsi_priv_msg_end(m);
}

int
tsi_priv_enc_activate(struct tsi_priv_msg *m, uint32_t id,
    const uint8_t *id_object, size_t id_len, const uint8_t *enc_secret,
    size_t secret_len)
{
	tsi_priv_msg_begin(m, TSI_PRIV_ATT_ACTIVATE, id);
	tsi_priv_put_str(m, (const char *)id_object, id_len);
	tsi_priv_put_str(m, (const char *)enc_secret, secret_len);
	return tsi_priv_msg_end(m);
}

int
tsi_priv_enc_nonce(struct tsi_priv_msg *m, uint32_t type, uint32_t id,
    const uint8_t *nonce, size_t nonce_len, uint32_t mask)
{
	if (type != TSI_PRIV_ATT_CERTIFY && type != TSI_PRIV_ATT_QUOTE)
		return TSI_ERR_INVALID_ARG;
	tsi_priv_msg_begin(m, type, id);
	tsi_priv_put_str(m, (const char *)nonce, nonce_len);
	if (type == TSI_PRIV_ATT_QUOTE)
		tsi_priv_put_u32(m, mask);
	return tsi_priv_msg_end(m);
}

int
tsi_priv_enc_install(struct tsi_priv_msg *m, uint32_t id, const char *cert_pem,
    const char *ca_pem)
{
	tsi_priv_msg_begin(m, TSI_PRIV_NODE_INSTALL, id);
	tsi_priv_put_str(m, cert_pem, strlen(cert_pem));
	tsi_priv_put_str(m, ca_pem, strlen(ca_pem));
	return tsi_priv_msg_end(m);
}
