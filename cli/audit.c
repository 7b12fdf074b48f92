/*
 * audit.c - `tsi audit list|show|verify|stats`: reads the audit LMDB directly,
 * read-only, while tsi-vault runs (docs/audit.md "CLI").
 */
#include "cli.h"
#include "tsi/audit.h"
#include "tsi/buf.h"
#include "tsi/config.h"
#include "tsi/err.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum fmt {
	FMT_TABLE,
	FMT_JSON,
	FMT_CSV
};

struct opts {
	const char *data_dir;
	const char *config;
	const char *pubkey;
	enum fmt fmt;
	int fmt_set;
	struct tsi_audit_query q;
	size_t limit;
	int limit_set;
	const char *rest[4];
	int nrest;
	int identity; /* table: who, not what (--columns identity) */
};

static void
audit_usage(void)
{
	printf(
	    "usage: tsi audit list   (--data-dir DIR | --config FILE) "
	    "[filters] [--limit N] [--after SEQ] [--format F]\n"
	    "       tsi audit show   (--data-dir DIR | --config FILE) SEQ "
	    "[--format json|table]\n"
	    "       tsi audit verify (--data-dir DIR | --config FILE) "
	    "[--pubkey PEM]\n"
	    "       tsi audit stats  (--data-dir DIR | --config FILE) "
	    "[filters] [--format F]\n"
	    "\n"
	    "Reads the audit log read-only; safe while tsi-vault runs.\n"
	    "  --data-dir DIR     tsi-vault's data directory (its audit/ is "
	    "used) or the\n"
	    "                     audit directory itself\n"
	    "  --config FILE      take data_dir from a tsi-vault config file\n"
	    "filters (all must match):\n"
	    "  --since T, --until T   RFC 3339 (2026-11-22T10:00:00Z) or "
	    "relative to now\n"
	    "                         (90s, 30m, 24h, 7d, 2w); since "
	    "inclusive, until exclusive\n"
	    "  --decision allow|deny|error   --path PREFIX   --cluster-name C\n"
	    "  --datacenter D   --image DIGEST|NAME   --namespace NS\n"
	    "  --op OP (login, read, write, list, delete, audit.query, ...)   "
	    "--status CODE\n"
	    "  --columns identity   list as a table of who: datacenter, "
	    "cluster, namespace,\n"
	    "                     pod, service-account, node, region, role, "
	    "display name,\n"
	    "                     sub, images (CSV always has these columns, "
	    "last)\n"
	    "  --limit N          records to list (default 100, 0: all)\n"
	    "  --after SEQ        list records after SEQ (paging)\n"
	    "  --format F         table (default), json (one record per line, "
	    "as stored), csv\n"
	    "  --pubkey PEM       verify: the signed head must verify with "
	    "this key\n"
	    "exit: 0 ok (verify: intact), 1 failure (verify: broken), 2 bad "
	    "usage\n");
}

static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* RFC 3339, unix seconds, or a relative age ("24h": 24 hours ago) into
 * µs since the epoch: the parser GET /v1/sys/audit/releases uses too. */
static int
parse_time(const char *s, long long *us)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return tsi_audit_parse_time(s,
	           (long long)now.tv_sec * 1000000LL + now.tv_nsec / 1000,
	           us) == TSI_OK
	    ? 0
	    : -1;
}

/* The URL of the log at DIR/audit when there is one (a tsi-vault data
 * dir), else at DIR; which files make a log is the backend's business. */
static int
resolve_url(const char *dir, char *out, size_t out_len)
{
	char abs[PATH_MAX];

	if (realpath(dir, abs) == NULL)
		return -1;
	if (snprintf(out, out_len, "lmdb://%s/audit", abs) < (int)out_len &&
	    tsi_audit_exists_url(out))
		return 0;
	if (snprintf(out, out_len, "lmdb://%s", abs) < (int)out_len &&
	    tsi_audit_exists_url(out))
		return 0;
	return -1;
}

