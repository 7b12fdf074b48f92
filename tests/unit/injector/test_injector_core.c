/* tsi-injector decision core: host paths, tsi.secrets validation, config. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "injector.h"
#include "tsi/err.h"

static const char *base_conf =
    "tls_cert = \"/c.pem\";\ntls_key = \"/k.pem\";\n"
    "sidecar_image = \"reg/tsi-sidecar:1\";\nvault_addr = "
    "\"https://v:8200\";\n";

static struct tsi_injector_conf *
load(const char *extra)
{
	char text[2048], err[256];
	struct tsi_injector_conf *c = NULL;

	snprintf(text, sizeof(text), "%s%s", base_conf, extra);
	assert_int_equal(tsi_injector_conf_load_string("injector.conf", text,
	                     &c, err, sizeof(err)),
	    TSI_OK);
	return c;
}

static void
test_normalise(void **state)
{
	static const char *const cases[][2] = {
		{ "/", "/" },
		{ "//", "/" },
		{ "/run/tsi/", "/run/tsi" },
		{ "/run//tsi", "/run/tsi" },
		{ "/run/./tsi/.", "/run/tsi" },
		{ "/var/lib/../../run", "/run" },
		{ "/../../..", "/" },
		{ "/a/b/../../run/tsi/x/..", "/run/tsi" },
		{ "/..a/b..", "/..a/b.." },
	};
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(tsi_injector_path_normalise(cases[i][0], out,
		                     sizeof(out)),
		    TSI_OK);
		assert_string_equal(out, cases[i][1]);
	}
	assert_int_equal(tsi_injector_path_normalise("run/tsi", out,
	                     sizeof(out)),
	    TSI_ERR_INVALID_ARG);
	assert_int_equal(tsi_injector_path_normalise("", out, sizeof(out)),
	    TSI_ERR_INVALID_ARG);
	assert_int_equal(tsi_injector_path_normalise("/aaaaaaaaaaaaaaaaaaaaaaaa"
	                                             "aaaaaaaaaaaaaaaaaaaaaaaaa"
	                                             "aaaaaaaaaaaaaaaaaaaaaa",
	                     out, sizeof(out)),
	    TSI_ERR_TOO_LARGE);
}

static void
test_overlaps(void **state)
{
	(void)state;
	assert_true(tsi_injector_path_overlaps("/", "/run/tsi"));
	assert_true(tsi_injector_path_overlaps("/run", "/run/tsi"));
	assert_true(tsi_injector_path_overlaps("/run/tsi", "/run/tsi"));
	assert_true(
	    tsi_injector_path_overlaps("/run/tsi/issuer.sock", "/run/tsi"));
	assert_false(tsi_injector_path_overlaps("/run/tsi2", "/run/tsi"));
	assert_false(tsi_injector_path_overlaps("/run/ts", "/run/tsi"));
	assert_false(tsi_injector_path_overlaps("/var/log", "/run/tsi"));
}

static void
test_protected_aliases(void **state)
{
	struct tsi_injector_conf *c =
	    load("issuer_host_path = \"/run/tsi/\";\n"
	         "extra_protected_paths = [ \"/srv/tsi-state\" ];\n");
	size_t i;
	int var_run = 0, extra = 0;

	(void)state;
	assert_string_equal(c->issuer_host_path, "/run/tsi");
	for (i = 0; i < c->nprotected; i++) {
		var_run |= strcmp(c->protected[i], "/var/run/tsi") == 0;
		extra |= strcmp(c->protected[i], "/srv/tsi-state") == 0;
	}
	assert_true(var_run);
	assert_true(extra);
	tsi_injector_conf_free(c);
}

static void
test_conf_errors(void **state)
{
	static const char *const bad[] = {
		"sidecar_imag = \"typo\";\n",
		"issuer_host_path = \"relative\";\n",
		"issuer_host_path = \"/\";\n",
		"sidecar_pull_policy = \"Sometimes\";\n",
		"max_request_bytes = 10;\n",
		"issuer_socket_name = \"../x\";\n",
		"secrets_mount_path = \"/run/tsi/secrets\";\n",
	};
	struct tsi_injector_conf *c = NULL;
	char text[1024], err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", base_conf, bad[i]);
		err[0] = '\0';
		assert_int_equal(tsi_injector_conf_load_string("injector.conf",
		                     text, &c, err, sizeof(err)),
		    TSI_ERR_CONFIG);
		assert_non_null(strstr(err, "injector.conf:"));
	}
	/* the injected sidecars refuse http:// */
	err[0] = '\0';
	assert_int_equal(tsi_injector_conf_load_string("injector.conf",
	                     "tls_cert = \"/c.pem\";\ntls_key = \"/k.pem\";\n"
	                     "sidecar_image = \"reg/tsi-sidecar:1\";\n"
	                     "vault_addr = \"http://v:8200\";\n",
	                     &c, err, sizeof(err)),
	    TSI_ERR_CONFIG);
	assert_non_null(strstr(err, "https://"));
	/* a required setting missing */
	assert_int_equal(tsi_injector_conf_load_string("injector.conf",
	                     "tls_cert = \"/c\";\n", &c, err, sizeof(err)),
	    TSI_ERR_CONFIG);
	assert_non_null(strstr(err, "required"));
}

