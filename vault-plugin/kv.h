/*
 * kv.h - what the KV v2 handlers (kv.c) offer others: their body
 * parsers (fuzzed) and the read answer.
 */
#ifndef TSI_VAULT_KV_H
#define TSI_VAULT_KV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* kv.c: {"versions":[N,...]} of secret/delete|undelete|destroy (integers
 * or strings of digits, 1 to 1000 of them). *v: malloc'd, caller frees.
 * TSI_ERR_PARSE otherwise (*v NULL). */
int vault_kv_versions_parse(const char *body, size_t len, uint64_t **v,
    size_t *n);
/* kv.c: the body of POST (patch 0) or PATCH (patch 1) secret/metadata/P:
 * max_versions, cas_required, delete_version_after (Go's duration of
 * h/m/s, or seconds), custom_metadata (Vault's bounds). *req: the parsed
 * body, caller json_decref; *c: its own copies, caller kv_meta_cfg_clear.
 * TSI_ERR_PARSE with *msg the 400's message (static), *req NULL and *c
 * cleared. */
int vault_kv_meta_parse(const char *body, size_t len, int patch, json_t **req,
    struct kv_meta_cfg *c, const char **msg);
/* ---- what handlers share (the handlers themselves: routes.h) ---- */
/* kv.c: the answer to a read of version m, with pt (the stored value's
 * JSON text, ptlen bytes; NULL: "data": null) spliced in as it is: byte for
 * byte what vault_respond(vault_envelope({"data": value, "metadata": ...}))
 * gives. *out: NUL-terminated, holds the secret; caller frees with
 * tsi_strfree (or hands it to vault_respond_text). */
int vault_kv_read_answer(const char *request_id, const char *pt, size_t ptlen,
    const struct kv_version_meta *m, const char *custom, char **out);

#endif /* TSI_VAULT_KV_H */
