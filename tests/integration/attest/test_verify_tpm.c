/*
 * The attestation verifier against a real TPM: swtpm manufactured with an
 * EK certificate from a local CA, the node side done by tpm2-tools. Proves
 * that the software TPM2_MakeCredential is opened by a real
 * TPM2_ActivateCredential, and that certify/quote from a real TPM verify.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "tsi/attest.h"
#include "tsi/err.h"
#include "tsi/x509.h"
#include "tests/support/pki.h"
#include "tests/support/tpm_node.h"

struct fx {
	char ca_dir[256];
	char ca_pem[300];
	struct tpm_node node;
	struct tsi_tpm_pub *ek, *ak, *key;
};

static struct tsi_tpm_pub *
load_pub(struct tpm_node *n, const char *name)
{
	struct tsi_tpm_pub *p = NULL;
	uint8_t *b;
	size_t len;

	assert_int_equal(tpm_node_read(n, name, &b, &len), 0);
	assert_int_equal(tsi_tpm_pub_parse(b, len, &p), TSI_OK);
	free(b);
	return p;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(tpm_node_ca_dir(f->ca_dir, sizeof(f->ca_dir), "ekca"),
	    0);
	assert_int_equal(tpm_node_start(&f->node, f->ca_dir), 0);
	assert_int_equal(tpm_node_ca_pem(f->ca_dir, f->ca_pem,
	                     sizeof(f->ca_pem)),
	    0);
	assert_int_equal(tpm_node_make_keys(&f->node, NULL), 0);
	f->ek = load_pub(&f->node, "ek.pub");
	f->ak = load_pub(&f->node, "ak.pub");
	f->key = load_pub(&f->node, "key.pub");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[600];

	tsi_tpm_pub_free(f->ek);
	tsi_tpm_pub_free(f->ak);
	tsi_tpm_pub_free(f->key);
	tpm_node_stop(&f->node);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->ca_dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
test_key_checks(void **state)
{
	struct fx *f = *state;
	char why[128] = "";

	assert_int_equal(tsi_attest_check_ek(f->ek, why, sizeof(why)), TSI_OK);
	assert_int_equal(tsi_attest_check_ak(f->ak, why, sizeof(why)), TSI_OK);
	assert_int_equal(tsi_attest_check_signing_key(f->key, why, sizeof(why)),
	    TSI_OK);
	/* The signing key is not restricted: it may not serve as an AK. */
	assert_int_equal(tsi_attest_check_ak(f->key, why, sizeof(why)),
	    TSI_ERR_DENIED);
	assert_string_equal(why, "AK lacks restricted");
	assert_int_equal(tsi_attest_check_ak(f->ek, why, sizeof(why)),
	    TSI_ERR_DENIED);
	assert_int_equal(tsi_attest_check_ek(f->ak, why, sizeof(why)),
	    TSI_ERR_DENIED);
}

static void
test_make_credential_activates(void **state)
{
	struct fx *f = *state;
	uint8_t cred[32], *blob = NULL, *sec = NULL, *out = NULL;
	size_t blen, slen, olen = 0, nlen;
	const uint8_t *name = tsi_tpm_pub_name(f->ak, &nlen);

	assert_int_equal(nlen, 34);
	assert_int_equal(RAND_bytes(cred, sizeof(cred)), 1);
	assert_int_equal(tsi_attest_make_credential(f->ek, name, nlen, cred,
	                     sizeof(cred), &blob, &blen, &sec, &slen),
	    TSI_OK);
	assert_int_equal(slen, 2 + 256);
	assert_int_equal(tpm_node_activate(&f->node, blob, blen, sec, slen,
	                     &out, &olen),
	    0);
	assert_int_equal(olen, sizeof(cred));
	assert_memory_equal(out, cred, sizeof(cred));
	free(out);
	out = NULL;
	free(blob);
	free(sec);

	/* Made for another name (the signing key's), the TPM refuses to open
	 * it with the AK: the credential is bound to the AK's name. */
	name = tsi_tpm_pub_name(f->key, &nlen);
	assert_int_equal(tsi_attest_make_credential(f->ek, name, nlen, cred,
	                     sizeof(cred), &blob, &blen, &sec, &slen),
	    TSI_OK);
	assert_int_not_equal(tpm_node_activate(&f->node, blob, blen, sec, slen,
	                         &out, &olen),
	    0);
	free(blob);
	free(sec);
}