static int
parse_args(int argc, char **argv, struct opts *o, int for_cmd)
{
	static const struct option lo[] = {
		{ "data-dir", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'c' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "decision", required_argument, NULL, 'd' },
		{ "path", required_argument, NULL, 'p' },
		{ "cluster-name", required_argument, NULL, 'C' },
		{ "datacenter", required_argument, NULL, 'T' },
		{ "image", required_argument, NULL, 'i' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "limit", required_argument, NULL, 'l' },
		{ "after", required_argument, NULL, 'a' },
		{ "format", required_argument, NULL, 'f' },
		{ "pubkey", required_argument, NULL, 'k' },
		{ "op", required_argument, NULL, 'o' },
		{ "status", required_argument, NULL, 'S' },
		{ "columns", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t u;
	int ch;

	(void)for_cmd;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (ch) {
		case 'D': o->data_dir = optarg; break;
		case 'c': o->config = optarg; break;
		case 's':
			if (parse_time(optarg, &o->q.since_us) != 0) {
				tsi_cli_err("audit: --since '%s' is neither "
				            "RFC 3339 "
				            "nor a relative time like 24h",
				    optarg);
				return TSI_EXIT_USAGE;
			}
			break;
		case 'u':
			if (parse_time(optarg, &o->q.until_us) != 0) {
				tsi_cli_err("audit: --until '%s' is neither "
				            "RFC 3339 "
				            "nor a relative time like 24h",
				    optarg);
				return TSI_EXIT_USAGE;
			}
			break;
		case 'd':
			if (strcmp(optarg, "allow") != 0 &&
			    strcmp(optarg, "deny") != 0 &&
			    strcmp(optarg, "error") != 0) {
				tsi_cli_err("audit: --decision must be allow, "
				            "deny or error");
				return TSI_EXIT_USAGE;
			}
			o->q.decision = optarg;
			break;
		case 'p': o->q.path_prefix = optarg; break;
		case 'C': o->q.cluster_name = optarg; break;
		case 'T': o->q.datacenter = optarg; break;
		case 'i': o->q.image = optarg; break;
		case 'n': o->q.namespace_ = optarg; break;
		case 'l':
			if (parse_u64(optarg, &u) != 0) {
				tsi_cli_err("audit: --limit must be a number");
				return TSI_EXIT_USAGE;
			}
			o->limit = u == 0 ? SIZE_MAX : (size_t)u;
			o->limit_set = 1;
			break;
		case 'a':
			if (parse_u64(optarg, &u) != 0) {
				tsi_cli_err(
				    "audit: --after must be a sequence number");
				return TSI_EXIT_USAGE;
			}
			o->q.after_seq = u;
			break;
		case 'f':
			if (strcmp(optarg, "table") == 0)
				o->fmt = FMT_TABLE;
			else if (strcmp(optarg, "json") == 0)
				o->fmt = FMT_JSON;
			else if (strcmp(optarg, "csv") == 0)
				o->fmt = FMT_CSV;
			else {
				tsi_cli_err("audit: --format must be table, "
				            "json or csv");
				return TSI_EXIT_USAGE;
			}
			o->fmt_set = 1;
			break;
		case 'k': o->pubkey = optarg; break;
		case 'o': o->q.op = optarg; break;
		case 'S':
			if (parse_u64(optarg, &u) != 0 || u < 100 || u > 599) {
				tsi_cli_err(
				    "audit: --status must be an HTTP status "
				    "(100 to 599)");
				return TSI_EXIT_USAGE;
			}
			o->q.status = (int)u;
			break;
		case 'L':
			if (strcmp(optarg, "default") == 0)
				o->identity = 0;
			else if (strcmp(optarg, "identity") == 0)
				o->identity = 1;
			else {
				tsi_cli_err(
				    "audit: --columns must be default or "
				    "identity");
				return TSI_EXIT_USAGE;
			}
			break;
		case 'h': audit_usage(); return -1;
		case ':':
			tsi_cli_err("audit: %s needs a value",
			    argv[optind - 1]);
			return TSI_EXIT_USAGE;
		default:
			tsi_cli_err("audit: unknown option '%s'",
			    argv[optind - 1]);
			return TSI_EXIT_USAGE;
		}
	}
	for (; optind < argc; optind++) {
		if (o->nrest == (int)(sizeof(o->rest) / sizeof(o->rest[0]))) {
			tsi_cli_err("audit: too many arguments");
			return TSI_EXIT_USAGE;
		}
		o->rest[o->nrest++] = argv[optind];
	}
	if (o->q.since_us && o->q.until_us && o->q.until_us <= o->q.since_us) {
		tsi_cli_err("audit: --until must be later than --since");
		return TSI_EXIT_USAGE;
	}
	return 0;
}

/* Opens the reader named by --data-dir or by data_dir in --config. */
static int
open_reader(struct opts *o, struct tsi_audit_reader **r)
{
	struct tsi_config *cfg = NULL;
	const char *dir = o->data_dir;
	char err[512], path[PATH_MAX];
	int rc, ret = TSI_EXIT_FAIL;

	if (dir == NULL && o->config != NULL) {
		if ((rc = tsi_config_load(o->config, &cfg, err, sizeof(err))) !=
		    TSI_OK) {
			tsi_cli_err("%s", err);
			return TSI_EXIT_USAGE;
		}
		if (tsi_config_str(cfg, "data_dir", NULL, &dir, err,
		        sizeof(err)) != TSI_OK) {
			tsi_cli_err("%s", err);
			ret = TSI_EXIT_USAGE;
			goto out;
		}
		if (dir == NULL) {
			tsi_cli_err("%s: no data_dir setting", o->config);
			ret = TSI_EXIT_USAGE;
			goto out;
		}
	}
	if (dir == NULL) {
		tsi_cli_err(
		    "audit: --data-dir DIR (or --config FILE) is required");
		ret = TSI_EXIT_USAGE;
		goto out;
	}
	if (resolve_url(dir, path, sizeof(path)) != 0) {
		tsi_cli_err("audit: no audit log in '%s' (nor in '%s/audit')",
		    dir, dir);
		goto out;
	}
	if ((rc = tsi_audit_reader_open_url(path, r)) != TSI_OK) {
		tsi_cli_err("audit: cannot open the audit log at '%s': %s",
		    path, tsi_strerror(rc));
		goto out;
	}
	ret = TSI_EXIT_OK;
out:
	tsi_config_free(cfg);
	return ret;
}

static const char *
str_or(const json_t *j, const char *key, const char *def)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s != NULL ? s : def;
}

