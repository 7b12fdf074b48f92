/* tsi: the command-line tool for admins, policy authors and auditors. */
#include "cli.h"
#include "tsi/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_GROUPS 16

static const struct tsi_cli_group *groups[MAX_GROUPS];
static size_t ngroups;

void
tsi_cli_register(const struct tsi_cli_group *g)
{
	if (ngroups < MAX_GROUPS)
		groups[ngroups++] = g;
}

void
tsi_cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("tsi: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
usage(FILE *f)
{
	size_t i, j;

	fprintf(f,
	    "usage: tsi [--version] [--help] <command> [args]\n\ncommands:\n");
	/* Sorted by name for a stable help text (registration order is link order). */
	for (i = 0; i < ngroups; i++)
		for (j = i + 1; j < ngroups; j++)
			if (strcmp(groups[j]->name, groups[i]->name) < 0) {
				const struct tsi_cli_group *t = groups[i];
				groups[i] = groups[j];
				groups[j] = t;
			}
	for (i = 0; i < ngroups; i++)
		fprintf(f, "  %-8s %s\n", groups[i]->name, groups[i]->summary);
	fprintf(f, "\n'tsi <command> --help' describes a command.\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	tsi_log_init("tsi", TSI_LOG_WARN);
	if (argc < 2) {
		usage(stderr);
		return TSI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return TSI_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("tsi %s\n", TSI_VERSION);
		return TSI_EXIT_OK;
	}
	for (i = 0; i < ngroups; i++)
		if (strcmp(argv[1], groups[i]->name) == 0)
			return groups[i]->main(argc - 1, argv + 1);
	tsi_cli_err("unknown command '%s'", argv[1]);
	usage(stderr);
	return TSI_EXIT_USAGE;
}
