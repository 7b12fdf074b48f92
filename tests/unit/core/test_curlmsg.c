/*
 * tsi_curl_explain: each failure class names its fix, the CA variable is
 * the caller's, the https/http mismatch is told by the URL's scheme and
 * OpenSSL's words, other failures keep curl's detail, and the output is
 * always terminated within its buffer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <string.h>

#include "tsi/curlmsg.h"

static void
test_verify_names_the_variable(void **state)
{
	char out[512];

	(void)state;
	tsi_curl_explain(CURLE_PEER_FAILED_VERIFICATION,
	    "SSL certificate problem: unable to get local issuer certificate",
	    "https://vault:8200/v1/x", "VAULT_CACERT", out, sizeof(out));
	assert_non_null(strstr(out, "set VAULT_CACERT to the file of the CA"));
	assert_non_null(strstr(out, "unable to get local issuer"));
	assert_null(strstr(out, "SSL peer certificate or SSH remote key"));
	/* Without curl's error buffer, curl's own words are the detail,
	 * and the fix is still named. */
	tsi_curl_explain(CURLE_PEER_FAILED_VERIFICATION, NULL,
	    "https://vault:8200", "MY_CA", out, sizeof(out));
	assert_non_null(strstr(out, "set MY_CA to the file"));
	tsi_curl_explain(CURLE_SSL_CACERT_BADFILE, "error setting certificate",
	    "https://vault:8200", "VAULT_CACERT", out, sizeof(out));
	assert_non_null(strstr(out, "set VAULT_CACERT to a readable PEM file"));
}

static void
test_scheme_mismatch(void **state)
{
	char out[512];

	(void)state;
	tsi_curl_explain(CURLE_SSL_CONNECT_ERROR,
	    "error:0A00010B:SSL routines::wrong version number",
	    "HTTPS://127.0.0.1:8200", "VAULT_CACERT", out, sizeof(out));
	assert_non_null(strstr(out, "HTTPS request to an HTTP server"));
	/* A plain server that drops the connection on the ClientHello. */
	tsi_curl_explain(CURLE_SSL_CONNECT_ERROR,
	    "OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to "
	    "127.0.0.1:8200",
	    "https://127.0.0.1:8200", "VAULT_CACERT", out, sizeof(out));
	assert_non_null(strstr(out, "HTTPS request to an HTTP server?"));
	/* Another handshake failure is not called a mismatch. */
	tsi_curl_explain(CURLE_SSL_CONNECT_ERROR,
	    "tlsv1 alert protocol version", "https://127.0.0.1:8200",
	    "VAULT_CACERT", out, sizeof(out));
	assert_null(strstr(out, "HTTP server"));
	assert_non_null(strstr(out, "tlsv1 alert protocol version"));
	tsi_curl_explain(CURLE_GOT_NOTHING, "Empty reply from server",
	    "http://127.0.0.1:8200", "VAULT_CACERT", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP request to an HTTPS server"));
	/* The same failure over https:// is not a mismatch. */
	tsi_curl_explain(CURLE_GOT_NOTHING, "Empty reply from server",
	    "https://127.0.0.1:8200", "VAULT_CACERT", out, sizeof(out));
	assert_string_equal(out, "Empty reply from server");
}

static void
test_other_and_bounds(void **state)
{
	char out[512], small[16];

	(void)state;
	tsi_curl_explain(CURLE_COULDNT_CONNECT, "Couldn't connect to server",
	    "https://127.0.0.1:1", "VAULT_CACERT", out, sizeof(out));
	assert_string_equal(out, "Couldn't connect to server");
	memset(small, 'x', sizeof(small));
	tsi_curl_explain(CURLE_PEER_FAILED_VERIFICATION, "detail", "https://a",
	    "VAULT_CACERT", small, sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_names_the_variable),
		cmocka_unit_test(test_scheme_mismatch),
		cmocka_unit_test(test_other_and_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
