/*
 * The sidecar's use of the wiping allocators (lib/wipe.c): jansson and
 * OpenSSL at start-up, and libcurl's receive buffers.
 */
#include "sidecar/sidecar.h"
#include "tsi/err.h"
#include "tsi/wipe.h"

#include <curl/curl.h>
#include <openssl/crypto.h>

void
tsi_sidecar_wipe_install(void)
{
	tsi_wipe_install(TSI_WIPE_OPENSSL | TSI_WIPE_JSON);
}

int
tsi_sidecar_curl_init(int tls)
{
	/*
	 * First OpenSSL initialisation, before libcurl's: OpenSSL's
	 * configuration file matters only for TLS (its providers and TLS
	 * defaults), so without TLS it is not read (1.8 M instructions,
	 * libcurl would load it anyway). No exit handler: the process
	 * ends right after, and tearing down OpenSSL's tables (0.6 M
	 * instructions) would only delay its exit.
	 */
	(void)OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT |
	        (tls ? OPENSSL_INIT_LOAD_CONFIG : OPENSSL_INIT_NO_LOAD_CONFIG),
	    NULL);
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, tsi_wipe_malloc,
	        tsi_wipe_free, tsi_wipe_realloc, tsi_wipe_strdup,
	        tsi_wipe_calloc) != CURLE_OK)
		return TSI_ERR_INTERNAL;
	return TSI_OK;
}
