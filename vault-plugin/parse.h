/*
 * parse.h - parsers of request bytes (parse.c), each with a fuzz target.
 */
#ifndef TSI_VAULT_PARSE_H
#define TSI_VAULT_PARSE_H

#include <jansson.h>
#include <stddef.h>

/* Percent-decodes s once (strict: %XX hex only; %00 and control bytes
 * refused). *out: free(). TSI_ERR_PARSE on bad input. */
int vault_pct_decode(const char *s, size_t max, char **out);
/* parse.c: KV path syntax: segments separated by single '/', none empty,
 * "." or "..", at most KV_PATH_MAX bytes, valid UTF-8. dir_ok: "" and a
 * trailing '/' are allowed (listing). Returns 1 when valid. */
int vault_kv_path_valid(const char *p, int dir_ok);
/* Go's strconv.ParseBool (s borrowed): TSI_OK and *out 0 or 1, or
 * TSI_ERR_PARSE for any other spelling. */
int vault_parse_bool(const char *s, int *out);
/* parse.c: {"role": S, "jwt": S} (duplicate keys refused). On TSI_OK *req
 * is owned by the caller (json_decref) and role/jwt point into it. */
int vault_login_parse(const char *body, size_t len, json_t **req,
    const char **role, const char **jwt);
/* parse.c: {"data": {...}, "options": {"cas": N>=0}?}. On TSI_OK *req is
 * the caller's (json_decref), *data borrowed from it, *cas -1 when absent. */
int vault_kv_write_parse(const char *body, size_t len, json_t **req,
    json_t **data, long long *cas);

#endif /* TSI_VAULT_PARSE_H */