static const char *
claim(const json_t *rec, const char *key)
{
	return str_or(json_object_get(rec, "claims"), key, "");
}

/* One cell of `tsi audit stats`' CSV. */
static void
csv_field(const char *s, int last)
{
	const char *p;

	if (s == NULL)
		s = "";
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, stdout);
	} else {
		putchar('"');
		for (p = s; *p; p++) {
			if (*p == '"')
				putchar('"');
			putchar(*p);
		}
		putchar('"');
	}
	putchar(last ? '\n' : ',');
}

static void
print_csv(const json_t *rec)
{
	struct tsi_buf *b = tsi_buf_new(1u << 20);

	if (b != NULL && tsi_audit_csv_row(rec, b) == TSI_OK)
		fputs(tsi_buf_str(b), stdout);
	else
		fprintf(stderr,
		    "tsi: audit: record %lld does not fit a CSV row\n",
		    (long long)json_integer_value(json_object_get(rec, "seq")));
	tsi_buf_free(b);
}

static void
print_table_header(void)
{
	printf("%-8s %-27s %-7s %-8s %-6s %-14s %-10s %-14s %-12s %s\n", "SEQ",
	    "TIME", "OP", "DECISION", "STATUS", "RULE", "DC", "CLUSTER",
	    "NAMESPACE", "PATH");
}

