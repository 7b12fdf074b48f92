/*
 * tpm.c - the issuer's privileged core: the only file that calls ESAPI.
 *
 * It does a fixed, short list of things: connect, create/load the signing
 * key, sign a digest, read the key back as a health probe. Nothing here
 * parses requests. See tpm.h for the promises.
 */
#include "issuer/tpm.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/file.h"
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
#include <openssl/evp.h>

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
	ESYS_TR key; /* ESYS_TR_NONE when not loaded */
	TPM2B_PUBLIC key_pub;
	TPM2B_PRIVATE key_priv;
	int have_blob;
	EVP_PKEY *pub;
	int available;
	long long last_try_ms; /* monotonic time of the last failed connect */
	/* Read without the mutex (atomics) so that health checks never queue
	 * behind signing: */
	long long last_ok_ms;     /* last command that succeeded */
	long long cmd_started_ms; /* command in flight since, or 0 */
	long long cmd_budget_ms;  /* how long that command may take */
	char reason[200];         /* why the TPM is unavailable */
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
cmd_begin_budget(struct tsi_tpm *t, long long budget_ms)
{
	__atomic_store_n(&t->cmd_budget_ms, budget_ms, __ATOMIC_RELEASE);
	__atomic_store_n(&t->cmd_started_ms, now_ms(), __ATOMIC_RELEASE);
}

static void
cmd_begin(struct tsi_tpm *t)
{
	cmd_begin_budget(t, TSI_TPM_HANG_MS);
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
	case TSS2_BASE_RC_NOT_IMPLEMENTED: return 1;
	default: return 0;
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
	uint8_t *buf = NULL;
	char *text = NULL, why[512];
	size_t len = 0, off = KEY_MAGIC_LEN;
	int r;
	TSS2_RC rc;

	r = tsi_file_read(t->key_path, KEY_FILE_MAX - 1, TSI_FILE_NOFOLLOW,
	    &text, &len, why, sizeof(why));
	if (r == TSI_ERR_NOT_FOUND)
		return TSI_ERR_NOT_FOUND;
	if (r != TSI_OK && r != TSI_ERR_TOO_LARGE) {
		tsi_log(TSI_LOG_ERROR, "tpm.key_file",
		    TSI_LS("path", t->key_path), TSI_LS("error", why));
		return TSI_ERR_IO;
	}
	buf = (uint8_t *)text;
	r = TSI_ERR_PARSE;
	if (text == NULL || len < KEY_MAGIC_LEN ||
	    memcmp(buf, KEY_MAGIC, KEY_MAGIC_LEN) != 0)
		goto out;
	memset(&t->key_pub, 0, sizeof(t->key_pub));
	memset(&t->key_priv, 0, sizeof(t->key_priv));
	if ((rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off,
	         &t->key_pub)) != TSS2_RC_SUCCESS ||
	    (rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, len, &off,
	         &t->key_priv)) != TSS2_RC_SUCCESS ||
	    off != len)
		goto out;
	t->have_blob = 1;
	r = TSI_OK;
