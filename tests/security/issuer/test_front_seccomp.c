/*
 * test_front_seccomp.c - the real front end's seccomp filter, seen from
 * outside: tsi-issuer run (privsep, the default) on a real swtpm, with
 * forbidden_preload.so in its environment, which the signer's execv passes
 * on to the front end it starts. The test waits for the front end's
 * "sandbox.entered" line (its pid), sends it SIGUSR2 and the front end
 * makes a forbidden call (execve, or open for writing) as an exploited
 * parser would. With front_seccomp = "kill" (the default) the kernel kills
 * it with SIGSYS: the signer logs front.exited with signal 31, lives on,
 * starts a new front end, tokens are served again, and a caller that
 * connected during the gap and went away gets no token. With
 * front_seccomp = "log" (the negative control) the same call goes through:
 * the execve'd front end exits 0 (or is killed by the signer when the
 * exec closes its channels), the open returns a descriptor and the front
 * end keeps serving; nothing dies of SIGSYS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "tests/support/swtpm.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"
#include "tsi/x509.h"

#define WAIT_MS 30000

struct ffx {
	struct test_swtpm tpm;
	char dir[256];
	char state[320], conf[320], sock[320], ca[320], node[320], log[320];
	pid_t issuer;
};

static const char *
bin_dir(void)
{
	const char *b = getenv("TSI_BIN_DIR");
	return b ? b : "build/bin";
}

static void
write_text(const char *path, const char *text)
{
	assert_int_equal(test_write_text(path, text), 0);
}

static void
write_config(struct ffx *f, const char *seccomp)
{
	char text[4096];
	int n;

	n = snprintf(text, sizeof(text),
	    "tcti = \"%s\";\nstate_dir = \"%s\";\nnode_cert = \"%s\";\n"
	    "socket = \"%s\";\nsigning = \"delegated\";\nresolver = \"unix\";\n"
	    "trust_domain = \"tsi.example\";\ntoken_ttl = 300;\n"
	    "node_name = \"worker-1\";\nfront_seccomp = \"%s\";\n",
	    f->tpm.tcti, f->state, f->node, f->sock, seccomp);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	write_text(f->conf, text);
}

static int
log_count(struct ffx *f, const char *s)
{
	return test_count(f->log, s);
}

/* The pid of the n-th (from 1) "sandbox.entered" line, or 0. */
static pid_t
entered_pid(struct ffx *f, int nth)
{
	static const char key[] = "\"sandbox.entered\",\"pid\":";
	char *text = test_slurp(f->log), *p;
	pid_t pid = 0;
	int n = 0;

	if (text == NULL)
		return 0;
	for (p = text; (p = strstr(p, key)) != NULL; p++)
		if (++n == nth) {
			pid = (pid_t)atol(p + strlen(key));
			break;
		}
	free(text);
	return pid;
}

/* Waits (bounded) until the log holds s at least n times. */
static int
wait_log(struct ffx *f, const char *s, int n)
{
	long long end = test_now_ms() + WAIT_MS;

	while (test_now_ms() < end) {
		if (log_count(f, s) >= n)
			return 1;
		if (f->issuer > 0 && waitpid(f->issuer, NULL, WNOHANG) != 0)
			return log_count(f, s) >= n;
		usleep(20000);
	}
	return 0;
}

static void
dump_log(struct ffx *f)
{
	char *t = test_slurp(f->log), *p, *nl;

	/* A line at a time: cmocka's messages are bounded. */
	print_error("issuer log:\n");
	for (p = t; p != NULL && *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p) - 1;
		print_error("%.*s\n", (int)(nl - p), p);
	}
	free(t);
}

static int
run_csr(struct ffx *f, char **out)
{
	char exe[512], chunk[4096];
	struct tsi_buf *b = tsi_buf_new(1 << 20);
	int pfd[2], st = -1;
	ssize_t n;
	pid_t pid;

	assert_non_null(b);
	snprintf(exe, sizeof(exe), "%s/tsi-issuer", bin_dir());
	assert_int_equal(pipe(pfd), 0);
	if ((pid = fork()) == 0) {
		int dn = open("/dev/null", O_WRONLY);

		dup2(pfd[1], 1);
		if (dn >= 0)
			dup2(dn, 2);
		close(pfd[0]);
		execl(exe, exe, "csr", "--config", f->conf, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], chunk, sizeof(chunk))) > 0)
		assert_int_equal(tsi_buf_put(b, chunk, (size_t)n), TSI_OK);
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	*out = tsi_buf_take(b, NULL);
	tsi_buf_free(b);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
