/*
 * test_priv_proto.c - the signer's request parser (issuer/priv_proto.c):
 * every request type in its good shape, and every malformed shape of each
 * (short header, length over its bound, wrong type, truncated fields,
 * trailing bytes, bad strings, bad UTF-8 or JSON in the claims) refused;
 * the same for the enrollment requests (TPM2B framing, nonce and PCR mask
 * rules, PEM text), and their encoders read back by the decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "issuer/priv_proto.h"
#include "tsi/err.h"
#include "tsi/log.h"

#define CID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define IMG \
	"sha256:" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define GOOD_CLAIMS \
	"{\"namespace\":\"ns\",\"pod\":\"p\"," \
	"\"service_account\":\"sa\",\"container\":\"c\",\"images\":[\"" IMG \
	"\"],\"image_names\":[\"repo/app:1\"]}"

static struct tsi_priv_msg m;

/* A SIGN with the given fields; claims may hold any bytes (len given). */
static void
build_sign(uint32_t handle, const char *aud, const char *cid,
    const char *claims, size_t claims_len)
{
	tsi_priv_msg_begin(&m, TSI_PRIV_SIGN, 7);
	tsi_priv_put_u32(&m, handle);
	tsi_priv_put_str(&m, aud, strlen(aud));
	tsi_priv_put_str(&m, cid, strlen(cid));
	tsi_priv_put_str(&m, claims, claims_len);
	assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
}

/* Decodes a copy of the len bytes of b in a heap block of exactly that
 * size, so that the sanitizer build sees a read past the datagram. A
 * refused request holds nothing: no workload, no enrollment fields for the
 * caller to act on by mistake. */
static int
decode(const uint8_t *b, size_t len, struct tsi_priv_req *q)
{
	uint8_t *copy = malloc(len > 0 ? len : 1);
	int r;

	assert_non_null(copy);
	memcpy(copy, b, len);
	r = tsi_priv_req_decode(copy, len, q);
	free(copy);
	if (r != TSI_OK) {
		assert_null(q->w);
		assert_null(q->a);
		assert_null(q->b);
		assert_int_equal(q->alen, 0);
		assert_int_equal(q->blen, 0);
		assert_int_equal(q->mask, 0);
	}
	tsi_priv_req_clear(q);
	return r;
}

static void
test_good_requests(void **state)
{
	struct tsi_priv_req q;
	uint32_t t;

	(void)state;
	for (t = TSI_PRIV_IDENTIFY; t <= TSI_PRIV_HEALTH; t++) {
		if (t == TSI_PRIV_RELEASE || t == TSI_PRIV_SIGN)
			continue;
		tsi_priv_msg_begin(&m, t, 3);
		assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
		assert_int_equal(tsi_priv_req_decode(m.b, m.len, &q), TSI_OK);
		assert_int_equal(q.type, t);
		assert_int_equal(q.id, 3);
		tsi_priv_req_clear(&q);
	}
	tsi_priv_msg_begin(&m, TSI_PRIV_RELEASE, 4);
	tsi_priv_put_u32(&m, 0x10005);
	assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
	assert_int_equal(tsi_priv_req_decode(m.b, m.len, &q), TSI_OK);
	assert_int_equal(q.handle, 0x10005);
	tsi_priv_req_clear(&q);

	/* Host workload: no claims, no container. */
	build_sign(9, "tsi-vault", "", "", 0);
	assert_int_equal(tsi_priv_req_decode(m.b, m.len, &q), TSI_OK);
	assert_int_equal(q.handle, 9);
	assert_string_equal(q.aud, "tsi-vault");
	assert_null(q.w);
	tsi_priv_req_clear(&q);

	/* Kubernetes workload: the claims become a workload. */
	build_sign(9, "tsi-vault", CID, GOOD_CLAIMS, strlen(GOOD_CLAIMS));
	assert_int_equal(tsi_priv_req_decode(m.b, m.len, &q), TSI_OK);
	assert_string_equal(q.container, CID);
	assert_non_null(q.w);
	assert_string_equal(q.w->namespace, "ns");
	assert_string_equal(q.w->service_account, "sa");
	assert_int_equal(q.w->n_images, 1);
	assert_string_equal(q.w->images[0], IMG);
	assert_string_equal(q.w->image_names[0], "repo/app:1");
	tsi_priv_req_clear(&q);
}

/* The encoder and decoder agree on a workload. */
static void
test_claims_round_trip(void **state)
{
	struct tsi_workload *w, *back = NULL;
	struct tsi_priv_req q;

	(void)state;
	assert_non_null(w = tsi_workload_new(TSI_WORKLOAD_K8S));
	assert_non_null(w->namespace = strdup("default"));
	assert_non_null(w->pod = strdup("web-1"));
	assert_non_null(w->service_account = strdup("web"));
	assert_non_null(w->container = strdup("app"));
	assert_int_equal(tsi_workload_add_image(w, IMG), TSI_OK);
	assert_int_equal(tsi_workload_add_image_name(w, "nginx:1"), TSI_OK);
	assert_int_equal(tsi_priv_enc_sign(&m, 1, 2, "a", CID, w), TSI_OK);
	assert_int_equal(tsi_priv_req_decode(m.b, m.len, &q), TSI_OK);
	back = q.w;
	assert_non_null(back);
	assert_string_equal(back->pod, "web-1");
	assert_string_equal(back->container, "app");
	assert_string_equal(back->image_names[0], "nginx:1");
	tsi_priv_req_clear(&q);
	tsi_workload_free(w);
}