out:
	if (r != TSI_OK)
		tsi_log(TSI_LOG_ERROR, "tpm.key_file",
		    TSI_LS("path", t->key_path),
		    TSI_LS("error",
		        r == TSI_ERR_IO ? "read failed"
		                        : "not a tsi TPM key file"));
	tsi_freezero(text, len + 1);
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
	if ((fd = open(tmp,
	         O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) <
	    0)
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
	if ((rc = Esys_Initialize(&t->esys, t->tcti, NULL)) !=
	    TSS2_RC_SUCCESS) {
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
	         ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
	         &srk_template, &outside, &pcrs, &parent, NULL, NULL, NULL,
	         NULL)) != TSS2_RC_SUCCESS) {
		r = tpm_fail(t, "create_primary", rc);
		goto out;
	}
	if (!t->have_blob) {
		r = key_file_read(t);
		if (r == TSI_ERR_NOT_FOUND) {
			if ((rc = Esys_Create(t->esys, parent, ESYS_TR_PASSWORD,
			         ESYS_TR_NONE, ESYS_TR_NONE, &sens,
			         &sign_template, &outside, &pcrs, &new_priv,
			         &new_pub, NULL, NULL, NULL)) !=
			    TSS2_RC_SUCCESS) {
				r = tpm_fail(t, "create_key", rc);
				goto out;
			}
			if ((r = key_file_write(t, new_pub, new_priv)) !=
			    TSI_OK)
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
			    TSI_LS("path", t->key_path),
			    TSI_LS("hint",
			        "the key file does not belong to this TPM's "
			        "owner "
			        "hierarchy; remove it and enroll the node "
			        "again"));
		r = tpm_fail(t, "load_key", rc);
		goto out;
	}
	if (t->pub == NULL &&
	    (r = pub_from_blob(&t->key_pub, &t->pub)) != TSI_OK)
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
	cmd_end(t,
	    r == TSI_OK ? TSS2_RC_SUCCESS : TSS2_BASE_RC_GENERAL_FAILURE);
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
		tsi_log(TSI_LOG_ERROR, "tpm.state_dir",
		    TSI_LS("path", state_dir),
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
	if (started != 0 &&
	    now - started >
	        __atomic_load_n(&t->cmd_budget_ms, __ATOMIC_ACQUIRE)) {
		int cut = cut_hung_command(t);
		tsi_log(TSI_LOG_WARN, "tpm.hung",
		    TSI_LI("in_flight_ms", now - started),
		    TSI_LI("connections_cut", cut));
		(void)snprintf(reason, reasonlen,
		    "TPM not answering for %lld ms", now - started);
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
		(void)snprintf(reason, reasonlen,
		    "TPM busy: no answer within %d ms", TSI_TPM_WAIT_MS);
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

/*
 * Enrollment evidence (tpm.h). Each operation runs under the mutex like a
 * signature, with the same one-reconnect rule, and flushes every transient
 * object and session it made before returning.
 */

typedef int (*tpm_op)(struct tsi_tpm *t, void *arg);

static int
run_op(struct tsi_tpm *t, tpm_op op, void *arg)
{
	int r, was;

	if ((r = lock_bounded(t)) != TSI_OK)
		return r;
	was = t->available;
	if ((r = ensure_locked(t)) == TSI_OK) {
		long long t0 = now_ms();
		r = op(t, arg);
		if (r == TSI_ERR_TPM_UNAVAILABLE && was &&
		    now_ms() - t0 < TSI_TPM_HANG_MS &&
		    connect_locked(t) == TSI_OK) {
			tsi_log(TSI_LOG_INFO, "tpm.connected");
			r = op(t, arg);
		}
	}
	pthread_mutex_unlock(&t->mu);
	return r;
}

/* Flushes a transient object or session made by an operation. After a
 * failure that tore the connection down there is nothing left to flush
 * through (and a TPM that is gone took the object with it). */
static void
flush(struct tsi_tpm *t, ESYS_TR *h)
{
	if (*h != ESYS_TR_NONE && t->esys != NULL)
		(void)Esys_FlushContext(t->esys, *h);
	*h = ESYS_TR_NONE;
}

/* Forgets a persistent or NV handle's ESYS_TR (the TPM object stays). */
static void
tr_close(struct tsi_tpm *t, ESYS_TR *h)
{
	if (*h != ESYS_TR_NONE && t->esys != NULL)
		(void)Esys_TR_Close(t->esys, h);
	*h = ESYS_TR_NONE;
}

/* TCG EK Credential Profile, template L-1: the RSA-2048 EK. Its authPolicy
 * is PolicySecret(TPM_RH_ENDORSEMENT). */
static const TPM2B_PUBLIC ek_template = {
	.publicArea = {
		.type = TPM2_ALG_RSA,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_FIXEDTPM |
		    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
		    TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED |
		    TPMA_OBJECT_DECRYPT,
		.authPolicy = {
			.size = 32,
			.buffer = {
				0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8,
				0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
				0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
				0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
			},
		},
		.parameters.rsaDetail = {
			.symmetric = {
				.algorithm = TPM2_ALG_AES,
				.keyBits.aes = 128,
				.mode.aes = TPM2_ALG_CFB,
			},
			.scheme.scheme = TPM2_ALG_NULL,
			.keyBits = 2048,
			.exponent = 0,
		},
		.unique.rsa.size = 256,
	},
};

/* The AK (tpm.h spells the template out for the server's side). */
static const TPM2B_PUBLIC ak_template = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_FIXEDTPM |
		    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
		    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
		    TPMA_OBJECT_SIGN_ENCRYPT,
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

/* Copies the first len bytes of buf to a new allocation. */
static int
dup_out(const uint8_t *buf, size_t len, uint8_t **out, size_t *outlen)
{
	if ((*out = malloc(len > 0 ? len : 1)) == NULL)
		return TSI_ERR_ALLOC;
	memcpy(*out, buf, len);
	*outlen = len;
	return TSI_OK;
}

static int
marshal_public(const TPM2B_PUBLIC *p, uint8_t **out, size_t *outlen)
{
	uint8_t buf[sizeof(TPM2B_PUBLIC)];
	size_t off = 0;

	if (Tss2_MU_TPM2B_PUBLIC_Marshal(p, buf, sizeof(buf), &off) !=
	    TSS2_RC_SUCCESS)
		return TSI_ERR_INTERNAL;
	return dup_out(buf, off, out, outlen);
}

static int
marshal_evidence(const TPM2B_ATTEST *a, const TPMT_SIGNATURE *s,
    uint8_t **attest, size_t *attest_len, uint8_t **sig, size_t *sig_len)
{
	uint8_t abuf[sizeof(TPM2B_ATTEST)], sbuf[sizeof(TPMT_SIGNATURE)];
	size_t aoff = 0, soff = 0;
	int r;

	if (Tss2_MU_TPM2B_ATTEST_Marshal(a, abuf, sizeof(abuf), &aoff) !=
	        TSS2_RC_SUCCESS ||
	    Tss2_MU_TPMT_SIGNATURE_Marshal(s, sbuf, sizeof(sbuf), &soff) !=
	        TSS2_RC_SUCCESS)
		return TSI_ERR_INTERNAL;
	if ((r = dup_out(abuf, aoff, attest, attest_len)) != TSI_OK)
		return r;
	if ((r = dup_out(sbuf, soff, sig, sig_len)) != TSI_OK) {
		free(*attest);
		*attest = NULL;
		return r;
	}
	return TSI_OK;
}

/* The EK: the persistent one if present, else made from the template
 * (*transient set: the caller flushes it). *pub (optional): Esys_Free. */
static int
ek_load(struct tsi_tpm *t, ESYS_TR *ek, int *transient, TPM2B_PUBLIC **pub)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TPM2B_PUBLIC *p = NULL;
	TSS2_RC rc;

	*ek = ESYS_TR_NONE;
	*transient = 0;
	cmd_begin(t);
	rc = Esys_TR_FromTPMPublic(t->esys, TSI_TPM_EK_HANDLE, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, ek);
	cmd_end(t, rc);
	if (rc == TSS2_RC_SUCCESS) {
		cmd_begin(t);
		rc = Esys_ReadPublic(t->esys, *ek, ESYS_TR_NONE, ESYS_TR_NONE,
		    ESYS_TR_NONE, &p, NULL, NULL);
		cmd_end(t, rc);
		if (rc != TSS2_RC_SUCCESS) {
			tr_close(t, ek);
			return tpm_fail(t, "ek_read_public", rc);
		}
		/* A persistent object at the EK handle that is not an RSA
		 * storage key cannot take part in activation. */
		if (p->publicArea.type != TPM2_ALG_RSA ||
		    (p->publicArea.objectAttributes &
		        (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)) !=
		        (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)) {
			tsi_log(TSI_LOG_ERROR, "tpm.ek_unusable",
			    TSI_LS("reason",
			        "the object at 0x81010001 is not an RSA EK"));
			Esys_Free(p);
			tr_close(t, ek);
			return TSI_ERR_TPM;
		}
		if (pub != NULL)
			*pub = p;
		else
			Esys_Free(p);
		return TSI_OK;
	}
	*ek = ESYS_TR_NONE;
	if (rc_unreachable(rc))
		return mark_unavailable(t, "ek_lookup", rc);
	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	cmd_begin_budget(t, TSI_TPM_SLOW_MS);
	rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &ek_template,
	    &outside, &pcrs, ek, &p, NULL, NULL, NULL);
	cmd_end(t, rc);
	if (rc != TSS2_RC_SUCCESS) {
		*ek = ESYS_TR_NONE;
		return tpm_fail(t, "ek_create", rc);
	}
	*transient = 1;
	if (pub != NULL)
		*pub = p;
	else
		Esys_Free(p);
	return TSI_OK;
}

