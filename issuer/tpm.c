/*
 * tpm.c - the issuer's privileged core: the only file that calls ESAPI.
 *
 * It does a fixed, short list of things: connect, create/load the signing
 * key, sign a digest, read the key back as a health probe. Nothing here
 * parses requests. See tpm.h for the promises.
 */
#include "issuer/tpm.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define KEY_MAGIC "TSIKEY1\n"
#define KEY_MAGIC_LEN 8
#define KEY_FILE_MAX 4096

struct tsi_tpm {
	pthread_mutex_t mu;
	char *tcti_conf;
	char *key_path;
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR key;                 /* ESYS_TR_NONE when not loaded */
	TPM2B_PUBLIC key_pub;
	TPM2B_PRIVATE key_priv;
	int have_blob;
	EVP_PKEY *pub;
	int available;
	long long last_try_ms;       /* monotonic time of the last failed connect */
	/* Read without the mutex (atomics) so that health checks never queue
	 * behind signing: */
	long long last_ok_ms;        /* last command that succeeded */
	long long cmd_started_ms;    /* command in flight since, or 0 */
	char reason[200];            /* why the TPM is unavailable */
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
cmd_begin(struct tsi_tpm *t)
{
	__atomic_store_n(&t->cmd_started_ms, now_ms(), __ATOMIC_RELEASE);
}

static void
cmd_end(struct tsi_tpm *t, TSS2_RC rc)
{
	long long now = now_ms();

	__atomic_store_n(&t->cmd_started_ms, 0, __ATOMIC_RELEASE);
	if (rc == TSS2_RC_SUCCESS)
		__atomic_store_n(&t->last_ok_ms, now, __ATOMIC_RELEASE);
}

/* Whether rc means "the TPM cannot be reached" rather than "the TPM said no". */
static int
rc_unreachable(TSS2_RC rc)
{
	TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
	TSS2_RC base = rc & 0xffff;

	if (layer == TSS2_TCTI_RC_LAYER)
		return 1;
	/* A TPM that restarted under a reconnecting TCTI has lost our loaded
	 * key or wants TPM2_Startup: both mean "connect again". */
	if (layer == TSS2_TPM_RC_LAYER)
		return rc == TPM2_RC_REFERENCE_H0 || rc == TPM2_RC_INITIALIZE;
	switch (base) {
	case TSS2_BASE_RC_IO_ERROR:
	case TSS2_BASE_RC_NO_CONNECTION:
	case TSS2_BASE_RC_INSUFFICIENT_RESPONSE:
	case TSS2_BASE_RC_MALFORMED_RESPONSE:
	case TSS2_BASE_RC_BAD_SEQUENCE:
	case TSS2_BASE_RC_TRY_AGAIN:
	case TSS2_BASE_RC_NOT_IMPLEMENTED:
		return 1;
	default:
		return 0;
	}
}

static void
teardown(struct tsi_tpm *t)
{
	if (t->esys != NULL) {
		/* Flushing may fail when the TPM is gone; the handle dies with
		 * the TPM's session anyway. */
		if (t->key != ESYS_TR_NONE && t->available)
			(void)Esys_FlushContext(t->esys, t->key);
		Esys_Finalize(&t->esys);
	}
	t->key = ESYS_TR_NONE;
	if (t->tcti != NULL)
		Tss2_TctiLdr_Finalize(&t->tcti);
	t->esys = NULL;
	t->tcti = NULL;
}

/* Marks the TPM unavailable after a failed command or connect. */
static int
mark_unavailable(struct tsi_tpm *t, const char *what, TSS2_RC rc)
{
	int was = t->available;

	__atomic_store_n(&t->available, 0, __ATOMIC_RELEASE);
	t->last_try_ms = now_ms();
	(void)snprintf(t->reason, sizeof(t->reason), "%s: %s", what,
	    Tss2_RC_Decode(rc));
	teardown(t);
	if (was)
		tsi_log(TSI_LOG_WARN, "tpm.unavailable", TSI_LS("op", what),
		    TSI_LS("tpm_rc", Tss2_RC_Decode(rc)));
	else
		tsi_log(TSI_LOG_DEBUG, "tpm.connect_failed", TSI_LS("op", what),
		    TSI_LS("tpm_rc", Tss2_RC_Decode(rc)));
	return TSI_ERR_TPM_UNAVAILABLE;
}

/* A TPM error or an unreachable TPM, decided from rc. */
static int
tpm_fail(struct tsi_tpm *t, const char *what, TSS2_RC rc)
{
	if (rc_unreachable(rc))
		return mark_unavailable(t, what, rc);
	tsi_log(TSI_LOG_ERROR, "tpm.error", TSI_LS("op", what),
	    TSI_LS("tpm_rc", Tss2_RC_Decode(rc)));
	(void)snprintf(t->reason, sizeof(t->reason), "%s: %s", what,
	    Tss2_RC_Decode(rc));
	return TSI_ERR_TPM;
}

/* ECC P-256 storage parent; a fixed template makes the same key every time
 * from the owner seed, so nothing about it needs saving. */
static const TPM2B_PUBLIC srk_template = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_USERWITHAUTH |
		    TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
		    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
		    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_NODA,
		.parameters.eccDetail = {
			.symmetric = {
				.algorithm = TPM2_ALG_AES,
				.keyBits.aes = 128,
				.mode.aes = TPM2_ALG_CFB,
			},
			.scheme.scheme = TPM2_ALG_NULL,
			.curveID = TPM2_ECC_NIST_P256,
			.kdf.scheme = TPM2_ALG_NULL,
		},
	},
};