enroll(struct ffx *f)
{
	static struct tsi_location loc = { "c1", "eu-de", "fra02", "worker-1" };
	char cap[400], keyp[400], *csr = NULL, *cert = NULL;

	assert_int_equal(run_csr(f, &csr), 0);
	assert_non_null(strstr(csr, "BEGIN CERTIFICATE REQUEST"));
	snprintf(cap, sizeof(cap), "%s/ca.pem", f->ca);
	snprintf(keyp, sizeof(keyp), "%s/ca.key", f->ca);
	assert_int_equal(tsi_ca_init(f->ca, "test cluster CA", 1), TSI_OK);
	assert_int_equal(tsi_ca_sign_csr(cap, keyp, csr, strlen(csr), &loc, 1,
	                     &cert),
	    TSI_OK);
	write_text(f->node, cert);
	free(cert);
	free(csr);
}

static size_t
discard(char *p, size_t sz, size_t n, void *ud)
{
	char *body = ud;
	size_t k = sz * n, have = strlen(body);

	(void)p;
	if (have < 255) {
		size_t c = k < 255 - have ? k : 255 - have;

		memcpy(body + have, p, c);
		body[have + c] = '\0';
	}
	return k;
}

/* GET /v1/token on the socket: 1 for a 200 carrying a JWT. */
static int
token_ok(struct ffx *f)
{
	char body[256] = "";
	long status = 0;
	CURLcode cc;
	CURL *c = curl_easy_init();

	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, f->sock);
	curl_easy_setopt(c, CURLOPT_URL,
	    "http://localhost/v1/token?aud=tsi-vault");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return cc == CURLE_OK && status == 200 &&
	    strstr(body, "\"token\":\"ey") != NULL;
}

/* Tokens again within WAIT_MS: 1. */
static int
wait_token(struct ffx *f)
{
	long long end = test_now_ms() + WAIT_MS;

	while (test_now_ms() < end) {
		if (token_ok(f))
			return 1;
		usleep(50000);
	}
	return 0;
}

static void
start_issuer(struct ffx *f, const char *op)
{
	char exe[512], preload[512];
	const char *td = getenv("TSI_TEST_BIN_DIR");

	snprintf(exe, sizeof(exe), "%s/tsi-issuer", bin_dir());
	snprintf(preload, sizeof(preload), "%s/libtsi_forbidden_preload.so",
	    td != NULL ? td : TSI_TEST_DIR);
	assert_int_equal(access(preload, R_OK), 0);
	if ((f->issuer = fork()) == 0) {
		int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0)
			dup2(fd, 2);
		/* Inherited by the front end: the signer's execv keeps the
		 * environment. */
		(void)setenv("LD_PRELOAD", preload, 1);
		(void)setenv("TSI_PRELOAD_OP", op, 1);
		(void)setenv("ASAN_OPTIONS",
		    "verify_asan_link_order=0:"
		    "detect_leaks=0",
		    1);
		execl(exe, exe, "run", "--config", f->conf, (char *)NULL);
		_exit(127);
	}
	assert_true(f->issuer > 0);
	if (!wait_log(f, "\"sandbox.entered\"", 1) || !wait_token(f)) {
		dump_log(f);
		fail_msg("tsi-issuer did not serve");
	}
}

