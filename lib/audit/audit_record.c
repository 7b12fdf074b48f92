/* audit_record.c - record encoding: secret stripping, canonical JSON, chain hash. */
#include "audit_canon.h"
#include "audit_int.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Keys whose values are secrets or bearer credentials: never stored. */
static const char *const secret_keys[] = {
	"token",
	"jwt",
	"client_token",
	"data",
	"value",
	"password",
	"secret",
	"secret_id",
	"authorization",
	"x-vault-token",
	"id_token",
	"access_token",
	"refresh_token",
	"private_key",
};

/* Fields only the writer sets. */
static const char *const writer_keys[] = {
	"format",
	"seq",
	"time",
	"time_us",
	"prev",
	"hash",
};

static int
is_secret_key(const char *k)
{
	size_t i;

	for (i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++)
		if (strcasecmp(k, secret_keys[i]) == 0)
			return 1;
	return 0;
}

/* A compact JWS (header.payload.signature, JSON header "eyJ...") in a field
 * whose name did not give it away. */
static int
looks_like_jwt(const char *s)
{
	const char *d1, *d2;

	if (strncmp(s, "eyJ", 3) != 0)
		return 0;
	if ((d1 = strchr(s, '.')) == NULL || (d2 = strchr(d1 + 1, '.')) == NULL)
		return 0;
	return d2 - d1 > 8 &&
	    strspn(s,
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
	        "klmnopqrstuvwxyz0123456789-_.=") == strlen(s);
}

static void
strip_secrets(json_t *j, int depth)
{
	const char *k;
	json_t *v;
	void *it, *next;
	size_t i;

	if (depth > 32)
		return;
	if (json_is_object(j)) {
		for (it = json_object_iter(j); it != NULL; it = next) {
			next = json_object_iter_next(j, it);
			k = json_object_iter_key(it);
			v = json_object_iter_value(it);
			if (is_secret_key(k) ||
			    (json_is_string(v) &&
			        looks_like_jwt(json_string_value(v)))) {
				tsi_log(TSI_LOG_WARN, "audit.field_stripped",
				    TSI_LS("field", k));
				json_object_del(j, k);
				continue;
			}
			strip_secrets(v, depth + 1);
		}
	} else if (json_is_array(j)) {
		for (i = 0; i < json_array_size(j);) {
			v = json_array_get(j, i);
			if (json_is_string(v) &&
			    looks_like_jwt(json_string_value(v))) {
				tsi_log(TSI_LOG_WARN, "audit.field_stripped",
				    TSI_LS("field", "[array element]"));
				json_array_remove(j, i);
				continue;
			}
			strip_secrets(v, depth + 1);
			i++;
		}
	}
}

/* 1 when strip_secrets would change j, or json_deep_copy would (it cuts
 * a key at an embedded NUL). */
static int
needs_strip(const json_t *j, int depth)
{
	const char *k;
	json_t *v;
	size_t i, kl;

	if (depth > 32)
		return 0;
	if (json_is_object(j)) {
		json_object_keylen_foreach((json_t *)j, k, kl, v)
		{
			if (strlen(k) != kl || is_secret_key(k) ||
			    (json_is_string(v) &&
			        looks_like_jwt(json_string_value(v))) ||
			    needs_strip(v, depth + 1))
				return 1;
		}
	} else if (json_is_array(j)) {
		json_array_foreach (j, i, v) {
			if ((json_is_string(v) &&
			        looks_like_jwt(json_string_value(v))) ||
			    needs_strip(v, depth + 1))
				return 1;
		}
	}
	return 0;
}

static int
check_record(const json_t *rec)
{
	json_t *v;
	const char *d;

	if (!json_is_object(rec))
		return TSI_ERR_INVALID_ARG;
	v = json_object_get(rec, "op");
	if (!json_is_string(v) || json_string_length(v) == 0)
		return TSI_ERR_INVALID_ARG;
	v = json_object_get(rec, "decision");
	d = json_string_value(v);
	if (d == NULL ||
	    (strcmp(d, "allow") != 0 && strcmp(d, "deny") != 0 &&
	        strcmp(d, "error") != 0))
		return TSI_ERR_INVALID_ARG;
	v = json_object_get(rec, "path");
	if (v != NULL && !json_is_string(v) && !json_is_null(v))
		return TSI_ERR_INVALID_ARG;
	v = json_object_get(rec, "claims");
	if (v != NULL && !json_is_object(v) && !json_is_null(v))
		return TSI_ERR_INVALID_ARG;
	return TSI_OK;
}