/* The signing key: unrestricted, ECDSA-SHA256 only, bound to this TPM. */
static const TPM2B_PUBLIC sign_template = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_USERWITHAUTH |
		    TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
		    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
		    TPMA_OBJECT_NODA,
		.parameters.eccDetail = {
			.symmetric.algorithm = TPM2_ALG_NULL,
			.scheme = {
				.scheme = TPM2_ALG_ECDSA,
				.details.ecdsa.hashAlg = TPM2_ALG_SHA256,
			},
			.curveID = TPM2_ECC_NIST_P256,
			.kdf.scheme = TPM2_ALG_NULL,
		},
	},
};

static int
pub_from_blob(const TPM2B_PUBLIC *p, EVP_PKEY **out)
{
	const TPMS_ECC_POINT *pt = &p->publicArea.unique.ecc;
	uint8_t oct[65];
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *pk = NULL;
	int r = TSI_ERR_CRYPTO;

	if (p->publicArea.type != TPM2_ALG_ECC ||
	    p->publicArea.parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 ||
	    pt->x.size > 32 || pt->y.size > 32 || pt->x.size == 0 ||
	    pt->y.size == 0)
		return TSI_ERR_PARSE;
	memset(oct, 0, sizeof(oct));
	oct[0] = 0x04;
	memcpy(oct + 1 + (32 - pt->x.size), pt->x.buffer, pt->x.size);
	memcpy(oct + 33 + (32 - pt->y.size), pt->y.buffer, pt->y.size);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, oct,
	    sizeof(oct)) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(pctx) <= 0 ||
	    EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		tsi_log_openssl(TSI_LOG_ERROR, "tpm.pubkey");
		goto out;
	}
	*out = pk;
	pk = NULL;
	r = TSI_OK;
out:
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

