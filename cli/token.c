/* tsi token: decode (untrusted) and verify identity JWTs. */
#include "cli.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/jwt.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CAS 16
#define MAX_REVOKED 64

static void
token_usage(void)
{
	printf(
	    "usage: tsi token decode TOKEN|-\n"
	    "       tsi token verify --ca PEM [--ca PEM...] [--aud A] "
	    "[--revoke SERIAL|SHA256]...\n"
	    "                        [--skew S] [--now UNIX] TOKEN|-\n\n"
	    "decode  prints the header and claims as JSON, marked "
	    "\"verified\": false.\n"
	    "        Nothing in the output is trusted.\n"
	    "verify  applies every check of the trust model: alg ES256 only, "
	    "the x5c\n"
	    "        chain to a --ca certificate, validity and revocation of "
	    "every\n"
	    "        certificate, exp/nbf/iat (skew %d s), aud (default %s), "
	    "and the\n"
	    "        location claims against the node certificate. Valid: exit "
	    "0 and\n"
	    "        the claims as JSON on stdout. Refused: exit 1 and one "
	    "line\n"
	    "        'tsi: token refused: <reason>: <detail>' on stderr.\n"
	    "        --now verifies as of another time (forensics, tests).\n\n"
	    "exit status: 0 valid/decoded, 1 refused or failure, 2 bad usage\n",
	    TSI_JWT_DEFAULT_SKEW, TSI_JWT_DEFAULT_AUD);
}

/*
 * The token from argv or stdin ("-"), trailing whitespace removed. Reads at
 * most one byte over the verifier's limit, so an oversize token still
 * reaches the verifier and is refused there with its own reason.
 */
static int
read_token(const char *arg, char **out)
{
	struct tsi_buf *b;
	char chunk[4096], *t;
	size_t n, len;
	int ret = TSI_OK;

	if (strcmp(arg, "-") != 0) {
		if ((*out = strdup(arg)) == NULL)
			return TSI_ERR_ALLOC;
		return TSI_OK;
	}
	if ((b = tsi_buf_new(TSI_JWT_MAX_BYTES + 1)) == NULL)
		return TSI_ERR_ALLOC;
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		size_t room = tsi_buf_max(b) - tsi_buf_len(b);
		if ((ret = tsi_buf_put(b, chunk, n < room ? n : room)) !=
		    TSI_OK)
			goto out;
		if (n > room || room == 0)
			break; /* over the limit: the verifier says too_large */
	}
	if (ferror(stdin)) {
		ret = TSI_ERR_IO;
		goto out;
	}
	if ((t = tsi_buf_take(b, &len)) == NULL) {
		ret = TSI_ERR_ALLOC;
		goto out;
	}
	while (len > 0 &&
	    (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' ' ||
	        t[len - 1] == '\t'))
		t[--len] = '\0';
	*out = t;
out:
	tsi_buf_free(b);
	return ret;
}

static int
print_json(json_t *j)
{
	if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
		return TSI_EXIT_FAIL;
	fputc('\n', stdout);
	return fflush(stdout) == 0 ? TSI_EXIT_OK : TSI_EXIT_FAIL;
}

static int
token_decode(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *h = NULL, *c = NULL, *out = NULL;
	char *tok = NULL;
	int ch, r, ret = TSI_EXIT_FAIL;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'h') {
			token_usage();
			return TSI_EXIT_OK;
		}
		return TSI_EXIT_USAGE;
	}
	if (optind != argc - 1) {
		tsi_cli_err("token decode: give one TOKEN, or - for stdin");
		return TSI_EXIT_USAGE;
	}
	if ((r = read_token(argv[optind], &tok)) != TSI_OK) {
		tsi_cli_err("token decode: %s", tsi_strerror(r));
		goto out;
	}
	if ((r = tsi_jwt_decode_unverified(tok, &h, &c)) != TSI_OK) {
		tsi_cli_err("token decode: %s",
		    r == TSI_ERR_TOO_LARGE
		        ? "token over 16384 bytes"
		        : "not a JWT (three base64url parts "
		          "of JSON objects, no duplicate member names)");
		goto out;
	}
	out = json_pack("{s:b, s:s, s:O, s:O}", "verified", 0, "warning",
	    "UNVERIFIED: decoded only; nothing here is trusted", "header", h,
	    "claims", c);
	if (out == NULL)
		goto out;
	ret = print_json(out);
out:
	json_decref(out);
	json_decref(h);
	json_decref(c);
	tsi_strfree(tok);
	return ret;
}

