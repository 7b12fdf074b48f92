/*
 * login_wire.h - the login's request body and answer text without a JSON
 * tree (login_wire.c). Internal to tsi-vault.
 *
 * Both exist because jansson costs about 140 instructions a byte to read a
 * string and a callback per token to write one, and a login carries a
 * 2.5 KB JWT in and a claims map out. Each is exact, not approximate:
 * the scanner accepts only bodies jansson would read to the same two
 * strings (anything else goes to vault_login_parse, unchanged), and the
 * answer is byte for byte what json_dumps(JSON_COMPACT) made of the same
 * values (tests/unit/login/test_login_wire.c checks both).
 */
#ifndef VAULT_LOGIN_WIRE_H
#define VAULT_LOGIN_WIRE_H

#include <stddef.h>

#include <jansson.h>

/* The two members of a login body, borrowed from the body text. */
struct vault_login_body {
	const char *role, *jwt; /* not NUL-terminated */
	size_t rolelen, jwtlen;
};

/*
 * Reads body[0..len) when it is exactly an object of the two members
 * "role" and "jwt" (either order, JSON whitespace anywhere, nothing after
 * it), both strings of printable ASCII without '"' or '\'. TSI_OK and *out
 * set (pointing into body) then; TSI_ERR_PARSE for anything else, which
 * the caller hands to vault_login_parse (the general parser decides).
 */
int vault_login_body_scan(const char *body, size_t len,
    struct vault_login_body *out);

/* What a successful login answers with; all borrowed for the call. */
struct vault_login_answer {
	const char *request_id;
	const char *token; /* the client token: the answer is secret */
	const char *accessor;
	const char *const *rules; /* the role's rule names */
	size_t nrules;
	const json_t *claims; /* verified claims, shown as metadata */
	long ttl;
};

/*
 * The answer text: Vault's envelope with the auth object, the bytes
 * json_dumps(JSON_COMPACT) writes for
 *   {request_id, lease_id "", renewable false, lease_duration 0, data null,
 *    auth {client_token, accessor, policies, token_policies, metadata,
 *    lease_duration ttl, renewable false, entity_id "", token_type
 *    "service", mfa_requirement null, orphan true}, wrap_info null,
 *    warnings null, mount_type ""}
 * where metadata holds each claim as a string (integers %lld, reals %g,
 * booleans "true"/"false", arrays of strings joined with "," up to 64 KiB;
 * other values left out). Returns a malloc'd string (caller tsi_strfree: it
 * holds the token) or NULL when out of memory or a string cannot be
 * encoded.
 */
char *vault_login_answer_text(const struct vault_login_answer *a);

#endif /* VAULT_LOGIN_WIRE_H */
