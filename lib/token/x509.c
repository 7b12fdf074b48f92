/*
 * x509.c - the cluster CA, node certificates bound to a location, session
 * certificates, CSRs, and small certificate helpers.
 *
 * Profiles (docs/token-core.md has the full table):
 *   CA       self-signed, CA:TRUE (critical), keyCertSign+cRLSign
 *   node     CA:TRUE pathlen:0 (critical), digitalSignature+keyCertSign,
 *            URI SANs tsi:cluster-name:C tsi:region:R tsi:datacenter:D [tsi:node:N]
 *   session  CA:FALSE (critical), digitalSignature, never past the node's notAfter
 */
#include "tsi/x509.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/hex.h"
#include "tsi/log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CSR_MAX_BYTES (64 * 1024)
#define MAX_DAYS 36500
#define BACKDATE 60 /* seconds: tolerate clocks slightly behind ours */

void
tsi_location_clear(struct tsi_location *loc)
{
	if (loc == NULL)
		return;
	free(loc->cluster_name);
	free(loc->region);
	free(loc->datacenter);
	free(loc->node);
	loc->cluster_name = loc->region = loc->datacenter = loc->node = NULL;
}

int
tsi_location_value_ok(const char *v)
{
	size_t i, n;

	if (v == NULL)
		return 0;
	n = strnlen(v, TSI_LOCATION_MAX + 1);
	if (n == 0 || n > TSI_LOCATION_MAX || v[0] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		        c == '.'))
			return 0;
	}
	return 1;
}

int
tsi_location_validate(const struct tsi_location *loc)
{
	if (loc == NULL || !tsi_location_value_ok(loc->cluster_name) ||
	    !tsi_location_value_ok(loc->region) ||
	    !tsi_location_value_ok(loc->datacenter) ||
	    (loc->node != NULL && !tsi_location_value_ok(loc->node)))
		return TSI_ERR_INVALID_ARG;
	return TSI_OK;
}

/* Stores a copy of val[0..len) into *slot; a second value is a duplicate. */
static int
loc_set(char **slot, const char *val, size_t len)
{
	char *v;

	if (*slot != NULL)
		return TSI_ERR_BAD_CERT;
	if ((v = strndup(val, len)) == NULL)
		return TSI_ERR_ALLOC;
	if (strlen(v) != len || !tsi_location_value_ok(v)) {
		free(v);
		return TSI_ERR_BAD_CERT;
	}
	*slot = v;
	return TSI_OK;
}

int
tsi_x509_location(X509 *cert, struct tsi_location *out)
{
	GENERAL_NAMES *gens = NULL;
	struct tsi_location loc = { 0 };
	int crit = -1, i, found = 0, ret = TSI_ERR_BAD_CERT;

	if (cert == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		ERR_clear_error();
		/* -1: no SAN extension; otherwise several or unparsable. */
		ret = crit == -1 ? TSI_ERR_NOT_FOUND : TSI_ERR_BAD_CERT;
		goto out;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const char *u, *key, *val;
		size_t ulen, klen;
		char **slot;

		if (g->type != GEN_URI)
			continue;
		u = (const char *)ASN1_STRING_get0_data(
		    g->d.uniformResourceIdentifier);
		ulen =
		    (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier);
		if (ulen < 4 || strncmp(u, "tsi:", 4) != 0)
			continue;
		found = 1;
		key = u + 4;
		if ((val = memchr(key, ':', ulen - 4)) == NULL) {
			ret = TSI_ERR_BAD_CERT;
			goto out;
		}
		klen = (size_t)(val - key);
		val++;
		if (klen == 12 && strncmp(key, "cluster-name", 12) == 0)
			slot = &loc.cluster_name;
		else if (klen == 6 && strncmp(key, "region", 6) == 0)
			slot = &loc.region;
		else if (klen == 10 && strncmp(key, "datacenter", 10) == 0)
			slot = &loc.datacenter;
		else if (klen == 4 && strncmp(key, "node", 4) == 0)
			slot = &loc.node;
		else
			continue; /* a later profile's name; not ours to judge */
		if ((ret = loc_set(slot, val, ulen - 4 - klen - 1)) != TSI_OK)
			goto out;
	}
	if (!found) {
		ret = TSI_ERR_NOT_FOUND;
		goto out;
	}
	if (loc.cluster_name == NULL || loc.region == NULL ||
	    loc.datacenter == NULL) {
		ret = TSI_ERR_BAD_CERT;
		goto out;
	}
	*out = loc;
	memset(&loc, 0, sizeof(loc)); /* transferred */
	ret = TSI_OK;
out:
	GENERAL_NAMES_free(gens);
	tsi_location_clear(&loc);
	return ret;
}

