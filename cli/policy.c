/*
 * tsi policy: check a policy directory, and evaluate one request against it.
 *
 *   tsi policy check DIR
 *   tsi policy eval --dir DIR --claims FILE.json --path P [--capability C]
 *                   [--role R] [--json]
 *   tsi policy eval --dir DIR --root [--claims FILE.json] --path P ...
 *
 * check: every error as "file:line: reason" on stderr, exit 2 when any,
 * else a summary on stdout and exit 0. eval: "allow" or "deny", the deciding
 * rule and the reason on stdout; exit 0 allow, 3 deny, 2 bad usage, bad
 * claims file or bad policy.
 */
#include "cli.h"
#include "mounts.h"
#include "tsi/err.h"
#include "tsi/policy.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TSI_EXIT_DENY 3

static void
usage_to(FILE *f)
{
	fprintf(f,
	    "usage: tsi policy check DIR\n"
	    "       tsi policy eval --dir DIR --claims FILE.json --path PATH\n"
	    "                       [--capability CAP] [--role ROLE] [--json]\n"
	    "       tsi policy eval --dir DIR --root [--claims FILE.json] "
	    "--path PATH\n"
	    "                       [--capability CAP] [--json]\n"
	    "\n"
	    "check  validate every *.conf file of DIR; prints each error as\n"
	    "       file:line: reason (exit 2), or a summary (exit 0).\n"
	    "eval   decide one request: the caller's JWT claims (a JSON "
	    "object,\n"
	    "       '-' for stdin), an API path without /v1/ (secret/data/x,\n"
	    "       secret/metadata/x, sys/audit/releases) and a capability\n"
	    "       (create, read, update, delete, list, audit; default "
	    "read).\n"
	    "       With --role the role's bound claims are checked as at "
	    "login\n"
	    "       and only its rules count; without, every rule of DIR "
	    "counts.\n"
	    "       Prints allow or deny, the deciding rule and the reason;\n"
	    "       --json prints {\"decision\",\"rule\",\"reason\"}.\n"
	    "       --root decides as for the root token: only guardrails "
	    "(deny\n"
	    "       rules with guardrail = true) count; claims default to "
	    "none.\n"
	    "       Exit 0 allow, 3 deny, 2 bad usage or bad policy.\n");
}

static void
policy_usage(void)
{
	usage_to(stdout);
}

static void
print_err(const char *msg, void *arg)
{
	int *n = arg;

	fprintf(stderr, "%s\n", msg);
	(*n)++;
}

static int
cmd_check(int argc, char **argv)
{
	struct tsi_policy_set *p = NULL;
	size_t nfiles, nroles, nrules, nguard;
	char err[1024];
	int n = 0, r;

	if (argc != 2 || argv[1][0] == '-') {
		if (argc == 2 &&
		    (strcmp(argv[1], "--help") == 0 ||
		        strcmp(argv[1], "-h") == 0)) {
			policy_usage();
			return TSI_EXIT_OK;
		}
		tsi_cli_err("usage: tsi policy check DIR");
		return TSI_EXIT_USAGE;
	}
	r = tsi_policy_check_dir(argv[1], print_err, &n);
	if (r < 0)
		return r == TSI_ERR_ALLOC ? TSI_EXIT_FAIL : TSI_EXIT_USAGE;
	if (r > 0) {
		fprintf(stderr, "%s: %d error%s\n", argv[1], r,
		    r == 1 ? "" : "s");
		return TSI_EXIT_USAGE;
	}
	if (tsi_policy_load_dir(argv[1], &p, err, sizeof(err)) != TSI_OK) {
		/* The directory changed between check and load. */
		fprintf(stderr, "%s\n", err);
		return TSI_EXIT_USAGE;
	}
	tsi_policy_stats(p, &nfiles, &nroles, &nrules);
	nguard = tsi_policy_guardrails(p);
	printf("%s: ok: %zu file%s, %zu role%s, %zu rule%s (%zu guardrail%s)\n",
	    argv[1], nfiles, nfiles == 1 ? "" : "s", nroles,
	    nroles == 1 ? "" : "s", nrules, nrules == 1 ? "" : "s", nguard,
	    nguard == 1 ? "" : "s");
	tsi_policy_unref(p);
	return TSI_EXIT_OK;
}

