#include "swtpm_ek.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <tss2/tss2_mu.h>

int
test_run_quiet(char *const argv[], const char *out_path)
{
	int status;
	pid_t pid;

	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		int dn = open("/dev/null", O_RDWR), of = -1;
		if (out_path != NULL)
			of = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (dn >= 0) {
			dup2(dn, 0);
			dup2(of >= 0 ? of : dn, 1);
			dup2(dn, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

unsigned char *
test_read_file(const char *path, size_t max, size_t *len)
{
	unsigned char *buf;
	size_t n = 0;
	ssize_t k;
	int fd;

	if ((fd = open(path, O_RDONLY)) < 0)
		return NULL;
	if ((buf = malloc(max + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	while (n < max && (k = read(fd, buf + n, max - n)) > 0)
		n += (size_t)k;
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

int
test_write_file(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, p, len) == (ssize_t)len;
	return close(fd) == 0 && ok ? 0 : -1;
}

static int
write_text(const char *path, const char *text)
{
	return test_write_file(path, text, strlen(text));
}

int
test_swtpm_ek_start(struct test_swtpm_ek *e)
{
	char conf[320], caconf[320], opts[320], text[2048], state[300];
	char ekdir[300];
	int n;

	memset(e, 0, sizeof(*e));
	if (test_mkdtemp(e->dir, sizeof(e->dir), "ekca") != 0)
		return -1;
	/* A first start picks a free port pair and makes the state dir; the
	 * state is then manufactured with swtpm stopped. */
	if (test_swtpm_start(&e->tpm) != 0)
		return -1;
	test_swtpm_kill(&e->tpm, SIGTERM);
	snprintf(conf, sizeof(conf), "%s/swtpm_setup.conf", e->dir);
	snprintf(caconf, sizeof(caconf), "%s/swtpm-localca.conf", e->dir);
	snprintf(opts, sizeof(opts), "%s/swtpm-localca.options", e->dir);
	snprintf(ekdir, sizeof(ekdir), "%s/ek", e->dir);
	n = snprintf(text, sizeof(text),
	    "statedir = %s\nsigningkey = %s/signkey.pem\n"
	    "issuercert = %s/issuercert.pem\ncertserial = %s/certserial\n",
	    e->dir, e->dir, e->dir, e->dir);
	if (n < 0 || (size_t)n >= sizeof(text) || write_text(caconf, text) != 0)
		return -1;
	n = snprintf(text, sizeof(text),
	    "create_certs_tool = swtpm_localca\n"
	    "create_certs_tool_config = %s\ncreate_certs_tool_options = %s\n"
	    "active_pcr_banks = sha256\n",
	    caconf, opts);
	if (n < 0 || (size_t)n >= sizeof(text) || write_text(conf, text) != 0 ||
	    write_text(opts,
	        "--platform-manufacturer tsi-test\n"
	        "--platform-version 2.1\n--platform-model swtpm\n") != 0 ||
	    mkdir(ekdir, 0700) != 0)
		return -1;
	snprintf(state, sizeof(state), "%s", e->tpm.dir);
	{
		char *argv[] = { "swtpm_setup", "--tpm2", "--tpm-state", state,
			"--create-ek-cert", "--overwrite", "--config", conf,
			"--write-ek-cert-files", ekdir, NULL };
		if (test_run_quiet(argv, NULL) != 0)
			return -1;
	}
	snprintf(e->ek_cert, sizeof(e->ek_cert), "%s/ek-rsa2048.crt", ekdir);
	snprintf(e->ca_cert, sizeof(e->ca_cert), "%s/issuercert.pem", e->dir);
	return test_swtpm_restart(&e->tpm);
}

void
test_swtpm_ek_cleanup(struct test_swtpm_ek *e)
{
	test_swtpm_cleanup(&e->tpm);
	test_rmtree(e->dir);
}

int
test_tpm_name(const unsigned char *pub2b, size_t len, unsigned char name[34])
{
	TPM2B_PUBLIC p;
	uint8_t buf[sizeof(TPMT_PUBLIC)];
	size_t off = 0, moff = 0;

	memset(&p, 0, sizeof(p));
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(pub2b, len, &off, &p) !=
	        TSS2_RC_SUCCESS ||
	    off != len ||
	    Tss2_MU_TPMT_PUBLIC_Marshal(&p.publicArea, buf, sizeof(buf),
	        &moff) != TSS2_RC_SUCCESS)
		return -1;
	name[0] = 0x00;
	name[1] = 0x0b;
	return EVP_Digest(buf, moff, name + 2, NULL, EVP_sha256(), NULL) == 1
	    ? 0
	    : -1;
}

static unsigned char *
dup_range(const unsigned char *p, size_t n)
{
	unsigned char *d = malloc(n > 0 ? n : 1);

	if (d != NULL)
		memcpy(d, p, n);
	return d;
}

int
test_make_credential(const char *dir, const unsigned char *ek_pub,
    size_t ek_len, const unsigned char name[34], const unsigned char *secret,
    size_t slen, unsigned char **blob, size_t *blob_len, unsigned char **enc,
    size_t *enc_len)
{
	static const char d[] = "0123456789abcdef";
	char ekp[400], sp[400], op[400], namehex[69];
	unsigned char *file = NULL;
	size_t len = 0, off = 8, start, i;
	TPM2B_ID_OBJECT id;
	TPM2B_ENCRYPTED_SECRET es;
	int rc = -1;
	char *argv[] = { "tpm2_makecredential", "-T", "none", "-u", ekp, "-s",
		sp, "-n", namehex, "-o", op, NULL };

	/* Unique names: a server thread and the test may both make one. */
	snprintf(ekp, sizeof(ekp), "%s/mc-%ld-%p.ek", dir, (long)getpid(),
	    (void *)blob);
	snprintf(sp, sizeof(sp), "%s/mc-%ld-%p.secret", dir, (long)getpid(),
	    (void *)blob);
	snprintf(op, sizeof(op), "%s/mc-%ld-%p.out", dir, (long)getpid(),
	    (void *)blob);
	for (i = 0; i < 34; i++) {
		namehex[2 * i] = d[name[i] >> 4];
		namehex[2 * i + 1] = d[name[i] & 15];
	}
	namehex[68] = '\0';
	*blob = *enc = NULL;
	if (test_write_file(ekp, ek_pub, ek_len) != 0 ||
	    test_write_file(sp, secret, slen) != 0 ||
	    test_run_quiet(argv, NULL) != 0 ||
	    (file = test_read_file(op, 4096, &len)) == NULL)
		goto out;
	/* tpm2-tools' credential file: magic 0xBADCC0DE, version 1, then the
	 * two marshalled structures. */
	if (len <= 8 || file[0] != 0xba || file[3] != 0xde)
		goto out;
	memset(&id, 0, sizeof(id));
	memset(&es, 0, sizeof(es));
	start = off;
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(file, len, &off, &id) !=
	    TSS2_RC_SUCCESS)
		goto out;
	*blob_len = off - start;
	*blob = dup_range(file + start, *blob_len);
	start = off;
	if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(file, len, &off, &es) !=
	        TSS2_RC_SUCCESS ||
	    off != len)
		goto out;
	*enc_len = off - start;
	*enc = dup_range(file + start, *enc_len);
	rc = *blob != NULL && *enc != NULL ? 0 : -1;
out:
	if (rc != 0) {
		free(*blob);
		free(*enc);
		*blob = *enc = NULL;
	}
	free(file);
	(void)unlink(ekp);
	(void)unlink(sp);
	(void)unlink(op);
	return rc;
}

EVP_PKEY *
test_tpm_ecc_key(const unsigned char *pub2b, size_t len)
{
	TPM2B_PUBLIC p;
	uint8_t oct[65];
	size_t off = 0;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;

	memset(&p, 0, sizeof(p));
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(pub2b, len, &off, &p) !=
	        TSS2_RC_SUCCESS ||
	    off != len || p.publicArea.type != TPM2_ALG_ECC ||
	    p.publicArea.unique.ecc.x.size != 32 ||
	    p.publicArea.unique.ecc.y.size != 32)
		return NULL;
	oct[0] = 4;
	memcpy(oct + 1, p.publicArea.unique.ecc.x.buffer, 32);
	memcpy(oct + 33, p.publicArea.unique.ecc.y.buffer, 32);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	        "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, oct,
	        sizeof(oct)) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	return pk;
}

int
test_attest_sig_ok(EVP_PKEY *pk, const unsigned char *attest, size_t alen,
    const unsigned char *sig, size_t slen)
{
	TPM2B_ATTEST a;
	TPMT_SIGNATURE s;
	ECDSA_SIG *es = NULL;
	unsigned char *der = NULL;
	EVP_MD_CTX *md = NULL;
	size_t off = 0;
	int dlen, ok = 0;

	memset(&a, 0, sizeof(a));
	memset(&s, 0, sizeof(s));
	if (Tss2_MU_TPM2B_ATTEST_Unmarshal(attest, alen, &off, &a) !=
	        TSS2_RC_SUCCESS ||
	    off != alen)
		return 0;
	off = 0;
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, slen, &off, &s) !=
	        TSS2_RC_SUCCESS ||
	    off != slen || s.sigAlg != TPM2_ALG_ECDSA ||
	    s.signature.ecdsa.hash != TPM2_ALG_SHA256)
		return 0;
	if ((es = ECDSA_SIG_new()) == NULL ||
	    !ECDSA_SIG_set0(es,
	        BN_bin2bn(s.signature.ecdsa.signatureR.buffer,
	            s.signature.ecdsa.signatureR.size, NULL),
	        BN_bin2bn(s.signature.ecdsa.signatureS.buffer,
	            s.signature.ecdsa.signatureS.size, NULL)))
		goto out;
	if ((dlen = i2d_ECDSA_SIG(es, &der)) <= 0 ||
	    (md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) != 1)
		goto out;
	ok = EVP_DigestVerify(md, der, (size_t)dlen, a.attestationData,
	         a.size) == 1;
out:
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	return ok;
}