static void
test_ek_cert_and_hash(void **state)
{
	struct fx *f = *state;
	STACK_OF(X509) *ca = NULL, *other = NULL;
	X509 *ek = NULL, *self;
	EVP_PKEY *k;
	char path[300], h1[65], h2[65], why[256] = "";
	char line[128] = "";
	FILE *p;

	snprintf(path, sizeof(path), "%s/ek.pem", f->node.dir);
	assert_int_equal(tsi_x509_load_file(path, &ek), TSI_OK);
	assert_int_equal(tsi_x509_load_chain_file(f->ca_pem, &ca), TSI_OK);
	assert_int_equal(tsi_attest_ek_cert_verify(ek, NULL, ca, why,
	                     sizeof(why)),
	    TSI_OK);
	assert_true(tsi_x509_key_matches(ek, tsi_tpm_pub_pkey(f->ek)));
	assert_int_equal(tsi_attest_key_sha256(X509_get0_pubkey(ek), h1),
	    TSI_OK);
	assert_int_equal(tsi_attest_key_sha256(tsi_tpm_pub_pkey(f->ek), h2),
	    TSI_OK);
	assert_string_equal(h1, h2);
	/* The same hash as an operator computes it from the certificate. */
	assert_int_equal(tpm_node_run(&f->node,
	                     "openssl x509 -in ek.pem -pubkey "
	                     "-noout | openssl pkey -pubin -outform der | "
	                     "sha256sum | cut -c1-64 "
	                     "> ek.sha256"),
	    0);
	snprintf(path, sizeof(path), "%s/ek.sha256", f->node.dir);
	assert_non_null(p = fopen(path, "r"));
	assert_non_null(fgets(line, sizeof(line), p));
	fclose(p);
	line[strcspn(line, "\n")] = '\0';
	assert_string_equal(line, h1);

	/* Another CA: refused with OpenSSL's reason. */
	k = pki_key();
	self = pki_cert(&(struct pki_spec){ .cn = "other",
	    .key = k,
	    .ca = 1,
	    .pathlen = -1,
	    .ku = "keyCertSign",
	    .not_after = 3600 });
	assert_non_null(self);
	assert_non_null(other = sk_X509_new_null());
	assert_true(sk_X509_push(other, self) > 0);
	assert_int_equal(tsi_attest_ek_cert_verify(ek, NULL, other, why,
	                     sizeof(why)),
	    TSI_ERR_BAD_CERT);
	assert_non_null(strstr(why, "unable to get local issuer"));
	sk_X509_pop_free(other, X509_free);
	EVP_PKEY_free(k);
	sk_X509_pop_free(ca, X509_free);
	X509_free(ek);
}

/* The same manufacturer CA, an EK certificate with an extension OpenSSL
 * does not know marked critical: refused, while swtpm's own (critical SAN,
 * TCG EKU) verifies above. */
static void
test_ek_cert_unknown_critical_extension(void **state)
{
	struct fx *f = *state;
	STACK_OF(X509) *ca = NULL;
	X509 *ek = NULL;
	char path[300], why[256] = "";

	assert_int_equal(
	    tpm_node_run(&f->node,
	        "openssl req -new -newkey rsa:2048 -nodes -keyout x.key -subj "
	        "/CN=x "
	        "-out x.csr 2>/dev/null && "
	        "printf 'keyUsage=critical,keyEncipherment\\n"
	        "1.3.6.1.4.1.55555.1=critical,ASN1:NULL\\n' > x.ext && "
	        "openssl x509 -req -in x.csr -CA '%s/issuercert.pem' "
	        "-CAkey '%s/signkey.pem' -set_serial 99 -days 2 -extfile x.ext "
	        "-out x.pem 2>/dev/null",
	        f->ca_dir, f->ca_dir),
	    0);
	snprintf(path, sizeof(path), "%s/x.pem", f->node.dir);
	assert_int_equal(tsi_x509_load_file(path, &ek), TSI_OK);
	assert_int_equal(tsi_x509_load_chain_file(f->ca_pem, &ca), TSI_OK);
	assert_int_equal(tsi_attest_ek_cert_verify(ek, NULL, ca, why,
	                     sizeof(why)),
	    TSI_ERR_BAD_CERT);
	assert_non_null(strstr(why, "unhandled critical extension"));
	sk_X509_pop_free(ca, X509_free);
	X509_free(ek);
}