static void
print_table(const json_t *rec)
{
	char st[16];

	if (json_is_integer(json_object_get(rec, "status")))
		snprintf(st, sizeof(st), "%lld",
		    (long long)json_integer_value(
		        json_object_get(rec, "status")));
	else
		snprintf(st, sizeof(st), "-");
	printf("%-8lld %-27s %-7s %-8s %-6s %-14s %-10s %-14s %-12s %s\n",
	    (long long)json_integer_value(json_object_get(rec, "seq")),
	    str_or(rec, "time", "-"), str_or(rec, "op", "-"),
	    str_or(rec, "decision", "-"), st, str_or(rec, "rule", "-"),
	    *claim(rec, "datacenter") ? claim(rec, "datacenter") : "-",
	    *claim(rec, "cluster-name") ? claim(rec, "cluster-name") : "-",
	    *claim(rec, "namespace") ? claim(rec, "namespace") : "-",
	    str_or(rec, "path", "-"));
}

/* As stored: the record's canonical bytes, which re-hash. */
static void
print_json(const json_t *rec)
{
	char *s = NULL;

	if (tsi_audit_record_text(rec, &s, NULL) == TSI_OK)
		puts(s);
	free(s);
}

/* Who received or was refused what: the identity of each record. */
static void
print_identity_header(void)
{
	printf("%-8s %-27s %-7s %-8s %-6s %-10s %-14s %-12s %-20s %-16s "
	       "%-12s %-10s %-14s %-16s %-24s %-40s %s\n",
	    "SEQ", "TIME", "OP", "DECISION", "STATUS", "DC", "CLUSTER",
	    "NAMESPACE", "POD", "SERVICE-ACCOUNT", "NODE", "REGION", "ROLE",
	    "DISPLAY-NAME", "SUB", "IMAGES", "PATH");
}

static const char *
dash(const char *s)
{
	return s != NULL && *s != '\0' ? s : "-";
}

static void
print_identity(const json_t *rec)
{
	const json_t *imgs =
	    json_object_get(json_object_get(rec, "claims"), "images");
	char st[16], joined[512];
	size_t i, off = 0;
	int n;

	joined[0] = '\0';
	for (i = 0; i < json_array_size(imgs); i++) {
		const char *s = json_string_value(json_array_get(imgs, i));

		if (s == NULL)
			continue;
		n = snprintf(joined + off, sizeof(joined) - off, "%s%s",
		    off ? "," : "", s);
		if (n < 0 || (size_t)n >= sizeof(joined) - off)
			break;
		off += (size_t)n;
	}
	if (json_is_integer(json_object_get(rec, "status")))
		snprintf(st, sizeof(st), "%lld",
		    (long long)json_integer_value(
		        json_object_get(rec, "status")));
	else
		snprintf(st, sizeof(st), "-");
	printf("%-8lld %-27s %-7s %-8s %-6s %-10s %-14s %-12s %-20s %-16s "
	       "%-12s %-10s %-14s %-16s %-24s %-40s %s\n",
	    (long long)json_integer_value(json_object_get(rec, "seq")),
	    str_or(rec, "time", "-"), str_or(rec, "op", "-"),
	    str_or(rec, "decision", "-"), st, dash(claim(rec, "datacenter")),
	    dash(claim(rec, "cluster-name")), dash(claim(rec, "namespace")),
	    dash(claim(rec, "pod")), dash(claim(rec, "service-account")),
	    dash(claim(rec, "node")), dash(claim(rec, "region")),
	    dash(str_or(rec, "role", "")),
	    dash(str_or(rec, "display_name", "")), dash(claim(rec, "sub")),
	    dash(joined), str_or(rec, "path", "-"));
}

struct list_ctx {
	enum fmt fmt;
	size_t n;
	int identity;
};

static int
list_cb(const json_t *rec, void *arg)
{
	struct list_ctx *c = arg;

	c->n++;
	switch (c->fmt) {
	case FMT_TABLE:
		if (c->identity)
			print_identity(rec);
		else
			print_table(rec);
		break;
	case FMT_JSON: print_json(rec); break;
	case FMT_CSV: print_csv(rec); break;
	}
	return ferror(stdout) ? 1 : 0;
}