static void
test_secrets_valid(void **state)
{
	struct tsi_injector_conf *c = load("");
	char *canon = NULL, why[256];

	(void)state;
	assert_int_equal(tsi_injector_secrets_validate(c,
	                     "[ {\"path\": \"secret/data/a/b\", \"name\": "
	                     "\"db\", \"dest\": \"/tsi-secrets/x\","
	                     " \"field\": \"password\"} ]",
	                     &canon, why, sizeof(why)),
	    TSI_OK);
	/* compact, keys sorted: what the sidecar gets is what was checked */
	assert_string_equal(canon,
	    "[{\"dest\":\"/tsi-secrets/x\",\"field\":\"password\","
	    "\"name\":\"db\",\"path\":\"secret/data/a/b\"}]");
	free(canon);
	/* relative dest, format */
	assert_int_equal(
	    tsi_injector_secrets_validate(c,
	        "[{\"name\":\"cfg\",\"path\":\"app/cfg\",\"dest\":\"app/env\","
	        "\"format\":\"env\"},{\"name\":\"pw\",\"path\":\"app/db\","
	        "\"dest\":\"/tsi-secrets/app/"
	        "pw\",\"field\":\"password\",\"format\":\"raw\"}]",
	        &canon, why, sizeof(why)),
	    TSI_OK);
	free(canon);
	tsi_injector_conf_free(c);
}