/* A random positive 127-bit serial (RFC 5280: at most 20 octets, positive). */
static int
set_random_serial(X509 *cert)
{
	unsigned char b[16];
	BIGNUM *bn = NULL;
	int ret = TSI_ERR_CRYPTO;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return TSI_ERR_CRYPTO;
	b[0] &= 0x7f;
	b[0] |= 0x40; /* never zero, fixed length */
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL)
		goto out;
	if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
		goto out;
	ret = TSI_OK;
out:
	BN_free(bn);
	return ret;
}

static int
add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int ok;

	if ((ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value)) == NULL)
		return TSI_ERR_CRYPTO;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? TSI_OK : TSI_ERR_CRYPTO;
}

static int
set_cn(X509_NAME *name, const char *cn)
{
	if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	        (const unsigned char *)cn, -1, -1, 0) != 1)
		return TSI_ERR_CRYPTO;
	return TSI_OK;
}

/* notBefore = now - BACKDATE, notAfter = now + secs, clamped to limit. */
static int
set_validity(X509 *cert, time_t now, long secs, const ASN1_TIME *limit)
{
	if (X509_time_adj_ex(X509_getm_notBefore(cert), 0, -BACKDATE, &now) ==
	    NULL)
		return TSI_ERR_CRYPTO;
	if (X509_time_adj_ex(X509_getm_notAfter(cert), (int)(secs / 86400),
	        secs % 86400, &now) == NULL)
		return TSI_ERR_CRYPTO;
	if (limit != NULL &&
	    ASN1_TIME_compare(X509_get0_notAfter(cert), limit) > 0 &&
	    X509_set1_notAfter(cert, limit) != 1)
		return TSI_ERR_CRYPTO;
	return TSI_OK;
}

static int
mem_bio_take(BIO *bio, char **out)
{
	BUF_MEM *bm = NULL;
	char *s;

	BIO_get_mem_ptr(bio, &bm);
	if (bm == NULL)
		return TSI_ERR_INTERNAL;
	if ((s = malloc(bm->length + 1)) == NULL)
		return TSI_ERR_ALLOC;
	memcpy(s, bm->data, bm->length);
	s[bm->length] = '\0';
	*out = s;
	return TSI_OK;
}

int
tsi_x509_to_pem(X509 *cert, char **pem)
{
	BIO *bio;
	int ret = TSI_ERR_CRYPTO;

	if (cert == NULL || pem == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return TSI_ERR_ALLOC;
	if (PEM_write_bio_X509(bio, cert) == 1)
		ret = mem_bio_take(bio, pem);
	BIO_free(bio);
	return ret;
}

int
tsi_x509_load_file(const char *path, X509 **out)
{
	BIO *bio;
	X509 *x;

	if (path == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((bio = BIO_new_file(path, "r")) == NULL) {
		ERR_clear_error();
		return TSI_ERR_IO;
	}
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (x == NULL) {
		ERR_clear_error();
		return TSI_ERR_PARSE;
	}
	*out = x;
	return TSI_OK;
}

static int
read_chain_bio(BIO *bio, STACK_OF(X509) **out)
{
	STACK_OF(X509) *sk;
	X509 *x;

	if ((sk = sk_X509_new_null()) == NULL)
		return TSI_ERR_ALLOC;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			sk_X509_pop_free(sk, X509_free);
			return TSI_ERR_ALLOC;
		}
	}
	/* The loop ends on "no start line" after the last certificate. */
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		return TSI_ERR_PARSE;
	}
	*out = sk;
	return TSI_OK;
}