static void
ek_release(struct tsi_tpm *t, ESYS_TR *ek, int transient)
{
	if (transient)
		flush(t, ek);
	else
		tr_close(t, ek);
}

/* The AK, loaded (the caller flushes it). *pub (optional): Esys_Free. */
static int
ak_load(struct tsi_tpm *t, ESYS_TR *ak, TPM2B_PUBLIC **pub)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TSS2_RC rc;

	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	cmd_begin_budget(t, TSI_TPM_SLOW_MS);
	rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &ak_template,
	    &outside, &pcrs, ak, pub, NULL, NULL, NULL);
	cmd_end(t, rc);
	if (rc != TSS2_RC_SUCCESS) {
		*ak = ESYS_TR_NONE;
		if (pub != NULL)
			*pub = NULL;
		return tpm_fail(t, "ak_create", rc);
	}
	return TSI_OK;
}

/* The length of the DER element at the start of p (0 when p does not
 * start with a definite-length SEQUENCE that fits in len). */
static size_t
der_len(const uint8_t *p, size_t len)
{
	size_t n, hdr, i, body = 0;

	if (len < 2 || p[0] != 0x30)
		return 0;
	if (p[1] < 0x80) {
		hdr = 2;
		body = p[1];
	} else {
		n = p[1] & 0x7f;
		if (n == 0 || n > 3 || len - 2 < n)
			return 0;
		for (i = 0; i < n; i++)
			body = (body << 8) | p[2 + i];
		hdr = 2 + n;
	}
	if (len - hdr < body)
		return 0;
	return hdr + body;
}

