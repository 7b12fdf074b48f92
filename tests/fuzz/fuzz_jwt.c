/*
 * Fuzzes the JWT parser and verifier: compact form, header and claims JSON,
 * the x5c certificates, signatures. A CA made at start-up is the trust
 * anchor, so inputs derived from real tokens reach the chain and signature
 * checks. Nothing random may verify: a token that does is a finding.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/x509.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tsi_trust *trust;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/tsi-fuzz-jwt-XXXXXX", path[128];

	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL ||
	    tsi_ca_init(dir, "tsi fuzz CA", 1) != TSI_OK)
		abort();
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	if (tsi_trust_new(&trust) != TSI_OK ||
	    tsi_trust_add_ca_file(trust, path) != TSI_OK)
		abort();
	/* The trust store holds the certificate now; the files may go. */
	unlink(path);
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	unlink(path);
	rmdir(dir);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsi_verify_opts opts = { "tsi-vault", 0, -1 };
	struct tsi_verify_result res;
	json_t *header = NULL, *claims = NULL;
	char *tok;

	if ((tok = malloc(size + 1)) == NULL)
		return 0;
	memcpy(tok, data, size);
	tok[size] = '\0';
	if (tsi_jwt_decode_unverified(tok, &header, &claims) == TSI_OK) {
		json_decref(header);
		json_decref(claims);
	}
	claims = NULL;
	memset(&res, 0, sizeof(res));
	if (tsi_jwt_verify(trust, tok, &opts, &claims, &res) == TSI_OK) {
		/* No input can carry a signature chaining to a CA made at start. */
		fprintf(stderr, "fuzz_jwt: a token verified\n");
		abort();
	}
	if (res.reason == TSI_JWT_OK)
		abort();
	free(tok);
	return 0;
}