int
tsi_x509_load_chain_file(const char *path, STACK_OF(X509) **out)
{
	BIO *bio;
	int ret;

	if (path == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((bio = BIO_new_file(path, "r")) == NULL) {
		ERR_clear_error();
		return TSI_ERR_IO;
	}
	ret = read_chain_bio(bio, out);
	BIO_free(bio);
	return ret;
}

int
tsi_x509_load_chain_pem(const char *pem, size_t len, STACK_OF(X509) **out)
{
	BIO *bio;
	int ret;

	if (pem == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if (len > INT32_MAX)
		return TSI_ERR_TOO_LARGE;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return TSI_ERR_ALLOC;
	ret = read_chain_bio(bio, out);
	BIO_free(bio);
	return ret;
}

int
tsi_x509_fingerprint(X509 *cert, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (cert == NULL || hex == NULL)
		return TSI_ERR_INVALID_ARG;
	if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32)
		return TSI_ERR_CRYPTO;
	tsi_hex_encode(md, n, hex);
	return TSI_OK;
}

int
tsi_x509_key_matches(X509 *cert, EVP_PKEY *pub)
{
	EVP_PKEY *ck;

	if (cert == NULL || pub == NULL)
		return 0;
	if ((ck = X509_get0_pubkey(cert)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	return EVP_PKEY_eq(ck, pub) == 1;
}

/* Opens path for writing; refuses to replace anything (O_EXCL). */
static int
create_excl(const char *path, mode_t mode, FILE **out)
{
	int fd;
	FILE *f;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd < 0)
		return errno == EEXIST ? TSI_ERR_EXISTS : TSI_ERR_IO;
	/* The umask must not widen nor narrow what we asked for. */
	if (fchmod(fd, mode) != 0 || (f = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlink(path);
		return TSI_ERR_IO;
	}
	*out = f;
	return TSI_OK;
}

static int
join_path(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? TSI_ERR_TOO_LARGE : TSI_OK;
}

int
tsi_ca_init(const char *dir, const char *common_name, int days)
{
	char keypath[4096], certpath[4096];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	X509V3_CTX v3;
	FILE *kf = NULL, *cf = NULL;
	struct stat st;
	int made_key = 0, made_cert = 0, ret;

	if (dir == NULL || days <= 0 || days > MAX_DAYS)
		return TSI_ERR_INVALID_ARG;
	if (common_name == NULL)
		common_name = "tsi cluster CA";
	if (*common_name == '\0' || strlen(common_name) > 64)
		return TSI_ERR_INVALID_ARG;
	if ((ret = join_path(keypath, sizeof(keypath), dir, "ca.key")) !=
	        TSI_OK ||
	    (ret = join_path(certpath, sizeof(certpath), dir, "ca.pem")) !=
	        TSI_OK)
		return ret;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return TSI_ERR_IO;
	if (lstat(certpath, &st) == 0 || lstat(keypath, &st) == 0)
		return TSI_ERR_EXISTS;

	ret = TSI_ERR_CRYPTO;
	if ((key = EVP_EC_gen("P-256")) == NULL ||
	    (cert = X509_new()) == NULL ||
	    X509_set_version(cert, X509_VERSION_3) != 1 ||
	    set_random_serial(cert) != TSI_OK ||
	    set_cn(X509_get_subject_name(cert), common_name) != TSI_OK ||
	    X509_set_issuer_name(cert, X509_get_subject_name(cert)) != 1 ||
	    set_validity(cert, time(NULL), (long)days * 86400, NULL) !=
	        TSI_OK ||
	    X509_set_pubkey(cert, key) != 1)
		goto out;
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	if (add_ext(cert, &v3, NID_basic_constraints, "critical,CA:TRUE") ||
	    add_ext(cert, &v3, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    add_ext(cert, &v3, NID_subject_key_identifier, "hash") ||
	    add_ext(cert, &v3, NID_authority_key_identifier, "keyid"))
		goto out;
	if (X509_sign(cert, key, EVP_sha256()) <= 0)
		goto out;

	if ((ret = create_excl(keypath, 0600, &kf)) != TSI_OK)
		goto out;
	made_key = 1;
	if ((ret = create_excl(certpath, 0644, &cf)) != TSI_OK)
		goto out;
	made_cert = 1;
	ret = TSI_ERR_IO;
	if (PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_X509(cf, cert) != 1)
		goto out;
	if (fflush(kf) != 0 || fsync(fileno(kf)) != 0 || fflush(cf) != 0 ||
	    fsync(fileno(cf)) != 0)
		goto out;
	ret = TSI_OK;
out:
	if (ret == TSI_ERR_CRYPTO)
		tsi_log_openssl(TSI_LOG_ERROR, "ca.init_failed");
	if (kf != NULL && fclose(kf) != 0 && ret == TSI_OK)
		ret = TSI_ERR_IO;
	if (cf != NULL && fclose(cf) != 0 && ret == TSI_OK)
		ret = TSI_ERR_IO;
	if (ret != TSI_OK) {
		/* Only what we created ourselves; an existing CA is never touched. */
		if (made_key)
			unlink(keypath);
		if (made_cert)
			unlink(certpath);
	}
	EVP_PKEY_free(key);
	X509_free(cert);
	return ret;
}

/* Encrypted keys are not supported; without this OpenSSL would prompt on
 * the terminal for a passphrase. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static int
load_key_file(const char *path, EVP_PKEY **out)
{
	BIO *bio;
	EVP_PKEY *k;

	if ((bio = BIO_new_file(path, "r")) == NULL) {
		ERR_clear_error();
		return TSI_ERR_IO;
	}
	k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (k == NULL) {
		ERR_clear_error();
		return TSI_ERR_PARSE;
	}
	*out = k;
	return TSI_OK;
}

/* Appends URI:tsi:<key>:<value> to gens. */
static int
push_uri(GENERAL_NAMES *gens, const char *key, const char *val)
{
	char uri[TSI_LOCATION_MAX + 32];
	GENERAL_NAME *g = NULL;
	ASN1_IA5STRING *ia5 = NULL;
	int n;

	n = snprintf(uri, sizeof(uri), "tsi:%s:%s", key, val);
	if (n < 0 || (size_t)n >= sizeof(uri))
		return TSI_ERR_TOO_LARGE;
	if ((g = GENERAL_NAME_new()) == NULL ||
	    (ia5 = ASN1_IA5STRING_new()) == NULL ||
	    ASN1_STRING_set(ia5, uri, n) != 1)
		goto fail;
	GENERAL_NAME_set0_value(g, GEN_URI, ia5);
	ia5 = NULL;
	if (sk_GENERAL_NAME_push(gens, g) <= 0)
		goto fail;
	return TSI_OK;
fail:
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(g);
	return TSI_ERR_ALLOC;
}

static int
add_location_sans(X509 *cert, const struct tsi_location *loc)
{
	GENERAL_NAMES *gens;
	int ret;

	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		return TSI_ERR_ALLOC;
	if ((ret = push_uri(gens, "cluster-name", loc->cluster_name)) !=
	        TSI_OK ||
	    (ret = push_uri(gens, "region", loc->region)) != TSI_OK ||
	    (ret = push_uri(gens, "datacenter", loc->datacenter)) != TSI_OK ||
	    (loc->node != NULL &&
	        (ret = push_uri(gens, "node", loc->node)) != TSI_OK))
		goto out;
	ret = X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0,
	          X509V3_ADD_APPEND) == 1
	    ? TSI_OK
	    : TSI_ERR_CRYPTO;
out:
	GENERAL_NAMES_free(gens);
	return ret;
}

int
tsi_ca_sign_csr(const char *ca_cert_path, const char *ca_key_path,
    const char *csr_pem, size_t csr_len, const struct tsi_location *loc,
    int days, char **cert_pem)
{
	X509 *ca = NULL, *cert = NULL;
	EVP_PKEY *cakey = NULL, *pub = NULL;
	X509_REQ *req = NULL;
	BIO *bio = NULL;
	X509V3_CTX v3;
	char group[32];
	size_t glen;
	int ret;

	if (ca_cert_path == NULL || ca_key_path == NULL || csr_pem == NULL ||
	    cert_pem == NULL || days <= 0 || days > MAX_DAYS)
		return TSI_ERR_INVALID_ARG;
	if (csr_len > CSR_MAX_BYTES)
		return TSI_ERR_TOO_LARGE;
	if ((ret = tsi_location_validate(loc)) != TSI_OK)
		return ret;
	if ((ret = tsi_x509_load_file(ca_cert_path, &ca)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "ca.load_failed",
		    TSI_LS("path", ca_cert_path),
		    TSI_LS("reason",
		        ret == TSI_ERR_IO ? "cannot read"
		                          : "no PEM certificate"));
		goto out;
	}
	if ((ret = load_key_file(ca_key_path, &cakey)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "ca.load_failed",
		    TSI_LS("path", ca_key_path),
		    TSI_LS("reason",
		        ret == TSI_ERR_IO ? "cannot read"
		                          : "no unencrypted PEM private key"));
		goto out;
	}
	if (X509_check_private_key(ca, cakey) != 1) {
		ERR_clear_error();
		tsi_log(TSI_LOG_ERROR, "ca.key_mismatch",
		    TSI_LS("detail", "ca.key does not belong to ca.pem"));
		ret = TSI_ERR_INVALID_ARG;
		goto out;
	}

	if ((bio = BIO_new_mem_buf(csr_pem, (int)csr_len)) == NULL) {
		ret = TSI_ERR_ALLOC;
		goto out;
	}
	if ((req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)) == NULL) {
		ERR_clear_error();
		tsi_log(TSI_LOG_WARN, "ca.csr_refused",
		    TSI_LS("reason", "not a PEM certificate request"));
		ret = TSI_ERR_PARSE;
		goto out;
	}
	ret = TSI_ERR_BAD_CERT;
	if ((pub = X509_REQ_get0_pubkey(req)) == NULL) {
		ERR_clear_error();
		goto out;
	}
	/* Proof of possession: the CSR must be signed by the key it names. */
	if (X509_REQ_verify(req, pub) != 1) {
		ERR_clear_error();
		tsi_log(TSI_LOG_WARN, "ca.csr_refused",
		    TSI_LS("reason", "CSR self-signature does not verify"));
		goto out;
	}
	glen = 0;
	if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC ||
	    EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof(group),
	        &glen) != 1 ||
	    strcmp(group, "prime256v1") != 0) {
		ERR_clear_error();
		tsi_log(TSI_LOG_WARN, "ca.csr_refused",
		    TSI_LS("reason", "CSR key is not EC P-256"));
		goto out;
	}

	ret = TSI_ERR_CRYPTO;
	if ((cert = X509_new()) == NULL ||
	    X509_set_version(cert, X509_VERSION_3) != 1 ||
	    set_random_serial(cert) != TSI_OK ||
	    set_cn(X509_get_subject_name(cert),
	        loc->node != NULL ? loc->node : loc->datacenter) != TSI_OK ||
	    X509_set_issuer_name(cert, X509_get_subject_name(ca)) != 1 ||
	    set_validity(cert, time(NULL), (long)days * 86400,
	        X509_get0_notAfter(ca)) != TSI_OK ||
	    X509_set_pubkey(cert, pub) != 1)
		goto out;
	X509V3_set_ctx(&v3, ca, cert, NULL, NULL, 0);
	if (add_ext(cert, &v3, NID_basic_constraints,
	        "critical,CA:TRUE,pathlen:0") ||
	    add_ext(cert, &v3, NID_key_usage,
	        "critical,digitalSignature,keyCertSign") ||
	    add_ext(cert, &v3, NID_subject_key_identifier, "hash") ||
	    add_ext(cert, &v3, NID_authority_key_identifier, "keyid") ||
	    add_location_sans(cert, loc) != TSI_OK)
		goto out;
	if (X509_sign(cert, cakey, EVP_sha256()) <= 0)
		goto out;
	ret = tsi_x509_to_pem(cert, cert_pem);
out:
	if (ret == TSI_ERR_CRYPTO)
		tsi_log_openssl(TSI_LOG_ERROR, "ca.sign_failed");
	BIO_free(bio);
	X509_REQ_free(req);
	X509_free(cert);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return ret;
}

