/*
 * tsi-issuer - the node-resident identity issuer.
 *
 *   tsi-issuer [run] --config F   serve the API on the configured socket
 *   tsi-issuer csr --config F     print a CSR signed by the node's TPM key
 *   tsi-issuer enroll --config F  prove the TPM to tsi-attest, get node_cert
 *   tsi-issuer front --config F   (run by `run` itself) the unprivileged
 *                                 front end, on descriptors the signer gives
 *
 * Exit: 0 success, 1 runtime failure, 2 bad usage or configuration.
 */
#include "issuer/api.h"
#include "issuer/config.h"
#include "issuer/enroll.h"
#include "issuer/mint.h"
#include "issuer/monitor.h"
#include "issuer/privsep.h"
#include "issuer/sandbox.h"
#include "issuer/resolve.h"
#include "issuer/tpm.h"

#include "tsi/err.h"
#include "tsi/log.h"
#include "tsi/x509.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/x509.h>

#define EXIT_USAGE 2
#define DEFAULT_CONFIG "/etc/tsi/issuer.conf"

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t renew_signal;

static void
on_signal(int sig)
{
	stop_signal = sig;
}

static void
on_renew(int sig)
{
	(void)sig;
	renew_signal = 1;
}

/*
 * SIGTERM, SIGINT, SIGUSR1 (a renewed node certificate) and SIGCHLD (the
 * front end's exit) blocked before any thread exists: threads inherit the
 * mask, so the signals can only be taken where the main thread waits
 * (sigsuspend, or the signer's ppoll) with *old. Blocked after the API and
 * monitor threads had started, a signal could land on one of them, set
 * stop_signal and leave the main thread asleep for ever.
 */
static void
signals_block(sigset_t *old)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_renew;
	(void)sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	(void)pthread_sigmask(SIG_BLOCK, &set, old);
}

/* From the enrollment keeper's thread: the main thread, the only one that
 * takes SIGUSR1 (in sigsuspend), switches to the new certificate. */
static void
renewed(void *arg)
{
	(void)arg;
	(void)kill(getpid(), SIGUSR1);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tsi-issuer [run|csr|enroll] [--config FILE]\n"
	    "  run     serve identity tokens on the configured Unix socket "
	    "(default);\n"
	    "          enrolls first when attest_url is set and node_cert is "
	    "due\n"
	    "  csr     print a certificate signing request for the node's TPM "
	    "key\n"
	    "  enroll  prove the TPM to tsi-attest (attest_url) and write "
	    "node_cert\n"
	    "options:\n"
	    "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG
	    ")\n"
	    "      --single-process  run: no privilege separation (privsep = "
	    "false)\n"
	    "      --front-exe FILE  run: the program started as the front "
	    "end\n"
	    "                        (default: this one, as `tsi-issuer "
	    "front`)\n"
	    "  -h, --help         this text\n"
	    "  -V, --version      print the version\n");
}

static enum tsi_log_level
level_of(const char *s)
{
	if (s == NULL || strcmp(s, "info") == 0)
		return TSI_LOG_INFO;
	if (strcmp(s, "debug") == 0)
		return TSI_LOG_DEBUG;
	if (strcmp(s, "warn") == 0)
		return TSI_LOG_WARN;
	return TSI_LOG_ERROR;
}

static int
cmd_csr(const struct tsi_issuer_config *cfg)
{
	struct tsi_tpm *tpm = NULL;
	char *csr = NULL;
	int r, rc = EXIT_FAILURE;

	if ((r = tsi_tpm_open(cfg->tcti, cfg->state_dir, &tpm)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "csr.failed",
		    TSI_LS("reason", "cannot use the TPM"),
		    TSI_LS("error", tsi_strerror(r)));
		goto out;
	}
	if ((r = tsi_enroll_csr(cfg, tpm, &csr)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "csr.failed",
		    TSI_LS("error", tsi_strerror(r)));
		goto out;
	}
	if (fputs(csr, stdout) == EOF || fflush(stdout) != 0)
		goto out;
	rc = EXIT_SUCCESS;
out:
	free(csr);
	tsi_tpm_free(tpm);
	return rc;
}

/* What every signer run shares: the front end's program and
 * configuration, the TPM, the signals. No API socket yet. */