static int
cmd_list(struct opts *o, struct tsi_audit_reader *r)
{
	struct list_ctx c = { o->fmt, 0, o->identity };
	uint64_t next = 0;
	int rc;

	if (o->nrest != 0) {
		tsi_cli_err("audit list: unexpected argument '%s'", o->rest[0]);
		return TSI_EXIT_USAGE;
	}
	o->q.limit = o->limit_set ? o->limit : 100;
	if (o->fmt == FMT_TABLE && o->identity)
		print_identity_header();
	else if (o->fmt == FMT_TABLE)
		print_table_header();
	else if (o->fmt == FMT_CSV)
		fputs(tsi_audit_csv_header(), stdout);
	if ((rc = tsi_audit_query(r, &o->q, list_cb, &c, &next)) != TSI_OK) {
		tsi_cli_err("audit list: %s", tsi_strerror(rc));
		return TSI_EXIT_FAIL;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		tsi_cli_err("audit list: writing the output failed");
		return TSI_EXIT_FAIL;
	}
	if (next != 0)
		fprintf(stderr,
		    "tsi: %zu records shown; more with --after %llu\n", c.n,
		    (unsigned long long)next);
	return TSI_EXIT_OK;
}

static int
cmd_show(struct opts *o, struct tsi_audit_reader *r)
{
	json_t *rec = NULL;
	const char *k;
	json_t *v;
	uint64_t seq;
	char *s;
	int rc;

	if (o->nrest != 1 || parse_u64(o->rest[0], &seq) != 0 || seq == 0) {
		tsi_cli_err("audit show: needs one sequence number (SEQ > 0)");
		return TSI_EXIT_USAGE;
	}
	if ((rc = tsi_audit_get(r, seq, &rec)) != TSI_OK) {
		tsi_cli_err("audit show: record %llu: %s",
		    (unsigned long long)seq, tsi_strerror(rc));
		return TSI_EXIT_FAIL;
	}
	if (o->fmt == FMT_CSV) {
		fputs(tsi_audit_csv_header(), stdout);
		print_csv(rec);
	} else if (o->fmt == FMT_TABLE && o->fmt_set) {
		json_object_foreach (rec, k, v) {
			s = json_is_string(v)
			    ? NULL
			    : json_dumps(v,
			          JSON_SORT_KEYS | JSON_COMPACT |
			              JSON_ENCODE_ANY);
			printf("%-12s %s\n", k, s ? s : json_string_value(v));
			free(s);
		}
	} else {
		s = json_dumps(rec, JSON_SORT_KEYS | JSON_INDENT(2));
		if (s != NULL)
			puts(s);
		free(s);
	}
	json_decref(rec);
	return TSI_EXIT_OK;
}

static int
cmd_verify(struct opts *o, struct tsi_audit_reader *r)
{
	struct tsi_audit_verify_result res;
	struct tsi_audit_info info;
	EVP_PKEY *pk = NULL;
	FILE *f;
	int rc;

	if (o->nrest != 0) {
		tsi_cli_err("audit verify: unexpected argument '%s'",
		    o->rest[0]);
		return TSI_EXIT_USAGE;
	}
	if (o->pubkey != NULL) {
		if ((f = fopen(o->pubkey, "r")) == NULL) {
			tsi_cli_err("audit verify: cannot read %s: %s",
			    o->pubkey, strerror(errno));
			return TSI_EXIT_USAGE;
		}
		pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
		fclose(f);
		if (pk == NULL) {
			tsi_cli_err("audit verify: %s holds no PEM public key",
			    o->pubkey);
			return TSI_EXIT_USAGE;
		}
	}
	rc = tsi_audit_verify_key(r, pk, &res);
	EVP_PKEY_free(pk);
	if (rc == TSI_ERR_DENIED) {
		printf("audit log BROKEN at seq %llu: %s\n",
		    (unsigned long long)res.first_bad_seq, res.reason);
		return TSI_EXIT_FAIL;
	}
	if (rc != TSI_OK) {
		tsi_cli_err("audit verify: %s", tsi_strerror(rc));
		return TSI_EXIT_FAIL;
	}
	if (tsi_audit_reader_info(r, &info) != TSI_OK)
		memset(&info, 0, sizeof(info));
	printf("audit log intact: %llu records",
	    (unsigned long long)res.records);
	if (res.records > 0)
		printf(", seq %llu..%llu", (unsigned long long)info.first_seq,
		    (unsigned long long)info.last_seq);
	if (info.first_seq > 1)
		printf(" (1..%llu pruned)",
		    (unsigned long long)info.first_seq - 1);
	if (info.signed_seq > 0)
		printf("; signed head at seq %llu (kid %s)",
		    (unsigned long long)info.signed_seq, info.signed_kid);
	printf("\n");
	return TSI_EXIT_OK;
}