struct ek_args {
	uint8_t *cert;
	size_t cert_len;
	uint8_t *pub;
	size_t pub_len;
};

/* Reads the EK certificate NV index; args->cert stays NULL without one. */
static int
ek_cert_locked(struct tsi_tpm *t, struct ek_args *a)
{
	enum {
		CHUNK = 512
	};
	ESYS_TR nv = ESYS_TR_NONE, auth;
	TPM2B_NV_PUBLIC *nvpub = NULL;
	TPM2B_MAX_NV_BUFFER *data = NULL;
	uint8_t *buf = NULL;
	size_t size, off = 0, n;
	TSS2_RC rc;
	int r = TSI_ERR_TPM;

	cmd_begin(t);
	rc = Esys_TR_FromTPMPublic(t->esys, TSI_TPM_EK_CERT_NV, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, &nv);
	cmd_end(t, rc);
	if (rc != TSS2_RC_SUCCESS) {
		nv = ESYS_TR_NONE;
		if (rc_unreachable(rc))
			return mark_unavailable(t, "ek_cert_lookup", rc);
		tsi_log(TSI_LOG_INFO, "tpm.no_ek_cert",
		    TSI_LS("tpm_rc", Tss2_RC_Decode(rc)));
		return TSI_OK;
	}
	cmd_begin(t);
	rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, &nvpub, NULL);
	cmd_end(t, rc);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpm_fail(t, "ek_cert_public", rc);
		goto out;
	}
	size = nvpub->nvPublic.dataSize;
	if (size == 0 || size > TSI_TPM_EK_CERT_MAX) {
		tsi_log(TSI_LOG_ERROR, "tpm.ek_cert",
		    TSI_LS("reason",
		        "EK certificate index has an implausible size"),
		    TSI_LI("size", (long long)size));
		goto out;
	}
	if ((buf = malloc(size)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	/* The certificate index is read with its own (empty) auth where it
	 * allows that (AUTHREAD), otherwise with the owner's. */
	auth = (nvpub->nvPublic.attributes & TPMA_NV_AUTHREAD)
	    ? nv
	    : ESYS_TR_RH_OWNER;
	while (off < size) {
		n = size - off < CHUNK ? size - off : CHUNK;
		cmd_begin(t);
		rc = Esys_NV_Read(t->esys, auth, nv, ESYS_TR_PASSWORD,
		    ESYS_TR_NONE, ESYS_TR_NONE, (UINT16)n, (UINT16)off, &data);
		cmd_end(t, rc);
		if (rc != TSS2_RC_SUCCESS) {
			r = tpm_fail(t, "ek_cert_read", rc);
			goto out;
		}
		if (data->size != n) {
			tsi_log(TSI_LOG_ERROR, "tpm.ek_cert",
			    TSI_LS("reason", "short NV read"));
			goto out;
		}
		memcpy(buf + off, data->buffer, n);
		off += n;
		Esys_Free(data);
		data = NULL;
	}
	/* Some TPMs pad the index after the certificate. */
	if ((n = der_len(buf, size)) == 0) {
		tsi_log(TSI_LOG_ERROR, "tpm.ek_cert",
		    TSI_LS("reason",
		        "EK certificate index does not hold a DER "
		        "certificate"));
		goto out;
	}
	a->cert = buf;
	a->cert_len = n;
	buf = NULL;
	r = TSI_OK;
out:
	free(buf);
	Esys_Free(data);
	Esys_Free(nvpub);
	tr_close(t, &nv);
	return r;
}

static int
ek_locked(struct tsi_tpm *t, void *arg)
{
	struct ek_args *a = arg;
	TPM2B_PUBLIC *pub = NULL;
	ESYS_TR ek = ESYS_TR_NONE;
	int r, transient = 0;

	free(a->cert);
	a->cert = NULL;
	a->cert_len = 0;
	/* A certificate the TPM will not give (owner auth set, odd index)
	 * still leaves the EK public key, which an inventory entry may trust
	 * by its hash; only an unreachable TPM stops here. */
	if ((r = ek_cert_locked(t, a)) == TSI_ERR_TPM) {
		tsi_log(TSI_LOG_WARN, "tpm.ek_cert_skipped",
		    TSI_LS("reason",
		        "the EK certificate could not be read; sending the EK "
		        "public key alone"));
		r = TSI_OK;
	}
	if (r != TSI_OK)
		return r;
	if ((r = ek_load(t, &ek, &transient, &pub)) != TSI_OK)
		return r;
	r = marshal_public(pub, &a->pub, &a->pub_len);
	Esys_Free(pub);
	ek_release(t, &ek, transient);
	return r;
}

int
tsi_tpm_ek(struct tsi_tpm *t, uint8_t **cert, size_t *cert_len,
    uint8_t **ek_pub, size_t *ek_pub_len)
{
	struct ek_args a;
	int r;

	if (t == NULL || cert == NULL || cert_len == NULL || ek_pub == NULL ||
	    ek_pub_len == NULL)
		return TSI_ERR_INVALID_ARG;
	memset(&a, 0, sizeof(a));
	if ((r = run_op(t, ek_locked, &a)) != TSI_OK) {
		free(a.cert);
		return r;
	}
	*cert = a.cert;
	*cert_len = a.cert_len;
	*ek_pub = a.pub;
	*ek_pub_len = a.pub_len;
	return TSI_OK;
}

struct pub_args {
	uint8_t *pub;
	size_t len;
};

static int
ak_pub_locked(struct tsi_tpm *t, void *arg)
{
	struct pub_args *a = arg;
	TPM2B_PUBLIC *pub = NULL;
	ESYS_TR ak = ESYS_TR_NONE;
	int r;

	if ((r = ak_load(t, &ak, &pub)) != TSI_OK)
		return r;
	r = marshal_public(pub, &a->pub, &a->len);
	Esys_Free(pub);
	flush(t, &ak);
	return r;
}

int
tsi_tpm_ak_pub(struct tsi_tpm *t, uint8_t **pub, size_t *len)
{
	struct pub_args a = { NULL, 0 };
	int r;

	if (t == NULL || pub == NULL || len == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((r = run_op(t, ak_pub_locked, &a)) != TSI_OK)
		return r;
	*pub = a.pub;
	*len = a.len;
	return TSI_OK;
}

int
tsi_tpm_key_pub(struct tsi_tpm *t, uint8_t **pub, size_t *len)
{
	const TPMA_OBJECT need = TPMA_OBJECT_FIXEDTPM |
	    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SIGN_ENCRYPT;
	TPM2B_PUBLIC p;
	int r;

	if (t == NULL || pub == NULL || len == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((r = lock_bounded(t)) != TSI_OK)
		return r;
	p = t->key_pub;
	pthread_mutex_unlock(&t->mu);
	if ((p.publicArea.objectAttributes & need) != need) {
		tsi_log(TSI_LOG_ERROR, "tpm.key_duplicable",
		    TSI_LS("path", t->key_path),
		    TSI_LS("reason",
		        "the signing key is not "
		        "fixedTPM|fixedParent|sign; remove the key file and "
		        "enroll "
		        "the node again"));
		return TSI_ERR_UNSUPPORTED;
	}
	return marshal_public(&p, pub, len);
}

struct evidence_args {
	const uint8_t *nonce;
	size_t nonce_len;
	TPML_PCR_SELECTION sel;
	uint8_t *attest;
	size_t attest_len;
	uint8_t *sig;
	size_t sig_len;
};

static void
evidence_clear(struct evidence_args *a)
{
	free(a->attest);
	free(a->sig);
	a->attest = a->sig = NULL;
	a->attest_len = a->sig_len = 0;
}

static int
certify_locked(struct tsi_tpm *t, void *arg)
{
	struct evidence_args *a = arg;
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	TPM2B_DATA q = { .size = (UINT16)a->nonce_len };
	TPM2B_ATTEST *attest = NULL;
	TPMT_SIGNATURE *sig = NULL;
	ESYS_TR ak = ESYS_TR_NONE;
	TSS2_RC rc;
	int r;

	evidence_clear(a);
	memcpy(q.buffer, a->nonce, a->nonce_len);
	if ((r = ak_load(t, &ak, NULL)) != TSI_OK)
		return r;
	cmd_begin(t);
	rc = Esys_Certify(t->esys, t->key, ak, ESYS_TR_PASSWORD,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, &q, &scheme, &attest, &sig);
	cmd_end(t, rc);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpm_fail(t, "certify", rc);
		goto out;
	}
	r = marshal_evidence(attest, sig, &a->attest, &a->attest_len, &a->sig,
	    &a->sig_len);
out:
	Esys_Free(attest);
	Esys_Free(sig);
	flush(t, &ak);
	return r;
}

int
tsi_tpm_certify(struct tsi_tpm *t, const uint8_t *nonce, size_t nonce_len,
    uint8_t **attest, size_t *attest_len, uint8_t **sig, size_t *sig_len)
{
	struct evidence_args a;
	int r;

	if (t == NULL || nonce == NULL || nonce_len == 0 ||
	    nonce_len > TSI_TPM_NONCE_MAX || attest == NULL ||
	    attest_len == NULL || sig == NULL || sig_len == NULL)
		return TSI_ERR_INVALID_ARG;
	memset(&a, 0, sizeof(a));
	a.nonce = nonce;
	a.nonce_len = nonce_len;
	if ((r = run_op(t, certify_locked, &a)) != TSI_OK) {
		evidence_clear(&a);
		return r;
	}
	*attest = a.attest;
	*attest_len = a.attest_len;
	*sig = a.sig;
	*sig_len = a.sig_len;
	return TSI_OK;
}

struct activate_args {
	TPM2B_ID_OBJECT blob;
	TPM2B_ENCRYPTED_SECRET secret;
	uint8_t *out;
	size_t outcap;
	size_t outlen;
};

static int
activate_locked(struct tsi_tpm *t, void *arg)
{
	struct activate_args *a = arg;
	TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
	TPM2B_DIGEST *cert_info = NULL;
	ESYS_TR ek = ESYS_TR_NONE, ak = ESYS_TR_NONE, sess = ESYS_TR_NONE;
	TSS2_RC rc;
	int r, transient = 0;

	if ((r = ek_load(t, &ek, &transient, NULL)) != TSI_OK)
		return r;
	if ((r = ak_load(t, &ak, NULL)) != TSI_OK)
		goto out;
	cmd_begin(t);
	rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY,
	    &sym, TPM2_ALG_SHA256, &sess);
	cmd_end(t, rc);
	if (rc != TSS2_RC_SUCCESS) {
		sess = ESYS_TR_NONE;
		r = tpm_fail(t, "ek_session", rc);
		goto out;
	}
	/* Kept open whatever the command does, so that the flush below is
	 * the one way the session ends. */
	(void)Esys_TRSess_SetAttributes(t->esys, sess,
	    TPMA_SESSION_CONTINUESESSION, 0xff);
	cmd_begin(t);
	rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, sess,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0,
	    NULL, NULL);
	cmd_end(t, rc);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpm_fail(t, "ek_policy", rc);
		goto out;
	}
	cmd_begin(t);
	rc = Esys_ActivateCredential(t->esys, ak, ek, ESYS_TR_PASSWORD, sess,
	    ESYS_TR_NONE, &a->blob, &a->secret, &cert_info);
	cmd_end(t, rc);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpm_fail(t, "activate_credential", rc);
		goto out;
	}
	if (cert_info->size > a->outcap) {
		r = TSI_ERR_TOO_LARGE;
		goto out;
	}
	memcpy(a->out, cert_info->buffer, cert_info->size);
	a->outlen = cert_info->size;
	r = TSI_OK;
