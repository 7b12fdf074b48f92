/*
 * curlmsg.h - what to tell a person whose HTTP(S) request failed.
 *
 * libcurl's own words ("SSL peer certificate or SSH remote key was not
 * OK") name neither the cause nor the fix. The `tsi` CLI and tsi-sidecar
 * both explain a failed transfer through this one function, so that the
 * same failure reads the same everywhere: a certificate that does not
 * verify names the variable that points at the CA file; TLS spoken to a
 * plain HTTP server, or plain HTTP to a TLS server, says so.
 */
#ifndef TSI_CURLMSG_H
#define TSI_CURLMSG_H

#include <stddef.h>

/*
 * Writes into out (outlen bytes, always NUL-terminated, truncated if
 * needed) one line explaining a failed transfer.
 *   cc:      the CURLcode of curl_easy_perform (or of the multi result).
 *   detail:  curl's CURLOPT_ERRORBUFFER text, or NULL/"" when none.
 *   url:     the URL requested (its scheme tells which side spoke TLS).
 *   ca_var:  what names the CA file, e.g. "VAULT_CACERT".
 * All borrowed for the call. Returns out.
 */
const char *tsi_curl_explain(int cc, const char *detail, const char *url,
    const char *ca_var, char *out, size_t outlen);

#endif /* TSI_CURLMSG_H */