static void
test_bad_headers(void **state)
{
	struct tsi_priv_req q;
	uint8_t b[64];
	uint32_t v;

	(void)state;
	/* Short header: every length below 12. */
	memset(b, 0, sizeof(b));
	for (v = 0; v < TSI_PRIV_HDR; v++)
		assert_int_equal(decode(b, v, &q), TSI_ERR_PARSE);
	/* Length field says more, or less, than the datagram holds. */
	tsi_priv_msg_begin(&m, TSI_PRIV_HEALTH, 1);
	assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
	v = 4;
	memcpy(m.b + 8, &v, 4);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	v = 0xffffffffu;
	memcpy(m.b + 8, &v, 4);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	/* Types outside the table, answers and WAKE included. */
	{
		static const uint32_t bad[] = { 0, TSI_PRIV_TYPE_LAST + 1, 100,
			0xffffffffu, TSI_PRIV_SIGN | TSI_PRIV_ANSWER,
			TSI_PRIV_WAKE };

		for (v = 0; v < sizeof(bad) / sizeof(bad[0]); v++) {
			tsi_priv_msg_begin(&m, bad[v], 5);
			assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
			assert_int_equal(decode(m.b, m.len, &q),
			    TSI_ERR_UNSUPPORTED);
		}
	}
	/* The error still names the request, for the answer. */
	tsi_priv_msg_begin(&m, 77, 42);
	assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
	assert_int_equal(tsi_priv_req_decode(m.b, m.len, &q),
	    TSI_ERR_UNSUPPORTED);
	assert_int_equal(q.id, 42);
	/* A datagram over the maximum. */
	assert_int_equal(decode(m.b, TSI_PRIV_MSG_MAX + 1, &q),
	    TSI_ERR_TOO_LARGE);
}

/* Requests with no payload, and RELEASE with exactly 4 bytes: any other
 * size is refused (trailing or missing bytes). */
static void
test_bad_sizes(void **state)
{
	static const uint32_t empty[] = { TSI_PRIV_IDENTIFY, TSI_PRIV_JWKS,
		TSI_PRIV_HEALTH };
	struct tsi_priv_req q;
	size_t i, n;

	(void)state;
	for (i = 0; i < 3; i++) {
		tsi_priv_msg_begin(&m, empty[i], 1);
		tsi_priv_put_u32(&m, 0);
		assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
		assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	}
	for (n = 0; n < 9; n++) {
		if (n == 4)
			continue;
		tsi_priv_msg_begin(&m, TSI_PRIV_RELEASE, 1);
		while (m.len < TSI_PRIV_HDR + n)
			m.b[m.len++] = 1;
		assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
		assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	}
	/* A SIGN over its bound, well-formed otherwise; and claims over
	 * theirs in a SIGN within it. */
	{
		size_t big_len = TSI_PRIV_SIGN_MAX;
		char *big = malloc(big_len);

		assert_non_null(big);
		memset(big, ' ', big_len);
		build_sign(1, "a", CID, big, big_len);
		assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_TOO_LARGE);
		build_sign(1, "a", CID, big, TSI_PRIV_CLAIMS_MAX + 1);
		assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
		free(big);
	}
}

/* Every cut of a good SIGN, and the same with bytes after it. */
static void
test_sign_truncated_and_trailing(void **state)
{
	struct tsi_priv_req q;
	uint8_t copy[1024];
	uint32_t n;
	size_t cut, full;

	(void)state;
	build_sign(9, "tsi-vault", CID, GOOD_CLAIMS, strlen(GOOD_CLAIMS));
	full = m.len;
	assert_true(full < sizeof(copy) - 8);
	memcpy(copy, m.b, full);
	for (cut = TSI_PRIV_HDR; cut < full; cut++) {
		/* Length field consistent with the cut: the fields are short. */
		n = (uint32_t)(cut - TSI_PRIV_HDR);
		memcpy(copy + 8, &n, 4);
		assert_int_equal(decode(copy, cut, &q), TSI_ERR_PARSE);
	}
	for (cut = 1; cut <= 8; cut++) {
		memset(copy + full, 'x', cut);
		n = (uint32_t)(full + cut - TSI_PRIV_HDR);
		memcpy(copy + 8, &n, 4);
		assert_int_equal(decode(copy, full + cut, &q), TSI_ERR_PARSE);
	}
}

