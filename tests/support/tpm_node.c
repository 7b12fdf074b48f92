#include "tpm_node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>
#include <unistd.h>

#include "tsi/attest.h"
#include "swtpm.h"

int
tpm_node_ca_dir(char *out, size_t len, const char *tag)
{
	return test_mkdtemp(out, len, tag);
}

int
tpm_node_ca_pem(const char *ca_dir, char *out, size_t len)
{
	char cmd[1024];
	int k;

	k = snprintf(out, len, "%s/ek-ca.pem", ca_dir);
	if (k < 0 || (size_t)k >= len)
		return -1;
	k = snprintf(cmd, sizeof(cmd),
	    "cat '%s/swtpm-localca-rootca-cert.pem' "
	    "'%s/issuercert.pem' > '%s'",
	    ca_dir, ca_dir, out);
	if (k < 0 || (size_t)k >= (int)sizeof(cmd))
		return -1;
	return system(cmd) == 0 ? 0 : -1;
}

static int
write_text(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;
	int k = snprintf(path, sizeof(path), "%s/%s", dir, name);

	if (k < 0 || (size_t)k >= sizeof(path) ||
	    (f = fopen(path, "w")) == NULL)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -1;
}

int
tpm_node_start(struct tpm_node *n, const char *ca_dir)
{
	struct test_swtpm tpm;
	char conf[1024], statedir[300];
	int k;

	memset(n, 0, sizeof(*n));
	if (test_mkdtemp(n->dir, sizeof(n->dir), "tpmnode") != 0)
		return -1;
	k = snprintf(conf, sizeof(conf),
	    "create_certs_tool = /usr/bin/swtpm_localca\n"
	    "create_certs_tool_config = %s/localca.conf\n"
	    "create_certs_tool_options = %s/localca.options\n"
	    "active_pcr_banks = sha256\n",
	    n->dir, n->dir);
	if (k < 0 || (size_t)k >= sizeof(conf) ||
	    write_text(n->dir, "setup.conf", conf) != 0)
		return -1;
	k = snprintf(conf, sizeof(conf),
	    "statedir = %s\nsigningkey = %s/signkey.pem\n"
	    "issuercert = %s/issuercert.pem\ncertserial = %s/certserial\n",
	    ca_dir, ca_dir, ca_dir, ca_dir);
	if (k < 0 || (size_t)k >= sizeof(conf) ||
	    write_text(n->dir, "localca.conf", conf) != 0 ||
	    write_text(n->dir, "localca.options",
	        "--platform-manufacturer tsi-test\n") != 0)
		return -1;
	snprintf(statedir, sizeof(statedir), "%s/state", n->dir);
	if (mkdir(statedir, 0700) != 0)
		return -1;
	if (tpm_node_run(n,
	        "swtpm_setup --tpm2 --tpmstate '%s' --create-ek-cert "
	        "--config '%s/setup.conf' --overwrite",
	        statedir, n->dir) != 0)
		return -1;
	if (test_swtpm_start_state(&tpm, statedir) != 0)
		return -1;
	n->pid = tpm.pid;
	n->port = tpm.port;
	memcpy(n->tcti, tpm.tcti, sizeof(n->tcti));
	return 0;
}

void
tpm_node_stop(struct tpm_node *n)
{
	struct test_swtpm tpm = { .pid = n->pid };

	test_swtpm_kill(&tpm, SIGTERM);
	n->pid = 0;
	test_rmtree(n->dir);
	n->dir[0] = '\0';
}

int
tpm_node_run(struct tpm_node *n, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int k, status;
	pid_t pid;

	va_start(ap, fmt);
	k = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= sizeof(cmd))
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		char log[300];
		int fd;

		snprintf(log, sizeof(log), "%s/log", n->dir);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) >=
		    0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (chdir(n->dir) != 0)
			_exit(126);
		if (n->tcti[0] != '\0')
			setenv("TPM2TOOLS_TCTI", n->tcti, 1);
		dprintf(2, "+ %s\n", cmd);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int