/* stats: counts per value of a few dimensions. */
#define STAT_DIMS 5
static const char *const dim_names[STAT_DIMS] = {
	"decision",
	"rule",
	"cluster-name",
	"datacenter",
	"path",
};

struct stats {
	json_t *by[STAT_DIMS]; /* value -> count */
	uint64_t total;
	long long first_us, last_us;
};

static void
count(json_t *obj, const char *v)
{
	json_int_t n = json_integer_value(json_object_get(obj, v));

	json_object_set_new(obj, v, json_integer(n + 1));
}

static int
stats_cb(const json_t *rec, void *arg)
{
	struct stats *s = arg;
	long long t = json_integer_value(json_object_get(rec, "time_us"));

	if (s->total == 0)
		s->first_us = t;
	s->last_us = t;
	s->total++;
	count(s->by[0], str_or(rec, "decision", "-"));
	count(s->by[1], str_or(rec, "rule", "-"));
	count(s->by[2],
	    *claim(rec, "cluster-name") ? claim(rec, "cluster-name") : "-");
	count(s->by[3],
	    *claim(rec, "datacenter") ? claim(rec, "datacenter") : "-");
	count(s->by[4], str_or(rec, "path", "-"));
	return 0;
}

static int
cmp_count(const void *a, const void *b)
{
	const json_t *x = json_object_get(*(json_t *const *)a, "count");
	const json_t *y = json_object_get(*(json_t *const *)b, "count");

	return json_integer_value(y) > json_integer_value(x) ? 1
	    : json_integer_value(y) < json_integer_value(x)  ? -1
	                                                     : 0;
}