static void
test_sign_bad_fields(void **state)
{
	static const char *const bad_claims[] = {
		"",                       /* with a container */
		"{",                      /* not JSON */
		"[]",                     /* not an object */
		"{\"namespace\":\"ns\"}", /* keys missing */
		"{\"namespace\":\"ns\",\"pod\":\"p\",\"service_account\":"
		"\"sa\","
		"\"container\":\"c\",\"images\":[],\"image_names\":[],"
		"\"extra\":1}", /* a key too many */
		"{\"namespace\":\"ns\",\"namespace\":\"ns\",\"pod\":\"p\","
		"\"service_account\":\"sa\",\"container\":\"c\","
		"\"images\":[]}", /* duplicate key */
		"{\"namespace\":1,\"pod\":\"p\",\"service_account\":\"sa\","
		"\"container\":\"c\",\"images\":[],\"image_names\":[]}",
		"{\"namespace\":\"\",\"pod\":\"p\",\"service_account\":\"sa\","
		"\"container\":\"c\",\"images\":[],\"image_names\":[]}",
		"{\"namespace\":\"n\\u0000s\",\"pod\":\"p\",\"service_"
		"account\":"
		"\"sa\",\"container\":\"c\",\"images\":[],\"image_names\":[]}",
		"{\"namespace\":\"ns\",\"pod\":\"p\",\"service_account\":"
		"\"sa\","
		"\"container\":\"c\",\"images\":[\"sha256:zz\"],"
		"\"image_names\":[]}", /* not a digest */
		"{\"namespace\":\"ns\",\"pod\":\"p\",\"service_account\":"
		"\"sa\","
		"\"container\":\"c\",\"images\":{},\"image_names\":[]}",
		"{\"namespace\":\"ns\",\"pod\":\"p\",\"service_account\":"
		"\"sa\","
		"\"container\":\"c\",\"images\":[],\"image_names\":[1]}",
		"{\"namespace\":\"n\xc3\x28\",\"pod\":\"p\",\"service_"
		"account\":"
		"\"sa\",\"container\":\"c\",\"images\":[],"
		"\"image_names\":[]}", /* bad UTF-8 */
		"{\"namespace\":\"\xff\xfe\",\"pod\":\"p\",\"service_account\":"
		"\"sa\",\"container\":\"c\",\"images\":[],"
		"\"image_names\":[]}", /* bad UTF-8 */
		GOOD_CLAIMS " x",      /* text after it */
	};
	struct tsi_priv_req q;
	char aud[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_claims) / sizeof(bad_claims[0]); i++) {
		build_sign(1, "a", CID, bad_claims[i], strlen(bad_claims[i]));
		assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	}
	/* Claims without a container id. */
	build_sign(1, "a", "", GOOD_CLAIMS, strlen(GOOD_CLAIMS));
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	/* Container ids: wrong length, upper case, not hex. */
	build_sign(1, "a", "abc", GOOD_CLAIMS, strlen(GOOD_CLAIMS));
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	build_sign(1, "a",
	    "0123456789ABCDEF0123456789abcdef0123456789abcdef"
	    "0123456789abcdef",
	    GOOD_CLAIMS, strlen(GOOD_CLAIMS));
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	build_sign(1, "a", CID "0", GOOD_CLAIMS, strlen(GOOD_CLAIMS));
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	/* aud: empty, a space, a control byte, over 256 bytes. */
	build_sign(1, "", "", "", 0);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	build_sign(1, "a b", "", "", 0);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	build_sign(1, "a\x01", "", "", 0);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	memset(aud, 'a', 257);
	aud[257] = '\0';
	build_sign(1, aud, "", "", 0);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	aud[256] = '\0';
	build_sign(1, aud, "", "", 0);
	assert_int_equal(decode(m.b, m.len, &q), TSI_OK);
	/* A NUL inside a string field. */
	tsi_priv_msg_begin(&m, TSI_PRIV_SIGN, 1);
	tsi_priv_put_u32(&m, 1);
	tsi_priv_put_str(&m, "a\0b", 3);
	tsi_priv_put_str(&m, "", 0);
	tsi_priv_put_str(&m, "", 0);
	assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	/* A string length past the payload. */
	tsi_priv_msg_begin(&m, TSI_PRIV_SIGN, 1);
	tsi_priv_put_u32(&m, 1);
	tsi_priv_put_u32(&m, 0x7fffffffu);
	tsi_priv_put_str(&m, "a", 1);
	assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
}

/*
 * Enrollment requests. Their fields are borrowed from the message: a
 * decoded request points into m.b.
 */

/* Field buffers, large enough for NODE_INSTALL's CA bundle and one more
 * byte (over the bound) and a NUL. */
static uint8_t fa[TSI_PRIV_CA_MAX + 16], fb[TSI_PRIV_CA_MAX + 16];

static const uint32_t enroll_empty[] = { TSI_PRIV_ATT_EK, TSI_PRIV_ATT_AK,
	TSI_PRIV_ATT_KEY, TSI_PRIV_NODE_STATE };
#define N_ENROLL_EMPTY (sizeof(enroll_empty) / sizeof(enroll_empty[0]))

#define GOOD_PEM \
	"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n" \
	"-----END CERTIFICATE-----\n"
#define GOOD_PEM_CRLF \
	"-----BEGIN CERTIFICATE-----\r\nMIIBszCCAVmgAwIBAgIU\r\n" \
	"-----END CERTIFICATE-----\r\n"

/* A TPM2B of n bytes in all (n >= 2): its size as the TPM writes it (u16,
 * big-endian, n - 2), then n - 2 bytes of fill. */
