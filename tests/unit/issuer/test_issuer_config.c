/*
 * test_issuer_config.c - the tsi-issuer configuration: defaults, every
 * refusal naming file and line, the example file in the tree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "issuer/config.h"
#include "tsi/err.h"

static int
load(const char *text, struct tsi_issuer_config **c, char *err, size_t n)
{
	*c = NULL;
	err[0] = '\0';
	return tsi_issuer_config_load_string("issuer.conf", text, c, err, n);
}

static void
test_minimal_defaults(void **state)
{
	struct tsi_issuer_config *c;
	char err[256];

	assert_int_equal(load("trust_domain = \"tsi.example\";\n", &c, err,
	                     sizeof(err)),
	    TSI_OK);
	assert_string_equal(c->tcti, "device:/dev/tpmrm0");
	assert_string_equal(c->state_dir, "/var/lib/tsi-issuer");
	assert_string_equal(c->node_cert, "/var/lib/tsi-issuer/node.pem");
	assert_string_equal(c->socket, "/run/tsi/issuer.sock");
	assert_int_equal(c->signing, TSI_SIGNING_DELEGATED);
	assert_int_equal(c->resolver, TSI_RESOLVER_KUBELET);
	assert_int_equal(c->token_ttl, 300);
	assert_int_equal(c->session_ttl, 3600);
	assert_int_equal(c->socket_mode, 0666);
	assert_string_equal(c->proc_root, "/proc");
	assert_int_equal(c->max_clients, 64);
	assert_int_equal(c->n_sidecar_images, 0);
	tsi_issuer_config_free(c);
}

static void
test_full(void **state)
{
	struct tsi_issuer_config *c;
	char err[256];
	const char *text = "tcti = \"swtpm:host=127.0.0.1,port=2321\";\n"
	                   "state_dir = \"/tmp/st\";\n"
	                   "node_cert = \"/tmp/st/n.pem\";\n"
	                   "socket = \"/tmp/st/s.sock\";\n"
	                   "socket_mode = \"0660\";\n"
	                   "signing = \"tpm\";\n"
	                   "resolver = \"unix\";\n"
	                   "trust_domain = \"prod.example\";\n"
	                   "token_ttl = 3600;\n"
	                   "session_ttl = 86400;\n"
	                   "sidecar_images = [ "
	                   "\"sha256:"
	                   "2c758e98d175d61c757efc1ab35d10c954167294462fb00c6d2"
	                   "6c148df4c7580\" ];\n"
	                   "node_name = \"n1\";\n"
	                   "max_clients = 5;\n";

	assert_int_equal(load(text, &c, err, sizeof(err)), TSI_OK);
	assert_string_equal(c->tcti, "swtpm:host=127.0.0.1,port=2321");
	assert_string_equal(c->node_cert, "/tmp/st/n.pem");
	assert_int_equal(c->socket_mode, 0660);
	assert_int_equal(c->signing, TSI_SIGNING_TPM);
	assert_int_equal(c->resolver, TSI_RESOLVER_UNIX);
	assert_int_equal(c->token_ttl, 3600);
	assert_int_equal(c->n_sidecar_images, 1);
	assert_string_equal(c->node_name, "n1");
	assert_int_equal(c->max_clients, 5);
	tsi_issuer_config_free(c);
}

struct bad {
	const char *text;
	const char *msg;
};

static void
test_refusals(void **state)
{
	static const struct bad cases[] = {
		{ "trust_domain = \"t\";\ntoken_tll = 300;\n",
		    "issuer.conf:2: unknown setting 'token_tll'" },
		{ "trust_domain = \"t\";\n\ntoken_ttl = 3601;\n",
		    "issuer.conf:3: 'token_ttl' must be between 1 and 3600" },
		{ "trust_domain = \"t\";\ntoken_ttl = 0;\n",
		    "issuer.conf:2: 'token_ttl'" },
		{ "trust_domain = \"t\";\nsigning = \"soft\";\n",
		    "issuer.conf:2: 'signing' must be" },
		{ "trust_domain = \"t\";\nresolver = \"docker\";\n",
		    "issuer.conf:2: 'resolver' must be" },
		{ "trust_domain = \"T D\";\n",
		    "issuer.conf:1: 'trust_domain'" },
		{ "token_ttl = 300;\n",
		    "issuer.conf: 'trust_domain' is required" },
		{ "trust_domain = \"t\";\nsocket_mode = \"0999\";\n",
		    "issuer.conf:2: 'socket_mode' must be octal" },
		{ "trust_domain = \"t\";\nsocket = 5;\n",
		    "issuer.conf:2: 'socket' must be a string" },
		{ "trust_domain = \"t\";\nsidecar_images = [ \"nginx:1\" ];\n",
		    "issuer.conf:2: 'sidecar_images' entries must be" },
		{ "trust_domain = \"t\";\ntoken_ttl = 600;\nsession_ttl = "
		  "900;\n",
		    "issuer.conf:3: 'session_ttl' must be at least" },
		{ "trust_domain = \"t\";\nkubelet_url = \"http://x:10255\";\n",
		    "issuer.conf:2: 'kubelet_url' must start with https://" },
		{ "trust_domain = \"t\";\nstate_dir = \"\";\n",
		    "issuer.conf:2: 'state_dir' must not be empty" },
		{ "trust_domain = \"t\";\ntcti = ;\n", "issuer.conf:2:" },
		{ "trust_domain = \"t\";\nattest_url = "
		  "\"http://10.0.0.5:8443\";\n",
		    "issuer.conf:2: 'attest_url' must be https://" },
		{ "trust_domain = \"t\";\nattest_url = \"ftp://127.0.0.1/\";\n",
		    "issuer.conf:2: 'attest_url' must be https://" },
		{ "trust_domain = \"t\";\n"
		  "attest_url = \"http://user@127.0.0.1:1/\";\n",
		    "issuer.conf:2: 'attest_url' must be https://" },
		{ "trust_domain = \"t\";\n"
		  "attest_url = \"http://127.0.0.1.evil.example/\";\n",
		    "issuer.conf:2: 'attest_url' must be https://" },
		{ "trust_domain = \"t\";\n\nattest_url = "
		  "\"https://a.example\";\n",
		    "issuer.conf:3: 'attest_ca' is required" },
		{ "trust_domain = \"t\";\nrenew_percent = 95;\n",
		    "issuer.conf:2: 'renew_percent' must be between 1 and 90" },
		{ "trust_domain = \"t\";\nnode_cert = \"/x/n.pem\";\n"
		  "node_ca = \"/x/n.pem\";\n",
		    "issuer.conf:3: 'node_ca' must not be the node_cert" },
		{ "trust_domain = \"t\";\nattest_token = \"s3cret\";\n",
		    "issuer.conf:2: unknown setting 'attest_token'" },
	};
	struct tsi_issuer_config *c;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(load(cases[i].text, &c, err, sizeof(err)),
		    TSI_ERR_CONFIG);
		assert_null(c);
		if (strstr(err, cases[i].msg) == NULL)
			fail_msg("case %zu: got '%s', want '%s'", i, err,
			    cases[i].msg);
	}
}

static void
test_attest(void **state)
{
	static const char *const loopback[] = { "http://127.0.0.1:8200",
		"http://127.9.9.9/", "http://[::1]:1/", "http://localhost:80",
		"https://attest.example:8443/base/" };
	struct tsi_issuer_config *c;
	char err[256], text[512];
	size_t i;

	assert_int_equal(load("trust_domain = \"t\";\n"
	                      "node_cert = \"/var/lib/n/node.pem\";\n",
	                     &c, err, sizeof(err)),
	    TSI_OK);
	assert_null(c->attest_url);
	assert_string_equal(c->node_ca, "/var/lib/n/node-ca.pem");
	assert_int_equal(c->renew_percent, 20);
	tsi_issuer_config_free(c);
	for (i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
		snprintf(text, sizeof(text),
		    "trust_domain = \"t\";\n"
		    "attest_url = \"%s\";\nattest_ca = \"/etc/ca.pem\";\n"
		    "renew_percent = 50;\n",
		    loopback[i]);
		if (load(text, &c, err, sizeof(err)) != TSI_OK)
			fail_msg("'%s' refused: %s", loopback[i], err);
		assert_string_equal(c->attest_url, loopback[i]);
		assert_string_equal(c->attest_ca, "/etc/ca.pem");
		assert_int_equal(c->renew_percent, 50);
		tsi_issuer_config_free(c);
	}
}

static void
test_example_file(void **state)
{
	struct tsi_issuer_config *c = NULL;
	char path[1024], err[256];

	snprintf(path, sizeof(path), "%s/issuer/tsi-issuer.conf.example",
	    getenv("TSI_SOURCE_DIR") ? getenv("TSI_SOURCE_DIR") : ".");
	if (tsi_issuer_config_load(path, &c, err, sizeof(err)) != TSI_OK)
		fail_msg("%s", err);
	assert_string_equal(c->trust_domain, "tsi.example");
	assert_int_equal(c->token_ttl, 300);
	tsi_issuer_config_free(c);
	/* A missing file is an error naming it. */
	assert_int_not_equal(tsi_issuer_config_load("/nonexistent/issuer.conf",
	                         &c, err, sizeof(err)),
	    TSI_OK);
	assert_non_null(strstr(err, "/nonexistent/issuer.conf"));
}