tpm_node_read(const struct tpm_node *n, const char *name, uint8_t **buf,
    size_t *len)
{
	char path[512];
	FILE *f;
	long sz;
	uint8_t *b;

	snprintf(path, sizeof(path), "%s/%s", n->dir, name);
	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (b = malloc((size_t)sz + 1)) == NULL) {
		fclose(f);
		return -1;
	}
	if (fread(b, 1, (size_t)sz, f) != (size_t)sz) {
		free(b);
		fclose(f);
		return -1;
	}
	b[sz] = 0;
	fclose(f);
	*buf = b;
	*len = (size_t)sz;
	return 0;
}

int
tpm_node_write(const struct tpm_node *n, const char *name, const void *buf,
    size_t len)
{
	char path[512];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", n->dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	ok = fwrite(buf, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

void
tpm_node_hex(const uint8_t *b, size_t len, char *out)
{
	size_t i;

	for (i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	out[2 * len] = '\0';
}

int
tpm_node_make_keys(struct tpm_node *n, const char *ak_attrs)
{
	if (ak_attrs == NULL)
		ak_attrs =
		    "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|"
		    "restricted|sign";
	/* Each tool loads what it needs and we flush right after: no
	 * resource manager cleans up for us. */
	if (tpm_node_run(n,
	        "tpm2_readpublic -c 0x%x -o ek.pub >/dev/null && "
	        "tpm2_nvread 0x01c00002 -o ek.der && "
	        "openssl x509 -inform der -in ek.der -out ek.pem",
	        TPM_NODE_EK) != 0)
		return -1;
	if (tpm_node_run(n,
	        "tpm2_createprimary -C e -g sha256 "
	        "-G ecc256:ecdsa-sha256:null -a '%s' -c ak.ctx >/dev/null && "
	        "tpm2_evictcontrol -C o -c ak.ctx 0x%x >/dev/null && "
	        "tpm2_flushcontext -t && "
	        "tpm2_readpublic -c 0x%x -o ak.pub >/dev/null",
	        ak_attrs, TPM_NODE_AK, TPM_NODE_AK) != 0)
		return -1;
	if (tpm_node_run(n,
	        "tpm2_createprimary -C o -c srk.ctx >/dev/null && "
	        "tpm2_evictcontrol -C o -c srk.ctx 0x%x >/dev/null && "
	        "tpm2_flushcontext -t && "
	        "tpm2_create -C 0x%x -G ecc256:ecdsa-sha256:null "
	        "-a "
	        "'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' "
	        "-u key.pub -r key.priv >/dev/null && tpm2_flushcontext -t && "
	        "tpm2_load -C 0x%x -u key.pub -r key.priv -c key.ctx "
	        ">/dev/null && "
	        "tpm2_evictcontrol -C o -c key.ctx 0x%x >/dev/null && "
	        "tpm2_flushcontext -t",
	        TPM_NODE_SRK, TPM_NODE_SRK, TPM_NODE_SRK, TPM_NODE_KEY) != 0)
		return -1;
	return 0;
}

int
tpm_node_csr(struct tpm_node *n, const uint8_t *key_pub, size_t key_len,
    const char *cn, const char *san, char **pem)
{
	struct tsi_tpm_pub *tp = NULL;
	X509_REQ *req = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_BIT_STRING *bits = NULL;
	unsigned char *tbs = NULL, md[32];
	uint8_t *sig = NULL;
	size_t siglen = 0;
	BIO *bio = NULL;
	BUF_MEM *bm;
	int tbslen, ret = -1;

	if (tsi_tpm_pub_parse(key_pub, key_len, &tp) != 0)
		return -1;
	if ((req = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
	        MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_REQ_set_pubkey(req, tsi_tpm_pub_pkey(tp)) != 1)
		goto out;
	if (san != NULL) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *ext =
		    X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
		int ok = exts != NULL && ext != NULL &&
		    sk_X509_EXTENSION_push(exts, ext) > 0 &&
		    X509_REQ_add_extensions(req, exts) == 1;
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		if (!ok)
			goto out;
	}
	if ((alg = X509_ALGOR_new()) == NULL ||
	    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256),
	        V_ASN1_UNDEF, NULL) != 1)
		goto out;
	X509_REQ_set1_signature_algo(req, alg);
	if ((tbslen = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0 ||
	    EVP_Digest(tbs, (size_t)tbslen, md, NULL, EVP_sha256(), NULL) !=
	        1 ||
	    tpm_node_write(n, "csr.dig", md, 32) != 0)
		goto out;
	/* The TPM's r and s, made into DER here: tpm2-tools' own DER
	 * ("-f plain") is not always canonical. */
	if (tpm_node_run(n,
	        "tpm2_sign -c 0x%x -g sha256 -d -f tss "
	        "-o csr.sig csr.dig",
	        TPM_NODE_KEY) != 0 ||
	    tpm_node_read(n, "csr.sig", &sig, &siglen) != 0)
		goto out;
	{
		TPMT_SIGNATURE ts;
		ECDSA_SIG *es = ECDSA_SIG_new();
		size_t off = 0;
		unsigned char *der = NULL;
		int dl;

		memset(&ts, 0, sizeof(ts));
		if (es == NULL ||
		    Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, siglen, &off, &ts) !=
		        TSS2_RC_SUCCESS ||
		    ECDSA_SIG_set0(es,
		        BN_bin2bn(ts.signature.ecdsa.signatureR.buffer,
		            ts.signature.ecdsa.signatureR.size, NULL),
		        BN_bin2bn(ts.signature.ecdsa.signatureS.buffer,
		            ts.signature.ecdsa.signatureS.size, NULL)) != 1 ||
		    (dl = i2d_ECDSA_SIG(es, &der)) <= 0) {
			ECDSA_SIG_free(es);
			goto out;
		}
		ECDSA_SIG_free(es);
		free(sig);
		if ((sig = malloc((size_t)dl)) == NULL) {
			OPENSSL_free(der);
			goto out;
		}
		memcpy(sig, der, (size_t)dl);
		siglen = (size_t)dl;
		OPENSSL_free(der);
	}
	if ((bits = ASN1_BIT_STRING_new()) == NULL ||
	    ASN1_BIT_STRING_set(bits, sig, (int)siglen) != 1)
		goto out;
	/* Whole bytes: without this, i2d counts the signature's trailing
	 * zero bits as "unused" and half of all CSRs fail to verify. */
	bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	X509_REQ_set0_signature(req, bits);
	bits = NULL;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_REQ(bio, req) != 1)
		goto out;
	BIO_get_mem_ptr(bio, &bm);
	if ((*pem = strndup(bm->data, bm->length)) == NULL)
		goto out;
	ret = 0;