static void
signer_params(struct tsi_privsep_signer *ps,
    const struct tsi_issuer_config *cfg, const char *config_path,
    const char *front_exe, struct tsi_tpm *tpm, const sigset_t *wait_mask)
{
	memset(ps, 0, sizeof(*ps));
	ps->cfg = cfg;
	ps->exe = front_exe;
	ps->config_path = config_path;
	ps->tpm = tpm;
	ps->listen_fd = -1;
	ps->stop = &stop_signal;
	ps->renew_flag = &renew_signal;
	ps->wait_mask = wait_mask;
}

/* The renewal keeper, when enrollment is configured; event names a
 * failure to start it in the log. */
static int
keeper_start(const struct tsi_issuer_config *cfg,
    const struct tsi_enroll_node *node, void (*renewed_fn)(void *),
    struct tsi_enroll_keeper **keeper, const char *event)
{
	int r;

	if (cfg->attest_url == NULL)
		return TSI_OK;
	if ((r = tsi_enroll_keeper_start(cfg, node, renewed_fn, NULL,
	         keeper)) != TSI_OK)
		tsi_log(TSI_LOG_ERROR, event, TSI_LS("error", tsi_strerror(r)));
	return r;
}

/* Privilege separation: enrollment's HTTPS and JSON run in a front end
 * started for it (`tsi-issuer front --enroll`, confined like the serving
 * one); the signer answers its TPM requests and installs the certificate
 * only if it checks. TSI_OK when one was installed. */
static int
enroll_by_front(const struct tsi_issuer_config *cfg, const char *config_path,
    const char *front_exe, struct tsi_tpm *tpm, const sigset_t *wait_mask)
{
	struct tsi_minter *none = NULL;
	struct tsi_monitor *no_monitor = NULL;
	struct tsi_privsep_signer ps;

	signer_params(&ps, cfg, config_path, front_exe, tpm, wait_mask);
	ps.enroll_only = 1;
	ps.minter = &none;
	ps.monitor = &no_monitor;
	return tsi_privsep_signer_run(&ps);
}

static int
cmd_enroll(const struct tsi_issuer_config *cfg, const char *config_path,
    const char *front_exe)
{
	struct tsi_tpm *tpm = NULL;
	char reason[512];
	sigset_t old;
	int r, rc = EXIT_FAILURE;

	if (cfg->attest_url == NULL) {
		fprintf(stderr,
		    "tsi-issuer: enroll needs 'attest_url' in the "
		    "configuration\n");
		return EXIT_USAGE;
	}
	signals_block(&old);
	if ((r = tsi_tpm_open(cfg->tcti, cfg->state_dir, &tpm)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "enroll.failed",
		    TSI_LS("reason", "cannot use the TPM"),
		    TSI_LS("error", tsi_strerror(r)));
		fprintf(stderr, "tsi-issuer: enroll: cannot use the TPM: %s\n",
		    tsi_strerror(r));
		goto out;
	}
	/* With privilege separation the front end says why it failed. */
	if (cfg->privsep) {
		if (enroll_by_front(cfg, config_path, front_exe, tpm, &old) ==
		    TSI_OK)
			rc = EXIT_SUCCESS;
		goto out;
	}
	if ((r = tsi_enroll(cfg, tpm, reason, sizeof(reason))) != TSI_OK) {
		fprintf(stderr, "tsi-issuer: enroll: %s\n", reason);
		goto out;
	}
	rc = EXIT_SUCCESS;
out:
	tsi_tpm_free(tpm);
	return rc;
}

/* SIGTERM or SIGINT waiting: the start-up is blocking them until the
 * issuer serves, and an enrollment in progress must not hold them back. */
static int
stop_pending(void *arg)
{
	sigset_t set;

	(void)arg;
	if (sigpending(&set) != 0)
		return 0;
	return sigismember(&set, SIGTERM) == 1 ||
	    sigismember(&set, SIGINT) == 1;
}

/* Enrolls before serving when the certificate is missing, not this TPM's,
 * expired or near its end. Fails only when no usable certificate is left;
 * a valid one keeps serving while the keeper retries. */
