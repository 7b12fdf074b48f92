/*
 * tls.c - a reloadable TLS server certificate for libmicrohttpd/GnuTLS
 * (include/tsi/tls.h).
 *
 * The current pair is kept as PEM text under a mutex. Each handshake gets
 * its own parsed copy, which GnuTLS frees when it is done with it
 * (GNUTLS_CERT_RETR_DEINIT_ALL): a reload can then drop the old text at
 * once, with no handshake left holding freed memory. Parsing one chain and
 * one key costs a few tens of microseconds, small beside the handshake's
 * own signature and key exchange.
 */
#include "tsi/tls.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/file.h"
#include "tsi/log.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TLS_FILE_MAX (1 << 20)
#define TLS_CHAIN_MAX 16

struct tls_pair {
	char *cert; /* PEM chain, NUL-terminated */
	size_t certlen;
	char *key; /* PEM key, wiped when freed */
	size_t keylen;
	char fp[65]; /* SHA-256 of the first certificate, hex */
};

struct tsi_tls_creds {
	char *cert_file;
	char *key_file;
	pthread_mutex_t mu; /* guards cur */
	struct tls_pair cur;
};

static pthread_mutex_t installed_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tsi_tls_creds *installed;

static void
pair_clear(struct tls_pair *p)
{
	free(p->cert);
	tsi_freezero(p->key, p->keylen);
	memset(p, 0, sizeof(*p));
}

/* Reads a whole file of at most TLS_FILE_MAX bytes. key: the file must be
 * a regular file with no group or other permission bits. *out: NUL-
 * terminated, caller frees (tsi_freezero for a key). */
static int
read_file(const char *path, int key, char **out, size_t *outlen, char *err,
    size_t errlen)
{
	int r;

	r = tsi_file_read(path, TLS_FILE_MAX,
	    TSI_FILE_REGULAR | TSI_FILE_NONEMPTY | (key ? TSI_FILE_PRIVATE : 0),
	    out, outlen, err, errlen);
	if (r == TSI_ERR_DENIED || r == TSI_ERR_TOO_LARGE || r == TSI_ERR_PARSE)
		r = TSI_ERR_CONFIG;
	else if (r == TSI_ERR_NOT_FOUND)
		r = TSI_ERR_IO;
	return r;
}

/* Parses p into GnuTLS objects: the chain into certs (gnutls_malloc'd
 * array, *ncerts entries) and the key; checks that the key belongs to the
 * first certificate. On failure nothing is left allocated. */
static int
pair_parse(const struct tls_pair *p, gnutls_pcert_st **certs, unsigned *ncerts,
    gnutls_privkey_t *key, char *err, size_t errlen)
{
	gnutls_datum_t cd, kd;
	gnutls_pcert_st *pc = NULL;
	gnutls_privkey_t k = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t a = { NULL, 0 }, b = { NULL, 0 };
	unsigned n = TLS_CHAIN_MAX, i;
	int rc, r = TSI_ERR_CRYPTO;

	cd.data = (unsigned char *)p->cert;
	cd.size = (unsigned)p->certlen;
	kd.data = (unsigned char *)p->key;
	kd.size = (unsigned)p->keylen;
	if ((pc = gnutls_malloc(TLS_CHAIN_MAX * sizeof(*pc))) == NULL)
		return TSI_ERR_ALLOC;
	if ((rc = gnutls_pcert_list_import_x509_raw(pc, &n, &cd,
	         GNUTLS_X509_FMT_PEM, 0)) < 0 ||
	    n == 0) {
		snprintf(err, errlen, "certificate: %s",
		    rc < 0 ? gnutls_strerror(rc) : "no certificate");
		gnutls_free(pc);
		return TSI_ERR_CRYPTO;
	}
	if ((rc = gnutls_privkey_init(&k)) < 0 ||
	    (rc = gnutls_privkey_import_x509_raw(k, &kd, GNUTLS_X509_FMT_PEM,
	         NULL, 0)) < 0) {
		snprintf(err, errlen, "private key: %s", gnutls_strerror(rc));
		goto out;
	}
	/* The key must be the first certificate's: compare public keys. */
	if ((rc = gnutls_pubkey_init(&pub)) < 0 ||
	    (rc = gnutls_pubkey_import_privkey(pub, k, 0, 0)) < 0 ||
	    (rc = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &a)) < 0 ||
	    (rc = gnutls_pubkey_export2(pc[0].pubkey, GNUTLS_X509_FMT_DER,
	         &b)) < 0) {
		snprintf(err, errlen, "private key: %s", gnutls_strerror(rc));
		goto out;
	}
	if (a.size != b.size || memcmp(a.data, b.data, a.size) != 0) {
		snprintf(err, errlen,
		    "the private key does not belong to the "
		    "certificate");
		goto out;
	}
	*certs = pc;
	*ncerts = n;
	*key = k;
	pc = NULL;
	k = NULL;
	r = TSI_OK;