/* The front end's sandbox: an unprivileged user by default, never root. */
static void
test_front(void **state)
{
	static const char *const root[] = {
		"root",
		"0",
		"000",
		"0:65534",
		"65534:0",
		"1000:00",
	};
	struct tsi_issuer_config *c;
	char text[256], err[256];
	size_t i;

	(void)state;
	assert_int_equal(load("trust_domain = \"t\";\n", &c, err, sizeof(err)),
	    TSI_OK);
	assert_string_equal(c->front_user, "nobody");
	assert_int_equal(c->front_seccomp_log, 0);
	tsi_issuer_config_free(c);
	assert_int_equal(load("trust_domain = \"t\";\nfront_user = "
	                      "\"65532:65532\";\nfront_seccomp = \"log\";\n",
	                     &c, err, sizeof(err)),
	    TSI_OK);
	assert_string_equal(c->front_user, "65532:65532");
	assert_int_equal(c->front_seccomp_log, 1);
	tsi_issuer_config_free(c);
	for (i = 0; i < sizeof(root) / sizeof(root[0]); i++) {
		(void)snprintf(text, sizeof(text),
		    "trust_domain = \"t\";\n"
		    "front_user = \"%s\";\n",
		    root[i]);
		assert_int_equal(load(text, &c, err, sizeof(err)),
		    TSI_ERR_CONFIG);
		assert_null(c);
		assert_non_null(strstr(err,
		    "issuer.conf:2: 'front_user' must "
		    "not be root"));
	}
	assert_int_equal(load("trust_domain = \"t\";\nfront_seccomp = "
	                      "\"off\";\n",
	                     &c, err, sizeof(err)),
	    TSI_ERR_CONFIG);
	assert_non_null(strstr(err, "issuer.conf:2: 'front_seccomp' must be"));
	assert_int_equal(load("trust_domain = \"t\";\nfront_user = "
	                      "\"\";\n",
	                     &c, err, sizeof(err)),
	    TSI_ERR_CONFIG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_attest),
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_front),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