static int
print_decision(const struct tsi_decision *d, int as_json)
{
	if (as_json) {
		json_t *o = json_pack("{s:s, s:s, s:s}", "decision",
		    d->allowed ? "allow" : "deny", "rule", d->rule, "reason",
		    d->reason);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

		if (s == NULL) {
			json_decref(o);
			tsi_cli_err("out of memory");
			return TSI_EXIT_FAIL;
		}
		printf("%s\n", s);
		free(s);
		json_decref(o);
	} else
		printf("%s\nrule: %s\nreason: %s\n",
		    d->allowed ? "allow" : "deny", d->rule, d->reason);
	return d->allowed ? TSI_EXIT_OK : TSI_EXIT_DENY;
}

static int
cmd_eval(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "claims", required_argument, NULL, 'c' },
		{ "path", required_argument, NULL, 'p' },
		{ "capability", required_argument, NULL, 'C' },
		{ "role", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "root", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *claims_file = NULL, *path = NULL;
	const char *capname = "read", *role = NULL;
	struct tsi_policy_set *p = NULL;
	struct tsi_decision d;
	json_t *claims = NULL;
	json_error_t jerr;
	char err[1024];
	int c, cap, as_json = 0, as_root = 0, rc = TSI_EXIT_USAGE;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'c': claims_file = optarg; break;
		case 'p': path = optarg; break;
		case 'C': capname = optarg; break;
		case 'r': role = optarg; break;
		case 'j': as_json = 1; break;
		case 'R': as_root = 1; break;
		case 'h': policy_usage(); return TSI_EXIT_OK;
		default:
			tsi_cli_err("policy eval: unknown or incomplete option "
			            "'%s'",
			    argv[optind - 1]);
			return TSI_EXIT_USAGE;
		}
	}
	if (optind != argc || dir == NULL || path == NULL ||
	    (claims_file == NULL && !as_root) || (as_root && role != NULL)) {
		tsi_cli_err(
		    "usage: tsi policy eval --dir DIR --claims FILE.json "
		    "--path PATH [--capability CAP] [--role ROLE] [--json]\n"
		    "       tsi policy eval --dir DIR --root [--claims "
		    "FILE.json] "
		    "--path PATH [--capability CAP] [--json]");
		return TSI_EXIT_USAGE;
	}
	if ((cap = tsi_cap_from_name(capname)) == 0) {
		tsi_cli_err("unknown capability '%s' (create, read, update, "
		            "delete, list, audit)",
		    capname);
		return TSI_EXIT_USAGE;
	}
	if (claims_file == NULL)
		claims = json_object(); /* root has no claims */
	else if (strcmp(claims_file, "-") == 0)
		claims = json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr);
	else
		claims =
		    json_load_file(claims_file, JSON_REJECT_DUPLICATES, &jerr);
	if (claims == NULL) {
		if (claims_file == NULL)
			tsi_cli_err("out of memory");
		else
			tsi_cli_err("%s:%d: %s", claims_file, jerr.line,
			    jerr.text);
		goto out;
	}
	if (!json_is_object(claims)) {
		tsi_cli_err("%s: claims must be a JSON object",
		    claims_file ? claims_file : "-");
		goto out;
	}
	if (tsi_policy_load_dir(dir, &p, err, sizeof(err)) != TSI_OK) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if (as_root) {
		tsi_policy_eval_root(p, claims, path, cap, &d);
		rc = print_decision(&d, as_json);
		goto out;
	}
	if (role != NULL) {
		int r = tsi_policy_login(p, role, claims, NULL, &d);

		if (r != TSI_OK) {
			rc = print_decision(&d, as_json);
			goto out;
		}
	}
	tsi_policy_eval(p, role, claims, path, cap, &d);
	rc = print_decision(&d, as_json);
out:
	tsi_policy_unref(p);
	json_decref(claims);
	return rc;
}

static int
policy_main(int argc, char **argv)
{
	/* The policies are tsi-vault's: checked against its mounts. */
	vault_policy_mounts_register();
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage_to(argc < 2 ? stderr : stdout);
		return argc < 2 ? TSI_EXIT_USAGE : TSI_EXIT_OK;
	}
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "eval") == 0)
		return cmd_eval(argc - 1, argv + 1);
	tsi_cli_err("policy: unknown command '%s'", argv[1]);
	usage_to(stderr);
	return TSI_EXIT_USAGE;
}

static const struct tsi_cli_group policy_group = {
	"policy",
	"check policy files, evaluate a request against them",
	policy_main,
	policy_usage,
};
TSI_CLI_GROUP(policy_group)
