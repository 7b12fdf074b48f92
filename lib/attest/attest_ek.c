/*
 * attest_ek.c - EK certificates to the manufacturer CAs.
 *
 * EK certificates follow the TCG EK Credential Profile, not the web PKI:
 *   - the subject is often empty and the subjectAltName (a directoryName
 *     with TPM manufacturer, model and version, OIDs 2.23.133.2.x) is then
 *     critical. OpenSSL parses subjectAltName whatever the name form, so a
 *     critical SAN is "handled" and verification keeps refusing any other
 *     critical extension it does not know: an unknown critical extension
 *     means the issuer wanted a constraint we cannot enforce.
 *   - extendedKeyUsage is tcg-kp-EKCertificate (2.23.133.8.1), which matches
 *     no OpenSSL purpose: no purpose is set, and the key usage
 *     (keyEncipherment, what an EK does) is checked here instead.
 *   - subjectDirectoryAttributes (TPM specification) is not critical.
 * swtpm's local CA writes exactly this shape (critical SAN, EKU 2.23.133.8.1).
 * Every certificate in ek_ca is a trust anchor (X509_V_FLAG_PARTIAL_CHAIN):
 * operators configure a manufacturer's root, or pin an issuing CA.
 */
#include "tsi/attest.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

int
tsi_attest_ek_cert_verify(X509 *cert, STACK_OF(X509) *chain,
    STACK_OF(X509) *ek_ca, char *why, size_t whylen)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	int i, err, r = TSI_ERR_ALLOC;

	if (cert == NULL || ek_ca == NULL)
		return TSI_ERR_INVALID_ARG;
	if (sk_X509_num(ek_ca) == 0) {
		tsi_errf(why, whylen, "no ek_ca configured");
		return TSI_ERR_BAD_CERT;
	}
	if ((store = X509_STORE_new()) == NULL ||
	    (ctx = X509_STORE_CTX_new()) == NULL)
		goto out;
	for (i = 0; i < sk_X509_num(ek_ca); i++)
		if (X509_STORE_add_cert(store, sk_X509_value(ek_ca, i)) != 1)
			goto out;
	/* Not X509_V_FLAG_X509_STRICT: EK certificates of real TPMs often
	 * break its RFC 5280 profile checks (no authorityKeyIdentifier, odd
	 * encodings) while their signatures, validity and CA constraints,
	 * which are what we rely on, still verify. */
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	if (X509_STORE_CTX_init(ctx, store, cert, chain) != 1)
		goto out;
	r = TSI_ERR_BAD_CERT;
	if (X509_verify_cert(ctx) != 1) {
		err = X509_STORE_CTX_get_error(ctx);
		tsi_errf(why, whylen,
		    "EK certificate does not verify to ek_ca: %s",
		    X509_verify_cert_error_string(err));
		goto out;
	}
	/* An EK decrypts (MakeCredential secrets); one that may not is not
	 * an EK whatever its issuer. */
	if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) &&
	    !(X509_get_key_usage(cert) & KU_KEY_ENCIPHERMENT)) {
		tsi_errf(why, whylen, "EK certificate lacks keyEncipherment");
		goto out;
	}
	r = TSI_OK;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return r;
}