int
tsi_x509_make_csr(const struct tsi_signer *s, const char *cn, char **csr_pem)
{
	X509_REQ *req = NULL;
	EVP_PKEY *bridge = NULL;
	BIO *bio = NULL;
	int ret;

	if (s == NULL || cn == NULL || *cn == '\0' || strlen(cn) > 64 ||
	    csr_pem == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((ret = tsi_signer_evp_pkey(s, &bridge)) != TSI_OK)
		return ret;
	ret = TSI_ERR_CRYPTO;
	if ((req = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    set_cn(X509_REQ_get_subject_name(req), cn) != TSI_OK ||
	    X509_REQ_set_pubkey(req, tsi_signer_pub(s)) != 1)
		goto out;
	if (X509_REQ_sign(req, bridge, EVP_sha256()) <= 0)
		goto out;
	/* A signer that returns a wrong signature is caught here, not by the CA. */
	if (X509_REQ_verify(req, tsi_signer_pub(s)) != 1)
		goto out;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_REQ(bio, req) != 1)
		goto out;
	ret = mem_bio_take(bio, csr_pem);
out:
	if (ret == TSI_ERR_CRYPTO)
		tsi_log_openssl(TSI_LOG_ERROR, "csr.make_failed");
	BIO_free(bio);
	X509_REQ_free(req);
	EVP_PKEY_free(bridge);
	return ret;
}

int
tsi_x509_issue_session_cert(const struct tsi_signer *node_signer,
    X509 *node_cert, EVP_PKEY *session_pub, int ttl, X509 **out)
{
	X509 *cert = NULL;
	EVP_PKEY *bridge = NULL;
	X509V3_CTX v3;
	time_t now = time(NULL);
	char kid[44];
	int ret;

	if (node_signer == NULL || node_cert == NULL || session_pub == NULL ||
	    out == NULL || ttl <= 0 || ttl > 7 * 86400)
		return TSI_ERR_INVALID_ARG;
	if (!tsi_x509_key_matches(node_cert, tsi_signer_pub(node_signer)))
		return TSI_ERR_INVALID_ARG;
	if ((ret = tsi_key_thumbprint(session_pub, kid)) != TSI_OK)
		return ret;
	if (X509_cmp_time(X509_get0_notAfter(node_cert), &now) <= 0)
		return TSI_ERR_EXPIRED;
	if ((ret = tsi_signer_evp_pkey(node_signer, &bridge)) != TSI_OK)
		return ret;
	ret = TSI_ERR_CRYPTO;
	if ((cert = X509_new()) == NULL ||
	    X509_set_version(cert, X509_VERSION_3) != 1 ||
	    set_random_serial(cert) != TSI_OK ||
	    set_cn(X509_get_subject_name(cert), kid) != TSI_OK ||
	    X509_set_issuer_name(cert, X509_get_subject_name(node_cert)) != 1 ||
	    set_validity(cert, now, ttl, X509_get0_notAfter(node_cert)) !=
	        TSI_OK ||
	    X509_set_pubkey(cert, session_pub) != 1)
		goto out;
	X509V3_set_ctx(&v3, node_cert, cert, NULL, NULL, 0);
	if (add_ext(cert, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(cert, &v3, NID_key_usage, "critical,digitalSignature") ||
	    add_ext(cert, &v3, NID_subject_key_identifier, "hash") ||
	    add_ext(cert, &v3, NID_authority_key_identifier, "keyid"))
		goto out;
	if (X509_sign(cert, bridge, EVP_sha256()) <= 0)
		goto out;
	/* The node signer may be a TPM: check what it produced. */
	if (X509_verify(cert, tsi_signer_pub(node_signer)) != 1)
		goto out;
	*out = cert;
	cert = NULL;
	ret = TSI_OK;
out:
	if (ret == TSI_ERR_CRYPTO)
		tsi_log_openssl(TSI_LOG_ERROR, "session_cert.issue_failed");
	X509_free(cert);
	EVP_PKEY_free(bridge);
	return ret;
}
