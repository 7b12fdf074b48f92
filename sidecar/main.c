/* tsi-sidecar: fetches this workload's secrets into files (CONTRACT "Sidecar"). */
#include "sidecar/sidecar.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
	struct tsi_sidecar_settings st;
	char err[512];
	int r, rc;

	tsi_sidecar_mark_main();
	/* Before jansson or OpenSSL allocate anything (libcurl is
	 * initialised once the settings say whether TLS is needed). */
	tsi_sidecar_wipe_install();
	tsi_log_init("tsi-sidecar", TSI_LOG_INFO);
	err[0] = '\0';
	r = tsi_sidecar_settings_load(argc, argv, &st, err, sizeof(err));
	if (r == TSI_ERR_EXISTS) {
		rc = 0; /* --help or --version */
		goto out;
	}
	if (r != TSI_OK) {
		fprintf(stderr, "tsi-sidecar: %s\n", err);
		tsi_log(TSI_LOG_ERROR, "sidecar.config", TSI_LS("reason", err));
		rc = 2;
		goto out;
	}
	if (tsi_sidecar_curl_init(strncmp(st.vault_addr, "https://", 8) == 0) !=
	    TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "sidecar.http",
		    TSI_LS("reason", "cannot initialise libcurl"));
		rc = 1;
		goto out;
	}
	rc = tsi_sidecar_run(&st);
out:
	tsi_sidecar_settings_clear(&st);
	curl_global_cleanup();
	return rc;
}