static int
enroll_at_start(const struct tsi_issuer_config *cfg, const char *config_path,
    const char *front_exe, struct tsi_tpm *tpm, const sigset_t *wait_mask)
{
	char reason[512];
	time_t renew_at;
	int valid, r;

	if (cfg->attest_url == NULL ||
	    !tsi_enroll_due(cfg, tpm, time(NULL), &valid, &renew_at))
		return TSI_OK;
	tsi_log(TSI_LOG_INFO, "enroll.due", TSI_LS("node_cert", cfg->node_cert),
	    TSI_LS("certificate_valid", valid ? "yes" : "no"));
	if (cfg->privsep)
		r = enroll_by_front(cfg, config_path, front_exe, tpm,
		    wait_mask);
	else
		r = tsi_enroll_until(cfg, tpm, stop_pending, NULL, reason,
		    sizeof(reason));
	if (r == TSI_OK)
		return TSI_OK;
	if (stop_pending(NULL) || stop_signal)
		return TSI_OK; /* the caller stops */
	if (valid) {
		tsi_log(TSI_LOG_WARN, "enroll.deferred",
		    TSI_LS("reason",
		        "serving with the current node certificate; enrollment "
		        "is retried"));
		return TSI_OK;
	}
	return r;
}

/* The node certificate must be for this TPM's key and valid now. */
static int
load_node_cert(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    X509 **out)
{
	X509 *cert = NULL;
	int r;

	if ((r = tsi_x509_load_file(cfg->node_cert, &cert)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "node_cert.unreadable",
		    TSI_LS("path", cfg->node_cert),
		    TSI_LS("error", tsi_strerror(r)),
		    TSI_LS("hint",
		        cfg->attest_url != NULL
		            ? "enrollment with "
		              "tsi-attest failed (see enroll.failed)"
		            : "enroll with "
		              "`tsi-issuer csr` and `tsi ca sign`, or set "
		              "attest_url"));
		return r;
	}
	if (tsi_x509_key_matches(cert, tsi_tpm_pub(tpm)) != 1) {
		tsi_log(TSI_LOG_ERROR, "node_cert.wrong_key",
		    TSI_LS("path", cfg->node_cert),
		    TSI_LS("reason",
		        "the node certificate is "
		        "not for this node's TPM key"));
		X509_free(cert);
		return TSI_ERR_BAD_CERT;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0 ||
	    X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
		tsi_log(TSI_LOG_ERROR, "node_cert.expired",
		    TSI_LS("path", cfg->node_cert),
		    TSI_LS("reason",
		        "the node certificate is "
		        "expired or not yet valid"));
		X509_free(cert);
		return TSI_ERR_EXPIRED;
	}
	*out = cert;
	return TSI_OK;
}

/* The parts that hold the node certificate: made again when it is renewed. */
struct serving {
	X509 *node;
	struct tsi_minter *minter;
	struct tsi_monitor *monitor;
	struct tsi_api *api;
};

static void
serving_stop(struct serving *s)
{
	tsi_api_stop(s->api);
	tsi_monitor_stop(s->monitor);
	tsi_minter_free(s->minter);
	X509_free(s->node);
	memset(s, 0, sizeof(*s));
}

static int
serving_minter(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    struct serving *s)
{
	int r;

	if ((r = load_node_cert(cfg, tpm, &s->node)) != TSI_OK)
		return r;
	if ((r = tsi_minter_new(cfg, tpm, s->node, &s->minter)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "issuer.start_failed",
		    TSI_LS("reason",
		        "node certificate unusable (location SANs?)"),
		    TSI_LS("error", tsi_strerror(r)));
		return r;
	}
	return TSI_OK;
}

static int
serving_start(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    struct tsi_resolver *resolver, struct serving *s)
{
	int r;

	if ((r = tsi_monitor_start(tpm, s->minter, &s->monitor)) != TSI_OK ||
	    (r = tsi_api_start(cfg, s->minter, resolver, s->monitor,
	         &s->api)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "issuer.start_failed",
		    TSI_LS("error", tsi_strerror(r)));
		return r;
	}
	return TSI_OK;
}

/* Switches to a renewed node certificate: the new minter is made first,
 * so a certificate that does not load leaves the old one serving; then
 * the API is restarted on it (clients see a short refusal and retry). */
