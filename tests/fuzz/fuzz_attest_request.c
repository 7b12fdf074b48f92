/* Fuzzes tsi-attest's request handling without a socket: the body goes to
 * POST /v1/enroll/start or /v1/enroll/finish (first byte) through
 * attest_dispatch, with a real inventory and audit log in a temporary
 * directory. Every answer must be a status with a JSON body, and nothing
 * may be enrolled: the inventory is empty, so no finish can succeed. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest.h"
#include "tsi/err.h"
#include "tsi/log.h"
#include "tsi/x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct attest A;
static struct attest_settings S;

static void
init(void)
{
	static char dir[] = "/tmp/tsi-fuzz-attest.XXXXXX";
	char p[256];
	struct tsi_audit_opts ao;

	tsi_log_init("fuzz", TSI_LOG_ERROR);
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(p, sizeof(p), "%s/ca", dir);
	if (tsi_ca_init(p, "fuzz node CA", 30) != TSI_OK)
		abort();
	S.node_ca_cert = strdup("/dev/null");
	S.cert_days = 1;
	S.session_ttl = 30;
	A.set = &S;
	A.node_ca_pem = strdup("");
	if ((A.ek_ca = sk_X509_new_null()) == NULL)
		abort();
	pthread_mutex_init(&A.mu, NULL);
	snprintf(p, sizeof(p), "%s/attest", dir);
	if (attest_store_open(&A, p, 64u << 20) != TSI_OK)
		abort();
	memset(&ao, 0, sizeof(ao));
	ao.map_size = 256u << 20;
	snprintf(p, sizeof(p), "%s/audit", dir);
	if (tsi_audit_open(p, &ao, &A.audit) != TSI_OK)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct attest_req req;
	struct attest_answer ans;
	char *body;

	if (A.set == NULL)
		init();
	if (size < 1 || size > ATTEST_BODY_MAX)
		return 0;
	if ((body = malloc(size)) == NULL)
		return 0;
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0';
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = (data[0] & 1) ? "/v1/enroll/finish" : "/v1/enroll/start";
	req.body = body;
	req.body_len = size - 1;
	req.remote = "127.0.0.1";
	attest_dispatch(&A, &req, &ans);
	if (ans.status < 400 || ans.json == NULL)
		abort();
	attest_answer_clear(&ans);
	free(body);
	return 0;
}
