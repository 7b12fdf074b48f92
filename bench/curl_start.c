/*
 * curl_start.c - the process-start floor of tsi-sidecar's figure: a program
 * linked with exactly the libraries tsi-sidecar is linked with (same
 * NEEDED list, same hardening link flags; bench/CMakeLists.txt) that does
 * only what any libcurl client must do, curl_global_init, and exits.
 * OpenSSL is initialised first the way tsi-sidecar does it for a plain-HTTP
 * vault (the benchmark's): without its configuration file and without an
 * exit handler, so that this stays a floor of what the sidecar does.
 * bench/run times its fork to exit the way it times `tsi-sidecar --once`.
 *
 *   curl_start
 *
 * Exit 0, 1 when curl_global_init fails.
 */
#include <curl/curl.h>
#include <openssl/crypto.h>

int
main(void)
{
	(void)OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT |
	        OPENSSL_INIT_NO_LOAD_CONFIG,
	    NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	return 0;
}