static uint8_t *
tpm2b(uint8_t *buf, size_t n, uint8_t fill)
{
	buf[0] = (uint8_t)((n - 2) >> 8);
	buf[1] = (uint8_t)((n - 2) & 0xff);
	memset(buf + 2, fill, n - 2);
	return buf;
}

/* PEM-shaped text of exactly n bytes (a BEGIN line, then 64-column lines),
 * NUL terminated after them. */
static const char *
pem_text(uint8_t *buf, size_t n)
{
	static const char head[] = "-----BEGIN CERTIFICATE-----\n";
	size_t i;

	assert_true(n >= sizeof(head) - 1);
	memcpy(buf, head, sizeof(head) - 1);
	for (i = sizeof(head) - 1; i < n; i++)
		buf[i] = i % 65 == 64 ? '\n' : (uint8_t)('A' + i % 26);
	buf[n] = '\0';
	return (const char *)buf;
}

/* ACTIVATE or NODE_INSTALL: two string fields of any bytes. */
static void
build_two(uint32_t type, const void *a, size_t alen, const void *b, size_t blen)
{
	tsi_priv_msg_begin(&m, type, 21);
	tsi_priv_put_str(&m, a, alen);
	tsi_priv_put_str(&m, b, blen);
	assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
}

/* CERTIFY (no mask field) or QUOTE (the mask after the nonce). */
static void
build_nonce(uint32_t type, const void *nonce, size_t len, uint32_t mask)
{
	tsi_priv_msg_begin(&m, type, 22);
	tsi_priv_put_str(&m, nonce, len);
	if (type == TSI_PRIV_ATT_QUOTE)
		tsi_priv_put_u32(&m, mask);
	assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
}

/* Decodes m, which must be accepted, and checks the fields a and b are
 * the given bytes and point into the message (borrowed, not copied). */
static void
expect_fields(struct tsi_priv_req *q, uint32_t type, const void *a, size_t alen,
    const void *b, size_t blen)
{
	assert_int_equal(tsi_priv_req_decode(m.b, m.len, q), TSI_OK);
	assert_int_equal(q->type, type);
	assert_null(q->w);
	assert_int_equal(q->alen, alen);
	assert_int_equal(q->blen, blen);
	if (alen > 0) {
		assert_ptr_equal(q->a, m.b + TSI_PRIV_HDR + 4);
		assert_memory_equal(q->a, a, alen);
	}
	if (blen > 0) {
		assert_ptr_equal(q->b, m.b + TSI_PRIV_HDR + 4 + alen + 4);
		assert_memory_equal(q->b, b, blen);
	}
}

static void
test_enroll_good(void **state)
{
	static const char ca2[] = GOOD_PEM GOOD_PEM;
	struct tsi_priv_req q;
	uint8_t nonce[TSI_PRIV_NONCE_MAX];
	static const uint32_t masks[] = { 1, 1u << 23, (1u << 24) - 1,
		0x80a01 };
	static const size_t nlens[] = { 1, 20, 32, TSI_PRIV_NONCE_MAX };
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(nonce); i++)
		nonce[i] =
		    (uint8_t)(i * 37); /* a NUL first: nonces are bytes */
	for (i = 0; i < N_ENROLL_EMPTY; i++) {
		tsi_priv_msg_begin(&m, enroll_empty[i], (uint32_t)(30 + i));
		assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
		assert_int_equal(tsi_priv_req_decode(m.b, m.len, &q), TSI_OK);
		assert_int_equal(q.type, enroll_empty[i]);
		assert_int_equal(q.id, 30 + i);
		assert_int_equal(q.alen, 0);
		assert_int_equal(q.blen, 0);
		assert_int_equal(q.mask, 0);
		assert_null(q.w);
		tsi_priv_req_clear(&q);
	}
	/* ACTIVATE: a = id_object, b = enc_secret. */
	tpm2b(fa, 6, 0xa1);
	tpm2b(fb, 4, 0xb2);
	build_two(TSI_PRIV_ATT_ACTIVATE, fa, 6, fb, 4);
	expect_fields(&q, TSI_PRIV_ATT_ACTIVATE, fa, 6, fb, 4);
	assert_int_equal(q.id, 21);
	assert_int_equal(q.mask, 0);
	tsi_priv_req_clear(&q);
	/* A TPM2B at both its bounds: its size alone, and the maximum. */
	tpm2b(fa, 2, 0);
	tpm2b(fb, TSI_PRIV_TPM2B_MAX, 0xb3);
	build_two(TSI_PRIV_ATT_ACTIVATE, fa, 2, fb, TSI_PRIV_TPM2B_MAX);
	expect_fields(&q, TSI_PRIV_ATT_ACTIVATE, fa, 2, fb, TSI_PRIV_TPM2B_MAX);
	tsi_priv_req_clear(&q);
	/* CERTIFY: a = the nonce, 1 to 64 bytes; QUOTE: and the mask, its
	 * lowest and highest PCR. */
	for (i = 0; i < sizeof(nlens) / sizeof(nlens[0]); i++) {
		build_nonce(TSI_PRIV_ATT_CERTIFY, nonce, nlens[i], 0);
		expect_fields(&q, TSI_PRIV_ATT_CERTIFY, nonce, nlens[i], NULL,
		    0);
		assert_int_equal(q.mask, 0);
		tsi_priv_req_clear(&q);
		for (k = 0; k < sizeof(masks) / sizeof(masks[0]); k++) {
			build_nonce(TSI_PRIV_ATT_QUOTE, nonce, nlens[i],
			    masks[k]);
			expect_fields(&q, TSI_PRIV_ATT_QUOTE, nonce, nlens[i],
			    NULL, 0);
			assert_int_equal(q.mask, masks[k]);
			tsi_priv_req_clear(&q);
		}
	}
	/* NODE_INSTALL: a = the certificate, b = the CA (a bundle, CRLF
	 * line ends allowed), each also at its bound. */
	build_two(TSI_PRIV_NODE_INSTALL, GOOD_PEM_CRLF, strlen(GOOD_PEM_CRLF),
	    ca2, strlen(ca2));
	expect_fields(&q, TSI_PRIV_NODE_INSTALL, GOOD_PEM_CRLF,
	    strlen(GOOD_PEM_CRLF), ca2, strlen(ca2));
	assert_int_equal(q.mask, 0);
	tsi_priv_req_clear(&q);
	pem_text(fa, TSI_PRIV_CERT_MAX);
	pem_text(fb, TSI_PRIV_CA_MAX);
	build_two(TSI_PRIV_NODE_INSTALL, fa, TSI_PRIV_CERT_MAX, fb,
	    TSI_PRIV_CA_MAX);
	expect_fields(&q, TSI_PRIV_NODE_INSTALL, fa, TSI_PRIV_CERT_MAX, fb,
	    TSI_PRIV_CA_MAX);
	tsi_priv_req_clear(&q);
}