static void
test_secrets_invalid(void **state)
{
	static const char *const bad[] = {
		"",
		"{}",
		"[]",
		"[1]",
		"not json",
		"[{}]",
		"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/"
		"tsi-secrets/a\"}] x",
		"[{\"name\":\"a\",\"name\":\"b\",\"path\":\"secret/"
		"a\",\"dest\":\"/tsi-secrets/a\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/"
		"tsi-secrets/a\",\"mode\":\"0644\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/etc\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/"
		"tsi-secretsX\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/"
		"tsi-secrets/../etc\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"../x\"}]",
		"[{\"name\":\"../a\",\"path\":\"secret/a\",\"dest\":\"/"
		"tsi-secrets/a\"}]",
		"[{\"name\":\"..\",\"path\":\"secret/a\",\"dest\":\"/"
		"tsi-secrets/a\"}]",
		"[{\"name\":\"a\",\"path\":\"/secret/a\",\"dest\":\"/"
		"tsi-secrets/a\"}]",
		"[{\"name\":\"a\",\"path\":\"secret//a\",\"dest\":\"/"
		"tsi-secrets/a\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/a?x=1\",\"dest\":\"/"
		"tsi-secrets/a\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/"
		"tsi-secrets/a\",\"field\":7}]",
		"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/"
		"tsi-secrets/a\",\"field\":\"a/b\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/"
		"tsi-secrets/a\"},"
		" {\"name\":\"a\",\"path\":\"secret/b\",\"dest\":\"/"
		"tsi-secrets/a\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/"
		"tsi-secrets\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"/"
		"tsi-secrets/\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/"
		"a\",\"dest\":\"a\",\"format\":\"yaml\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/"
		"a\",\"dest\":\"a\",\"format\":\"raw\"}]",
		"[{\"name\":\"a\",\"path\":\"secret/a\",\"dest\":\"a\"},"
		" {\"name\":\"b\",\"path\":\"secret/b\",\"dest\":\"/"
		"tsi-secrets/a/b\"}]",
		"[{\"name\":"
		"\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaa\","
		"\"path\":\"secret/a\",\"dest\":\"a\"}]",
		"[{\"name\":\"a\\u0000b\",\"path\":\"secret/a\",\"dest\":\"/"
		"tsi-secrets/a\"}]",
	};
	struct tsi_injector_conf *c = load("");
	char *canon = NULL, why[256], *big;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		assert_int_not_equal(tsi_injector_secrets_validate(c, bad[i],
		                         &canon, why, sizeof(why)),
		    TSI_OK);
		assert_null(canon);
		assert_true(why[0] != '\0'); /* a reason for the pod's author */
	}
	/* bounded size */
	n = TSI_INJECTOR_SECRETS_MAX_BYTES + 2;
	big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n - 1);
	big[0] = '[';
	big[n - 1] = '\0';
	assert_int_equal(tsi_injector_secrets_validate(c, big, &canon, why,
	                     sizeof(why)),
	    TSI_ERR_TOO_LARGE);
	free(big);
	tsi_injector_conf_free(c);
}

static void
test_review_rejects_garbage(void **state)
{
	struct tsi_injector_conf *c = load("");
	char *resp = NULL;
	int status = 0;
	const char *notpod = "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
	                     "\"AdmissionReview\",\"request\":{\"uid\":\"u1\","
	                     "\"kind\":{\"group\":\"apps\","
	                     "\"version\":\"v1\",\"kind\":\"Deployment\"},"
	                     "\"operation\":\"CREATE\","
	                     "\"object\":{\"spec\":{\"template\":{\"spec\":{"
	                     "\"volumes\":[{\"name\":\"r\","
	                     "\"hostPath\":{\"path\":\"/\"}}]}}}}}}";
	const char *relhost =
	    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
	    "\"AdmissionReview\",\"request\":{\"uid\":\"u2\",\"kind\":{"
	    "\"group\":\"\","
	    "\"version\":\"v1\",\"kind\":\"Pod\"},\"operation\":\"CREATE\","
	    "\"object\":{\"spec\":{\"containers\":[],\"volumes\":[{\"name\":"
	    "\"r\","
	    "\"hostPath\":{\"path\":\"run/tsi\"}}]}}}}";
	const char *varrun =
	    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
	    "\"AdmissionReview\",\"request\":{\"uid\":\"u3\",\"kind\":{"
	    "\"group\":\"\","
	    "\"version\":\"v1\",\"kind\":\"Pod\"},\"operation\":\"CREATE\","
	    "\"object\":{\"spec\":{\"containers\":[],\"volumes\":[{\"name\":"
	    "\"r\","
	    "\"hostPath\":{\"path\":\"/var/run/tsi/"
	    "issuer.sock\",\"type\":\"Socket\"}}]}}}}";

	(void)state;
	assert_int_equal(tsi_injector_review(c, "[]", 2, &resp, &status),
	    TSI_ERR_PARSE);
	assert_int_equal(status, 400);
	free(resp);
	/* not a pod: not ours to judge */
	assert_int_equal(tsi_injector_review(c, notpod, strlen(notpod), &resp,
	                     &status),
	    TSI_OK);
	assert_int_equal(status, 200);
	assert_non_null(strstr(resp, "\"allowed\":true"));
	free(resp);
	assert_int_equal(tsi_injector_review(c, relhost, strlen(relhost), &resp,
	                     &status),
	    TSI_OK);
	assert_non_null(strstr(resp, "\"allowed\":false"));
	assert_non_null(strstr(resp, "absolute"));
	free(resp);
	/* the socket itself, through the /var/run symlink */
	assert_int_equal(tsi_injector_review(c, varrun, strlen(varrun), &resp,
	                     &status),
	    TSI_OK);
	assert_non_null(strstr(resp, "\"allowed\":false"));
	assert_non_null(strstr(resp, "/var/run/tsi"));
	free(resp);
	tsi_injector_conf_free(c);
}