out:
	BIO_free(bio);
	ASN1_BIT_STRING_free(bits);
	X509_ALGOR_free(alg);
	OPENSSL_free(tbs);
	free(sig);
	X509_REQ_free(req);
	tsi_tpm_pub_free(tp);
	return ret;
}

int
tpm_node_activate(struct tpm_node *n, const uint8_t *blob, size_t blob_len,
    const uint8_t *secret, size_t secret_len, uint8_t **out, size_t *out_len)
{
	/* tpm2-tools' credential file: magic, version, the two TPM2Bs. */
	static const uint8_t hdr[8] = { 0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1 };
	uint8_t *f;
	size_t len = sizeof(hdr) + blob_len + secret_len;
	int ok;

	if ((f = malloc(len)) == NULL)
		return -1;
	memcpy(f, hdr, sizeof(hdr));
	memcpy(f + sizeof(hdr), blob, blob_len);
	memcpy(f + sizeof(hdr) + blob_len, secret, secret_len);
	ok = tpm_node_write(n, "cred.in", f, len) == 0;
	free(f);
	if (!ok)
		return -1;
	if (tpm_node_run(n,
	        "rm -f cred.out; "
	        "tpm2_startauthsession --policy-session -S ek.session && "
	        "tpm2_policysecret -S ek.session -c e >/dev/null && "
	        "tpm2_activatecredential -c 0x%x -C 0x%x -i cred.in -o "
	        "cred.out "
	        "-P session:ek.session; rc=$?; tpm2_flushcontext ek.session; "
	        "exit $rc",
	        TPM_NODE_AK, TPM_NODE_EK) != 0)
		return -1;
	return tpm_node_read(n, "cred.out", out, out_len);
}

/* tpm2-tools 5.4's tpm2_certify has no qualifying-data option, so this one
 * command goes through ESAPI directly. */
