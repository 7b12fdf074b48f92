/*
 * podlist.c - the kubelet's pod list read as it arrives (resolve.h,
 * tsi_podlist_*).
 *
 * A pod list is {"kind", "apiVersion", "metadata", "items": [pod, ...]};
 * what makes it large is inside the pods (annotations, managedFields, env),
 * and the issuer reads a few fields of each. So only the top level is
 * scanned here: each pod (and each other top-level value) is framed by
 * counting brackets outside strings, then parsed and checked by jansson on
 * its own (the same parser, the same duplicate-key refusal, as for the
 * whole text), and only the fields the lookup reads are kept. Memory is
 * one pod's text plus the kept fields, whatever the size of the list.
 */
#include "issuer/resolve.h"

#include "tsi/buf.h"
#include "tsi/err.h"

#include <stdlib.h>
#include <string.h>

enum st {
	S_START,
	S_OBJ_FIRST,
	S_OBJ_NEXT,
	S_KEY,
	S_COLON,
	S_VALUE,
	S_AFTER_MEMBER,
	S_ITEMS_OPEN,
	S_ITEMS_FIRST,
	S_ITEM_NEXT,
	S_AFTER_ITEM,
	S_END
};

/* Deeper than any Kubernetes object; jansson's own limit is 2048. */
#define PODLIST_MAX_DEPTH 512
#define PODLIST_KEY_MAX 256

struct tsi_podlist_parser {
	enum st st;
	int in_item; /* the value framed is an item of "items" */
	/* framing of the current value */
	int framing, depth, in_str, esc, scalar;
	struct tsi_buf *val;
	struct tsi_buf *key;
	int key_esc;
	json_t *seen;  /* top-level keys seen */
	json_t *items; /* the kept fields of each pod */
	int have_items;
	size_t total;
	int err;
};

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Copies the member key of from into to when it is a string. */
static int
keep_str(json_t *to, const json_t *from, const char *key)
{
	json_t *v = json_object_get(from, key);

	if (!json_is_string(v))
		return 0;
	return json_object_set(to, key, v);
}

/* [{name, image}] or the statuses' fields, from an array of objects. */
static int
keep_list(json_t *to, const json_t *from, const char *key, int status)
{
	const json_t *arr = json_object_get(from, key), *e;
	json_t *out, *o;
	size_t i;

	if (!json_is_array(arr))
		return 0;
	if ((out = json_array()) == NULL ||
	    json_object_set_new(to, key, out) != 0)
		return -1;
	json_array_foreach (arr, i, e) {
		if (!json_is_object(e))
			continue; /* the lookup reads nothing from it */
		if ((o = json_object()) == NULL ||
		    json_array_append_new(out, o))
			return -1;
		if (keep_str(o, e, "name") ||
		    (status ? keep_str(o, e, "containerID") ||
		                keep_str(o, e, "imageID")
		            : keep_str(o, e, "image")))
			return -1;
		if (status &&
		    json_object_get(json_object_get(e, "state"), "running") !=
		        NULL &&
		    json_object_set_new(o, "state",
		        json_pack("{s:{}}", "running")) != 0)
			return -1;
	}
	return 0;
}

json_t *
tsi_podlist_prune_pod(const json_t *pod)
{
	static const char *const specs[] = { "initContainers", "containers",
		"ephemeralContainers", NULL };
	static const char *const stats[] = { "initContainerStatuses",
		"containerStatuses", "ephemeralContainerStatuses", NULL };
	const json_t *meta = json_object_get(pod, "metadata");
	const json_t *spec = json_object_get(pod, "spec");
	const json_t *status = json_object_get(pod, "status");
	json_t *p = json_object(), *m = NULL, *s = NULL, *t = NULL;
	size_t i;

	if (p == NULL)
		return NULL;
	if (json_is_object(meta)) {
		if ((m = json_object()) == NULL ||
		    json_object_set_new(p, "metadata", m) != 0 ||
		    keep_str(m, meta, "name") || keep_str(m, meta, "namespace"))
			goto fail;
	}
	if (json_is_object(spec)) {
		if ((s = json_object()) == NULL ||
		    json_object_set_new(p, "spec", s) != 0 ||
		    keep_str(s, spec, "serviceAccountName") ||
		    keep_str(s, spec, "serviceAccount") ||
		    keep_str(s, spec, "nodeName"))
			goto fail;
		for (i = 0; specs[i] != NULL; i++)
			if (keep_list(s, spec, specs[i], 0) != 0)
				goto fail;
	}
	if (json_is_object(status)) {
		if ((t = json_object()) == NULL ||
		    json_object_set_new(p, "status", t) != 0)
			goto fail;
		for (i = 0; stats[i] != NULL; i++)
			if (keep_list(t, status, stats[i], 1) != 0)
				goto fail;
	}
	return p;
fail:
	json_decref(p);
	return NULL;
}