static int
parse_long(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
token_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "aud", required_argument, NULL, 'a' },
		{ "revoke", required_argument, NULL, 'r' },
		{ "skew", required_argument, NULL, 's' },
		{ "now", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cas[MAX_CAS], *revoked[MAX_REVOKED];
	struct tsi_verify_opts vo = { .audience = NULL,
		.now = 0,
		.skew = TSI_JWT_DEFAULT_SKEW };
	struct tsi_verify_result res;
	struct tsi_trust *t = NULL;
	json_t *claims = NULL;
	char *tok = NULL;
	size_t ncas = 0, nrev = 0, i;
	long long v;
	int ch, r, ret = TSI_EXIT_USAGE;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (ncas == MAX_CAS) {
				tsi_cli_err("--ca: at most %d", MAX_CAS);
				return TSI_EXIT_USAGE;
			}
			cas[ncas++] = optarg;
			break;
		case 'a':
			if (*optarg == '\0') {
				tsi_cli_err("--aud: must not be empty");
				return TSI_EXIT_USAGE;
			}
			vo.audience = optarg;
			break;
		case 'r':
			if (nrev == MAX_REVOKED) {
				tsi_cli_err("--revoke: at most %d",
				    MAX_REVOKED);
				return TSI_EXIT_USAGE;
			}
			revoked[nrev++] = optarg;
			break;
		case 's':
			if (parse_long(optarg, 0, 3600, &v) != 0) {
				tsi_cli_err("--skew: want 0..3600 seconds");
				return TSI_EXIT_USAGE;
			}
			vo.skew = (int)v;
			break;
		case 'n':
			if (parse_long(optarg, 1, 253402300799LL, &v) != 0) {
				tsi_cli_err("--now: want a Unix time");
				return TSI_EXIT_USAGE;
			}
			vo.now = (time_t)v;
			break;
		case 'h': token_usage(); return TSI_EXIT_OK;
		default: return TSI_EXIT_USAGE;
		}
	}
	if (ncas == 0) {
		tsi_cli_err("token verify: --ca PEM is required");
		return TSI_EXIT_USAGE;
	}
	if (optind != argc - 1) {
		tsi_cli_err("token verify: give one TOKEN, or - for stdin");
		return TSI_EXIT_USAGE;
	}
	if (tsi_trust_new(&t) != TSI_OK)
		return TSI_EXIT_FAIL;
	for (i = 0; i < ncas; i++)
		if ((r = tsi_trust_add_ca_file(t, cas[i])) != TSI_OK) {
			tsi_cli_err("--ca %s: %s", cas[i],
			    r == TSI_ERR_IO ? "cannot read"
			                    : "no PEM certificate");
			goto out;
		}
	for (i = 0; i < nrev; i++)
		if (tsi_trust_revoke(t, revoked[i]) != TSI_OK) {
			tsi_cli_err("--revoke %s: want a hex serial or SHA-256 "
			            "fingerprint",
			    revoked[i]);
			goto out;
		}
	ret = TSI_EXIT_FAIL;
	if ((r = read_token(argv[optind], &tok)) != TSI_OK) {
		tsi_cli_err("token verify: %s", tsi_strerror(r));
		goto out;
	}
	r = tsi_jwt_verify(t, tok, &vo, &claims, &res);
	if (r == TSI_OK) {
		ret = print_json(claims);
	} else if (r == TSI_ERR_BAD_TOKEN) {
		tsi_cli_err("token refused: %s: %s",
		    tsi_jwt_reason_name(res.reason), res.detail);
	} else {
		tsi_cli_err("token verify: %s", tsi_strerror(r));
	}
out:
	json_decref(claims);
	tsi_strfree(tok);
	tsi_trust_free(t);
	return ret;
}

static int
token_main(int argc, char **argv)
{
	if (argc < 2) {
		token_usage();
		return TSI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		token_usage();
		return TSI_EXIT_OK;
	}
	optind = 1;
	if (strcmp(argv[1], "decode") == 0)
		return token_decode(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return token_verify(argc - 1, argv + 1);
	tsi_cli_err("token: unknown command '%s'", argv[1]);
	token_usage();
	return TSI_EXIT_USAGE;
}

static const struct tsi_cli_group token_group = {
	.name = "token",
	.summary = "decode or verify an identity JWT",
	.main = token_main,
	.usage = token_usage,
};
TSI_CLI_GROUP(token_group)
