/*
 * sandbox_target.c - the smallest program that confines itself as the
 * issuer's front end does (tsi_sandbox_enter), for test_sandbox.c:
 *
 *   sandbox_target [--no-sandbox] [--user U] [--log-only]
 *
 * It logs "target.ready" once confined (or at once with --no-sandbox),
 * then waits for signals for at most 120 s. Exit 1 when the sandbox
 * cannot be entered.
 */
#include "issuer/sandbox.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
main(int argc, char **argv)
{
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
		else
			return 2;
	}
	if (confine && tsi_sandbox_enter(&cfg) != TSI_OK)
		return 1;
	tsi_log(TSI_LOG_INFO, "target.ready", TSI_LI("confined", confine));
	while (nanosleep(&left, &left) != 0 && errno == EINTR)
		;
	return 0;
}