out:
	if (cert_info != NULL) {
		explicit_bzero(cert_info, sizeof(*cert_info));
		Esys_Free(cert_info);
	}
	flush(t, &sess);
	flush(t, &ak);
	ek_release(t, &ek, transient);
	return r;
}

int
tsi_tpm_activate(struct tsi_tpm *t, const uint8_t *blob, size_t blob_len,
    const uint8_t *enc_secret, size_t enc_secret_len, uint8_t *out,
    size_t outcap, size_t *outlen)
{
	struct activate_args a;
	size_t off = 0;
	int r;

	if (t == NULL || blob == NULL || enc_secret == NULL || out == NULL ||
	    outlen == NULL || outcap < 64)
		return TSI_ERR_INVALID_ARG;
	memset(&a, 0, sizeof(a));
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob, blob_len, &off, &a.blob) !=
	        TSS2_RC_SUCCESS ||
	    off != blob_len)
		return TSI_ERR_PARSE;
	off = 0;
	if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(enc_secret, enc_secret_len,
	        &off, &a.secret) != TSS2_RC_SUCCESS ||
	    off != enc_secret_len)
		return TSI_ERR_PARSE;
	a.out = out;
	a.outcap = outcap;
	r = run_op(t, activate_locked, &a);
	if (r == TSI_OK)
		*outlen = a.outlen;
	return r;
}

