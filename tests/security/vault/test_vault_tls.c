/*
 * tsi-vault's listening socket and TLS, against real servers on loopback
 * (docs/vault.md, "Listening and TLS"; issue "Hardening II" items 3, 4):
 *  - a second tsi-vault on the same address exits 1 with "address in use",
 *    and the first keeps every request;
 *  - TLS 1.2 offers only ECDHE with AEAD: static-RSA key exchange and CBC
 *    suites are refused with an RSA and with an ECDSA certificate; TLS 1.1
 *    is refused, TLS 1.3 works;
 *  - a private key readable by group or others is refused at start (exit 2);
 *  - SIGHUP serves a rotated certificate without a restart, and keeps the
 *    old one when the new pair is bad.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "tests/support/pki.h"

static const char *
bin_dir(void)
{
	const char *d = getenv("TSI_BIN_DIR");
	return d ? d : "build/bin";
}

/* Runs tsi-vault --config conf; waits up to wait_s for it to exit.
 * Returns the exit status, or -1 (and kills it) when it is still running.
 * Its stderr goes to errpath. */
static int
run_vault(const char *conf, const char *errpath, int wait_s)
{
	char exe[512];
	pid_t pid;
	int st, i, fd;

	snprintf(exe, sizeof(exe), "%s/tsi-vault", bin_dir());
	if ((pid = fork()) < 0)
		return -2;
	if (pid == 0) {
		fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execl(exe, exe, "--config", conf, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < wait_s * 20; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -3;
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static int
file_has(const char *path, const char *needle)
{
	char buf[16384];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

/* Rewrites one "key = value;" line of the config file. */
static void
conf_set(const char *conf, const char *key, const char *line)
{
	char buf[8192], out[8192], *p, *e;
	FILE *f = fopen(conf, "r");
	size_t n;
	int w;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strstr(buf, key);
	assert_non_null(p);
	e = strchr(p, '\n');
	assert_non_null(e);
	*p = '\0';
	w = snprintf(out, sizeof(out), "%s%s%s", buf, line, e);
	assert_true(w > 0 && (size_t)w < sizeof(out));
	f = fopen(conf, "w");
	assert_non_null(f);
	fputs(out, f);
	fclose(f);
}

/* A TLS handshake with 127.0.0.1:port. ciphers: TLS 1.2 cipher list (TLS
 * 1.2 only), or NULL for TLS 1.3 only; maxv overrides the version when
 * not 0. *fp (may be NULL) gets the first bytes of the served
 * certificate's SHA-256. Returns 1 when the handshake succeeded. */
static int
handshake(int port, const char *ciphers, int maxv, unsigned char fp[32])
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = NULL;
	struct sockaddr_in a;
	struct timeval tv = { 10, 0 };
	int fd = -1, ok = 0;

	assert_non_null(ctx);
	SSL_CTX_set_security_level(ctx, 0); /* let us offer weak suites */
	if (ciphers != NULL) {
		SSL_CTX_set_min_proto_version(ctx,
		    maxv ? maxv : TLS1_2_VERSION);
		SSL_CTX_set_max_proto_version(ctx,
		    maxv ? maxv : TLS1_2_VERSION);
		assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
	} else {
		SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	}
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) == 1) {
		X509 *peer = SSL_get1_peer_certificate(ssl);
		unsigned len = 32;
		ok = 1;
		if (fp != NULL && peer != NULL)
			X509_digest(peer, EVP_sha256(), fp, &len);
		X509_free(peer);
		SSL_shutdown(ssl);
	}
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	return ok;
}

/* A self-signed certificate for 127.0.0.1 with key k, written to the
 * fixture's tls_cert/tls_key paths (key mode 0600) and as the CA the
 * fixture's client trusts. */
static void
write_pair(struct vfx *f, EVP_PKEY *k, const char *cn)
{
	struct pki_spec sp = { .cn = cn,
		.key = k,
		.ca = -1,
		.pathlen = -1,
		.ku = "critical,digitalSignature,keyEncipherment",
		.san = "IP:127.0.0.1",
		.not_before = -60,
		.not_after = 86400 };
	X509 *c = pki_cert(&sp);

	assert_non_null(c);
	assert_int_equal(pki_write_cert(f->tls_cert, c), 0);
	assert_int_equal(pki_write_cert(f->tls_ca, c), 0);
	assert_int_equal(pki_write_key(f->tls_key, k), 0);
	assert_int_equal(chmod(f->tls_key, 0600), 0);
	X509_free(c);
}

static void
test_second_server_same_port(void **state)
{
	struct vfx f1, f2;
	char line[128], errp[400];
	struct vresp r;
	int i, rc;

	assert_int_equal(vfx_init(&f1, NULL, NULL), 0);
	assert_int_equal(vfx_start(&f1), 0);
	assert_int_equal(vfx_init(&f2, NULL, NULL), 0);
	snprintf(line, sizeof(line), "listen = \"127.0.0.1:%d\";", f1.port);
	conf_set(f2.conf, "listen =", line);
	snprintf(errp, sizeof(errp), "%s/second.err", f2.dir);
	rc = run_vault(f2.conf, errp, 15);
	if (rc != 1)
		fprintf(stderr, "second tsi-vault: status %d\n", rc);
	assert_int_equal(rc, 1);
	assert_true(file_has(errp, "address in use"));
	/* The first server has the port alone: every request sees its data
	 * (its root token is unknown to any other server). */
	for (i = 0; i < 20; i++) {
		memset(&r, 0, sizeof(r));
		assert_int_equal(vfx_http(&f1, NULL, "GET",
		                     "/v1/auth/token/lookup-self", f1.root,
		                     NULL, &r),
		    0);
		assert_int_equal(r.status, 200);
		vresp_clear(&r);
	}
	vfx_cleanup(&f2);
	vfx_cleanup(&f1);
}

static void
check_suites(struct vfx *f, const char *kx)
{
	char good[128], cbc[128];

	snprintf(good, sizeof(good), "%s-AES128-GCM-SHA256", kx);
	snprintf(cbc, sizeof(cbc), "%s-AES128-SHA", kx);
	assert_int_equal(handshake(f->port, good, 0, NULL), 1);
	assert_int_equal(handshake(f->port, NULL, 0, NULL), 1); /* 1.3 */
	/* CBC with SHA-1 (and SHA-256) HMAC, also with ECDHE. */
	assert_int_equal(handshake(f->port, cbc, 0, NULL), 0);
	snprintf(cbc, sizeof(cbc), "%s-AES128-SHA256", kx);
	assert_int_equal(handshake(f->port, cbc, 0, NULL), 0);
	/* Static RSA key exchange (no forward secrecy), GCM and CBC. */
	assert_int_equal(handshake(f->port,
	                     "AES128-GCM-SHA256:AES256-GCM-SHA384", 0, NULL),
	    0);
	assert_int_equal(handshake(f->port, "AES128-SHA:AES256-SHA", 0, NULL),
	    0);
	/* Finite-field DHE is not offered either. */
	assert_int_equal(handshake(f->port, "DHE-RSA-AES128-GCM-SHA256", 0,
	                     NULL),
	    0);
	/* TLS 1.1 */
	assert_int_equal(handshake(f->port, "ALL:@SECLEVEL=0", TLS1_1_VERSION,
	                     NULL),
	    0);
}

static void
test_suites_rsa_cert(void **state)
{
	struct vfx f;
	EVP_PKEY *k = EVP_RSA_gen(2048);

	assert_non_null(k);
	assert_int_equal(vfx_init(&f, NULL, NULL), 0);
	write_pair(&f, k, "rsa server");
	assert_int_equal(vfx_start(&f), 0);
	check_suites(&f, "ECDHE-RSA");
	EVP_PKEY_free(k);
	vfx_cleanup(&f);
}

static void
test_suites_ecdsa_cert(void **state)
{
	struct vfx f;

	assert_int_equal(vfx_init(&f, NULL, NULL), 0);
	assert_int_equal(vfx_start(&f), 0);
	check_suites(&f, "ECDHE-ECDSA");
	vfx_cleanup(&f);
}

static void
test_key_mode_refused(void **state)
{
	struct vfx f;
	char errp[400];
	static const mode_t bad[] = { 0640, 0604, 0644 };
	size_t i;

	assert_int_equal(vfx_init(&f, NULL, NULL), 0);
	snprintf(errp, sizeof(errp), "%s/start.err", f.dir);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(chmod(f.tls_key, bad[i]), 0);
		assert_int_equal(run_vault(f.conf, errp, 15), 2);
		assert_true(file_has(errp, "readable by group or others"));
	}
	/* 0400 is fine. */
	assert_int_equal(chmod(f.tls_key, 0400), 0);
	assert_int_equal(vfx_start(&f), 0);
	vfx_cleanup(&f);
}

