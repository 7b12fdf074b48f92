/*
 * curl_start.c - the process-start floor of tsi-sidecar's figure: a program
 * linked with exactly the libraries tsi-sidecar is linked with (same
 * NEEDED list, same hardening link flags; bench/CMakeLists.txt) that does
 * only what any libcurl client must do, curl_global_init, and exits.
 * bench/run times its fork to exit the way it times `tsi-sidecar --once`.
 *
 *   curl_start
 *
 * Exit 0, 1 when curl_global_init fails.
 */
#include <curl/curl.h>

int
main(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	curl_global_cleanup();
	return 0;
}
