/*
 * audit_format.c - what `tsi audit` and GET /v1/sys/audit/releases share
 * about the log's text forms: the time a filter accepts and the CSV row.
 * One copy, so that the CLI and the HTTP endpoint never disagree on what
 * "7d" means or which column holds the datacenter.
 */
#include "tsi/audit.h"
#include "tsi/buf.h"
#include "tsi/err.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
tsi_audit_parse_time(const char *s, long long now_us, long long *us)
{
	struct tm tm;
	const char *p;
	char *end;
	long long v, frac = 0, scale = 100000, off = 0;
	time_t secs;

	if (s == NULL || us == NULL || *s == '\0')
		return TSI_ERR_PARSE;
	if (strspn(s, "0123456789") == strlen(s)) {
		/* unix seconds */
		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno != 0 || v > 253402300799LL)
			return TSI_ERR_PARSE;
		*us = v * 1000000LL;
		return TSI_OK;
	}
	if (s[0] >= '0' && s[0] <= '9') {
		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno == 0 && end != s && end[0] != '\0' &&
		    end[1] == '\0' && strchr("smhdw", end[0]) != NULL) {
			long long mult = end[0] == 's' ? 1
			    : end[0] == 'm'            ? 60
			    : end[0] == 'h'            ? 3600
			    : end[0] == 'd'            ? 86400
			                               : 604800;

			if (v > LLONG_MAX / 1000000 / mult ||
			    v * mult * 1000000 >= now_us)
				return TSI_ERR_PARSE;
			*us = now_us - v * mult * 1000000LL;
			return TSI_OK;
		}
	}
	if (strcmp(s, "now") == 0) {
		*us = now_us;
		return TSI_OK;
	}
	memset(&tm, 0, sizeof(tm));
	if ((p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return TSI_ERR_PARSE;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (scale > 0)
				frac += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
	    p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9' &&
	    p[4] >= '0' && p[4] <= '9' && p[5] >= '0' && p[5] <= '9') {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
		    ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '-')
			off = -off;
		p += 6;
	} else {
		return TSI_ERR_PARSE;
	}
	if (*p != '\0')
		return TSI_ERR_PARSE;
	if ((secs = timegm(&tm)) == (time_t)-1)
		return TSI_ERR_PARSE;
	*us = ((long long)secs - off) * 1000000LL + frac;
	return *us >= 0 ? TSI_OK : TSI_ERR_PARSE;
}

const char *
tsi_audit_csv_header(void)
{
	return "seq,time,op,path,version,decision,rule,reason,status,accessor,"
	       "remote,request_id,cluster_name,datacenter,namespace,images,"
	       "hash,"
	       "sub,pod,service_account,node,region,role,display_name\n";
}

static int
csv_field(struct tsi_buf *b, const char *s, int last)
{
	const char *p;
	int rc = TSI_OK;

	if (s == NULL)
		s = "";
	if (strpbrk(s, ",\"\r\n") == NULL) {
		rc = tsi_buf_puts(b, s);
	} else {
		rc = tsi_buf_put(b, "\"", 1);
		for (p = s; rc == TSI_OK && *p != '\0'; p++) {
			if (*p == '"')
				rc = tsi_buf_put(b, "\"", 1);
			if (rc == TSI_OK)
				rc = tsi_buf_put(b, p, 1);
		}
		if (rc == TSI_OK)
			rc = tsi_buf_put(b, "\"", 1);
	}
	if (rc == TSI_OK)
		rc = tsi_buf_put(b, last ? "\n" : ",", 1);
	return rc;
}

static int
csv_int(struct tsi_buf *b, const json_t *v)
{
	char n[32];

	n[0] = '\0';
	if (json_is_integer(v))
		snprintf(n, sizeof(n), "%lld",
		    (long long)json_integer_value(v));
	return csv_field(b, n, 0);
}

static const char *
str_of(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s != NULL ? s : "";
}

/* A claim that is a string, or an array of strings joined by spaces
 * (images). */
static int
csv_claim(struct tsi_buf *b, const json_t *claims, const char *key, int last)
{
	const json_t *v = json_object_get(claims, key);
	struct tsi_buf *j = NULL;
	size_t i;
	int rc = TSI_ERR_ALLOC;

	if (!json_is_array(v))
		return csv_field(b, json_string_value(v), last);
	if ((j = tsi_buf_new(8192)) == NULL)
		goto out;
	for (i = 0; i < json_array_size(v); i++) {
		const char *s = json_string_value(json_array_get(v, i));

		if (s == NULL)
			continue;
		if (tsi_buf_len(j) > 0 && tsi_buf_put(j, " ", 1) != TSI_OK)
			break;
		if (tsi_buf_puts(j, s) != TSI_OK)
			break; /* bounded: the cell ends where room did */
	}
	rc = csv_field(b, tsi_buf_len(j) > 0 ? tsi_buf_str(j) : "", last);
out:
	tsi_buf_free(j);
	return rc;
}

int
tsi_audit_csv_row(const json_t *rec, struct tsi_buf *out)
{
	const json_t *claims = json_object_get(rec, "claims");
	int rc = TSI_OK;

	if (rec == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
#define F(expr) \
	do { \
		if (rc == TSI_OK) \
			rc = (expr); \
	} while (0)
	F(csv_int(out, json_object_get(rec, "seq")));
	F(csv_field(out, str_of(rec, "time"), 0));
	F(csv_field(out, str_of(rec, "op"), 0));
	F(csv_field(out, str_of(rec, "path"), 0));
	F(csv_int(out, json_object_get(rec, "version")));
	F(csv_field(out, str_of(rec, "decision"), 0));
	F(csv_field(out, str_of(rec, "rule"), 0));
	F(csv_field(out, str_of(rec, "reason"), 0));
	F(csv_int(out, json_object_get(rec, "status")));
	F(csv_field(out, str_of(rec, "accessor"), 0));
	F(csv_field(out, str_of(rec, "remote"), 0));
	F(csv_field(out, str_of(rec, "request_id"), 0));
	F(csv_claim(out, claims, "cluster-name", 0));
	F(csv_claim(out, claims, "datacenter", 0));
	F(csv_claim(out, claims, "namespace", 0));
	F(csv_claim(out, claims, "images", 0));
	F(csv_field(out, str_of(rec, "hash"), 0));
	F(csv_claim(out, claims, "sub", 0));
	F(csv_claim(out, claims, "pod", 0));
	F(csv_claim(out, claims, "service-account", 0));
	F(csv_claim(out, claims, "node", 0));
	F(csv_claim(out, claims, "region", 0));
	F(csv_field(out, str_of(rec, "role"), 0));
	F(csv_field(out, str_of(rec, "display_name"), 1));
#undef F
	return rc;
}
