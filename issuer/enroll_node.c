/*
 * enroll_node.c - the node's part of enrollment that needs privilege: the
 * TPM's evidence about itself and the node certificate's files (see
 * enroll.h, struct tsi_enroll_node). The single-process issuer and
 * `tsi-issuer enroll --single-process` call it directly; with privilege
 * separation the signer answers the front end's requests with it.
 */
#include "issuer/enroll.h"

#include "tsi/err.h"
#include "tsi/log.h"
#include "tsi/signer.h"
#include "tsi/x509.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static int
refuse(char *reason, size_t reasonlen, int r, const char *why)
{
	if (reason != NULL && reasonlen > 0)
		(void)snprintf(reason, reasonlen, "%s", why);
	return r;
}

static int
write_atomic(const char *path, const char *text, mode_t mode)
{
	char tmp[4096], dir[4096];
	const char *slash = strrchr(path, '/');
	size_t len = strlen(text), off = 0;
	int fd = -1, dfd, n, r = TSI_ERR_IO;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return TSI_ERR_TOO_LARGE;
	n = snprintf(dir, sizeof(dir), "%.*s",
	    slash == NULL       ? 1
	        : slash == path ? 1
	                        : (int)(slash - path),
	    slash == NULL ? "." : path);
	if (n < 0 || (size_t)n >= sizeof(dir))
		return TSI_ERR_TOO_LARGE;
	(void)unlink(tmp);
	if ((fd = open(tmp,
	         O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)) <
	    0)
		goto out;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		off += (size_t)w;
	}
	/* The umask must not narrow a certificate others read. */
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
		goto out;
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto out;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return TSI_OK;
out:
	tsi_log(TSI_LOG_ERROR, "enroll.write_failed", TSI_LS("path", path),
	    TSI_LS("error", strerror(errno)));
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
	return r;
}

static time_t
asn1_time(const ASN1_TIME *a)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(a, &tm) != 1)
		return 0;
	return timegm(&tm);
}

int
tsi_enroll_due(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    time_t now, int *valid, time_t *renew_at)
{
	X509 *cert = NULL;
	time_t nb, na;

	*valid = 0;
	*renew_at = 0;
	if (tsi_x509_load_file(cfg->node_cert, &cert) != TSI_OK)
		return 1;
	nb = asn1_time(X509_get0_notBefore(cert));
	na = asn1_time(X509_get0_notAfter(cert));
	if (tsi_x509_key_matches(cert, tsi_tpm_pub(tpm)) == 1 && nb != 0 &&
	    na > nb && now >= nb && now < na) {
		*valid = 1;
		*renew_at = na -
		    (time_t)((long long)(na - nb) * cfg->renew_percent / 100);
	}
	X509_free(cert);
	return !*valid || now >= *renew_at;
}

/* The certificate tsi-attest made must be for this TPM's key, carry a
 * location, be signed by the CA it came with and be valid now: a wrong
 * answer must not replace a working certificate. */
static int
check_cert(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    const char *cert_pem, const char *ca_pem, char *reason, size_t reasonlen)
{
	STACK_OF(X509) *cas = NULL;
	X509 *cert = NULL;
	struct tsi_location loc;
	int r = TSI_ERR_BAD_CERT, i, signed_ok = 0;

	memset(&loc, 0, sizeof(loc));
	if (tsi_x509_load_chain_pem(cert_pem, strlen(cert_pem), &cas) !=
	        TSI_OK ||
	    sk_X509_num(cas) < 1) {
		refuse(reason, reasonlen, r,
		    "the node certificate from "
		    "tsi-attest does not parse");
		goto out;
	}
	cert = sk_X509_shift(cas);
	sk_X509_pop_free(cas, X509_free);
	cas = NULL;
	if (tsi_x509_load_chain_pem(ca_pem, strlen(ca_pem), &cas) != TSI_OK ||
	    sk_X509_num(cas) < 1) {
		refuse(reason, reasonlen, r,
		    "the node CA from tsi-attest does "
		    "not parse");
		goto out;
	}
	if (tsi_x509_key_matches(cert, tsi_tpm_pub(tpm)) != 1) {
		refuse(reason, reasonlen, r,
		    "the node certificate from "
		    "tsi-attest is not for this node's TPM key");
		goto out;
	}
	if (tsi_x509_location(cert, &loc) != TSI_OK) {
		refuse(reason, reasonlen, r,
		    "the node certificate from "
		    "tsi-attest carries no valid location");
		goto out;
	}
	/* Delegated signing certifies session keys with the node key: the
	 * node certificate must be a CA (pathlen 0, keyCertSign), as
	 * `tsi ca sign` makes it. */
	if (cfg->signing == TSI_SIGNING_DELEGATED &&
	    (X509_check_ca(cert) != 1 ||
	        !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN))) {
		refuse(reason, reasonlen, r,
		    "the node certificate from "
		    "tsi-attest cannot certify session keys (not a CA with "
		    "keyCertSign), which signing = \"delegated\" needs");
		goto out;
	}
	for (i = 0; i < sk_X509_num(cas); i++)
		if (X509_verify(cert,
		        X509_get0_pubkey(sk_X509_value(cas, i))) == 1)
			signed_ok = 1;
	ERR_clear_error();
	if (!signed_ok) {
		refuse(reason, reasonlen, r,
		    "the node certificate from "
		    "tsi-attest is not signed by the node CA it came with");
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0 ||
	    X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
		r = refuse(reason, reasonlen, TSI_ERR_EXPIRED,
		    "the node "
		    "certificate from tsi-attest is not valid now (clock?)");
		goto out;
	}
	r = TSI_OK;