static void
fmt_time(long long us, char *out, size_t len)
{
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	if (strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		out[0] = '\0';
}

static int
cmd_stats(struct opts *o, struct tsi_audit_reader *r)
{
	struct stats s;
	json_t *out = NULL, *arr, *row, *v;
	const char *k;
	char t0[40] = "", t1[40] = "";
	size_t d, i;
	int rc, ret = TSI_EXIT_FAIL;

	if (o->nrest != 0) {
		tsi_cli_err("audit stats: unexpected argument '%s'",
		    o->rest[0]);
		return TSI_EXIT_USAGE;
	}
	memset(&s, 0, sizeof(s));
	for (d = 0; d < STAT_DIMS; d++)
		if ((s.by[d] = json_object()) == NULL)
			goto out;
	o->q.limit = SIZE_MAX;
	if ((rc = tsi_audit_query(r, &o->q, stats_cb, &s, NULL)) != TSI_OK) {
		tsi_cli_err("audit stats: %s", tsi_strerror(rc));
		goto out;
	}
	if ((out = json_object()) == NULL)
		goto out;
	json_object_set_new(out, "records", json_integer((json_int_t)s.total));
	if (s.total > 0) {
		json_object_set_new(out, "first_time_us",
		    json_integer(s.first_us));
		json_object_set_new(out, "last_time_us",
		    json_integer(s.last_us));
	}
	for (d = 0; d < STAT_DIMS; d++) {
		json_t **rows;
		size_t n = json_object_size(s.by[d]);

		arr = json_array();
		rows = calloc(n ? n : 1, sizeof(*rows));
		if (arr == NULL || rows == NULL) {
			free(rows);
			json_decref(arr);
			goto out;
		}
		i = 0;
		json_object_foreach (s.by[d], k, v)
			rows[i++] =
			    json_pack("{s:s,s:O}", "value", k, "count", v);
		qsort(rows, n, sizeof(*rows), cmp_count);
		for (i = 0; i < n; i++)
			json_array_append_new(arr, rows[i]);
		free(rows);
		json_object_set_new(out, dim_names[d], arr);
	}
	if (o->fmt == FMT_JSON) {
		print_json(out);
	} else if (o->fmt == FMT_CSV) {
		printf("dimension,value,count\n");
		csv_field("total", 0);
		csv_field("", 0);
		printf("%llu\n", (unsigned long long)s.total);
		for (d = 0; d < STAT_DIMS; d++)
			json_array_foreach (json_object_get(out, dim_names[d]),
			    i, row) {
				csv_field(dim_names[d], 0);
				csv_field(json_string_value(
				              json_object_get(row, "value")),
				    0);
				printf("%lld\n",
				    (long long)json_integer_value(
				        json_object_get(row, "count")));
			}
	} else {
		printf("records: %llu\n", (unsigned long long)s.total);
		if (s.total > 0) {
			fmt_time(s.first_us, t0, sizeof(t0));
			fmt_time(s.last_us, t1, sizeof(t1));
			printf("from %s to %s\n", t0, t1);
		}
		for (d = 0; d < STAT_DIMS; d++) {
			printf("\nby %s:\n", dim_names[d]);
			json_array_foreach (json_object_get(out, dim_names[d]),
			    i, row)
				printf("  %10lld  %s\n",
				    (long long)json_integer_value(
				        json_object_get(row, "count")),
				    json_string_value(
				        json_object_get(row, "value")));
		}
	}
	ret = fflush(stdout) == 0 ? TSI_EXIT_OK : TSI_EXIT_FAIL;
out:
	for (d = 0; d < STAT_DIMS; d++)
		json_decref(s.by[d]);
	json_decref(out);
	return ret;
}

static int
audit_main(int argc, char **argv)
{
	struct tsi_audit_reader *r = NULL;
	struct opts o;
	const char *cmd;
	int rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		audit_usage();
		return argc < 2 ? TSI_EXIT_USAGE : TSI_EXIT_OK;
	}
	cmd = argv[1];
	if (strcmp(cmd, "list") != 0 && strcmp(cmd, "show") != 0 &&
	    strcmp(cmd, "verify") != 0 && strcmp(cmd, "stats") != 0) {
		tsi_cli_err("audit: unknown command '%s' (list, show, verify, "
		            "stats)",
		    cmd);
		return TSI_EXIT_USAGE;
	}
	memset(&o, 0, sizeof(o));
	if ((rc = parse_args(argc - 1, argv + 1, &o, 0)) != 0)
		return rc < 0 ? TSI_EXIT_OK : rc;
	if (strcmp(cmd, "show") == 0 && !o.fmt_set)
		o.fmt = FMT_JSON;
	if ((rc = open_reader(&o, &r)) != TSI_EXIT_OK)
		return rc;
	if (strcmp(cmd, "list") == 0)
		rc = cmd_list(&o, r);
	else if (strcmp(cmd, "show") == 0)
		rc = cmd_show(&o, r);
	else if (strcmp(cmd, "verify") == 0)
		rc = cmd_verify(&o, r);
	else
		rc = cmd_stats(&o, r);
	tsi_audit_reader_close(r);
	return rc;
}

static const struct tsi_cli_group audit_group = {
	"audit",
	"read, filter and verify the audit log (list, show, verify, stats)",
	audit_main,
	audit_usage,
};
TSI_CLI_GROUP(audit_group)