/* EK, AK, KEY and NODE_STATE carry nothing: any payload is refused, and
 * the refusal still names the request. */
static void
test_enroll_payloadless(void **state)
{
	struct tsi_priv_req q;
	size_t i;

	(void)state;
	for (i = 0; i < N_ENROLL_EMPTY; i++) {
		tsi_priv_msg_begin(&m, enroll_empty[i], 40);
		tsi_priv_put_u32(&m, 0);
		assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
		assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
		assert_int_equal(q.type, enroll_empty[i]);
		assert_int_equal(q.id, 40);
		tsi_priv_msg_begin(&m, enroll_empty[i], 41);
		m.b[m.len++] = 0;
		assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
		assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
		tsi_priv_msg_begin(&m, enroll_empty[i], 42);
		tsi_priv_put_str(&m, GOOD_PEM, strlen(GOOD_PEM));
		assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
		assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	}
}

/* Every cut of the good message in m (with a length field that agrees)
 * and the same message with 1 to 8 bytes after it: all refused. */
static void
cuts_and_trailers(void)
{
	static uint8_t copy[4096];
	struct tsi_priv_req q;
	size_t cut, full = m.len;
	uint32_t n;

	assert_true(full < sizeof(copy) - 8);
	memcpy(copy, m.b, full);
	assert_int_equal(decode(copy, full, &q), TSI_OK);
	for (cut = TSI_PRIV_HDR; cut < full; cut++) {
		n = (uint32_t)(cut - TSI_PRIV_HDR);
		memcpy(copy + 8, &n, 4);
		assert_int_equal(decode(copy, cut, &q), TSI_ERR_PARSE);
	}
	for (cut = 1; cut <= 8; cut++) {
		memset(copy + full, 0, cut);
		n = (uint32_t)(full + cut - TSI_PRIV_HDR);
		memcpy(copy + 8, &n, 4);
		assert_int_equal(decode(copy, full + cut, &q), TSI_ERR_PARSE);
	}
}

static void
test_enroll_truncated_and_trailing(void **state)
{
	static const uint8_t nonce[20] = { 9, 8, 7 };

	(void)state;
	tpm2b(fa, 40, 0xa1);
	tpm2b(fb, 30, 0xb2);
	build_two(TSI_PRIV_ATT_ACTIVATE, fa, 40, fb, 30);
	cuts_and_trailers();
	build_nonce(TSI_PRIV_ATT_CERTIFY, nonce, sizeof(nonce), 0);
	cuts_and_trailers();
	build_nonce(TSI_PRIV_ATT_QUOTE, nonce, sizeof(nonce), 0x7);
	cuts_and_trailers();
	build_two(TSI_PRIV_NODE_INSTALL, GOOD_PEM, strlen(GOOD_PEM), GOOD_PEM,
	    strlen(GOOD_PEM));
	cuts_and_trailers();
}

/* ACTIVATE with one field (side 0: id_object, 1: enc_secret) the bn bytes
 * of bad and the other a good TPM2B: what the decoder says. */
static int
activate_one_bad(int side, const uint8_t *bad, size_t bn)
{
	uint8_t good[10];
	struct tsi_priv_req q;

	tpm2b(good, sizeof(good), 0x55);
	if (side == 0)
		build_two(TSI_PRIV_ATT_ACTIVATE, bad, bn, good, sizeof(good));
	else
		build_two(TSI_PRIV_ATT_ACTIVATE, good, sizeof(good), bad, bn);
	return decode(m.b, m.len, &q);
}

