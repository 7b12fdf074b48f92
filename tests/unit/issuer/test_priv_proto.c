/*
 * test_priv_proto.c - the signer's request parser (issuer/priv_proto.c):
 * every request type in its good shape, and every malformed shape of each
 * (short header, length over its bound, wrong type, truncated fields,
 * trailing bytes, bad strings, bad UTF-8 or JSON in the claims) refused.
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

static int
decode(const uint8_t *b, size_t len, struct tsi_priv_req *q)
{
	int r = tsi_priv_req_decode(b, len, q);

	if (r != TSI_OK)
		assert_null(q->w);
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
		cmocka_unit_test(test_answers),
	};

	tsi_log_init("test_priv_proto", TSI_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