/* Reads the key file. TSI_ERR_NOT_FOUND when absent. */
static int
key_file_read(struct tsi_tpm *t)
{
	uint8_t buf[KEY_FILE_MAX];
	size_t len = 0, off = KEY_MAGIC_LEN;
	ssize_t n;
	int fd, r = TSI_ERR_PARSE;
	TSS2_RC rc;

	if ((fd = open(t->key_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			return TSI_ERR_NOT_FOUND;
		tsi_log(TSI_LOG_ERROR, "tpm.key_file", TSI_LS("path", t->key_path),
		    TSI_LS("error", strerror(errno)));
		return TSI_ERR_IO;
	}
	while (len < sizeof(buf) &&
	    (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = TSI_ERR_IO;
			goto out;
		}
		len += (size_t)n;
	}
	if (len == sizeof(buf) || len < KEY_MAGIC_LEN ||
	    memcmp(buf, KEY_MAGIC, KEY_MAGIC_LEN) != 0)
		goto out;
	memset(&t->key_pub, 0, sizeof(t->key_pub));
	memset(&t->key_priv, 0, sizeof(t->key_priv));
	if ((rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off,
	    &t->key_pub)) != TSS2_RC_SUCCESS ||
	    (rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, len, &off,
	    &t->key_priv)) != TSS2_RC_SUCCESS || off != len)
		goto out;
	t->have_blob = 1;
	r = TSI_OK;
out:
	if (r != TSI_OK)
		tsi_log(TSI_LOG_ERROR, "tpm.key_file", TSI_LS("path", t->key_path),
		    TSI_LS("error", r == TSI_ERR_IO ? "read failed" :
		    "not a tsi TPM key file"));
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return r;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Saves the new key's blobs. If another process saved a key first, its key
 * wins (it is reloaded) so that exactly one key exists per state dir. */
static int
key_file_write(struct tsi_tpm *t, const TPM2B_PUBLIC *pub,
    const TPM2B_PRIVATE *priv)
{
	uint8_t buf[KEY_FILE_MAX];
	char tmp[4096];
	size_t off = KEY_MAGIC_LEN;
	int fd = -1, r = TSI_ERR_IO, n;

	memcpy(buf, KEY_MAGIC, KEY_MAGIC_LEN);
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) !=
	    TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, sizeof(buf), &off) !=
	    TSS2_RC_SUCCESS)
		return TSI_ERR_INTERNAL;
	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", t->key_path,
	    (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return TSI_ERR_TOO_LARGE;
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600)) < 0)
		goto out;
	if (write_all(fd, buf, off) != 0 || fsync(fd) != 0)
		goto out;
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (link(tmp, t->key_path) != 0) {
		if (errno == EEXIST) {
			(void)unlink(tmp);
			tsi_log(TSI_LOG_WARN, "tpm.key_race",
			    TSI_LS("path", t->key_path));
			r = key_file_read(t);
			goto done;
		}
		goto out;
	}
	(void)unlink(tmp);
	t->key_pub = *pub;
	t->key_priv = *priv;
	t->have_blob = 1;
	r = TSI_OK;
	goto done;
out:
	tsi_log(TSI_LOG_ERROR, "tpm.key_file", TSI_LS("path", t->key_path),
	    TSI_LS("error", strerror(errno)));
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
done:
	explicit_bzero(buf, sizeof(buf));
	return r;
}

/* The TCP port a swtpm/mssim TCTI string talks to (0 for other TCTIs). */
static int
tcti_tcp_port(const char *conf)
{
	const char *p;
	long port = 2321;
	char *end;

	if (strncmp(conf, "swtpm", 5) != 0 && strncmp(conf, "mssim", 5) != 0)
		return 0;
	if ((p = strstr(conf, "port=")) != NULL) {
		port = strtol(p + 5, &end, 10);
		if (end == p + 5 || port <= 0 || port > 65535)
			return 0;
	}
	return (int)port;
}

/*
 * The socket TCTIs (swtpm, mssim) open a connection per command and block in
 * recv() without a timeout (Esys_SetTimeout is ignored, EINTR is retried): a
 * TPM that stops answering without closing the connection would hang the
 * command - and the mutex - forever. The watchdog (tsi_tpm_check, run by the
 * monitor thread) shuts down the TCTI's TCP sockets, those connected to its
 * port, when a command has been in flight too long; the blocked recv() then
 * returns and the command fails as an I/O error. /dev/tpmrm0 needs none of
 * this: the kernel driver times out.
 */