/* ACTIVATE's TPM2Bs: the u16 size must be the rest of the field, the
 * field 2..TSI_PRIV_TPM2B_MAX bytes; the payload has its own bound. */
static void
test_enroll_tpm2b(void **state)
{
	struct tsi_priv_req q;
	int side;

	(void)state;
	for (side = 0; side < 2; side++) {
		/* Good, then its size one less, two more, all ones, and
		 * little-endian. */
		tpm2b(fa, 8, 0x66);
		assert_int_equal(activate_one_bad(side, fa, 8), TSI_OK);
		fa[1] = 5;
		assert_int_equal(activate_one_bad(side, fa, 8), TSI_ERR_PARSE);
		fa[1] = 8;
		assert_int_equal(activate_one_bad(side, fa, 8), TSI_ERR_PARSE);
		fa[0] = 0xff;
		fa[1] = 0xff;
		assert_int_equal(activate_one_bad(side, fa, 8), TSI_ERR_PARSE);
		fa[0] = 6;
		fa[1] = 0;
		assert_int_equal(activate_one_bad(side, fa, 8), TSI_ERR_PARSE);
		/* Shorter than its size field: one byte, none. */
		fa[0] = 0;
		assert_int_equal(activate_one_bad(side, fa, 1), TSI_ERR_PARSE);
		assert_int_equal(activate_one_bad(side, fa, 0), TSI_ERR_PARSE);
		/* At TSI_PRIV_TPM2B_MAX, and well framed one byte over it. */
		tpm2b(fa, TSI_PRIV_TPM2B_MAX, 0x77);
		assert_int_equal(activate_one_bad(side, fa, TSI_PRIV_TPM2B_MAX),
		    TSI_OK);
		tpm2b(fa, TSI_PRIV_TPM2B_MAX + 1, 0x77);
		assert_int_equal(activate_one_bad(side, fa,
		                     TSI_PRIV_TPM2B_MAX + 1),
		    TSI_ERR_PARSE);
	}
	/* The payload's bound, 2 * (4 + TSI_PRIV_TPM2B_MAX): at it, the
	 * fields are wrong (PARSE); one byte over, it is TOO_LARGE. */
	tpm2b(fa, 2 * TSI_PRIV_TPM2B_MAX, 0x11);
	build_two(TSI_PRIV_ATT_ACTIVATE, fa, 2 * TSI_PRIV_TPM2B_MAX, fb, 0);
	assert_int_equal(m.len - TSI_PRIV_HDR, 2 * (4 + TSI_PRIV_TPM2B_MAX));
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	tpm2b(fa, 2 * TSI_PRIV_TPM2B_MAX + 1, 0x11);
	build_two(TSI_PRIV_ATT_ACTIVATE, fa, 2 * TSI_PRIV_TPM2B_MAX + 1, fb, 0);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_TOO_LARGE);
	tpm2b(fa, TSI_PRIV_TPM2B_MAX + 1, 0x11);
	tpm2b(fb, TSI_PRIV_TPM2B_MAX + 1, 0x22);
	build_two(TSI_PRIV_ATT_ACTIVATE, fa, TSI_PRIV_TPM2B_MAX + 1, fb,
	    TSI_PRIV_TPM2B_MAX + 1);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_TOO_LARGE);
	/* A string length past the payload. */
	tsi_priv_msg_begin(&m, TSI_PRIV_ATT_ACTIVATE, 1);
	tsi_priv_put_u32(&m, 0x7fffffffu);
	tsi_priv_put_str(&m, (const char *)tpm2b(fa, 4, 1), 4);
	assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
}

/* CERTIFY and QUOTE: a nonce of 1..TSI_PRIV_NONCE_MAX bytes; QUOTE's mask
 * nonzero and below 1 << TSI_PRIV_PCRS. Their payload bound is
 * 4 + TSI_PRIV_NONCE_MAX + 4. */
static void
test_enroll_nonce_mask(void **state)
{
	static const uint32_t bad_masks[] = { 0, 1u << 24, 1u << 31,
		0xffffffffu, (1u << 24) | 1 };
	static const uint8_t nonce[TSI_PRIV_NONCE_MAX + 8];
	struct tsi_priv_req q;
	size_t i;

	(void)state;
	build_nonce(TSI_PRIV_ATT_CERTIFY, nonce, 0, 0);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	build_nonce(TSI_PRIV_ATT_QUOTE, nonce, 0, 1);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	/* CERTIFY: a nonce of 65 and 68 bytes is within the payload bound
	 * (PARSE), of 69 over it (TOO_LARGE). */
	build_nonce(TSI_PRIV_ATT_CERTIFY, nonce, TSI_PRIV_NONCE_MAX + 1, 0);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	build_nonce(TSI_PRIV_ATT_CERTIFY, nonce, TSI_PRIV_NONCE_MAX + 4, 0);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	build_nonce(TSI_PRIV_ATT_CERTIFY, nonce, TSI_PRIV_NONCE_MAX + 5, 0);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_TOO_LARGE);
	/* QUOTE: a nonce of 65 with its mask is over the bound. */
	build_nonce(TSI_PRIV_ATT_QUOTE, nonce, TSI_PRIV_NONCE_MAX + 1, 1);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_TOO_LARGE);
	/* CERTIFY with a mask after its nonce; QUOTE without one. */
	build_nonce(TSI_PRIV_ATT_QUOTE, nonce, 16, 1);
	memcpy(m.b, &(uint32_t){ TSI_PRIV_ATT_CERTIFY }, 4);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	build_nonce(TSI_PRIV_ATT_CERTIFY, nonce, 16, 0);
	memcpy(m.b, &(uint32_t){ TSI_PRIV_ATT_QUOTE }, 4);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	for (i = 0; i < sizeof(bad_masks) / sizeof(bad_masks[0]); i++) {
		build_nonce(TSI_PRIV_ATT_QUOTE, nonce, 16, bad_masks[i]);
		assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	}
	/* A nonce length past the payload. */
	tsi_priv_msg_begin(&m, TSI_PRIV_ATT_QUOTE, 1);
	tsi_priv_put_u32(&m, 0x7fffffffu);
	tsi_priv_put_u32(&m, 1);
	assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
}

