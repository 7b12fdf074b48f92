/*
 * tsi-issuer - the node-resident identity issuer.
 *
 *   tsi-issuer [run] --config F   serve the API on the configured socket
 *   tsi-issuer csr --config F     print a CSR signed by the node's TPM key
 *
 * Exit: 0 success, 1 runtime failure, 2 bad usage or configuration.
 */
#include "issuer/api.h"
#include "issuer/config.h"
#include "issuer/mint.h"
#include "issuer/monitor.h"
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
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/x509.h>

#define EXIT_USAGE 2
#define DEFAULT_CONFIG "/etc/tsi/issuer.conf"

static volatile sig_atomic_t stop_signal;

static void
on_signal(int sig)
{
	stop_signal = sig;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tsi-issuer [run|csr] [--config FILE]\n"
	    "  run   serve identity tokens on the configured Unix socket (default)\n"
	    "  csr   print a certificate signing request for the node's TPM key\n"
	    "options:\n"
	    "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
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
	struct tsi_signer *signer = NULL;
	char host[256], *csr = NULL;
	const char *cn = cfg->node_name;
	int r, rc = EXIT_FAILURE;

	if (cn == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			(void)snprintf(host, sizeof(host), "node");
		host[sizeof(host) - 1] = '\0';
		cn = host;
	}
	if ((r = tsi_tpm_open(cfg->tcti, cfg->state_dir, &tpm)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "csr.failed", TSI_LS("reason",
		    "cannot use the TPM"), TSI_LS("error", tsi_strerror(r)));
		goto out;
	}
	if ((r = tsi_tpm_signer(tpm, &signer)) != TSI_OK ||
	    (r = tsi_x509_make_csr(signer, cn, &csr)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "csr.failed", TSI_LS("error",
		    tsi_strerror(r)));
		goto out;
	}
	if (fputs(csr, stdout) == EOF || fflush(stdout) != 0)
		goto out;
	rc = EXIT_SUCCESS;
out:
	free(csr);
	tsi_signer_free(signer);
	tsi_tpm_free(tpm);
	return rc;
}

/* The node certificate must be for this TPM's key and valid now. */
static int
load_node_cert(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    X509 **out)
{
	X509 *cert = NULL;
	int r;

	if ((r = tsi_x509_load_file(cfg->node_cert, &cert)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "node_cert.unreadable", TSI_LS("path",
		    cfg->node_cert), TSI_LS("error", tsi_strerror(r)), TSI_LS(
		    "hint", "enroll with `tsi-issuer csr` and `tsi ca sign`"));
		return r;
	}
	if (tsi_x509_key_matches(cert, tsi_tpm_pub(tpm)) != 1) {
		tsi_log(TSI_LOG_ERROR, "node_cert.wrong_key", TSI_LS("path",
		    cfg->node_cert), TSI_LS("reason", "the node certificate is "
		    "not for this node's TPM key"));
		X509_free(cert);
		return TSI_ERR_BAD_CERT;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0 ||
	    X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
		tsi_log(TSI_LOG_ERROR, "node_cert.expired", TSI_LS("path",
		    cfg->node_cert), TSI_LS("reason", "the node certificate is "
		    "expired or not yet valid"));
		X509_free(cert);
		return TSI_ERR_EXPIRED;
	}
	*out = cert;
	return TSI_OK;
}

static int
cmd_run(const struct tsi_issuer_config *cfg)
{
	struct tsi_tpm *tpm = NULL;
	struct tsi_minter *minter = NULL;
	struct tsi_resolver *resolver = NULL;
	struct tsi_monitor *monitor = NULL;
	struct tsi_api *api = NULL;
	struct sigaction sa;
	sigset_t set, old;
	X509 *node = NULL;
	int r, rc = EXIT_FAILURE;

	/*
	 * Block SIGTERM and SIGINT before any thread exists: threads inherit the
	 * mask, so the signal can only be taken by sigsuspend below. Blocked
	 * after the API and monitor threads had started, a signal could land on
	 * one of them, set stop_signal and leave this thread asleep for ever.
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	(void)pthread_sigmask(SIG_BLOCK, &set, &old);
	/* Before the TPM: a second issuer must not touch it, nor take the
	 * socket (checked again when it is bound). */
	if (tsi_api_socket_in_use(cfg->socket)) {
		tsi_log(TSI_LOG_ERROR, "issuer.start_failed", TSI_LS("reason",
		    "address in use: another tsi-issuer serves the socket"),
		    TSI_LS("socket", cfg->socket));
		goto out;
	}
	if ((r = tsi_tpm_open(cfg->tcti, cfg->state_dir, &tpm)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "issuer.start_failed", TSI_LS("reason",
		    "cannot use the TPM"), TSI_LS("error", tsi_strerror(r)));
		goto out;
	}
	if (load_node_cert(cfg, tpm, &node) != TSI_OK)
		goto out;
	if ((r = tsi_minter_new(cfg, tpm, node, &minter)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "issuer.start_failed", TSI_LS("reason",
		    "node certificate unusable (location SANs?)"),
		    TSI_LS("error", tsi_strerror(r)));
		goto out;
	}
	if ((r = tsi_resolver_new(cfg, &resolver)) != TSI_OK ||
	    (r = tsi_monitor_start(tpm, minter, &monitor)) != TSI_OK ||
	    (r = tsi_api_start(cfg, minter, resolver, monitor, &api)) !=
	    TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "issuer.start_failed", TSI_LS("error",
		    tsi_strerror(r)));
		goto out;
	}
	tsi_log(TSI_LOG_INFO, "issuer.ready", TSI_LS("socket", cfg->socket),
	    TSI_LS("signing", cfg->signing == TSI_SIGNING_TPM ? "tpm" :
	    "delegated"));
	while (!stop_signal)
		sigsuspend(&old);
	tsi_log(TSI_LOG_INFO, "issuer.stopping", TSI_LI("signal", stop_signal));
	rc = EXIT_SUCCESS;
out:
	tsi_api_stop(api);
	tsi_monitor_stop(monitor);
	tsi_resolver_free(resolver);
	tsi_minter_free(minter);
	X509_free(node);
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
		{ NULL, 0, NULL, 0 },
	};
	struct tsi_issuer_config *cfg = NULL;
	const char *config = DEFAULT_CONFIG, *cmd = "run";
	char err[512];
	int ch, rc;

	tsi_log_init("tsi-issuer", TSI_LOG_INFO);
	while ((ch = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("tsi-issuer %s\n", TSI_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		cmd = argv[optind++];
	if (optind < argc || (strcmp(cmd, "run") != 0 &&
	    strcmp(cmd, "csr") != 0)) {
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
	tsi_log_init("tsi-issuer", level_of(cfg->log_level));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = strcmp(cmd, "csr") == 0 ? cmd_csr(cfg) : cmd_run(cfg);
	curl_global_cleanup();
	tsi_issuer_config_free(cfg);
	return rc;
}