out:
	gnutls_free(a.data);
	gnutls_free(b.data);
	gnutls_pubkey_deinit(pub);
	if (k != NULL)
		gnutls_privkey_deinit(k);
	if (pc != NULL) {
		for (i = 0; i < n; i++)
			gnutls_pcert_deinit(&pc[i]);
		gnutls_free(pc);
	}
	return r;
}

/* Reads and checks both files into p. */
static int
pair_read(const char *cert_file, const char *key_file, struct tls_pair *p,
    char *err, size_t errlen)
{
	gnutls_pcert_st *pc = NULL;
	gnutls_privkey_t k = NULL;
	unsigned char h[SHA256_DIGEST_LENGTH];
	unsigned n = 0, i;
	int r;

	memset(p, 0, sizeof(*p));
	if ((r = read_file(cert_file, 0, &p->cert, &p->certlen, err, errlen)) !=
	        TSI_OK ||
	    (r = read_file(key_file, 1, &p->key, &p->keylen, err, errlen)) !=
	        TSI_OK)
		goto out;
	if ((r = pair_parse(p, &pc, &n, &k, err, errlen)) != TSI_OK)
		goto out;
	SHA256(pc[0].cert.data, pc[0].cert.size, h);
	for (i = 0; i < sizeof(h); i++)
		snprintf(p->fp + 2 * i, 3, "%02x", h[i]);
	for (i = 0; i < n; i++)
		gnutls_pcert_deinit(&pc[i]);
	gnutls_free(pc);
	gnutls_privkey_deinit(k);
	r = TSI_OK;
out:
	if (r != TSI_OK)
		pair_clear(p);
	return r;
}

int
tsi_tls_creds_load(const char *cert_file, const char *key_file,
    struct tsi_tls_creds **out, char *err, size_t errlen)
{
	struct tsi_tls_creds *c;
	int r;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return TSI_ERR_ALLOC;
	pthread_mutex_init(&c->mu, NULL);
	if ((c->cert_file = strdup(cert_file)) == NULL ||
	    (c->key_file = strdup(key_file)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if ((r = pair_read(cert_file, key_file, &c->cur, err, errlen)) !=
	    TSI_OK)
		goto out;
	*out = c;
	c = NULL;
	r = TSI_OK;
out:
	tsi_tls_creds_free(c);
	return r;
}

int
tsi_tls_creds_reload(struct tsi_tls_creds *c, char *err, size_t errlen)
{
	struct tls_pair np, old;
	int r;

	if ((r = pair_read(c->cert_file, c->key_file, &np, err, errlen)) !=
	    TSI_OK)
		return r;
	pthread_mutex_lock(&c->mu);
	old = c->cur;
	c->cur = np;
	pthread_mutex_unlock(&c->mu);
	pair_clear(&old);
	return TSI_OK;
}

void
tsi_tls_creds_fingerprint(struct tsi_tls_creds *c, char out[65])
{
	pthread_mutex_lock(&c->mu);
	memcpy(out, c->cur.fp, 65);
	pthread_mutex_unlock(&c->mu);
}

void
tsi_tls_creds_install(struct tsi_tls_creds *c)
{
	pthread_mutex_lock(&installed_mu);
	installed = c;
	pthread_mutex_unlock(&installed_mu);
}

int
tsi_tls_retrieve(gnutls_session_t session,
    const struct gnutls_cert_retr_st *info, gnutls_pcert_st **certs,
    unsigned int *certs_length, gnutls_ocsp_data_st **ocsp,
    unsigned int *ocsp_length, gnutls_privkey_t *privkey, unsigned int *flags)
{
	struct tsi_tls_creds *c;
	char err[256];
	int r = -1;

	*ocsp = NULL;
	*ocsp_length = 0;
	pthread_mutex_lock(&installed_mu);
	if ((c = installed) != NULL) {
		pthread_mutex_lock(&c->mu);
		if (pair_parse(&c->cur, certs, certs_length, privkey, err,
		        sizeof(err)) == TSI_OK) {
			*flags = GNUTLS_CERT_RETR_DEINIT_ALL;
			r = 0;
		}
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_unlock(&installed_mu);
	if (r != 0)
		tsi_log(TSI_LOG_ERROR, "tls.no_certificate",
		    TSI_LS("error", c == NULL ? "none installed" : err));
	return r;
}

void
tsi_tls_creds_free(struct tsi_tls_creds *c)
{
	if (c == NULL)
		return;
	pair_clear(&c->cur);
	free(c->cert_file);
	free(c->key_file);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