/* NODE_INSTALL: two PEM texts, printable ASCII and line ends, beginning
 * "-----BEGIN ", within TSI_PRIV_CERT_MAX and TSI_PRIV_CA_MAX. */
static void
test_enroll_install_text(void **state)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
#define B(x) { x, sizeof(x) - 1 }
		B(""),
		B("-----BEGIN"),
		B("-----BEGINCERTIFICATE-----\nMIIB\n"),
		B(" -----BEGIN CERTIFICATE-----\nMIIB\n"),
		B("\n-----BEGIN CERTIFICATE-----\nMIIB\n"),
		B("-----begin certificate-----\nMIIB\n"),
		B("MIIBszCCAVmgAwIBAgIU\n"),
		B("\x30\x82\x01\xb3\x30\x82\x01\x59"), /* DER */
		B("-----BEGIN CERTIFICATE-----\n\0MIIB\n"),
		B("-----BEGIN CERTIFICATE-----\nMIIB\n\0"),
		B("-----BEGIN CERTIFICATE-----\n\x01MIIB\n"),
		B("-----BEGIN CERTIFICATE-----\n\tMIIB\n"),
		B("-----BEGIN CERTIFICATE-----\n\x1b[0mMIIB\n"),
		B("-----BEGIN CERTIFICATE-----\nMIIB\x7f\n"),
		B("-----BEGIN CERTIFICATE-----\nMI\x80IB\n"),
		B("-----BEGIN CERTIFICATE-----\nMIIB\n\xff"),
#undef B
	};
	struct tsi_priv_req q;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		build_two(TSI_PRIV_NODE_INSTALL, bad[i].s, bad[i].len, GOOD_PEM,
		    strlen(GOOD_PEM));
		assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
		build_two(TSI_PRIV_NODE_INSTALL, GOOD_PEM, strlen(GOOD_PEM),
		    bad[i].s, bad[i].len);
		assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	}
	/* One byte over a field's bound, the payload within its own: PARSE. */
	pem_text(fa, TSI_PRIV_CERT_MAX + 1);
	build_two(TSI_PRIV_NODE_INSTALL, fa, TSI_PRIV_CERT_MAX + 1, GOOD_PEM,
	    strlen(GOOD_PEM));
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	pem_text(fb, TSI_PRIV_CA_MAX + 1);
	build_two(TSI_PRIV_NODE_INSTALL, GOOD_PEM, strlen(GOOD_PEM), fb,
	    TSI_PRIV_CA_MAX + 1);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_PARSE);
	/* Over the payload's bound: TOO_LARGE. */
	pem_text(fa, TSI_PRIV_CERT_MAX);
	build_two(TSI_PRIV_NODE_INSTALL, fa, TSI_PRIV_CERT_MAX, fb,
	    TSI_PRIV_CA_MAX + 1);
	assert_int_equal(decode(m.b, m.len, &q), TSI_ERR_TOO_LARGE);
}