/* Waits (bounded) until the served certificate's fingerprint is (want 1)
 * or is not (want 0) fp. */
static int
wait_fp(int port, const unsigned char fp[32], int want)
{
	unsigned char got[32];
	int i;

	for (i = 0; i < 100; i++) {
		memset(got, 0, sizeof(got));
		if (handshake(port, NULL, 0, got) &&
		    (memcmp(got, fp, 32) == 0) == want)
			return 1;
		usleep(100 * 1000);
	}
	return 0;
}

static void
test_sighup_reloads_certificate(void **state)
{
	struct vfx f;
	unsigned char fp0[32], fp1[32], fp2[32];
	EVP_PKEY *k1 = pki_key(), *k2 = pki_key();
	int i;

	assert_int_equal(vfx_init(&f, NULL, NULL), 0);
	assert_int_equal(vfx_start(&f), 0);
	assert_int_equal(handshake(f.port, NULL, 0, fp0), 1);

	/* Rotated: a new key and certificate, then SIGHUP. */
	write_pair(&f, k1, "rotated");
	kill(f.pid, SIGHUP);
	assert_true(wait_fp(f.port, fp0, 0));
	assert_int_equal(handshake(f.port, NULL, 0, fp1), 1);
	assert_memory_not_equal(fp0, fp1, 32);
	assert_int_equal(handshake(f.port, "ECDHE-ECDSA-AES128-GCM-SHA256", 0,
	                     fp2),
	    1);
	assert_memory_equal(fp1, fp2, 32);

	/* A bad pair: the certificate of k2 with the key k1 left in place
	 * (mismatch). The rotated certificate stays, and the log says so. */
	{
		struct pki_spec sp = { .cn = "mismatch",
			.key = k2,
			.ca = 0,
			.pathlen = -1,
			.ku = "critical,digitalSignature",
			.san = "IP:127.0.0.1",
			.not_before = -60,
			.not_after = 86400 };
		X509 *c = pki_cert(&sp);
		assert_non_null(c);
		assert_int_equal(pki_write_cert(f.tls_cert, c), 0);
		X509_free(c);
	}
	kill(f.pid, SIGHUP);
	for (i = 0; i < 100 && !file_has(f.log, "reload.tls_failed"); i++)
		usleep(100 * 1000);
	assert_true(file_has(f.log, "reload.tls_failed"));
	assert_int_equal(handshake(f.port, NULL, 0, fp2), 1);
	assert_memory_equal(fp1, fp2, 32);

	/* A key readable by others: also refused on reload. */
	write_pair(&f, k2, "open key");
	assert_int_equal(chmod(f.tls_key, 0644), 0);
	kill(f.pid, SIGHUP);
	for (i = 0; i < 100 && !file_has(f.log, "readable by group or others");
	     i++)
		usleep(100 * 1000);
	assert_true(file_has(f.log, "readable by group or others"));
	assert_int_equal(handshake(f.port, NULL, 0, fp2), 1);
	assert_memory_equal(fp1, fp2, 32);

	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	vfx_cleanup(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_second_server_same_port),
		cmocka_unit_test(test_suites_rsa_cert),
		cmocka_unit_test(test_suites_ecdsa_cert),
		cmocka_unit_test(test_key_mode_refused),
		cmocka_unit_test(test_sighup_reloads_certificate),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