int
tsi_podlist_parser_new(struct tsi_podlist_parser **out)
{
	struct tsi_podlist_parser *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return TSI_ERR_ALLOC;
	if ((p->val = tsi_buf_new(TSI_PODLIST_POD_MAX_BYTES)) == NULL ||
	    (p->key = tsi_buf_new(PODLIST_KEY_MAX)) == NULL ||
	    (p->seen = json_object()) == NULL ||
	    (p->items = json_array()) == NULL) {
		tsi_podlist_parser_free(p);
		return TSI_ERR_ALLOC;
	}
	*out = p;
	return TSI_OK;
}

void
tsi_podlist_parser_free(struct tsi_podlist_parser *p)
{
	if (p == NULL)
		return;
	tsi_buf_free(p->val);
	tsi_buf_free(p->key);
	json_decref(p->seen);
	json_decref(p->items);
	free(p);
}

/* A whole value has been framed: check it, keep what an item holds. */
static int
value_done(struct tsi_podlist_parser *p)
{
	json_error_t e;
	json_t *v, *kept;
	int r = TSI_ERR_PARSE;

	v = json_loadb(tsi_buf_str(p->val), tsi_buf_len(p->val),
	    JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
	tsi_buf_reset(p->val);
	if (v == NULL)
		return TSI_ERR_PARSE;
	if (p->in_item) {
		if (!json_is_object(v))
			goto out;
		r = TSI_ERR_ALLOC;
		if ((kept = tsi_podlist_prune_pod(v)) == NULL ||
		    json_array_append_new(p->items, kept) != 0)
			goto out;
		p->st = S_AFTER_ITEM;
	} else
		p->st = S_AFTER_MEMBER;
	r = TSI_OK;
out:
	json_decref(v);
	return r;
}

/* One byte of a value being framed. *consumed 0: c ends a scalar and
 * belongs to what follows. */
static int
frame(struct tsi_podlist_parser *p, char c, int *consumed)
{
	*consumed = 1;
	if (!p->framing) {
		p->framing = 1;
		p->depth = 0;
		p->in_str = p->esc = p->scalar = 0;
		if (c == '{' || c == '[')
			p->depth = 1;
		else if (c == '"')
			p->in_str = 1;
		else if (c == '}' || c == ']' || c == ',' || c == ':')
			return TSI_ERR_PARSE;
		else
			p->scalar = 1;
		return tsi_buf_put(p->val, &c, 1);
	}
	if (p->scalar) {
		if (is_ws(c) || c == ',' || c == '}' || c == ']') {
			*consumed = 0;
			p->framing = 0;
			return value_done(p);
		}
		return tsi_buf_put(p->val, &c, 1);
	}
	if (tsi_buf_put(p->val, &c, 1) != TSI_OK)
		return TSI_ERR_TOO_LARGE;
	if (p->in_str) {
		if (p->esc)
			p->esc = 0;
		else if (c == '\\')
			p->esc = 1;
		else if (c == '"') {
			p->in_str = 0;
			if (p->depth == 0) {
				p->framing = 0;
				return value_done(p);
			}
		}
		return TSI_OK;
	}
	if (c == '"')
		p->in_str = 1;
	else if (c == '{' || c == '[') {
		if (++p->depth > PODLIST_MAX_DEPTH)
			return TSI_ERR_TOO_LARGE;
	} else if ((c == '}' || c == ']') && --p->depth == 0) {
		p->framing = 0;
		return value_done(p);
	}
	return TSI_OK;
}

/* The key just read: decoded as jansson would, refused when seen. */
static int
key_done(struct tsi_podlist_parser *p, int *is_items)
{
	json_t *k;
	const char *s;
	int r = TSI_ERR_PARSE;

	k = json_loadb(tsi_buf_str(p->key), tsi_buf_len(p->key),
	    JSON_DECODE_ANY, NULL);
	tsi_buf_reset(p->key);
	if ((s = json_string_value(k)) == NULL ||
	    json_string_length(k) != strlen(s) ||
	    json_object_get(p->seen, s) != NULL)
		goto out;
	if (json_object_set_new(p->seen, s, json_true()) != 0) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	*is_items = strcmp(s, "items") == 0;
	r = TSI_OK;
out:
	json_decref(k);
	return r;
}

static int
feed_byte(struct tsi_podlist_parser *p, char c, int *consumed)
{
	int r, items;

	*consumed = 1;
	switch (p->st) {
	case S_START:
		if (is_ws(c))
			return TSI_OK;
		if (c != '{')
			return TSI_ERR_PARSE;
		p->st = S_OBJ_FIRST;
		return TSI_OK;
	case S_OBJ_FIRST:
	case S_OBJ_NEXT:
		if (is_ws(c))
			return TSI_OK;
		if (c == '}' && p->st == S_OBJ_FIRST) {
			p->st = S_END;
			return TSI_OK;
		}
		if (c != '"')
			return TSI_ERR_PARSE;
		p->key_esc = 0;
		p->st = S_KEY;
		return tsi_buf_put(p->key, &c, 1) == TSI_OK ? TSI_OK
		                                            : TSI_ERR_PARSE;
	case S_KEY:
		if (tsi_buf_put(p->key, &c, 1) != TSI_OK)
			return TSI_ERR_TOO_LARGE; /* no such key in a list */
		if (p->key_esc)
			p->key_esc = 0;
		else if (c == '\\')
			p->key_esc = 1;
		else if (c == '"')
			p->st = S_COLON;
		return TSI_OK;
	case S_COLON:
		if (is_ws(c))
			return TSI_OK;
		if (c != ':' || (r = key_done(p, &items)) != TSI_OK)
			return c != ':' ? TSI_ERR_PARSE : r;
		if (items) {
			p->have_items = 1;
			p->st = S_ITEMS_OPEN;
		} else {
			p->in_item = 0;
			p->st = S_VALUE;
		}
		return TSI_OK;
	case S_ITEMS_OPEN:
		if (is_ws(c))
			return TSI_OK;
		if (c != '[')
			return TSI_ERR_PARSE;
		p->st = S_ITEMS_FIRST;
		return TSI_OK;
	case S_ITEMS_FIRST:
		if (is_ws(c))
			return TSI_OK;
		if (c == ']') {
			p->st = S_AFTER_MEMBER;
			return TSI_OK;
		}
		p->in_item = 1;
		p->st = S_VALUE;
		return frame(p, c, consumed);
	case S_ITEM_NEXT:
		if (is_ws(c))
			return TSI_OK;
		p->in_item = 1;
		p->st = S_VALUE;
		return frame(p, c, consumed);
	case S_VALUE:
		if (!p->framing && is_ws(c))
			return TSI_OK;
		return frame(p, c, consumed);
	case S_AFTER_ITEM:
		if (is_ws(c))
			return TSI_OK;
		if (c == ',')
			p->st = S_ITEM_NEXT;
		else if (c == ']')
			p->st = S_AFTER_MEMBER;
		else
			return TSI_ERR_PARSE;
		return TSI_OK;
	case S_AFTER_MEMBER:
		if (is_ws(c))
			return TSI_OK;
		if (c == ',')
			p->st = S_OBJ_NEXT;
		else if (c == '}')
			p->st = S_END;
		else
			return TSI_ERR_PARSE;
		return TSI_OK;
	case S_END: return is_ws(c) ? TSI_OK : TSI_ERR_PARSE;
	}
	return TSI_ERR_INTERNAL;
}

int
tsi_podlist_parser_feed(struct tsi_podlist_parser *p, const char *data,
    size_t len)
{
	size_t i = 0;
	int consumed, r;

	if (p->err != TSI_OK)
		return p->err;
	if (len > TSI_PODLIST_MAX_BYTES - p->total)
		return p->err = TSI_ERR_TOO_LARGE;
	p->total += len;
	while (i < len) {
		if ((r = feed_byte(p, data[i], &consumed)) != TSI_OK)
			return p->err = r;
		if (consumed)
			i++;
	}
	return TSI_OK;
}

int
tsi_podlist_parser_finish(struct tsi_podlist_parser *p, json_t **out)
{
	int consumed, r;

	if (p->err != TSI_OK)
		return p->err;
	/* A scalar at the very end has no delimiter after it. */
	if (p->framing && p->scalar && (r = frame(p, ' ', &consumed)) != TSI_OK)
		return p->err = r;
	if (p->st != S_END || !p->have_items)
		return p->err = TSI_ERR_PARSE;
	if ((*out = json_pack("{s:O}", "items", p->items)) == NULL)
		return TSI_ERR_ALLOC;
	return TSI_OK;
}

int
tsi_podlist_parse(const char *text, size_t len, json_t **out)
{
	struct tsi_podlist_parser *p = NULL;
	int r;

	if ((r = tsi_podlist_parser_new(&p)) != TSI_OK)
		return r;
	if ((r = tsi_podlist_parser_feed(p, text, len)) == TSI_OK)
		r = tsi_podlist_parser_finish(p, out);
	tsi_podlist_parser_free(p);
	return r;
}