static int
serving_renew(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    struct tsi_resolver *resolver, struct serving *s)
{
	struct serving next;

	memset(&next, 0, sizeof(next));
	if (serving_minter(cfg, tpm, &next) != TSI_OK) {
		serving_stop(&next);
		tsi_log(TSI_LOG_ERROR, "enroll.renew_unused",
		    TSI_LS("reason",
		        "the renewed certificate does not load; serving the "
		        "old"));
		return TSI_OK;
	}
	tsi_api_stop(s->api);
	tsi_monitor_stop(s->monitor);
	s->api = NULL;
	s->monitor = NULL;
	serving_stop(s);
	*s = next;
	if (serving_start(cfg, tpm, resolver, s) != TSI_OK)
		return TSI_ERR_INTERNAL;
	tsi_log(TSI_LOG_INFO, "enroll.renewed",
	    TSI_LS("node_cert", cfg->node_cert));
	return TSI_OK;
}

/* Privilege separation: the signer's renewal, on its own thread between
 * requests. The front end is not involved: it never held the minter. */
struct privsep_renew {
	const struct tsi_issuer_config *cfg;
	struct tsi_tpm *tpm;
	struct serving *srv;
};

static int
privsep_renew(void *arg)
{
	struct privsep_renew *pr = arg;
	struct serving next;
	int r;

	memset(&next, 0, sizeof(next));
	if (serving_minter(pr->cfg, pr->tpm, &next) != TSI_OK) {
		serving_stop(&next);
		tsi_log(TSI_LOG_ERROR, "enroll.renew_unused",
		    TSI_LS("reason",
		        "the renewed certificate does not load; serving the "
		        "old"));
		return TSI_OK;
	}
	if ((r = tsi_monitor_start(pr->tpm, next.minter, &next.monitor)) !=
	    TSI_OK) {
		serving_stop(&next);
		return r;
	}
	serving_stop(pr->srv);
	*pr->srv = next;
	tsi_log(TSI_LOG_INFO, "enroll.renewed",
	    TSI_LS("node_cert", pr->cfg->node_cert));
	return TSI_OK;
}

/* The one place the front end is confined (issuer/sandbox.h): after every
 * set-up that needs a system call the sandbox forbids (sockets, libcurl,
 * threads), before a byte from the network is read. Fails closed: the
 * front end exits and the signer sees it die. */
static int
front_sandbox(const struct tsi_issuer_config *cfg)
{
	struct tsi_sandbox_cfg sc;

	sc.user = cfg->front_user;
	sc.log_only = cfg->front_seccomp_log;
	return tsi_sandbox_enter(&sc);
}

static int
front_stopping(void *arg)
{
	(void)arg;
	return stop_signal != 0;
}

/* `front --enroll`: the protocol with tsi-attest, the TPM's part asked of
 * the signer; exits 0 once the signer installed the certificate. */
