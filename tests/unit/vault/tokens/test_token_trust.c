/*
 * A client token ends with the trust it came through (vault-plugin/tokens.c
 * vault_tokens_end_untrusted, lib/jwt.c tsi_trust_chain_check): a sweep
 * under a trust store that revokes a certificate of a token's path (by
 * fingerprint or by serial) or no longer holds its CA removes exactly those
 * tokens; tokens without a path (root, created) stay; a table of many
 * tokens is swept in bounded time with many revocations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/rand.h>
#include <openssl/x509.h>

#include "vault.h"
#include "tokens.h"
#include "tests/support/pki.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/x509.h"

#define NODES 100

struct fx {
	X509 *ca1, *ca2;
	struct tsi_chain_cert ca1c, node[NODES];
};

static X509 *
make_ca(const char *cn)
{
	struct pki_spec sp;
	EVP_PKEY *k = pki_key();
	X509 *x;

	memset(&sp, 0, sizeof(sp));
	sp.cn = cn;
	sp.key = k;
	sp.ca = 1;
	sp.pathlen = -1;
	sp.ku = "keyCertSign,cRLSign";
	sp.not_before = -60;
	sp.not_after = 86400;
	x = pki_cert(&sp);
	EVP_PKEY_free(k);
	assert_non_null(x);
	return x;
}

static struct tsi_trust *
trust_of(X509 *ca)
{
	struct tsi_trust *t = NULL;
	char *pem = NULL;

	assert_int_equal(tsi_trust_new(&t), TSI_OK);
	assert_int_equal(tsi_x509_to_pem(ca, &pem), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_pem(t, pem, strlen(pem)), TSI_OK);
	free(pem);
	return t;
}

static void
hex_of(const unsigned char h[32], char out[65])
{
	int i;

	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	unsigned int hl = 32;
	int i;

	assert_non_null(f);
	f->ca1 = make_ca("ca one");
	f->ca2 = make_ca("ca two");
	assert_int_equal(X509_digest(f->ca1, EVP_sha256(), f->ca1c.sha256, &hl),
	    1);
	snprintf(f->ca1c.serial, sizeof(f->ca1c.serial), "1");
	f->ca1c.trusted = 1;
	for (i = 0; i < NODES; i++) {
		assert_int_equal(RAND_bytes(f->node[i].sha256, 32), 1);
		snprintf(f->node[i].serial, sizeof(f->node[i].serial), "%x",
		    0x1000 + i);
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	X509_free(f->ca1);
	X509_free(f->ca2);
	free(f);
	return 0;
}

/* A login token of node n: [a fresh leaf, node n, CA 1]. */
static char *
login_token(struct vault_tokens *t, struct fx *f, int n)
{
	struct vault_token_spec s;
	struct tsi_chain_cert chain[3];
	char acc[VAULT_ACCESSOR_LEN + 1], *tok = NULL;

	memset(chain, 0, sizeof(chain));
	assert_int_equal(RAND_bytes(chain[0].sha256, 32), 1);
	snprintf(chain[0].serial, sizeof(chain[0].serial), "%x", 0x50000 + n);
	chain[1] = f->node[n];
	chain[2] = f->ca1c;
	memset(&s, 0, sizeof(s));
	s.role = "demo";
	s.ttl = 600;
	s.chain = chain;
	s.nchain = 3;
	assert_int_equal(vault_tokens_add(t, &s, &tok, acc), TSI_OK);
	return tok;
}

static int
alive(struct vault_tokens *t, const char *tok)
{
	struct vault_token vt;
	int r = vault_tokens_lookup(t, tok, &vt);

	vault_token_clear(&vt);
	return r == TSI_OK;
}