static void
test_certify_verifies(void **state)
{
	struct fx *f = *state;
	struct tsi_attest_info info;
	uint8_t nonce[32], *att = NULL, *sig = NULL;
	size_t alen, slen, nlen;
	const uint8_t *name = tsi_tpm_pub_name(f->key, &nlen);
	char why[128] = "";

	assert_int_equal(RAND_bytes(nonce, sizeof(nonce)), 1);
	assert_int_equal(tpm_node_certify(&f->node, TPM_NODE_KEY, nonce,
	                     sizeof(nonce), &att, &alen, &sig, &slen),
	    0);
	assert_int_equal(tsi_attest_verify(att, alen, sig, slen, f->ak, &info,
	                     why, sizeof(why)),
	    TSI_OK);
	assert_int_equal(info.type, TSI_ATTEST_CERTIFY);
	assert_int_equal(info.extra_len, 32);
	assert_memory_equal(info.extra, nonce, 32);
	assert_int_equal(info.name_len, nlen);
	assert_memory_equal(info.name, name, nlen);

	/* Signed by the AK, not by another key. */
	assert_int_equal(tsi_attest_verify(att, alen, sig, slen, f->key, &info,
	                     why, sizeof(why)),
	    TSI_ERR_DENIED);
	assert_string_equal(why, "signature by the AK does not verify");
	/* One flipped bit in the signed bytes. */
	att[alen - 1] ^= 1;
	assert_int_equal(tsi_attest_verify(att, alen, sig, slen, f->ak, &info,
	                     why, sizeof(why)),
	    TSI_ERR_DENIED);
	att[alen - 1] ^= 1;
	/* Trailing bytes and truncation are malformed. */
	assert_int_equal(tsi_attest_verify(att, alen - 1, sig, slen, f->ak,
	                     &info, why, sizeof(why)),
	    TSI_ERR_PARSE);
	assert_int_equal(tsi_attest_verify(att, alen, sig, slen - 1, f->ak,
	                     &info, why, sizeof(why)),
	    TSI_ERR_PARSE);
	free(att);
	free(sig);
}

static void
test_quote_pcr_digest(void **state)
{
	struct fx *f = *state;
	struct tsi_attest_info info;
	uint8_t nonce[32], *att = NULL, *sig = NULL, pcrs[8][32], d[32];
	size_t alen, slen;
	char why[128] = "";

	assert_int_equal(RAND_bytes(nonce, sizeof(nonce)), 1);
	assert_int_equal(tpm_node_run(&f->node,
	                     "tpm2_pcrextend 7:sha256="
	                     "0101010101010101010101010101010101010101010101010"
	                     "101010101010101"),
	    0);
	assert_int_equal(tpm_node_quote(&f->node, nonce, sizeof(nonce), &att,
	                     &alen, &sig, &slen, pcrs),
	    0);
	assert_int_equal(tsi_attest_verify(att, alen, sig, slen, f->ak, &info,
	                     why, sizeof(why)),
	    TSI_OK);
	assert_int_equal(info.type, TSI_ATTEST_QUOTE);
	assert_memory_equal(info.extra, nonce, 32);
	assert_int_equal(info.pcr_mask, 0xff);
	assert_false(info.other_banks);
	assert_int_equal(tsi_attest_pcr_digest((const uint8_t(*)[32])pcrs, 8,
	                     d),
	    TSI_OK);
	assert_int_equal(info.pcr_digest_len, 32);
	assert_memory_equal(info.pcr_digest, d, 32);
	/* PCR 7 was extended: its value is not the reset value. */
	{
		uint8_t zero[32] = { 0 };
		assert_memory_not_equal(pcrs[7], zero, 32);
		memcpy(pcrs[7], zero, 32);
		assert_int_equal(tsi_attest_pcr_digest((const uint8_t(*)[32])
		                                           pcrs,
		                     8, d),
		    TSI_OK);
		assert_memory_not_equal(info.pcr_digest, d, 32);
	}
	free(att);
	free(sig);
}

static void
test_parse_rejects(void **state)
{
	struct fx *f = *state;
	struct tsi_tpm_pub *p = NULL;
	uint8_t *b, *big;
	size_t len;

	assert_int_equal(tpm_node_read(&f->node, "ak.pub", &b, &len), 0);
	assert_int_equal(tsi_tpm_pub_parse(b, len - 1, &p), TSI_ERR_PARSE);
	assert_non_null(big = calloc(1, len + 1));
	memcpy(big, b, len);
	assert_int_equal(tsi_tpm_pub_parse(big, len + 1, &p), TSI_ERR_PARSE);
	/* A size field that claims less than what follows. */
	big[1] = (uint8_t)(big[1] - 1);
	assert_int_equal(tsi_tpm_pub_parse(big, len, &p), TSI_ERR_PARSE);
	assert_null(p);
	/* A point off the curve (the last byte of y changed) is refused;
	 * the public-key check that stays is the one that tests this. */
	memcpy(big, b, len);
	big[len - 1] ^= 0x01;
	assert_int_not_equal(tsi_tpm_pub_parse(big, len, &p), TSI_OK);
	assert_null(p);
	memcpy(big, b, len);
	assert_int_equal(tsi_tpm_pub_parse(big, len, &p), TSI_OK);
	tsi_tpm_pub_free(p);
	free(big);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_checks),
		cmocka_unit_test(test_make_credential_activates),
		cmocka_unit_test(test_ek_cert_and_hash),
		cmocka_unit_test(test_ek_cert_unknown_critical_extension),
		cmocka_unit_test(test_certify_verifies),
		cmocka_unit_test(test_quote_pcr_digest),
		cmocka_unit_test(test_parse_rejects),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