int
tpm_node_certify(struct tpm_node *n, uint32_t object, const uint8_t *nonce,
    size_t nlen, uint8_t **att, size_t *att_len, uint8_t **sig, size_t *sig_len)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	ESYS_TR obj = ESYS_TR_NONE, ak = ESYS_TR_NONE;
	TPM2B_DATA qual = { 0 };
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	TPM2B_ATTEST *a = NULL;
	TPMT_SIGNATURE *s = NULL;
	uint8_t abuf[sizeof(TPM2B_ATTEST)], sbuf[sizeof(TPMT_SIGNATURE)];
	size_t aoff = 0, soff = 0;
	int ret = -1;

	if (nlen > sizeof(qual.buffer))
		return -1;
	qual.size = (UINT16)nlen;
	memcpy(qual.buffer, nonce, nlen);
	if (Tss2_TctiLdr_Initialize(n->tcti, &tcti) != TSS2_RC_SUCCESS ||
	    Esys_Initialize(&esys, tcti, NULL) != TSS2_RC_SUCCESS ||
	    Esys_TR_FromTPMPublic(esys, object, ESYS_TR_NONE, ESYS_TR_NONE,
	        ESYS_TR_NONE, &obj) != TSS2_RC_SUCCESS ||
	    Esys_TR_FromTPMPublic(esys, TPM_NODE_AK, ESYS_TR_NONE, ESYS_TR_NONE,
	        ESYS_TR_NONE, &ak) != TSS2_RC_SUCCESS)
		goto out;
	if (Esys_Certify(esys, obj, ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
	        ESYS_TR_NONE, &qual, &scheme, &a, &s) != TSS2_RC_SUCCESS)
		goto out;
	if (Tss2_MU_TPM2B_ATTEST_Marshal(a, abuf, sizeof(abuf), &aoff) !=
	        TSS2_RC_SUCCESS ||
	    Tss2_MU_TPMT_SIGNATURE_Marshal(s, sbuf, sizeof(sbuf), &soff) !=
	        TSS2_RC_SUCCESS)
		goto out;
	if ((*att = malloc(aoff)) == NULL || (*sig = malloc(soff)) == NULL)
		goto out;
	memcpy(*att, abuf, aoff);
	memcpy(*sig, sbuf, soff);
	*att_len = aoff;
	*sig_len = soff;
	ret = 0;
out:
	Esys_Free(a);
	Esys_Free(s);
	if (esys != NULL)
		Esys_Finalize(&esys);
	Tss2_TctiLdr_Finalize(&tcti);
	return ret;
}

/* Prepends the 2-byte size tpm2-tools leaves off its -m output. */
static int
read_tpm2b(struct tpm_node *n, const char *name, uint8_t **out, size_t *len)
{
	uint8_t *b, *w;
	size_t l;

	if (tpm_node_read(n, name, &b, &l) != 0)
		return -1;
	if (l > 0xffff || (w = malloc(l + 2)) == NULL) {
		free(b);
		return -1;
	}
	w[0] = (uint8_t)(l >> 8);
	w[1] = (uint8_t)l;
	memcpy(w + 2, b, l);
	free(b);
	*out = w;
	*len = l + 2;
	return 0;
}

int
tpm_node_quote(struct tpm_node *n, const uint8_t *nonce, size_t nlen,
    uint8_t **att, size_t *att_len, uint8_t **sig, size_t *sig_len,
    uint8_t pcrs[8][32])
{
	char hex[2 * 64 + 1];
	uint8_t *p = NULL;
	size_t plen = 0;

	if (nlen > 64)
		return -1;
	tpm_node_hex(nonce, nlen, hex);
	if (tpm_node_run(n,
	        "tpm2_quote -c 0x%x -l sha256:0,1,2,3,4,5,6,7 "
	        "-q %s -m quote.att -s quote.sig -g sha256 >/dev/null && "
	        "tpm2_pcrread sha256:0,1,2,3,4,5,6,7 -o quote.pcrs >/dev/null",
	        TPM_NODE_AK, hex) != 0)
		return -1;
	if (read_tpm2b(n, "quote.att", att, att_len) != 0 ||
	    tpm_node_read(n, "quote.sig", sig, sig_len) != 0 ||
	    tpm_node_read(n, "quote.pcrs", &p, &plen) != 0)
		return -1;
	if (plen != 8 * 32) {
		free(p);
		return -1;
	}
	memcpy(pcrs, p, plen);
	free(p);
	return 0;
}
