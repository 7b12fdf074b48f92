/*
 * sandbox_target.c - the smallest program that confines itself as the
 * issuer's front end does (tsi_sandbox_enter), for test_sandbox.c:
 *
 *   sandbox_target [--no-sandbox] [--user U] [--log-only] [--threads N]
 *
 * With --threads it starts N threads first (the front end has its
 * server's and kubelet client's running when it confines itself). It logs "target.ready" once confined (or at once with --no-sandbox),
 * then waits for signals for at most 120 s. Exit 1 when the sandbox
 * cannot be entered.
 */
#include "issuer/sandbox.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *
idle(void *arg)
{
	struct timespec left = { 120, 0 };

	while (nanosleep(&left, &left) != 0 && errno == EINTR)
		;
	return arg;
}

int
main(int argc, char **argv)
{
	pthread_t t;
	int threads = 0;
	struct tsi_sandbox_cfg cfg = { "nobody", 0 };
	struct timespec left = { 120, 0 };
	int i, confine = 1;

	tsi_log_init("sandbox-target", TSI_LOG_INFO);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-sandbox") == 0)
			confine = 0;
		else if (strcmp(argv[i], "--log-only") == 0)
			cfg.log_only = 1;
		else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			cfg.user = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else
			return 2;
	}
	for (i = 0; i < threads && i < 16; i++)
		if (pthread_create(&t, NULL, idle, NULL) != 0 ||
		    pthread_detach(t) != 0)
			return 1;
	if (confine && tsi_sandbox_enter(&cfg) != TSI_OK)
		return 1;
	tsi_log(TSI_LOG_INFO, "target.ready", TSI_LI("confined", confine));
	while (nanosleep(&left, &left) != 0 && errno == EINTR)
		;
	return 0;
}