struct pcr_args {
	uint32_t mask;
	uint8_t (*values)[32];
};

static void
pcr_select(TPML_PCR_SELECTION *sel, uint32_t mask)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = 3;
	sel->pcrSelections[0].pcrSelect[0] = (uint8_t)(mask & 0xff);
	sel->pcrSelections[0].pcrSelect[1] = (uint8_t)((mask >> 8) & 0xff);
	sel->pcrSelections[0].pcrSelect[2] = (uint8_t)((mask >> 16) & 0xff);
}

/* A TPM answers at most 8 digests per PCR_Read: ask until all came. */
static int
pcr_read_locked(struct tsi_tpm *t, void *arg)
{
	struct pcr_args *a = arg;
	uint32_t left = a->mask, got;
	TPML_PCR_SELECTION sel, *osel = NULL;
	TPML_DIGEST *dig = NULL;
	UINT32 counter;
	TSS2_RC rc;
	size_t k;
	int i, rounds, r = TSI_ERR_TPM;

	for (rounds = 0; left != 0 && rounds < TSI_TPM_PCRS; rounds++) {
		pcr_select(&sel, left);
		cmd_begin(t);
		rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE,
		    ESYS_TR_NONE, &sel, &counter, &osel, &dig);
		cmd_end(t, rc);
		if (rc != TSS2_RC_SUCCESS)
			return tpm_fail(t, "pcr_read", rc);
		if (osel->count != 1 ||
		    osel->pcrSelections[0].hash != TPM2_ALG_SHA256)
			goto out;
		got = 0;
		for (i = 0; i < 3 && i < osel->pcrSelections[0].sizeofSelect;
		     i++)
			got |= (uint32_t)osel->pcrSelections[0].pcrSelect[i]
			    << (8 * i);
		got &= left;
		/* The digests come in PCR order of the answered selection. */
		for (i = 0, k = 0; i < TSI_TPM_PCRS; i++) {
			if (!(got & (1u << i)))
				continue;
			if (k >= dig->count || dig->digests[k].size != 32)
				goto out;
			memcpy(a->values[i], dig->digests[k].buffer, 32);
			k++;
		}
		if (got == 0 || k != dig->count)
			goto out;
		left &= ~got;
		Esys_Free(osel);
		Esys_Free(dig);
		osel = NULL;
		dig = NULL;
	}
	if (left != 0)
		goto out;
	r = TSI_OK;
