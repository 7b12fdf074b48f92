/*
 * cli.h - command groups of the `tsi` program.
 *
 * Each group lives in its own file and registers itself with TSI_CLI_GROUP,
 * so groups are added without touching the dispatcher. A group's main gets
 * argv starting at the group name ("ca", "init", ...). Exit codes follow
 * CONTRACT: 0 success, 1 runtime failure, 2 bad usage or config.
 */
#ifndef TSI_CLI_H
#define TSI_CLI_H

#define TSI_EXIT_OK 0
#define TSI_EXIT_FAIL 1
#define TSI_EXIT_USAGE 2

struct tsi_cli_group {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv);
	void (*usage)(void);
};

void tsi_cli_register(const struct tsi_cli_group *g);

#define TSI_CLI_GROUP(var) \
	static void tsi_cli_register_##var(void) __attribute__((constructor)); \
	static void tsi_cli_register_##var(void) \
	{ \
		tsi_cli_register(&var); \
	}

/* Prints "tsi: " + message to stderr (for usage errors; runtime events go to
 * the JSON log). */
void tsi_cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* TSI_CLI_H */
