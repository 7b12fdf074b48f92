/*
 * parse.c - the parsers of untrusted request bytes, kept free of server
 * state so the fuzz targets (tests/fuzz/fuzz_vault_*.c) run the same code:
 * percent-decoding of the URL and query, KV path syntax, the login body and
 * the KV write body.
 */
#include "parse.h"
#include "store.h"

#include "tsi/err.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

int
vault_pct_decode(const char *s, size_t max, char **out)
{
	size_t n = strlen(s), i, o = 0;
	char *d;

	if (n > max)
		return TSI_ERR_TOO_LARGE;
	if ((d = malloc(n + 1)) == NULL)
		return TSI_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi, lo;
			if (n - i < 3 ||
			    (hi = OPENSSL_hexchar2int(
			         (unsigned char)s[i + 1])) < 0 ||
			    (lo = OPENSSL_hexchar2int(
			         (unsigned char)s[i + 2])) < 0)
				goto bad;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			goto bad;
		d[o++] = (char)c;
	}
	d[o] = '\0';
	*out = d;
	return TSI_OK;
bad:
	free(d);
	return TSI_ERR_PARSE;
}

int
vault_parse_bool(const char *s, int *out)
{
	/* Go's strconv.ParseBool, which Vault applies to ?list= and to
	 * sys/health's flags: these spellings and no others. */
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true",
		"True" };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false",
		"False" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = 1;
			return TSI_OK;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = 0;
			return TSI_OK;
		}
	}
	return TSI_ERR_PARSE;
}

int
vault_kv_path_valid(const char *p, int dir_ok)
{
	const char *seg = p, *s;
	size_t n = strlen(p);
	json_t *utf8;

	if (n > KV_PATH_MAX)
		return 0;
	if (n == 0)
		return dir_ok;
	if ((utf8 = json_string(p)) == NULL)
		return 0;
	json_decref(utf8);
	for (s = p;; s++) {
		if (*s == '/' || *s == '\0') {
			size_t len = (size_t)(s - seg);
			if (len == 0 && !(*s == '\0' && dir_ok && s != p))
				return 0;
			if ((len == 1 && seg[0] == '.') ||
			    (len == 2 && seg[0] == '.' && seg[1] == '.'))
				return 0;
			if (*s == '\0')
				break;
			seg = s + 1;
		}
	}
	return 1;
}

int
vault_login_parse(const char *body, size_t len, json_t **req, const char **role,
    const char **jwt)
{
	json_error_t jerr;
	json_t *j;

	*req = NULL;
	*role = *jwt = NULL;
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL || !json_is_object(j) ||
	    !json_is_string(json_object_get(j, "role")) ||
	    !json_is_string(json_object_get(j, "jwt"))) {
		json_decref(j);
		return TSI_ERR_PARSE;
	}
	*req = j;
	*role = json_string_value(json_object_get(j, "role"));
	*jwt = json_string_value(json_object_get(j, "jwt"));
	return TSI_OK;
}

int
vault_kv_write_parse(const char *body, size_t len, json_t **req, json_t **data,
    long long *cas)
{
	json_error_t jerr;
	json_t *j, *d, *opts, *c;

	*req = *data = NULL;
	*cas = -1;
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	d = json_object_get(j, "data");
	opts = json_object_get(j, "options");
	c = json_object_get(opts, "cas");
	if (j == NULL || !json_is_object(j) || !json_is_object(d) ||
	    (opts != NULL && !json_is_object(opts) && !json_is_null(opts)) ||
	    (c != NULL && (!json_is_integer(c) || json_integer_value(c) < 0))) {
		json_decref(j);
		return TSI_ERR_PARSE;
	}
	if (c != NULL)
		*cas = json_integer_value(c);
	*req = j;
	*data = d;
	return TSI_OK;
}
