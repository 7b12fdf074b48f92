/*
 * tsi_test_mint - test helper: makes a CSR or mints a token with the
 * library, the way tsi-issuer does, so that scripts can check the result
 * with independent tools (PyJWT, openssl).
 *
 *   tsi_test_mint csr  --key KEY.pem --cn CN
 *   tsi_test_mint mint --key KEY.pem --chain CHAIN.pem --claims JSON [--session-ttl N]
 *
 * The node key is used through a callback signer (as a TPM key would be).
 * With --session-ttl a fresh session key is certified by the node key and
 * signs the token; x5c is then [session, chain...].
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/signer.h"
#include "tsi/x509.h"

static int
via_callback(void *ctx, const uint8_t digest[32], uint8_t sig[64])
{
	return tsi_signer_sign(ctx, digest, sig);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "cn", required_argument, NULL, 'n' },
		{ "chain", required_argument, NULL, 'c' },
		{ "claims", required_argument, NULL, 'j' },
		{ "session-ttl", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keyf = NULL, *cn = "node", *chainf = NULL, *claimstr = NULL;
	struct tsi_signer *soft = NULL, *node = NULL, *sess = NULL;
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL, *skey = NULL;
	X509 *sc = NULL;
	json_t *claims = NULL;
	FILE *f;
	char *out = NULL;
	int c, ttl = 0, r = 1;

	if (argc < 2)
		return 2;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': keyf = optarg; break;
		case 'n': cn = optarg; break;
		case 'c': chainf = optarg; break;
		case 'j': claimstr = optarg; break;
		case 's': ttl = atoi(optarg); break;
		default: return 2;
		}
	}
	if (keyf == NULL || (f = fopen(keyf, "r")) == NULL)
		return 2;
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (key == NULL || tsi_signer_new_soft(key, &soft) != TSI_OK ||
	    tsi_signer_new(via_callback, soft, key, &node) != TSI_OK)
		goto out;
	if (strcmp(argv[1], "csr") == 0) {
		if (tsi_x509_make_csr(node, cn, &out) != TSI_OK)
			goto out;
		fputs(out, stdout);
		r = 0;
		goto out;
	}
	if (strcmp(argv[1], "mint") != 0 || chainf == NULL || claimstr == NULL)
		goto out;
	if (tsi_x509_load_chain_file(chainf, &chain) != TSI_OK ||
	    (claims = json_loads(claimstr, JSON_REJECT_DUPLICATES, NULL)) ==
	        NULL)
		goto out;
	if (ttl > 0) {
		if ((skey = EVP_EC_gen("P-256")) == NULL ||
		    tsi_x509_issue_session_cert(node, sk_X509_value(chain, 0),
		        skey, ttl, &sc) != TSI_OK ||
		    tsi_signer_new_soft(skey, &sess) != TSI_OK ||
		    sk_X509_unshift(chain, sc) <= 0)
			goto out;
		sc = NULL; /* owned by chain */
	}
	if (tsi_jwt_mint(sess != NULL ? sess : node, chain, claims, &out) !=
	    TSI_OK)
		goto out;
	printf("%s\n", out);
	r = 0;
out:
	free(out);
	json_decref(claims);
	X509_free(sc);
	sk_X509_pop_free(chain, X509_free);
	tsi_signer_free(sess);
	tsi_signer_free(node);
	tsi_signer_free(soft);
	EVP_PKEY_free(skey);
	EVP_PKEY_free(key);
	if (r != 0)
		fprintf(stderr, "tsi_test_mint: failed\n");
	return r;
}
