/* tsi-injector: the mutating admission webhook that injects tsi-sidecar. */
#include "injector.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/file.h"
#include "tsi/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tsi-injector [--config FILE] [run]\n"
	    "       tsi-injector [--config FILE] review < "
	    "admissionreview.json\n"
	    "       tsi-injector --help | --version\n\n"
	    "  run      serve POST /mutate and GET /healthz over HTTPS "
	    "(default)\n"
	    "  review   decide on one AdmissionReview read from stdin and "
	    "print\n"
	    "           the AdmissionReview response (no server, for "
	    "debugging)\n\n"
	    "  --config FILE  libconfig file (default "
	    "/etc/tsi/injector.conf);\n"
	    "                 settings are described in docs/injector.md\n");
}

static int
cmd_review(const struct tsi_injector_conf *c)
{
	char *in = NULL, *resp = NULL;
	size_t n = 0;
	int status, r, rc = EXIT_FAIL;

	if ((r = tsi_file_read("-", (size_t)c->max_request_bytes,
	         TSI_FILE_DASH_STDIN, &in, &n, NULL, 0)) != TSI_OK) {
		if (r == TSI_ERR_TOO_LARGE)
			fprintf(stderr,
			    "tsi-injector: input larger than %lld "
			    "bytes\n",
			    c->max_request_bytes);
		goto out;
	}
	r = tsi_injector_review(c, in, n, &resp, &status);
	if (resp == NULL) {
		fprintf(stderr, "tsi-injector: %s\n", tsi_strerror(r));
		goto out;
	}
	printf("%s\n", resp);
	rc = r == TSI_OK ? EXIT_OK : EXIT_FAIL;
out:
	free(resp);
	free(in);
	return rc;
}

static int
cmd_run(const struct tsi_injector_conf *c)
{
	struct tsi_injector_server *s = NULL;
	sigset_t set;
	int sig = 0;

	int r;

	/* Block before the server threads start so that they inherit it and
	 * only sigwait below sees SIGINT/SIGTERM/SIGHUP. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((r = tsi_injector_server_start(c, &s)) != TSI_OK)
		return r == TSI_ERR_CONFIG ? EXIT_USAGE : EXIT_FAIL;
	/* SIGHUP: a rotated certificate and key, served from the next
	 * handshake on. */
	while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
		(void)tsi_injector_server_reload_tls(s);
	tsi_log(TSI_LOG_INFO, "injector.stopping", TSI_LI("signal", sig));
	tsi_injector_server_stop(s);
	return EXIT_OK;
}

int
main(int argc, char **argv)
{
	const char *config = "/etc/tsi/injector.conf", *cmd = "run";
	struct tsi_injector_conf *c = NULL;
	char err[512];
	int i, r, rc;

	tsi_log_init("tsi-injector", TSI_LOG_INFO);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("tsi-injector %s\n", TSI_VERSION);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config = argv[i] + 9;
		} else if (argv[i][0] != '-' &&
		    (strcmp(argv[i], "run") == 0 ||
		        strcmp(argv[i], "review") == 0)) {
			cmd = argv[i];
		} else {
			fprintf(stderr, "tsi-injector: unknown argument '%s'\n",
			    argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if ((r = tsi_injector_conf_load(config, &c, err, sizeof(err))) !=
	    TSI_OK) {
		fprintf(stderr, "tsi-injector: %s\n", err);
		tsi_log(TSI_LOG_ERROR, "injector.config_invalid",
		    TSI_LS("error", err));
		return EXIT_USAGE;
	}
	rc = strcmp(cmd, "review") == 0 ? cmd_review(c) : cmd_run(c);
	tsi_injector_conf_free(c);
	return rc;
}