static int
cut_hung_command(const struct tsi_tpm *t)
{
	int port = tcti_tcp_port(t->tcti_conf), n = 0;
	struct dirent *de;
	DIR *d;

	if (port == 0 || (d = opendir("/proc/self/fd")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = atoi(de->d_name), peer;

		if (fd <= 2 || fd == dirfd(d))
			continue;
		if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
			continue;
		if (ss.ss_family == AF_INET)
			peer = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			peer = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		else
			continue;
		if (peer == port && shutdown(fd, SHUT_RDWR) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* (Re)connects: TCTI, ESYS, storage parent, signing key. Called locked. */
static int
connect_inner(struct tsi_tpm *t)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TPM2B_PUBLIC *new_pub = NULL;
	TPM2B_PRIVATE *new_priv = NULL;
	ESYS_TR parent = ESYS_TR_NONE;
	TSS2_RC rc;
	int r;

	teardown(t);
	t->last_try_ms = now_ms();
	if ((rc = Tss2_TctiLdr_Initialize(t->tcti_conf, &t->tcti)) !=
	    TSS2_RC_SUCCESS) {
		t->tcti = NULL;
		return mark_unavailable(t, "connect", rc);
	}
	if ((rc = Esys_Initialize(&t->esys, t->tcti, NULL)) != TSS2_RC_SUCCESS) {
		t->esys = NULL;
		return mark_unavailable(t, "esys_init", rc);
	}
	rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
	if (rc != TSS2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE)
		return tpm_fail(t, "startup", rc);

	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	if ((rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &srk_template,
	    &outside, &pcrs, &parent, NULL, NULL, NULL, NULL)) !=
	    TSS2_RC_SUCCESS) {
		r = tpm_fail(t, "create_primary", rc);
		goto out;
	}
	if (!t->have_blob) {
		r = key_file_read(t);
		if (r == TSI_ERR_NOT_FOUND) {
			if ((rc = Esys_Create(t->esys, parent, ESYS_TR_PASSWORD,
			    ESYS_TR_NONE, ESYS_TR_NONE, &sens, &sign_template,
			    &outside, &pcrs, &new_priv, &new_pub, NULL, NULL,
			    NULL)) != TSS2_RC_SUCCESS) {
				r = tpm_fail(t, "create_key", rc);
				goto out;
			}
			if ((r = key_file_write(t, new_pub, new_priv)) != TSI_OK)
				goto out;
			tsi_log(TSI_LOG_INFO, "tpm.key_created",
			    TSI_LS("path", t->key_path));
		} else if (r != TSI_OK)
			goto out;
	}
	if ((rc = Esys_Load(t->esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, &t->key_priv, &t->key_pub, &t->key)) !=
	    TSS2_RC_SUCCESS) {
		t->key = ESYS_TR_NONE;
		if (!rc_unreachable(rc))
			tsi_log(TSI_LOG_ERROR, "tpm.key_load",
			    TSI_LS("path", t->key_path), TSI_LS("hint",
			    "the key file does not belong to this TPM's owner "
			    "hierarchy; remove it and enroll the node again"));
		r = tpm_fail(t, "load_key", rc);
		goto out;
	}
	if (t->pub == NULL && (r = pub_from_blob(&t->key_pub, &t->pub)) != TSI_OK)
		goto out;
	__atomic_store_n(&t->available, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&t->last_ok_ms, now_ms(), __ATOMIC_RELEASE);
	t->reason[0] = '\0';
	r = TSI_OK;
out:
	if (parent != ESYS_TR_NONE && t->esys != NULL)
		(void)Esys_FlushContext(t->esys, parent);
	Esys_Free(new_pub);
	if (new_priv != NULL) {
		explicit_bzero(new_priv, sizeof(*new_priv));
		Esys_Free(new_priv);
	}
	if (r != TSI_OK && t->available == 0 && t->esys != NULL &&
	    r != TSI_ERR_TPM_UNAVAILABLE)
		teardown(t);
	return r;
}

/* The connect sequence counts as one command for the watchdog. */
static int
connect_locked(struct tsi_tpm *t)
{
	int r;

	cmd_begin(t);
	r = connect_inner(t);
	cmd_end(t, r == TSI_OK ? TSS2_RC_SUCCESS : TSS2_BASE_RC_GENERAL_FAILURE);
	return r;
}

static int
lock_bounded(struct tsi_tpm *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)(TSI_TPM_WAIT_MS % 1000) * 1000000L;
	ts.tv_sec += TSI_TPM_WAIT_MS / 1000 + ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	if (pthread_mutex_timedlock(&t->mu, &ts) != 0) {
		tsi_log(TSI_LOG_WARN, "tpm.busy",
		    TSI_LI("waited_ms", TSI_TPM_WAIT_MS));
		return TSI_ERR_TPM_UNAVAILABLE;
	}
	return TSI_OK;
}

/* Makes sure a connection exists, throttling reconnect attempts. Locked. */
static int
ensure_locked(struct tsi_tpm *t)
{
	int r;

	if (t->available)
		return TSI_OK;
	if (now_ms() - t->last_try_ms < TSI_TPM_RECONNECT_MS)
		return TSI_ERR_TPM_UNAVAILABLE;
	if ((r = connect_locked(t)) == TSI_OK)
		tsi_log(TSI_LOG_INFO, "tpm.connected");
	return r;
}

int
tsi_tpm_open(const char *tcti, const char *state_dir, struct tsi_tpm **out)
{
	struct tsi_tpm *t = NULL;
	char path[4096];
	int r = TSI_ERR_ALLOC, n;

	if (tcti == NULL || state_dir == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	n = snprintf(path, sizeof(path), "%s/%s", state_dir, TSI_TPM_KEY_FILE);
	if (n < 0 || (size_t)n >= sizeof(path))
		return TSI_ERR_TOO_LARGE;
	/* The TSS libraries print their own errors to stderr unless told not
	 * to; failures are logged here as JSON instead. */
	(void)setenv("TSS2_LOG", "all+NONE", 0);
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return TSI_ERR_ALLOC;
	t->key = ESYS_TR_NONE;
	if (pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t);
		return TSI_ERR_INTERNAL;
	}
	if ((t->tcti_conf = strdup(tcti)) == NULL ||
	    (t->key_path = strdup(path)) == NULL)
		goto out;
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
		tsi_log(TSI_LOG_ERROR, "tpm.state_dir", TSI_LS("path", state_dir),
		    TSI_LS("error", strerror(errno)));
		r = TSI_ERR_IO;
		goto out;
	}
	r = connect_locked(t);
	if (r == TSI_ERR_TPM_UNAVAILABLE && t->pub == NULL &&
	    key_file_read(t) == TSI_OK &&
	    pub_from_blob(&t->key_pub, &t->pub) == TSI_OK) {
		tsi_log(TSI_LOG_WARN, "tpm.start_unavailable",
		    TSI_LS("reason", t->reason));
		r = TSI_OK;
	}
	if (r != TSI_OK)
		goto out;
	tsi_log(TSI_LOG_INFO, "tpm.ready", TSI_LS("tcti", tcti),
	    TSI_LS("available", t->available ? "yes" : "no"));
	*out = t;
	t = NULL;
out:
	tsi_tpm_free(t);
	return r;
}