static int
front_enroll(const struct tsi_issuer_config *cfg, struct tsi_front *front)
{
	struct tsi_enroll_node node;
	char reason[512];
	int r;

	tsi_front_enroll_node(front, &node);
	if ((r = tsi_enroll_run(cfg, &node, front_stopping, NULL, reason,
	         sizeof(reason))) != TSI_OK) {
		fprintf(stderr, "tsi-issuer: enroll: %s\n", reason);
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

/* The unprivileged front end (privsep.h): HTTP, the kubelet client, claim
 * assembly, enrollment's exchanges with tsi-attest; the signer it talks
 * to is its parent. */
static int
cmd_front(const struct tsi_issuer_config *cfg, int enroll)
{
	struct tsi_front *front = NULL;
	struct tsi_resolver *resolver = NULL;
	struct tsi_api *api = NULL;
	struct tsi_enroll_keeper *keeper = NULL;
	struct tsi_enroll_node node;
	struct sigaction sa;
	sigset_t set, old;
	int r, rc = EXIT_FAILURE;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Enrolling, a stop must reach libcurl's progress check: the
	 * signals stay open. */
	if (!enroll)
		(void)pthread_sigmask(SIG_BLOCK, &set, &old);
	if ((r = tsi_front_new(&front)) != TSI_OK ||
	    (!enroll && cfg->resolver == TSI_RESOLVER_KUBELET &&
	        (r = tsi_resolver_new(cfg, &resolver)) != TSI_OK) ||
	    (!enroll &&
	        (r = tsi_api_start_front(cfg, front, resolver,
	             TSI_PRIV_FD_LISTEN, &api)) != TSI_OK)) {
		tsi_log(TSI_LOG_ERROR, "front.start_failed",
		    TSI_LS("error", tsi_strerror(r)));
		goto out;
	}
	if ((r = front_sandbox(cfg)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "front.start_failed",
		    TSI_LS("reason", "cannot enter the sandbox"),
		    TSI_LS("error", tsi_strerror(r)));
		goto out;
	}
	if (enroll) {
		rc = front_enroll(cfg, front);
		goto out;
	}
	tsi_api_open(api);
	tsi_front_enroll_node(front, &node);
	if (keeper_start(cfg, &node, NULL, &keeper, "front.start_failed") !=
	    TSI_OK)
		goto out;
	tsi_log(TSI_LOG_INFO, "front.ready", TSI_LI("pid", getpid()));
	while (!stop_signal)
		sigsuspend(&old);
	rc = EXIT_SUCCESS;
out:
	tsi_enroll_keeper_stop(keeper);
	tsi_api_stop(api);
	tsi_resolver_free(resolver);
	tsi_front_free(front);
	return rc;
}

/* The signer: the TPM, the minter and its monitor stay here; the API
 * socket is bound here and lent to each front end in turn. */
static int
run_signer(const struct tsi_issuer_config *cfg, const char *config_path,
    const char *front_exe, struct tsi_tpm *tpm, struct serving *srv,
    const sigset_t *wait_mask)
{
	struct privsep_renew pr = { cfg, tpm, srv };
	struct tsi_privsep_signer ps;
	int fd = -1, r;

	if ((r = tsi_monitor_start(tpm, srv->minter, &srv->monitor)) !=
	        TSI_OK ||
	    (r = tsi_api_bind(cfg, &fd)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "issuer.start_failed",
		    TSI_LS("error", tsi_strerror(r)));
		return r;
	}
	signer_params(&ps, cfg, config_path, front_exe, tpm, wait_mask);
	ps.listen_fd = fd;
	ps.minter = &srv->minter;
	ps.monitor = &srv->monitor;
	ps.renew = privsep_renew;
	ps.renew_arg = &pr;
	tsi_log(TSI_LOG_INFO, "issuer.ready", TSI_LS("socket", cfg->socket),
	    TSI_LS("signing",
	        cfg->signing == TSI_SIGNING_TPM ? "tpm" : "delegated"),
	    TSI_LS("privsep", "signer"));
	r = tsi_privsep_signer_run(&ps);
	close(fd);
	(void)unlink(cfg->socket);
	return r;
}

static int
cmd_run(const struct tsi_issuer_config *cfg, const char *config_path,
    const char *front_exe)
{
	struct tsi_tpm *tpm = NULL;
	struct tsi_resolver *resolver = NULL;
	struct tsi_enroll_keeper *keeper = NULL;
	struct tsi_enroll_local local;
	struct tsi_enroll_node node;
	struct serving srv;
	sigset_t old;
	int r, rc = EXIT_FAILURE;

	memset(&srv, 0, sizeof(srv));
	signals_block(&old);
	/* Before the TPM: a second issuer must not touch it, nor take the
	 * socket (checked again when it is bound). */
	if (tsi_api_socket_in_use(cfg->socket)) {
		tsi_log(TSI_LOG_ERROR, "issuer.start_failed",
		    TSI_LS("reason",
		        "address in use: another tsi-issuer serves the socket"),
		    TSI_LS("socket", cfg->socket));
		goto out;
	}
	if ((r = tsi_tpm_open(cfg->tcti, cfg->state_dir, &tpm)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "issuer.start_failed",
		    TSI_LS("reason", "cannot use the TPM"),
		    TSI_LS("error", tsi_strerror(r)));
		goto out;
	}
	if (enroll_at_start(cfg, config_path, front_exe, tpm, &old) != TSI_OK)
		goto out;
	/* Asked to stop while enrolling: stop, successfully. */
	if (stop_pending(NULL) || stop_signal) {
		tsi_log(TSI_LOG_INFO, "issuer.stopping",
		    TSI_LS("during", "enrollment"));
		rc = EXIT_SUCCESS;
		goto out;
	}
	if (serving_minter(cfg, tpm, &srv) != TSI_OK)
		goto out;
	if (cfg->privsep) {
		/* Renewal is the front end's (its keeper asks the signer). */
		if (run_signer(cfg, config_path, front_exe, tpm, &srv, &old) !=
		    TSI_OK)
			goto out;
		tsi_log(TSI_LOG_INFO, "issuer.stopping",
		    TSI_LI("signal", stop_signal));
		rc = EXIT_SUCCESS;
		goto out;
	}
	if ((r = tsi_resolver_new(cfg, &resolver)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "issuer.start_failed",
		    TSI_LS("error", tsi_strerror(r)));
		goto out;
	}
	if (serving_start(cfg, tpm, resolver, &srv) != TSI_OK)
		goto out;
	tsi_enroll_node_local(&local, cfg, tpm, &node);
	if (keeper_start(cfg, &node, renewed, &keeper, "issuer.start_failed") !=
	    TSI_OK)
		goto out;
	tsi_log(TSI_LOG_INFO, "issuer.ready", TSI_LS("socket", cfg->socket),
	    TSI_LS("signing",
	        cfg->signing == TSI_SIGNING_TPM ? "tpm" : "delegated"));
	while (!stop_signal) {
		sigsuspend(&old);
		if (renew_signal && !stop_signal) {
			renew_signal = 0;
			if (serving_renew(cfg, tpm, resolver, &srv) != TSI_OK)
				goto out;
		}
	}
	tsi_log(TSI_LOG_INFO, "issuer.stopping", TSI_LI("signal", stop_signal));
	rc = EXIT_SUCCESS;
out:
	tsi_enroll_keeper_stop(keeper);
	serving_stop(&srv);
	tsi_resolver_free(resolver);
	tsi_tpm_free(tpm);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "single-process", no_argument, NULL, 'S' },
		{ "front-exe", required_argument, NULL, 'F' },
		{ "enroll", no_argument, NULL, 'E' },
		{ NULL, 0, NULL, 0 },
	};
	struct tsi_issuer_config *cfg = NULL;
	const char *config = DEFAULT_CONFIG, *cmd = "run";
	const char *front_exe = "/proc/self/exe";
	char err[512];
	int ch, rc, single = 0, enroll = 0;

	tsi_log_init("tsi-issuer", TSI_LOG_INFO);
	while ((ch = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'h': usage(stdout); return EXIT_SUCCESS;
		case 'V':
			printf("tsi-issuer %s\n", TSI_VERSION);
			return EXIT_SUCCESS;
		case 'S': single = 1; break;
		case 'F': front_exe = optarg; break;
		case 'E': enroll = 1; break;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc)
		cmd = argv[optind++];
	if (optind < argc ||
	    (strcmp(cmd, "run") != 0 && strcmp(cmd, "csr") != 0 &&
	        strcmp(cmd, "enroll") != 0 && strcmp(cmd, "front") != 0) ||
	    (enroll && strcmp(cmd, "front") != 0)) {
		fprintf(stderr, "tsi-issuer: unexpected argument '%s'\n",
		    optind < argc ? argv[optind] : cmd);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (tsi_issuer_config_load(config, &cfg, err, sizeof(err)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "config.invalid", TSI_LS("error", err));
		fprintf(stderr, "tsi-issuer: %s\n", err);
		return EXIT_USAGE;
	}
	if (single)
		cfg->privsep = 0;
	tsi_log_init("tsi-issuer", level_of(cfg->log_level));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = strcmp(cmd, "csr") == 0     ? cmd_csr(cfg)
	    : strcmp(cmd, "enroll") == 0 ? cmd_enroll(cfg, config, front_exe)
	    : strcmp(cmd, "front") == 0  ? cmd_front(cfg, enroll)
	                                 : cmd_run(cfg, config, front_exe);
	curl_global_cleanup();
	tsi_issuer_config_free(cfg);
	return rc;
}