static void
test_revocation_and_ca_removal(void **state)
{
	struct fx *f = *state;
	struct vault_tokens *t = NULL;
	struct tsi_trust *same, *rev, *other;
	char *tok[NODES], *root = NULL, acc[VAULT_ACCESSOR_LEN + 1], hex[65];
	char ser[64];
	int i;

	assert_int_equal(vault_tokens_new(0, &t), TSI_OK);
	for (i = 0; i < NODES; i++)
		tok[i] = login_token(t, f, i);
	assert_int_equal(vault_tokens_create(t, "s.root", "root", NULL, NULL, 0,
	                     1, &root, acc),
	    TSI_OK);

	/* The same trust again ends nothing. */
	same = trust_of(f->ca1);
	assert_int_equal(vault_tokens_end_untrusted(t, same), 0);
	assert_int_equal(vault_tokens_count(t), NODES + 1);

	/* Node 7 by fingerprint, node 8 by serial (upper case, as openssl
	 * prints it, with leading zeros). */
	rev = trust_of(f->ca1);
	hex_of(f->node[7].sha256, hex);
	assert_int_equal(tsi_trust_revoke(rev, hex), TSI_OK);
	snprintf(ser, sizeof(ser), "serial=00%X", 0x1000 + 8);
	assert_int_equal(tsi_trust_revoke(rev, ser), TSI_OK);
	assert_int_equal(vault_tokens_end_untrusted(t, rev), 2);
	assert_false(alive(t, tok[7]));
	assert_false(alive(t, tok[8]));
	assert_true(alive(t, tok[6]));
	assert_true(alive(t, tok[9]));
	assert_true(alive(t, root));
	assert_int_equal(vault_tokens_chain_check(t, tok[9], rev), TSI_OK);

	/* CA 1 gone (only CA 2 trusted): every login token ends, root stays. */
	other = trust_of(f->ca2);
	assert_int_equal(vault_tokens_chain_check(t, tok[9], other),
	    TSI_ERR_BAD_TOKEN);
	assert_int_equal(vault_tokens_end_untrusted(t, other), NODES - 2);
	for (i = 0; i < NODES; i++)
		assert_false(alive(t, tok[i]));
	assert_true(alive(t, root));
	assert_int_equal(vault_tokens_count(t), 1);

	/* No trust at all: login tokens end (there are none left here). */
	for (i = 0; i < NODES; i++)
		tsi_strfree(tok[i]);
	tok[0] = login_token(t, f, 0);
	assert_int_equal(vault_tokens_end_untrusted(t, NULL), 1);
	assert_true(alive(t, root));
	tsi_strfree(tok[0]);
	tsi_strfree(root);
	tsi_trust_free(same);
	tsi_trust_free(rev);
	tsi_trust_free(other);
	vault_tokens_free(t);
}

/* 200,000 live tokens over 100 nodes, 1,000 revocations: one sweep ends
 * the revoked node's tokens and finishes in bounded time. */
static void
test_sweep_many(void **state)
{
	struct fx *f = *state;
	struct vault_tokens *t = NULL;
	struct tsi_trust *rev;
	struct timespec a, b;
	unsigned char junk[32];
	char hex[65], *x;
	size_t i, ended;
	double ms;

	assert_int_equal(vault_tokens_new(0, &t), TSI_OK);
	for (i = 0; i < 200000; i++) {
		x = login_token(t, f, (int)(i % NODES));
		tsi_strfree(x);
	}
	rev = trust_of(f->ca1);
	for (i = 0; i < 999; i++) {
		assert_int_equal(RAND_bytes(junk, 32), 1);
		hex_of(junk, hex);
		assert_int_equal(tsi_trust_revoke(rev, hex), TSI_OK);
	}
	hex_of(f->node[42].sha256, hex);
	assert_int_equal(tsi_trust_revoke(rev, hex), TSI_OK);
	clock_gettime(CLOCK_MONOTONIC, &a);
	ended = vault_tokens_end_untrusted(t, rev);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 +
	    (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	print_message("sweep of 200000 tokens, 1000 revocations: %.1f ms\n",
	    ms);
	assert_int_equal(ended, 2000);
	assert_int_equal(vault_tokens_count(t), 198000);
	/* Each distinct certificate once: every leaf differs, so 200,000
	 * leaves + 100 nodes + 1 CA against 1,000 entries. */
	assert_true(ms < 60000.0);
	tsi_trust_free(rev);
	vault_tokens_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revocation_and_ca_removal),
		cmocka_unit_test(test_sweep_many),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