/* The front end's encoders write what the decoder reads back. */
static void
test_enroll_encoders(void **state)
{
	static struct tsi_priv_msg hand;
	struct tsi_priv_req q;
	uint8_t nonce[TSI_PRIV_NONCE_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(255 - i);
	tpm2b(fa, 80, 0x5a);
	tpm2b(fb, 34, 0xa5);
	assert_int_equal(tsi_priv_enc_activate(&m, 50, fa, 80, fb, 34), TSI_OK);
	expect_fields(&q, TSI_PRIV_ATT_ACTIVATE, fa, 80, fb, 34);
	assert_int_equal(q.id, 50);
	tsi_priv_req_clear(&q);
	/* The same bytes as the message built field by field. */
	hand = m;
	build_two(TSI_PRIV_ATT_ACTIVATE, fa, 80, fb, 34);
	memcpy(m.b + 4, &(uint32_t){ 50 }, 4);
	assert_int_equal(hand.len, m.len);
	assert_memory_equal(hand.b, m.b, m.len);

	/* CERTIFY has no mask, whatever the caller passes. */
	assert_int_equal(tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_CERTIFY, 51, nonce,
	                     33, 0xff),
	    TSI_OK);
	assert_int_equal(m.len, TSI_PRIV_HDR + 4 + 33);
	expect_fields(&q, TSI_PRIV_ATT_CERTIFY, nonce, 33, NULL, 0);
	assert_int_equal(q.id, 51);
	assert_int_equal(q.mask, 0);
	tsi_priv_req_clear(&q);
	assert_int_equal(tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_QUOTE, 52, nonce,
	                     TSI_PRIV_NONCE_MAX, 0x00ff0f),
	    TSI_OK);
	expect_fields(&q, TSI_PRIV_ATT_QUOTE, nonce, TSI_PRIV_NONCE_MAX, NULL,
	    0);
	assert_int_equal(q.id, 52);
	assert_int_equal(q.mask, 0x00ff0f);
	tsi_priv_req_clear(&q);
	/* Only CERTIFY and QUOTE carry a nonce. */
	assert_int_equal(tsi_priv_enc_nonce(&m, TSI_PRIV_ATT_ACTIVATE, 53,
	                     nonce, 8, 1),
	    TSI_ERR_INVALID_ARG);
	assert_int_equal(tsi_priv_enc_nonce(&m, TSI_PRIV_SIGN, 53, nonce, 8, 1),
	    TSI_ERR_INVALID_ARG);

	assert_int_equal(tsi_priv_enc_install(&m, 54, GOOD_PEM_CRLF,
	                     GOOD_PEM GOOD_PEM),
	    TSI_OK);
	expect_fields(&q, TSI_PRIV_NODE_INSTALL, GOOD_PEM_CRLF,
	    strlen(GOOD_PEM_CRLF), GOOD_PEM GOOD_PEM,
	    strlen(GOOD_PEM GOOD_PEM));
	assert_int_equal(q.id, 54);
	tsi_priv_req_clear(&q);
	/* Texts that do not fit one datagram are the encoder's error. */
	pem_text(fa, TSI_PRIV_CA_MAX);
	pem_text(fb, TSI_PRIV_CA_MAX);
	assert_int_equal(tsi_priv_enc_install(&m, 55, (const char *)fa,
	                     (const char *)fb),
	    TSI_ERR_TOO_LARGE);
}

/* The answer reader: type, sizes, and exact use. */
static void
test_answers(void **state)
{
	struct tsi_priv_rd rd;
	uint32_t id;
	int32_t st;
	char s[8];

	(void)state;
	tsi_priv_msg_begin(&m, TSI_PRIV_HEALTH | TSI_PRIV_ANSWER, 5);
	tsi_priv_put_u32(&m, (uint32_t)TSI_ERR_TPM_UNAVAILABLE);
	tsi_priv_put_str(&m, "gone", 4);
	assert_int_equal(tsi_priv_msg_end(&m), TSI_OK);
	assert_int_equal(tsi_priv_ans_open(m.b, m.len, TSI_PRIV_HEALTH, &rd,
	                     &id, &st),
	    TSI_OK);
	assert_int_equal(st, TSI_ERR_TPM_UNAVAILABLE);
	assert_int_equal(id, 5);
	tsi_priv_get_str(&rd, s, 7);
	assert_string_equal(s, "gone");
	assert_int_equal(tsi_priv_rd_end(&rd), TSI_OK);
	/* Wrong type. */
	assert_int_not_equal(tsi_priv_ans_open(m.b, m.len, TSI_PRIV_JWKS, &rd,
	                         &id, &st),
	    TSI_OK);
	/* A string longer than the reader allows. */
	assert_int_equal(tsi_priv_ans_open(m.b, m.len, TSI_PRIV_HEALTH, &rd,
	                     &id, &st),
	    TSI_OK);
	tsi_priv_get_str(&rd, s, 3);
	assert_int_not_equal(tsi_priv_rd_end(&rd), TSI_OK);
	/* Fields left over. */
	assert_int_equal(tsi_priv_ans_open(m.b, m.len, TSI_PRIV_HEALTH, &rd,
	                     &id, &st),
	    TSI_OK);
	assert_int_not_equal(tsi_priv_rd_end(&rd), TSI_OK);
	/* An encoder that overflows says so. */
	tsi_priv_msg_begin(&m, TSI_PRIV_JWKS | TSI_PRIV_ANSWER, 1);
	tsi_priv_put_str(&m, (const char *)m.b, TSI_PRIV_MSG_MAX);
	assert_int_equal(tsi_priv_msg_end(&m), TSI_ERR_TOO_LARGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_requests),
		cmocka_unit_test(test_claims_round_trip),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_sign_truncated_and_trailing),
		cmocka_unit_test(test_sign_bad_fields),
		cmocka_unit_test(test_enroll_good),
		cmocka_unit_test(test_enroll_payloadless),
		cmocka_unit_test(test_enroll_truncated_and_trailing),
		cmocka_unit_test(test_enroll_tpm2b),
		cmocka_unit_test(test_enroll_nonce_mask),
		cmocka_unit_test(test_enroll_install_text),
		cmocka_unit_test(test_enroll_encoders),
		cmocka_unit_test(test_answers),
	};

	tsi_log_init("test_priv_proto", TSI_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