static int
stop_issuer(struct ffx *f)
{
	long long end;
	int st = -1;

	if (f->issuer <= 0)
		return -1;
	/* A test that failed while it held the signer stopped. */
	(void)kill(f->issuer, SIGCONT);
	(void)kill(f->issuer, SIGTERM);
	end = test_now_ms() + WAIT_MS;
	while (waitpid(f->issuer, &st, WNOHANG) == 0) {
		if (test_now_ms() >= end) {
			(void)kill(f->issuer, SIGKILL);
			(void)waitpid(f->issuer, &st, 0);
			st = -1;
			break;
		}
		usleep(20000);
	}
	f->issuer = 0;
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
setup(void **state)
{
	struct ffx *f = calloc(1, sizeof(*f));

	if (f == NULL || test_swtpm_start(&f->tpm) != 0 ||
	    test_mkdtemp(f->dir, sizeof(f->dir), "front-seccomp") != 0 ||
	    chmod(f->dir, 0755) != 0)
		return -1;
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(f->conf, sizeof(f->conf), "%s/issuer.conf", f->dir);
	snprintf(f->sock, sizeof(f->sock), "%s/issuer.sock", f->dir);
	snprintf(f->ca, sizeof(f->ca), "%s/ca", f->dir);
	snprintf(f->node, sizeof(f->node), "%s/node.pem", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/issuer.log", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct ffx *f = *state;

	(void)stop_issuer(f);
	test_swtpm_cleanup(&f->tpm);
	test_rmtree(f->dir);
	free(f);
	return 0;
}

/* A caller that sends a token request and is gone before it is served:
 * its connection waits in the listen backlog while no front end runs.
 * Returns its pid, reaped. */
static pid_t
ghost_caller(struct ffx *f)
{
	static const char req[] =
	    "GET /v1/token?aud=tsi-vault HTTP/1.1\r\n"
	    "Host: localhost\r\nConnection: close\r\n\r\n";
	int st;
	pid_t pid;

	if ((pid = fork()) == 0) {
		struct sockaddr_un sa;
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		if (fd < 0 || strlen(f->sock) >= sizeof(sa.sun_path))
			_exit(2);
		memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    write(fd, req, sizeof(req) - 1) !=
		        (ssize_t)(sizeof(req) - 1))
			_exit(1);
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return pid;
}

/*
 * front_seccomp = "kill": the forbidden call kills the real front end with
 * SIGSYS; the signer survives and restarts it; tokens again; the caller
 * that came and went while no front end ran got no token.
 */
static void
killed(struct ffx *f, const char *op)
{
	char mark[128];
	struct pollfd pfd;
	pid_t fp, fp2, ghost;
	int issued, gone;

	write_config(f, "kill");
	enroll(f);
	start_issuer(f, op);
	assert_true((fp = entered_pid(f, 1)) > 0);
	assert_true(fp != f->issuer);
	/* Stop the signer's restarts while the gap is probed: it is stopped,
	 * so the front end's death is not reaped until it continues. */
	assert_int_equal(kill(f->issuer, SIGSTOP), 0);
	assert_true((pfd.fd = (int)syscall(SYS_pidfd_open, fp, 0)) >= 0);
	pfd.events = POLLIN;
	pfd.revents = 0;
	assert_int_equal(kill(fp, SIGUSR2), 0);
	/* The front end ended (the kernel says so before its parent reaps
	 * it); then a caller comes and goes while none runs. */
	gone = poll(&pfd, 1, WAIT_MS) == 1;
	(void)close(pfd.fd);
	if (!gone) {
		(void)kill(f->issuer, SIGCONT);
		dump_log(f);
		fail_msg("%s: front end %d still running", op, (int)fp);
	}
	ghost = ghost_caller(f);
	issued = log_count(f, "\"token.issued\"");
	assert_int_equal(kill(f->issuer, SIGCONT), 0);
	snprintf(mark, sizeof(mark),
	    "\"front.exited\",\"pid\":%d,"
	    "\"signal\":%d",
	    (int)fp, SIGSYS);
	if (!wait_log(f, mark, 1)) {
		dump_log(f);
		fail_msg("%s: no front.exited with SIGSYS for %d", op, (int)fp);
	}
	/* The preload's own report is never written: the call did not
	 * return. */
	assert_int_equal(log_count(f, "tsi-preload:"), 0);
	/* The signer lives and starts one new front end, which serves. */
	assert_int_equal(waitpid(f->issuer, NULL, WNOHANG), 0);
	if (!wait_log(f, "\"sandbox.entered\"", 2)) {
		dump_log(f);
		fail_msg("%s: no new front end", op);
	}
	fp2 = entered_pid(f, 2);
	assert_true(fp2 > 0 && fp2 != fp);
	assert_true(wait_token(f));
	assert_int_equal(log_count(f, "\"front.started\""), 2);
	/* The ghost's request waited in the backlog for the new front end;
	 * no token was minted for it, and the tokens issued since the kill
	 * are the probes of wait_token (at least one). */
	snprintf(mark, sizeof(mark), "\"token.issued\",\"pid\":%d,",
	    (int)ghost);
	assert_int_equal(log_count(f, mark), 0);
	assert_true(log_count(f, "\"token.issued\"") > issued);
	/* It was answered, and refused: the one denial of the run. */
	if (!wait_log(f, "\"token.denied\"", 1)) {
		dump_log(f);
		fail_msg("%s: the caller of the gap was not refused", op);
	}
	assert_int_equal(log_count(f, "\"token.denied\""), 1);
	/* Every token of the run was for this process, which asked. */
	snprintf(mark, sizeof(mark), "\"token.issued\",\"pid\":%d,",
	    (int)getpid());
	assert_int_equal(log_count(f, mark), log_count(f, "\"token.issued\""));
	assert_int_equal(waitpid(f->issuer, NULL, WNOHANG), 0);
	assert_int_equal(stop_issuer(f), 0);
}

/*
 * front_seccomp = "log": the same call is let through, so the deaths
 * above are the filter's doing.
 */
static void
logged(struct ffx *f, const char *op)
{
	char mark[128];
	int exited;
	pid_t fp;

	write_config(f, "log");
	enroll(f);
	start_issuer(f, op);
	assert_int_equal(log_count(f, "\"default_action\":\"log\""), 1);
	assert_true((fp = entered_pid(f, 1)) > 0);
	assert_int_equal(kill(fp, SIGUSR2), 0);
	if (strcmp(op, "execve") == 0) {
		/* It became /bin/true: it exits 0, unless the signer,
		 * seeing the channels the exec closed hang up, kills it
		 * first (SIGKILL). Either way not SIGSYS. */
		snprintf(mark, sizeof(mark), "\"front.exited\",\"pid\":%d,",
		    (int)fp);
		if (!wait_log(f, mark, 1)) {
			dump_log(f);
			fail_msg("execve: front end %d did not end", (int)fp);
		}
		snprintf(mark, sizeof(mark),
		    "\"front.exited\",\"pid\":%d,"
		    "\"status\":0,",
		    (int)fp);
		exited = log_count(f, mark);
		snprintf(mark, sizeof(mark),
		    "\"front.exited\",\"pid\":%d,"
		    "\"signal\":%d,",
		    (int)fp, SIGKILL);
		exited += log_count(f, mark);
		if (exited != 1)
			dump_log(f);
		assert_int_equal(exited, 1);
	} else {
		/* The call returned a descriptor, and the same front end
		 * goes on serving. */
		snprintf(mark, sizeof(mark),
		    "tsi-preload: %s returned rc=", op);
		if (!wait_log(f, mark, 1)) {
			dump_log(f);
			fail_msg("%s: the call did not return", op);
		}
		assert_int_equal(log_count(f, "returned rc=-1"), 0);
		assert_true(token_ok(f));
		assert_int_equal(kill(fp, 0), 0);
		assert_int_equal(log_count(f, "\"front.started\""), 1);
	}
	snprintf(mark, sizeof(mark), "\"signal\":%d", SIGSYS);
	assert_int_equal(log_count(f, mark), 0);
	assert_int_equal(waitpid(f->issuer, NULL, WNOHANG), 0);
	assert_true(wait_token(f));
	assert_int_equal(stop_issuer(f), 0);
}

static void
test_execve_killed(void **state)
{
	killed(*state, "execve");
}

static void
test_open_write_killed(void **state)
{
	killed(*state, "open_write");
}

static void
test_execve_logged(void **state)
{
	logged(*state, "execve");
}

static void
test_open_write_logged(void **state)
{
	logged(*state, "open_write");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_execve_killed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_write_killed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_execve_logged, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_write_logged, setup,
		    teardown),
	};

	if (geteuid() != 0) {
		/* The front end becomes front_user: only root can. */
		print_message("skipped: needs root\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tsi_log_init("test_front_seccomp", TSI_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
