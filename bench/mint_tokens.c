/*
 * mint_tokens.c - tokens for the login benchmark, made before the clock
 * starts so that the load generator only sends them.
 *
 * Makes a cluster CA in DIR (tsi_ca_init), a node key and its certificate
 * with a location (tsi_x509_make_csr + tsi_ca_sign_csr), and a session key
 * certified by the node (tsi_x509_issue_session_cert), the shape the issuer's
 * delegated mode produces. Then mints COUNT identity JWTs with the session
 * key (x5c = session cert, node cert), each with its own jti, and writes them
 * one per line to OUT. With --chain node the node key signs them directly
 * (x5c = node cert): one certificate less to verify per login.
 *
 *   mint_tokens --ca-dir DIR --out FILE --count N [--aud tsi-vault]
 *               [--ttl 600] [--chain session|node]
 *
 * DIR/ca.pem is the CA to give tsi-vault (--trust-ca). Claims: sub
 * spiffe://bench.tsi/ns/bench/sa/bench, namespace bench, service-account
 * bench, pod bench-<i>, images [sha256:aa..], cluster-name bench-cluster,
 * region bench-region, datacenter bench-dc, node bench-node.
 * Exit 0, 1 on failure, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/signer.h"
#include "tsi/x509.h"

static int
usage(void)
{
	fprintf(stderr,
	    "usage: mint_tokens --ca-dir DIR --out FILE --count N "
	    "[--aud A] [--ttl S] [--chain session|node]\n");
	return 2;
}

static X509 *
pem_to_x509(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = NULL;

	if (b != NULL)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	return x;
}

static json_t *
claims_for(long i, const char *aud, long ttl, time_t now)
{
	unsigned char rnd[16];
	char jti[33], pod[32];
	json_t *c;
	int k;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return NULL;
	for (k = 0; k < 16; k++)
		snprintf(jti + 2 * k, 3, "%02x", rnd[k]);
	snprintf(pod, sizeof(pod), "bench-%ld", i);
	c = json_pack("{s:s, s:s, s:[s], s:I, s:I, s:I, s:s, "
	              "s:[s], s:[s], s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "iss", "tsi-issuer/bench-node", "sub",
	    "spiffe://bench.tsi/ns/bench/sa/bench", "aud", aud, "iat",
	    (json_int_t)now, "nbf", (json_int_t)now, "exp",
	    (json_int_t)(now + ttl), "jti", jti, "images",
	    "sha256:"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "images-names", "registry.example/bench/app:1", "cluster-name",
	    "bench-cluster", "region", "bench-region", "datacenter", "bench-dc",
	    "node", "bench-node", "namespace", "bench", "pod", pod,
	    "service-account", "bench");
	return c;
}

int
main(int argc, char **argv)
{
	const char *dir = NULL, *out_path = NULL, *aud = TSI_JWT_DEFAULT_AUD;
	const char *chain_kind = "session";
	long count = -1, ttl = 600, i;
	char path_cert[4096], path_key[4096];
	struct tsi_location loc = { "bench-cluster", "bench-region", "bench-dc",
		"bench-node" };
	EVP_PKEY *node_key = NULL, *sess_key = NULL;
	struct tsi_signer *node_signer = NULL, *sess_signer = NULL;
	const struct tsi_signer *tok_signer;
	char *csr = NULL, *node_pem = NULL;
	X509 *node_cert = NULL, *sess_cert = NULL;
	STACK_OF(X509) *chain = NULL;
	FILE *out = NULL;
	time_t now = time(NULL);
	int a, r, ret = 1;

	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--ca-dir") == 0 && a + 1 < argc)
			dir = argv[++a];
		else if (strcmp(argv[a], "--out") == 0 && a + 1 < argc)
			out_path = argv[++a];
		else if (strcmp(argv[a], "--count") == 0 && a + 1 < argc)
			count = strtol(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "--aud") == 0 && a + 1 < argc)
			aud = argv[++a];
		else if (strcmp(argv[a], "--ttl") == 0 && a + 1 < argc)
			ttl = strtol(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "--chain") == 0 && a + 1 < argc)
			chain_kind = argv[++a];
		else
			return usage();
	}
	if (dir == NULL || out_path == NULL || count < 1 || count > 10000000 ||
	    ttl < 1 || ttl > 3600 ||
	    (strcmp(chain_kind, "session") != 0 &&
	        strcmp(chain_kind, "node") != 0))
		return usage();
	if (snprintf(path_cert, sizeof(path_cert), "%s/ca.pem", dir) >=
	        (int)sizeof(path_cert) ||
	    snprintf(path_key, sizeof(path_key), "%s/ca.key", dir) >=
	        (int)sizeof(path_key))
		return usage();

	if ((r = tsi_ca_init(dir, "tsi bench CA", 2)) != TSI_OK) {
		fprintf(stderr, "mint_tokens: ca init %s: %s\n", dir,
		    tsi_strerror(r));
		goto out;
	}
	if ((node_key = EVP_EC_gen("P-256")) == NULL ||
	    (sess_key = EVP_EC_gen("P-256")) == NULL) {
		fprintf(stderr, "mint_tokens: key generation failed\n");
		goto out;
	}
	if ((r = tsi_signer_new_soft(node_key, &node_signer)) != TSI_OK ||
	    (r = tsi_signer_new_soft(sess_key, &sess_signer)) != TSI_OK ||
	    (r = tsi_x509_make_csr(node_signer, "bench-node", &csr)) !=
	        TSI_OK ||
	    (r = tsi_ca_sign_csr(path_cert, path_key, csr, strlen(csr), &loc, 2,
	         &node_pem)) != TSI_OK) {
		fprintf(stderr, "mint_tokens: node certificate: %s\n",
		    tsi_strerror(r));
		goto out;
	}
	if ((node_cert = pem_to_x509(node_pem)) == NULL) {
		fprintf(stderr,
		    "mint_tokens: cannot parse the node certificate\n");
		goto out;
	}
	if ((chain = sk_X509_new_null()) == NULL)
		goto out;
	if (strcmp(chain_kind, "session") == 0) {
		if ((r = tsi_x509_issue_session_cert(node_signer, node_cert,
		         sess_key, 3600, &sess_cert)) != TSI_OK) {
			fprintf(stderr,
			    "mint_tokens: session certificate: %s\n",
			    tsi_strerror(r));
			goto out;
		}
		if (!sk_X509_push(chain, sess_cert))
			goto out;
		tok_signer = sess_signer;
	} else {
		tok_signer = node_signer;
	}
	if (!sk_X509_push(chain, node_cert))
		goto out;

	if ((out = fopen(out_path, "w")) == NULL) {
		fprintf(stderr, "mint_tokens: cannot write %s\n", out_path);
		goto out;
	}
	for (i = 0; i < count; i++) {
		json_t *claims = claims_for(i, aud, ttl, now);
		char *tok = NULL;

		if (claims == NULL) {
			fprintf(stderr, "mint_tokens: claims: out of memory\n");
			goto out;
		}
		r = tsi_jwt_mint(tok_signer, chain, claims, &tok);
		json_decref(claims);
		if (r != TSI_OK) {
			fprintf(stderr, "mint_tokens: mint: %s\n",
			    tsi_strerror(r));
			goto out;
		}
		if (fputs(tok, out) == EOF || fputc('\n', out) == EOF) {
			tsi_strfree(tok);
			fprintf(stderr, "mint_tokens: write %s failed\n",
			    out_path);
			goto out;
		}
		tsi_strfree(tok);
	}
	if (fclose(out) != 0) {
		out = NULL;
		fprintf(stderr, "mint_tokens: write %s failed\n", out_path);
		goto out;
	}
	out = NULL;
	ret = 0;
out:
	if (out != NULL)
		fclose(out);
	sk_X509_free(chain); /* the certificates are freed below */
	X509_free(sess_cert);
	X509_free(node_cert);
	free(node_pem);
	free(csr);
	tsi_signer_free(sess_signer);
	tsi_signer_free(node_signer);
	EVP_PKEY_free(sess_key);
	EVP_PKEY_free(node_key);
	return ret;
}