out:
	if (r != TSI_OK)
		tsi_log(TSI_LOG_ERROR, "tpm.error", TSI_LS("op", "pcr_read"),
		    TSI_LS("reason",
		        "the TPM does not answer the SHA-256 PCRs "
		        "asked for"));
	Esys_Free(osel);
	Esys_Free(dig);
	return r;
}

int
tsi_tpm_pcr_read(struct tsi_tpm *t, uint32_t mask,
    uint8_t values[TSI_TPM_PCRS][32])
{
	struct pcr_args a = { mask, values };

	if (t == NULL || values == NULL || mask == 0 ||
	    (mask >> TSI_TPM_PCRS) != 0)
		return TSI_ERR_INVALID_ARG;
	return run_op(t, pcr_read_locked, &a);
}

struct quote_args {
	struct evidence_args ev;
	uint32_t mask;
	uint8_t (*values)[32];
};

static int
quote_locked(struct tsi_tpm *t, void *arg)
{
	struct quote_args *a = arg;
	struct pcr_args pa = { a->mask, a->values };
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	TPM2B_DATA q = { .size = (UINT16)a->ev.nonce_len };
	TPM2B_ATTEST *attest = NULL;
	TPMT_SIGNATURE *sig = NULL;
	TPMS_ATTEST body;
	ESYS_TR ak = ESYS_TR_NONE;
	uint8_t digest[32], cat[TSI_TPM_PCRS * 32];
	size_t off = 0, n;
	TSS2_RC rc;
	int i, tries, r;

	evidence_clear(&a->ev);
	memcpy(q.buffer, a->ev.nonce, a->ev.nonce_len);
	pcr_select(&a->ev.sel, a->mask);
	if ((r = ak_load(t, &ak, NULL)) != TSI_OK)
		return r;
	/* A PCR extended between the read and the quote would make the two
	 * disagree; read and quote again (a few times at most). */
	for (tries = 0; tries < 3; tries++) {
		Esys_Free(attest);
		Esys_Free(sig);
		attest = NULL;
		sig = NULL;
		if ((r = pcr_read_locked(t, &pa)) != TSI_OK)
			goto out;
		cmd_begin(t);
		rc = Esys_Quote(t->esys, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		    ESYS_TR_NONE, &q, &scheme, &a->ev.sel, &attest, &sig);
		cmd_end(t, rc);
		if (rc != TSS2_RC_SUCCESS) {
			r = tpm_fail(t, "quote", rc);
			goto out;
		}
		off = 0;
		memset(&body, 0, sizeof(body));
		if (Tss2_MU_TPMS_ATTEST_Unmarshal(attest->attestationData,
		        attest->size, &off, &body) != TSS2_RC_SUCCESS ||
		    body.type != TPM2_ST_ATTEST_QUOTE ||
		    body.attested.quote.pcrDigest.size != 32) {
			r = TSI_ERR_TPM;
			goto out;
		}
		for (i = 0, n = 0; i < TSI_TPM_PCRS; i++)
			if (a->mask & (1u << i)) {
				memcpy(cat + n, a->values[i], 32);
				n += 32;
			}
		if (EVP_Digest(cat, n, digest, NULL, EVP_sha256(), NULL) != 1) {
			r = TSI_ERR_CRYPTO;
			goto out;
		}
		if (memcmp(digest, body.attested.quote.pcrDigest.buffer, 32) ==
		    0)
			break;
		tsi_log(TSI_LOG_INFO, "tpm.quote_raced");
	}
	if (tries == 3) {
		r = TSI_ERR_AGAIN;
		goto out;
	}
	r = marshal_evidence(attest, sig, &a->ev.attest, &a->ev.attest_len,
	    &a->ev.sig, &a->ev.sig_len);
out:
	Esys_Free(attest);
	Esys_Free(sig);
	flush(t, &ak);
	return r;
}

int
tsi_tpm_quote(struct tsi_tpm *t, const uint8_t *nonce, size_t nonce_len,
    uint32_t mask, uint8_t **attest, size_t *attest_len, uint8_t **sig,
    size_t *sig_len, uint8_t values[TSI_TPM_PCRS][32])
{
	struct quote_args a;
	int r;

	if (t == NULL || nonce == NULL || nonce_len == 0 ||
	    nonce_len > TSI_TPM_NONCE_MAX || mask == 0 ||
	    (mask >> TSI_TPM_PCRS) != 0 || attest == NULL ||
	    attest_len == NULL || sig == NULL || sig_len == NULL ||
	    values == NULL)
		return TSI_ERR_INVALID_ARG;
	memset(&a, 0, sizeof(a));
	a.ev.nonce = nonce;
	a.ev.nonce_len = nonce_len;
	a.mask = mask;
	a.values = values;
	if ((r = run_op(t, quote_locked, &a)) != TSI_OK) {
		evidence_clear(&a.ev);
		return r;
	}
	*attest = a.ev.attest;
	*attest_len = a.ev.attest_len;
	*sig = a.ev.sig;
	*sig_len = a.ev.sig_len;
	return TSI_OK;
}