json_t *
audit_record_prepare(const json_t *rec, int *err)
{
	json_t *c = NULL;
	size_t i;

	if ((*err = check_record(rec)) != TSI_OK)
		return NULL;
	if ((c = json_deep_copy(rec)) == NULL) {
		*err = TSI_ERR_ALLOC;
		return NULL;
	}
	for (i = 0; i < sizeof(writer_keys) / sizeof(writer_keys[0]); i++)
		json_object_del(c, writer_keys[i]);
	strip_secrets(c, 0);
	*err = TSI_OK;
	return c;
}

const json_t *
audit_record_view(const json_t *rec, json_t **copy, int *err)
{
	size_t i;

	*copy = NULL;
	if ((*err = check_record(rec)) != TSI_OK)
		return NULL;
	for (i = 0; i < sizeof(writer_keys) / sizeof(writer_keys[0]); i++)
		if (json_object_get(rec, writer_keys[i]) != NULL)
			break;
	if (i == sizeof(writer_keys) / sizeof(writer_keys[0]) &&
	    !needs_strip(rec, 0))
		return rec; /* the usual case: nothing to drop, no copy */
	if ((*copy = audit_record_prepare(rec, err)) == NULL)
		return NULL;
	return *copy;
}

void
audit_hex(const uint8_t *in, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
audit_unhex(const char *in, uint8_t *out, size_t n)
{
	size_t i;
	int hi, lo;

	if (in == NULL || strlen(in) != 2 * n)
		return TSI_ERR_PARSE;
	for (i = 0; i < n; i++) {
		if ((hi = hexval(in[2 * i])) < 0 ||
		    (lo = hexval(in[2 * i + 1])) < 0)
			return TSI_ERR_PARSE;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return TSI_OK;
}

long long
audit_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* The formatted second of the last call, per thread: the committer stamps
 * thousands of records in the same second, and gmtime_r + strftime +
 * snprintf cost more than the rest of the splice. */
static __thread long long fmt_secs = -1;
static __thread char fmt_day[32];
static __thread size_t fmt_day_len;

void
audit_format_time(long long time_us, char *out, size_t out_len)
{
	time_t secs = (time_t)(time_us / 1000000);
	long long us = time_us % 1000000;
	struct tm tm;
	char day[32];
	size_t n;
	int i;

	if (time_us >= 0 && (long long)secs == fmt_secs &&
	    out_len >= fmt_day_len + 9) {
		/* the same bytes as the snprintf below */
		memcpy(out, fmt_day, fmt_day_len);
		n = fmt_day_len;
		out[n] = '.';
		for (i = 6; i >= 1; i--) {
			out[n + (size_t)i] = (char)('0' + us % 10);
			us /= 10;
		}
		out[n + 7] = 'Z';
		out[n + 8] = '\0';
		return;
	}
	gmtime_r(&secs, &tm);
	if (strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		day[0] = '\0';
	if (snprintf(out, out_len, "%s.%06lldZ", day, us) < 0)
		out[0] = '\0';
	if (time_us >= 0 && day[0] != '\0') {
		fmt_day_len = strlen(day);
		memcpy(fmt_day, day, fmt_day_len + 1);
		fmt_secs = (long long)secs;
	}
}

/* SHA-256 fetched once: an implicit fetch (EVP_sha256()) per record cost
 * the committer more than the hashing itself. Kept for the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int
audit_chain_hash(const uint8_t prev[AUDIT_HASH_LEN], const char *body,
    size_t len, uint8_t hash[AUDIT_HASH_LEN])
{
	EVP_MD_CTX *md;
	unsigned int hl = 0;
	int ok;

	pthread_once(&sha256_once, sha256_fetch);
	if ((md = EVP_MD_CTX_new()) == NULL)
		return TSI_ERR_ALLOC;
	ok = EVP_DigestInit_ex(md, sha256_md != NULL ? sha256_md : EVP_sha256(),
	         NULL) == 1 &&
	    EVP_DigestUpdate(md, prev, AUDIT_HASH_LEN) == 1 &&
	    EVP_DigestUpdate(md, body, len) == 1 &&
	    EVP_DigestFinal_ex(md, hash, &hl) == 1 && hl == AUDIT_HASH_LEN;
	EVP_MD_CTX_free(md);
	if (!ok) {
		tsi_log_openssl(TSI_LOG_ERROR, "audit.hash");
		return TSI_ERR_CRYPTO;
	}
	return TSI_OK;
}

int
audit_record_format(const json_t *rec)
{
	const json_t *f = json_object_get(rec, "format");

	if (f == NULL)
		return AUDIT_FORMAT_V1; /* written before the field existed */
	if (json_is_integer(f) && json_integer_value(f) == AUDIT_FORMAT_V2)
		return AUDIT_FORMAT_V2;
	return -1;
}

int
tsi_audit_record_text(const json_t *rec, char **out, size_t *len)
{
	int fmt, r;

	*out = NULL;
	if ((fmt = audit_record_format(rec)) < 0)
		return TSI_ERR_PARSE;
	if ((*out = audit_canon_dumps(rec, fmt, AUDIT_RECORD_MAX, len, &r)) ==
	    NULL)
		return r;
	return TSI_OK;
}

int
audit_record_hash(const json_t *rec, const uint8_t prev[AUDIT_HASH_LEN],
    uint8_t hash[AUDIT_HASH_LEN])
{
	json_t *c;
	char *body = NULL;
	size_t len = 0;
	int r, fmt;

	if ((fmt = audit_record_format(rec)) < 0)
		return TSI_ERR_PARSE;
	if ((c = json_copy((json_t *)rec)) == NULL)
		return TSI_ERR_ALLOC;
	json_object_del(c, "hash");
	body = audit_canon_dumps(c, fmt, AUDIT_RECORD_MAX, &len, &r);
	json_decref(c);
	if (body == NULL)
		return r;
	r = audit_chain_hash(prev, body, len, hash);
	free(body);
	return r;
}

int
audit_record_seal(json_t *rec, uint64_t seq, long long time_us,
    const uint8_t prev[AUDIT_HASH_LEN], uint8_t hash[AUDIT_HASH_LEN],
    char **out, size_t *out_len)
{
	char ts[40], prevhex[2 * AUDIT_HASH_LEN + 1],
	    hashhex[2 * AUDIT_HASH_LEN + 1];
	char *body = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	audit_format_time(time_us, ts, sizeof(ts));
	audit_hex(prev, AUDIT_HASH_LEN, prevhex);
	json_object_del(rec, "hash");
	if (json_object_set_new(rec, "format", json_integer(AUDIT_FORMAT)) !=
	        0 ||
	    json_object_set_new(rec, "seq", json_integer((json_int_t)seq)) !=
	        0 ||
	    json_object_set_new(rec, "time", json_string(ts)) != 0 ||
	    json_object_set_new(rec, "time_us", json_integer(time_us)) != 0 ||
	    json_object_set_new(rec, "prev", json_string(prevhex)) != 0)
		return TSI_ERR_ALLOC;
	if ((body = audit_canon_dumps(rec, AUDIT_FORMAT, AUDIT_RECORD_MAX, &len,
	         &r)) == NULL)
		return r;
	r = audit_chain_hash(prev, body, len, hash);
	free(body);
	if (r != TSI_OK)
		return r;
	audit_hex(hash, AUDIT_HASH_LEN, hashhex);
	if (json_object_set_new(rec, "hash", json_string(hashhex)) != 0)
		return TSI_ERR_ALLOC;
	if ((body = audit_canon_dumps(rec, AUDIT_FORMAT, AUDIT_RECORD_MAX, &len,
	         &r)) == NULL)
		return r;
	*out_len = len;
	*out = body;
	return TSI_OK;
}

int
audit_record_load(const MDB_val *v, json_t **rec)
{
	json_error_t jerr;

	/* JSON_ALLOW_NUL: both formats write a NUL inside a string as
	 * \u0000 */
	*rec = json_loadb(v->mv_data, v->mv_size,
	    JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (*rec == NULL || !json_is_object(*rec)) {
		json_decref(*rec);
		*rec = NULL;
		return TSI_ERR_PARSE;
	}
	return TSI_OK;
}