out:
	tsi_location_clear(&loc);
	X509_free(cert);
	sk_X509_pop_free(cas, X509_free);
	return r;
}

int
tsi_enroll_install(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    const char *cert_pem, const char *ca_pem, char *reason, size_t reasonlen)
{
	int r;

	if (reason != NULL && reasonlen > 0)
		reason[0] = '\0';
	if ((r = check_cert(cfg, tpm, cert_pem, ca_pem, reason, reasonlen)) !=
	    TSI_OK)
		return r;
	/* The CA first: a reader that sees the new certificate finds the CA
	 * that signed it. */
	if ((r = write_atomic(cfg->node_ca, ca_pem, 0644)) != TSI_OK ||
	    (r = write_atomic(cfg->node_cert, cert_pem, 0644)) != TSI_OK) {
		if (reason != NULL && reasonlen > 0)
			(void)snprintf(reason, reasonlen,
			    "cannot write %s or %s (see enroll.write_failed)",
			    cfg->node_ca, cfg->node_cert);
		return r;
	}
	return TSI_OK;
}

int
tsi_enroll_csr(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    char **csr)
{
	struct tsi_signer *signer = NULL;
	char host[256];
	const char *cn = cfg->node_name;
	int r;

	*csr = NULL;
	if (cn == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			(void)snprintf(host, sizeof(host), "node");
		host[sizeof(host) - 1] = '\0';
		cn = host;
	}
	if ((r = tsi_tpm_signer(tpm, &signer)) == TSI_OK)
		r = tsi_x509_make_csr(signer, cn, csr);
	tsi_signer_free(signer);
	return r;
}

int
tsi_enroll_key(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    uint8_t **pub, size_t *len, char **csr)
{
	int r;

	*pub = NULL;
	*csr = NULL;
	if ((r = tsi_tpm_key_pub(tpm, pub, len)) != TSI_OK)
		return r;
	if ((r = tsi_enroll_csr(cfg, tpm, csr)) != TSI_OK) {
		free(*pub);
		*pub = NULL;
	}
	return r;
}

/* The local node's operations. */

static int
local_ek(void *ctx, uint8_t **cert, size_t *cert_len, uint8_t **pub,
    size_t *pub_len)
{
	return tsi_tpm_ek(((struct tsi_enroll_local *)ctx)->tpm, cert, cert_len,
	    pub, pub_len);
}

static int
local_ak_pub(void *ctx, uint8_t **pub, size_t *len)
{
	return tsi_tpm_ak_pub(((struct tsi_enroll_local *)ctx)->tpm, pub, len);
}

static int
local_key(void *ctx, uint8_t **pub, size_t *len, char **csr)
{
	struct tsi_enroll_local *l = ctx;

	return tsi_enroll_key(l->cfg, l->tpm, pub, len, csr);
}

static int
local_activate(void *ctx, const uint8_t *blob, size_t blob_len,
    const uint8_t *enc_secret, size_t enc_secret_len, uint8_t *out,
    size_t outcap, size_t *outlen)
{
	return tsi_tpm_activate(((struct tsi_enroll_local *)ctx)->tpm, blob,
	    blob_len, enc_secret, enc_secret_len, out, outcap, outlen);
}

static int
local_certify(void *ctx, const uint8_t *nonce, size_t nonce_len,
    uint8_t **attest, size_t *attest_len, uint8_t **sig, size_t *sig_len)
{
	return tsi_tpm_certify(((struct tsi_enroll_local *)ctx)->tpm, nonce,
	    nonce_len, attest, attest_len, sig, sig_len);
}

static int
local_quote(void *ctx, const uint8_t *nonce, size_t nonce_len, uint32_t mask,
    uint8_t **attest, size_t *attest_len, uint8_t **sig, size_t *sig_len,
    uint8_t values[TSI_TPM_PCRS][32])
{
	return tsi_tpm_quote(((struct tsi_enroll_local *)ctx)->tpm, nonce,
	    nonce_len, mask, attest, attest_len, sig, sig_len, values);
}

static int
local_state(void *ctx, time_t now, int *valid, time_t *renew_at)
{
	struct tsi_enroll_local *l = ctx;

	return tsi_enroll_due(l->cfg, l->tpm, now, valid, renew_at);
}

static int
local_install(void *ctx, const char *cert_pem, const char *ca_pem, char *reason,
    size_t reasonlen)
{
	struct tsi_enroll_local *l = ctx;

	return tsi_enroll_install(l->cfg, l->tpm, cert_pem, ca_pem, reason,
	    reasonlen);
}

void
tsi_enroll_node_local(struct tsi_enroll_local *l,
    const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    struct tsi_enroll_node *out)
{
	l->cfg = cfg;
	l->tpm = tpm;
	out->ctx = l;
	out->ek = local_ek;
	out->ak_pub = local_ak_pub;
	out->key = local_key;
	out->activate = local_activate;
	out->certify = local_certify;
	out->quote = local_quote;
	out->state = local_state;
	out->install = local_install;
}