/* A pod CREATE review with one hostPath volume at path; 1 when allowed. */
static int
hostpath_allowed(struct tsi_injector_conf *c, const char *path)
{
	char req[1024], *resp = NULL;
	int status = 0, allowed;

	snprintf(req, sizeof(req),
	    "{\"apiVersion\":\"admission.k8s.io/v1\","
	    "\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\","
	    "\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
	    "\"operation\":\"CREATE\",\"object\":{\"metadata\":{\"name\":"
	    "\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":"
	    "\"a:1\"}],\"volumes\":[{\"name\":\"h\",\"hostPath\":{\"path\":"
	    "\"%s\"}}]}}}}",
	    path);
	assert_int_equal(tsi_injector_review(c, req, strlen(req), &resp,
	                     &status),
	    TSI_OK);
	assert_int_equal(status, 200);
	allowed = strstr(resp, "\"allowed\":true") != NULL;
	if (!allowed)
		assert_non_null(strstr(resp, "protected host path"));
	free(resp);
	return allowed;
}

/* /proc reaches every mount namespace (/proc/1/root/run/tsi is the
 * issuer's directory), /sys/fs/cgroup moves processes between pods'
 * cgroups, /var/lib/kubelet/pods holds other pods' secret volumes. */
static void
test_hostpath_proc_sys_kubelet_refused(void **state)
{
	struct tsi_injector_conf *c = load("");
	static const char *const refused[] = {
		"/proc",
		"/proc/",
		"/proc/1/root",
		"/proc/1/root/run/tsi",
		"/proc/self/root/var/run/tsi",
		"/proc/1/cwd",
		"/proc/42/fd",
		"/proc/thread-self",
		"/./proc/../proc/1",
		"/sys",
		"/sys/fs",
		"/sys/fs/cgroup",
		"/sys/fs/cgroup/kubepods.slice",
		"/var/lib/kubelet",
		"/var/lib/kubelet/pods",
		"/var/lib/kubelet/pods/0b9f/volumes",
		"/run/tsi",
		"/",
	};
	static const char *const allowed[] = {
		"/var/log/web",
		"/procfs",
		"/sys/class/net",
		"/srv/proc",
		"/var/lib/kubelet-data",
		"/data/proc/1/root",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (hostpath_allowed(c, refused[i]))
			fail_msg("hostPath %s was allowed", refused[i]);
	}
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		if (!hostpath_allowed(c, allowed[i]))
			fail_msg("hostPath %s was refused", allowed[i]);
	}
	tsi_injector_conf_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_overlaps),
		cmocka_unit_test(test_protected_aliases),
		cmocka_unit_test(test_conf_errors),
		cmocka_unit_test(test_secrets_valid),
		cmocka_unit_test(test_secrets_invalid),
		cmocka_unit_test(test_review_rejects_garbage),
		cmocka_unit_test(test_hostpath_proc_sys_kubelet_refused),
	};

	return cmocka_run_group_tests_name("injector_core", tests, NULL, NULL);
}
