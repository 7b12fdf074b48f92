/* tsi ca: make a cluster CA and sign node certificates (CONTRACT "Trust model"). */
#include "cli.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/file.h"
#include "tsi/x509.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CSR_MAX (64 * 1024)

static void
ca_usage(void)
{
	printf("usage: tsi ca init --out DIR [--cn NAME] [--days N]\n"
	       "       tsi ca sign --ca DIR --cluster-name C --region R "
	       "--datacenter D\n"
	       "                   [--node N] [--days N] CSR-FILE|-\n\n"
	       "init   makes a P-256 CA: DIR/ca.pem (0644) and DIR/ca.key "
	       "(0600).\n"
	       "       Never overwrites an existing CA. --days defaults to "
	       "3650.\n"
	       "sign   checks the CSR's self-signature and prints the node "
	       "certificate\n"
	       "       (PEM) on stdout, binding the location as URI SANs\n"
	       "       tsi:cluster-name:C tsi:region:R tsi:datacenter:D "
	       "[tsi:node:N].\n"
	       "       Location values: 1-%d characters of [A-Za-z0-9._-], not "
	       "starting\n"
	       "       with '.'. --days defaults to 365 (never past the CA's "
	       "expiry).\n\n"
	       "exit status: 0 success, 1 failure, 2 bad usage\n",
	    TSI_LOCATION_MAX);
}

static int
parse_days(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 36500)
		return -1;
	*out = (int)v;
	return 0;
}

/* Reads a whole file (or stdin for "-") of at most max bytes. */
static int
read_input(const char *path, size_t max, char **out, size_t *outlen)
{
	int r =
	    tsi_file_read(path, max, TSI_FILE_DASH_STDIN, out, outlen, NULL, 0);

	return r == TSI_ERR_NOT_FOUND ? TSI_ERR_IO : r;
}

static int
ca_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "cn", required_argument, NULL, 'c' },
		{ "days", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL, *cn = NULL;
	int days = 3650, c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'c': cn = optarg; break;
		case 'd':
			if (parse_days(optarg, &days) != 0) {
				tsi_cli_err("--days: want 1..36500, got '%s'",
				    optarg);
				return TSI_EXIT_USAGE;
			}
			break;
		case 'h': ca_usage(); return TSI_EXIT_OK;
		default: return TSI_EXIT_USAGE;
		}
	}
	if (out == NULL || optind != argc) {
		tsi_cli_err(out == NULL ? "ca init: --out DIR is required"
		                        : "ca init: unexpected argument");
		return TSI_EXIT_USAGE;
	}
	if (cn != NULL && (*cn == '\0' || strlen(cn) > 64)) {
		tsi_cli_err("--cn: want 1..64 characters");
		return TSI_EXIT_USAGE;
	}
	r = tsi_ca_init(out, cn, days);
	if (r == TSI_ERR_EXISTS) {
		tsi_cli_err("ca init: %s already holds a CA; refusing to "
		            "overwrite",
		    out);
		return TSI_EXIT_FAIL;
	}
	if (r != TSI_OK) {
		tsi_cli_err("ca init: %s: %s", out, tsi_strerror(r));
		return TSI_EXIT_FAIL;
	}
	printf("%s/ca.pem\n%s/ca.key\n", out, out);
	return TSI_EXIT_OK;
}

static int
ca_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca", required_argument, NULL, 'a' },
		{ "cluster-name", required_argument, NULL, 'c' },
		{ "region", required_argument, NULL, 'r' },
		{ "datacenter", required_argument, NULL, 'd' },
		{ "node", required_argument, NULL, 'n' },
		{ "days", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tsi_location loc = { 0 };
	const char *dir = NULL;
	char cert[PATH_MAX], key[PATH_MAX], *csr = NULL, *pem = NULL;
	size_t csrlen = 0;
	int days = 365, c, n, r, ret = TSI_EXIT_USAGE;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a': dir = optarg; break;
		case 'c': loc.cluster_name = optarg; break;
		case 'r': loc.region = optarg; break;
		case 'd': loc.datacenter = optarg; break;
		case 'n': loc.node = optarg; break;
		case 'D':
			if (parse_days(optarg, &days) != 0) {
				tsi_cli_err("--days: want 1..36500, got '%s'",
				    optarg);
				return TSI_EXIT_USAGE;
			}
			break;
		case 'h': ca_usage(); return TSI_EXIT_OK;
		default: return TSI_EXIT_USAGE;
		}
	}
	if (dir == NULL || loc.cluster_name == NULL || loc.region == NULL ||
	    loc.datacenter == NULL) {
		tsi_cli_err("ca sign: --ca, --cluster-name, --region and "
		            "--datacenter are required");
		return TSI_EXIT_USAGE;
	}
	if (optind != argc - 1) {
		tsi_cli_err("ca sign: give one CSR file, or - for stdin");
		return TSI_EXIT_USAGE;
	}
	if (tsi_location_validate(&loc) != TSI_OK) {
		tsi_cli_err("ca sign: location values must be 1-%d characters "
		            "of "
		            "[A-Za-z0-9._-], not starting with '.'",
		    TSI_LOCATION_MAX);
		return TSI_EXIT_USAGE;
	}
	n = snprintf(cert, sizeof(cert), "%s/ca.pem", dir);
	if (n < 0 || (size_t)n >= sizeof(cert) ||
	    snprintf(key, sizeof(key), "%s/ca.key", dir) >= (int)sizeof(key)) {
		tsi_cli_err("ca sign: --ca path too long");
		return TSI_EXIT_USAGE;
	}
	ret = TSI_EXIT_FAIL;
	if ((r = read_input(argv[optind], CSR_MAX, &csr, &csrlen)) != TSI_OK) {
		tsi_cli_err("ca sign: %s: %s", argv[optind], tsi_strerror(r));
		goto out;
	}
	r = tsi_ca_sign_csr(cert, key, csr, csrlen, &loc, days, &pem);
	switch (r) {
	case TSI_OK:
		fputs(pem, stdout);
		ret = fflush(stdout) == 0 ? TSI_EXIT_OK : TSI_EXIT_FAIL;
		break;
	case TSI_ERR_BAD_CERT:
		tsi_cli_err("ca sign: CSR refused (its self-signature does not "
		            "verify, or its key is not EC P-256)");
		break;
	case TSI_ERR_PARSE:
	case TSI_ERR_IO:
		tsi_cli_err("ca sign: %s",
		    r == TSI_ERR_IO ? "cannot read the CA "
		                      "in --ca"
		                    : "the CSR or the CA files are not valid "
		                      "PEM (see the log "
		                      "line above)");
		break;
	default: tsi_cli_err("ca sign: %s", tsi_strerror(r));
	}
out:
	free(csr);
	free(pem);
	return ret;
}

static int
ca_main(int argc, char **argv)
{
	if (argc < 2) {
		ca_usage();
		return TSI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		ca_usage();
		return TSI_EXIT_OK;
	}
	optind = 1;
	if (strcmp(argv[1], "init") == 0)
		return ca_init(argc - 1, argv + 1);
	if (strcmp(argv[1], "sign") == 0)
		return ca_sign(argc - 1, argv + 1);
	tsi_cli_err("ca: unknown command '%s'", argv[1]);
	ca_usage();
	return TSI_EXIT_USAGE;
}

static const struct tsi_cli_group ca_group = {
	.name = "ca",
	.summary = "make a cluster CA, sign node certificates",
	.main = ca_main,
	.usage = ca_usage,
};
TSI_CLI_GROUP(ca_group)