void
tsi_tpm_free(struct tsi_tpm *t)
{
	if (t == NULL)
		return;
	teardown(t);
	EVP_PKEY_free(t->pub);
	explicit_bzero(&t->key_priv, sizeof(t->key_priv));
	free(t->tcti_conf);
	free(t->key_path);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

EVP_PKEY *
tsi_tpm_pub(const struct tsi_tpm *t)
{
	return t->pub;
}

static int
sign_locked(struct tsi_tpm *t, const uint8_t digest[32], uint8_t sig[64])
{
	TPM2B_DIGEST d = { .size = 32 };
	TPMT_SIG_SCHEME scheme = {
		.scheme = TPM2_ALG_ECDSA,
		.details.ecdsa.hashAlg = TPM2_ALG_SHA256,
	};
	TPMT_TK_HASHCHECK ticket = {
		.tag = TPM2_ST_HASHCHECK,
		.hierarchy = TPM2_RH_NULL,
	};
	TPMT_SIGNATURE *s = NULL;
	const TPM2B_ECC_PARAMETER *rr, *ss;
	TSS2_RC rc;
	int r;

	memcpy(d.buffer, digest, 32);
	cmd_begin(t);
	rc = Esys_Sign(t->esys, t->key, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, &d, &scheme, &ticket, &s);
	cmd_end(t, rc);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(t, "sign", rc);
	rr = &s->signature.ecdsa.signatureR;
	ss = &s->signature.ecdsa.signatureS;
	if (s->sigAlg != TPM2_ALG_ECDSA || rr->size > 32 || ss->size > 32) {
		r = TSI_ERR_TPM;
		goto out;
	}
	memset(sig, 0, 64);
	memcpy(sig + (32 - rr->size), rr->buffer, rr->size);
	memcpy(sig + 32 + (32 - ss->size), ss->buffer, ss->size);
	r = TSI_OK;
out:
	Esys_Free(s);
	return r;
}

int
tsi_tpm_sign(struct tsi_tpm *t, const uint8_t digest[32], uint8_t sig[64])
{
	int r, was;

	if (t == NULL || digest == NULL || sig == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((r = lock_bounded(t)) != TSI_OK)
		return r;
	was = t->available;
	if ((r = ensure_locked(t)) == TSI_OK) {
		long long t0 = now_ms();
		r = sign_locked(t, digest, sig);
		/* A connection that was fine before and failed at once may just
		 * be stale (the TPM restarted): one immediate reconnect, then
		 * one more try. Not after a slow failure (a hung TPM). */
		if (r == TSI_ERR_TPM_UNAVAILABLE && was &&
		    now_ms() - t0 < TSI_TPM_HANG_MS &&
		    connect_locked(t) == TSI_OK) {
			tsi_log(TSI_LOG_INFO, "tpm.connected");
			r = sign_locked(t, digest, sig);
		}
	}
	pthread_mutex_unlock(&t->mu);
	return r;
}

static int
probe_locked(struct tsi_tpm *t)
{
	TPM2B_PUBLIC *p = NULL;
	TSS2_RC rc;

	cmd_begin(t);
	rc = Esys_ReadPublic(t->esys, t->key, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, &p, NULL, NULL);
	cmd_end(t, rc);
	Esys_Free(p);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(t, "probe", rc);
	return TSI_OK;
}

int
tsi_tpm_check(struct tsi_tpm *t, char *reason, size_t reasonlen)
{
	int r, was;

	long long now = now_ms(), started;

	if (reasonlen > 0)
		reason[0] = '\0';
	/* A command that does not come back: the TPM hangs. */
	started = __atomic_load_n(&t->cmd_started_ms, __ATOMIC_ACQUIRE);
	if (started != 0 && now - started > TSI_TPM_HANG_MS) {
		int cut = cut_hung_command(t);
		tsi_log(TSI_LOG_WARN, "tpm.hung", TSI_LI("in_flight_ms",
		    now - started), TSI_LI("connections_cut", cut));
		(void)snprintf(reason, reasonlen, "TPM not answering for %lld ms",
		    now - started);
		return TSI_ERR_TPM_UNAVAILABLE;
	}
	/* A command is running and not yet overdue: the TPM is working;
	 * waiting for the mutex would only queue behind it. */
	if (started != 0)
		return TSI_OK;
	/* A command just succeeded: no need to ask again (and no need to
	 * queue behind signing under load). */
	if (__atomic_load_n(&t->available, __ATOMIC_ACQUIRE) &&
	    now - __atomic_load_n(&t->last_ok_ms, __ATOMIC_ACQUIRE) <
	    TSI_TPM_FRESH_MS)
		return TSI_OK;
	if ((r = lock_bounded(t)) != TSI_OK) {
		(void)snprintf(reason, reasonlen, "TPM busy: no answer within %d ms",
		    TSI_TPM_WAIT_MS);
		return r;
	}
	was = t->available;
	if ((r = ensure_locked(t)) == TSI_OK) {
		long long t0 = now_ms();
		r = probe_locked(t);
		if (r == TSI_ERR_TPM_UNAVAILABLE && was &&
		    now_ms() - t0 < TSI_TPM_HANG_MS &&
		    connect_locked(t) == TSI_OK)
			r = probe_locked(t);
	}
	if (r != TSI_OK)
		(void)snprintf(reason, reasonlen, "%s",
		    t->reason[0] ? t->reason : tsi_strerror(r));
	pthread_mutex_unlock(&t->mu);
	return r;
}
