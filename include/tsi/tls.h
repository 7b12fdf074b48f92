/*
 * tls.h - the TLS side of tsi's HTTPS servers (tsi-vault, tsi-injector):
 * one cipher policy, the server key file's checks, and a certificate and key
 * that SIGHUP can replace without a restart.
 *
 * The servers run on libmicrohttpd with GnuTLS. The certificate is handed
 * to GnuTLS per handshake by tsi_tls_retrieve (MHD_OPTION_HTTPS_CERT_CALLBACK2)
 * from the credentials installed with tsi_tls_creds_install, so a reload
 * takes effect at the next handshake; connections already up keep the
 * certificate they started with.
 */
#ifndef TSI_TLS_H
#define TSI_TLS_H

#include <gnutls/abstract.h>
#include <stddef.h>

/*
 * GnuTLS priorities of every tsi HTTPS server: TLS 1.3, and TLS 1.2 with
 * ephemeral ECDH only (no static RSA key exchange, no finite-field DHE),
 * AEAD ciphers only (no CBC, so no SHA-1 HMAC suites), no SHA-1
 * signatures. Every client tsi supports (libcurl, Go, Python, Kubernetes'
 * API server) speaks these.
 */
#define TSI_TLS_PRIORITIES \
	"NONE:+VERS-TLS1.3:+VERS-TLS1.2:+ECDHE-ECDSA:+ECDHE-RSA:" \
	"+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:+AEAD:+SIGN-ALL:" \
	"-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1:+GROUP-ALL:" \
	"+COMP-NULL:+CTYPE-X509"

struct tsi_tls_creds;

/*
 * Reads a PEM certificate chain and its private key. The key file must be
 * a regular file readable by its owner only (no group or other bits, as
 * tsi-vault's kv_key_file), and the key must belong to the first
 * certificate. On failure err holds the reason (file names, never key
 * bytes). *out: tsi_tls_creds_free. The paths are copied: reload reads
 * them again.
 */
int tsi_tls_creds_load(const char *cert_file, const char *key_file,
    struct tsi_tls_creds **out, char *err, size_t errlen);

/*
 * Reads both files again with the same checks; only a pair that passes
 * them replaces the current one, otherwise the current pair stays and err
 * says why. Safe while handshakes run.
 */
int tsi_tls_creds_reload(struct tsi_tls_creds *c, char *err, size_t errlen);

/* The SHA-256 fingerprint (hex, 65 bytes with the NUL) of the certificate
 * currently served, for logs. */
void tsi_tls_creds_fingerprint(struct tsi_tls_creds *c, char out[65]);

/*
 * Makes c the credentials tsi_tls_retrieve serves (one TLS server per
 * process; NULL uninstalls). c stays owned by the caller, who must
 * uninstall it before freeing it, and after the server has stopped.
 */
void tsi_tls_creds_install(struct tsi_tls_creds *c);

/*
 * For MHD_OPTION_HTTPS_CERT_CALLBACK2: hands GnuTLS a copy of the
 * installed pair for one handshake (GnuTLS frees it), so a reload never
 * frees what a handshake still uses. Fails the handshake when nothing is
 * installed.
 */
gnutls_certificate_retrieve_function3 tsi_tls_retrieve;

/* Wipes the key and frees c; NULL is fine. */
void tsi_tls_creds_free(struct tsi_tls_creds *c);

#endif
