/* Fuzzes the admission webhook's review of an AdmissionReview body: it must
 * always answer (allow, patch or refuse) with valid JSON, never crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "injector.h"
#include "tsi/err.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tsi_injector_conf *conf;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char text[] =
	    "tls_cert = \"/c.pem\";\ntls_key = \"/k.pem\";\n"
	    "sidecar_image = \"reg/tsi-sidecar:1\";\n"
	    "vault_addr = \"https://tsi-vault:8200\";\n";
	char err[256];

	(void)argc;
	(void)argv;
	if (tsi_injector_conf_load_string("fuzz.conf", text, &conf, err,
	        sizeof(err)) != TSI_OK)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *resp = NULL;
	int status = 0;
	json_t *j;

	if (tsi_injector_review(conf, (const char *)data, size, &resp,
	        &status) == TSI_OK &&
	    resp != NULL) {
		if ((j = json_loads(resp, 0, NULL)) == NULL)
			abort(); /* the webhook answered with broken JSON */
		json_decref(j);
	}
	free(resp);
	return 0;
}
