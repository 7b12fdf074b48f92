/*
 * kv.c - KV v2 under secret/: the code that decides whether a secret leaves.
 *
 * Order for every request: validate the path -> find the token -> policy
 * (tsi_policy_eval on the Vault path: "secret/data/<p>",
 * "secret/metadata/<p>", "secret/delete|undelete|destroy/<p>",
 * "secret/subkeys/<p>" or "secret/config", with Vault's capability for the
 * operation) -> audit record -> response. A denial answers the same 403
 * body whether the path exists or not; 404 is only for callers allowed to
 * read. Reads decrypt into memory first and release only after their
 * audit record is durable.
 * Changes (writes, patches, deletes, undeletes, destroys, metadata
 * settings and deletes) are recorded twice: the decision before the store is
 * touched (phase "decision", no status), so no change ever happens
 * unrecorded, and the outcome after it and before the answer (phase
 * "outcome", the status sent), so no record claims an outcome that did not
 * happen (docs/audit.md "Changes: decision, then outcome").
 */
#include "vault.h"
#include "routes.h"
#include "settings.h"
#include "crypto.h"
#include "metrics.h"
#include "parse.h"
#include "kv.h"
#include "auditlog.h"
#include "http.h"
#include "store.h"
#include "token_eval.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAX 10000

#define VERSIONS_MAX 1000

enum kv_op {
	KV_READ,
	KV_WRITE,
	KV_DELETE,
	KV_LIST,
	KV_META,
	KV_VDELETE,
	KV_UNDELETE,
	KV_DESTROY,
	KV_META_DELETE,
	KV_META_WRITE,
	KV_PATCH,
	KV_SUBKEYS,
	KV_CONFIG,
	KV_CONFIG_WRITE,
};

/* Vault's bounds on custom_metadata. */
#define CUSTOM_KEYS_MAX 64
#define CUSTOM_KEY_MAX 128
#define CUSTOM_VALUE_MAX 512
/* delete_version_after: at most 100 years, in seconds. */
#define DELETE_AFTER_MAX (100LL * 366 * 86400)

/* The KV v2 paths under the mount, each a prefix of the request path. */
enum kv_kind {
	KK_DATA,
	KK_META,
	KK_DELETE,
	KK_UNDELETE,
	KK_DESTROY,
	KK_SUBKEYS,
	KK_CONFIG,
};

static const struct {
	const char *prefix;
	enum kv_kind kind;
} kinds[] = {
	{ "secret/data", KK_DATA },
	{ "secret/metadata", KK_META },
	{ "secret/delete", KK_DELETE },
	{ "secret/undelete", KK_UNDELETE },
	{ "secret/destroy", KK_DESTROY },
	{ "secret/subkeys", KK_SUBKEYS },
	{ "secret/config", KK_CONFIG },
};

static const char *
op_name(enum kv_op op)
{
	switch (op) {
	case KV_READ: return "read";
	case KV_WRITE: return "write";
	case KV_DELETE: return "delete";
	case KV_LIST: return "list";
	case KV_META: return "read";
	case KV_VDELETE: return "delete";
	case KV_UNDELETE: return "undelete";
	case KV_DESTROY: return "destroy";
	case KV_META_DELETE: return "delete";
	case KV_META_WRITE: return "write";
	case KV_PATCH: return "patch";
	case KV_SUBKEYS: return "read";
	case KV_CONFIG: return "read";
	case KV_CONFIG_WRITE: return "write";
	}
	return "?";
}

/* custom_metadata as Vault shows it: an object of strings, or null. */
static json_t *
custom_json(const struct kv_meta *pm)
{
	json_t *o;
	size_t i;

	if (pm == NULL || pm->ncustom == 0)
		return json_null();
	if ((o = json_object()) == NULL)
		return NULL;
	for (i = 0; i < pm->ncustom; i++)
		if (json_object_set_new(o, pm->custom[i].key,
		        json_string(pm->custom[i].value)) != 0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

static json_t *
version_meta_json(const struct kv_version_meta *m)
{
	char ct[40], dt[40] = "";

	vault_time_str(m->created_us, ct, sizeof(ct));
	if (m->deleted_us != 0)
		vault_time_str(m->deleted_us, dt, sizeof(dt));
	return json_pack("{sssnsssbsI}", "created_time", ct, "custom_metadata",
	    "deletion_time", dt, "destroyed", m->destroyed, "version",
	    (json_int_t)m->version);
}

struct seal_arg {
	const struct vault_key *key;
	const char *path;
	const char *pt;
	size_t ptlen;
};

static int
seal_cb(void *arg, uint64_t version, uint8_t **blob, size_t *len)
{
	struct seal_arg *s = arg;

	return vault_seal(s->key, s->path, version, s->pt, s->ptlen, blob, len);
}

/* Parses a non-negative decimal (at most 2^53). */
static int
parse_uint(const char *s, unsigned long long *out)
{
	char *end;

	if (s == NULL || *s == '\0' || strspn(s, "0123456789") != strlen(s))
		return TSI_ERR_PARSE;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno != 0 || *out > (1ULL << 53))
		return TSI_ERR_PARSE;
	return TSI_OK;
}

struct kv_ctx {
	struct vault_request *r;
	enum kv_op op;
	const char *kvpath; /* below secret/data/ or secret/metadata/ */
	char ppath[KV_PATH_MAX + 32]; /* the policy path */
	struct vault_audit_rec a;
	struct tsi_decision d;
};

/* Audit then answer an error; 503 when the record cannot be written. */
static int
finish_error(struct kv_ctx *k, const char *decision, unsigned status,
    const char *reason, const char *msg)
{
	k->a.decision = decision;
	k->a.reason = reason;
	k->a.status = status;
	if (vault_audit(k->r, &k->a) != TSI_OK)
		return vault_respond_audit_failed(k->r);
	if (status == 404)
		return vault_respond_not_found(k->r);
	return vault_respond_error(k->r, status, msg);
}

/* The decision of a change, recorded (and durable) before the store is
 * touched; it carries no status, since the outcome is not known yet. The
 * records that follow are the outcome, pointing back at it. */
static int
record_decision(struct kv_ctx *k)
{
	uint64_t seq = 0;

	k->a.decision = "allow";
	k->a.reason = k->d.reason;
	k->a.phase = "decision";
	k->a.seq_out = &seq;
	if (vault_audit(k->r, &k->a) != TSI_OK)
		return TSI_ERR_AUDIT;
	k->a.phase = "outcome";
	k->a.ref_seq = seq;
	k->a.seq_out = NULL;
	return TSI_OK;
}

/* The store refused a change: its outcome recorded and answered. A full
 * store (map or disk) is 503, a retry later, never 500. */
static int
store_failed(struct kv_ctx *k, int rc)
{
	if (rc == TSI_ERR_STORE_FULL)
		return finish_error(k, "error", 503, tsi_strerror(rc),
		    "storage full");
	return finish_error(k, "error", 500, tsi_strerror(rc),
	    "internal error");
}

/* Appends n bytes at *pos (room computed by the caller). */
static void
put(char *out, size_t *pos, const char *s, size_t n)
{
	memcpy(out + *pos, s, n);
	*pos += n;
}

int
vault_kv_read_answer(const char *request_id, const char *pt, size_t ptlen,
    const struct kv_version_meta *m, const char *custom, char **out)
{
	static const char head[] = "{\"request_id\":\"";
	static const char mid[] = "\",\"lease_id\":\"\",\"renewable\":false,"
	                          "\"lease_duration\":0,\"data\":{\"data\":";
	static const char tail[] = "},\"auth\":null,\"wrap_info\":null,"
	                           "\"warnings\":null,\"mount_type\":\"kv\"}";
	char ct[40], dt[40] = "", meta[256], ver[160];
	size_t idlen = strlen(request_id), cap, pos = 0, clen, vlen;
	int n, nv;

	*out = NULL;
	if (pt == NULL) {
		pt = "null";
		ptlen = 4;
	}
	vault_time_str(m->created_us, ct, sizeof(ct));
	if (m->deleted_us != 0)
		vault_time_str(m->deleted_us, dt, sizeof(dt));
	if (custom == NULL)
		custom = "null";
	clen = strlen(custom);
	n = snprintf(meta, sizeof(meta),
	    ",\"metadata\":{\"created_time\":\"%s\","
	    "\"custom_metadata\":",
	    ct);
	nv = snprintf(ver, sizeof(ver),
	    ",\"deletion_time\":\"%s\","
	    "\"destroyed\":%s,\"version\":%llu}",
	    dt, m->destroyed ? "true" : "false",
	    (unsigned long long)m->version);
	if (n < 0 || (size_t)n >= sizeof(meta) || nv < 0 ||
	    (size_t)nv >= sizeof(ver))
		return TSI_ERR_INTERNAL;
	vlen = (size_t)nv;
	if (ptlen > SIZE_MAX / 4 || clen > SIZE_MAX / 4)
		return TSI_ERR_TOO_LARGE;
	cap = sizeof(head) - 1 + idlen + sizeof(mid) - 1 + ptlen + (size_t)n +
	    clen + vlen + sizeof(tail) - 1 + 1;
	if ((*out = malloc(cap)) == NULL)
		return TSI_ERR_ALLOC;
	put(*out, &pos, head, sizeof(head) - 1);
	put(*out, &pos, request_id, idlen);
	put(*out, &pos, mid, sizeof(mid) - 1);
	put(*out, &pos, pt, ptlen);
	put(*out, &pos, meta, (size_t)n);
	put(*out, &pos, custom, clen);
	put(*out, &pos, ver, vlen);
	put(*out, &pos, tail, sizeof(tail) - 1);
	(*out)[pos] = '\0';
	return TSI_OK;
}

/*
 * The stored value is the compact JSON text that do_write's json_dumps
 * made of the written "data" object, sealed with AES-GCM bound to the path
 * and version: once it authenticates it is that text, so the answer
 * splices it as it is (vault_kv_read_answer) instead of parsing it and
 * dumping it again, which gave the same bytes. It is still checked to be
 * an object's text, so that a value written some other way cannot break
 * the answer's JSON.
 */
static int
stored_object(const char *pt, size_t ptlen)
{
	return ptlen >= 2 && pt[0] == '{' && pt[ptlen - 1] == '}' &&
	    memchr(pt, '\0', ptlen) == NULL;
}

static int
do_read(struct kv_ctx *k)
{
	struct vault_request *r = k->r;
	struct kv_version_meta m;
	struct kv_meta pm;
	unsigned long long ver = 0;
	uint8_t *blob = NULL;
	size_t blen = 0, ptlen = 0;
	char *vs, *pt = NULL, *text = NULL, *custom = NULL;
	json_t *cj;
	int ret;
	int bad = 0, rc;
	unsigned status;

	vs = vault_query_arg(r, "version", &bad);
	if (bad || (vs != NULL && parse_uint(vs, &ver) != TSI_OK)) {
		free(vs);
		return finish_error(k, "error", 400, "bad version parameter",
		    "version must be a non-negative integer");
	}
	free(vs);
	memset(&m, 0, sizeof(m));
	memset(&pm, 0, sizeof(pm));
	rc = r->v->store->ops->get(r->v->store, k->kvpath, ver, vault_now_us(),
	    &m, &pm, &blob, &blen);
	if (rc == TSI_ERR_NOT_FOUND)
		return finish_error(k, "allow", 404,
		    "no such secret or version", NULL);
	if (rc != TSI_OK)
		return finish_error(k, "error", 500, tsi_strerror(rc),
		    "internal error");
	/* custom_metadata is the path's (not a secret): its text for the
	 * answer, made while nothing secret is held. */
	if (pm.ncustom > 0) {
		cj = custom_json(&pm);
		custom = cj ? json_dumps(cj, JSON_COMPACT) : NULL;
		json_decref(cj);
		if (custom == NULL) {
			kv_meta_clear(&pm);
			tsi_freezero(blob, blen);
			return finish_error(k, "error", 500, "out of memory",
			    "internal error");
		}
	}
	kv_meta_clear(&pm);
	k->a.version = (long long)m.version;
	if (blob != NULL) {
		rc = vault_unseal(&r->v->key, k->kvpath, m.version, blob, blen,
		    &pt, &ptlen);
		tsi_freezero(blob, blen);
		if (rc != TSI_OK) {
			free(custom);
			return finish_error(k, "error", 500,
			    "stored value failed authentication",
			    "internal error");
		}
		if (!stored_object(pt, ptlen)) {
			free(custom);
			tsi_freezero(pt, ptlen + 1);
			return finish_error(k, "error", 500,
			    "stored value is not JSON", "internal error");
		}
		status = 200;
	} else
		status = 404; /* soft-deleted or destroyed: Vault's 404 shape */
	/* The answer first (it holds the secret until sent or wiped), then
	 * the record: for a read on MHD's thread, vault_audit only submits
	 * it, and the server sends this answer once the record is durable. */
	rc = vault_kv_read_answer(r->request_id, pt, ptlen, &m, custom, &text);
	tsi_freezero(pt, pt ? ptlen + 1 : 0);
	free(custom);
	if (rc != TSI_OK)
		return finish_error(k, "error", 500, tsi_strerror(rc),
		    "internal error");
	k->a.decision = "allow";
	k->a.reason = status == 200 ? k->d.reason : "version deleted";
	k->a.status = status;
	if (vault_audit(r, &k->a) != TSI_OK) {
		tsi_strfree(text);
		return vault_respond_audit_failed(r);
	}
	ret = vault_respond_text(r, status, "application/json", text);
	if (status == 200) {
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		vault_metrics_observe(&r->v->metrics.read,
		    (long long)(t1.tv_sec - r->t0.tv_sec) * 1000000 +
		        (t1.tv_nsec - r->t0.tv_nsec) / 1000);
	}
	return ret;
}

/* After a write's or a patch's put (rc, *m the version made): the outcome
 * recorded and the answer, Vault's for a CAS refusal. event: the log line. */
static int
put_answer(struct kv_ctx *k, int rc, const struct kv_version_meta *m,
    const char *event)
{
	struct vault_request *r = k->r;

	if (rc == TSI_ERR_EXISTS)
		return finish_error(k, "error", 400, "check-and-set mismatch",
		    "check-and-set parameter did not match the current "
		    "version");
	if (rc == TSI_ERR_DENIED)
		return finish_error(k, "error", 400, "check-and-set required",
		    "check-and-set parameter required for this call");
	if (rc != TSI_OK)
		return store_failed(k, rc);
	k->a.decision = "allow";
	k->a.reason = k->d.reason;
	k->a.version = (long long)m->version;
	k->a.status = 200;
	/* Written, but the outcome could not be recorded: the log has the
	 * decision without an outcome (unknown), the caller 503. */
	if (vault_audit(r, &k->a) != TSI_OK)
		return vault_respond_audit_failed(r);
	tsi_log(TSI_LOG_INFO, event, TSI_LS("request_id", r->request_id),
	    TSI_LS("path", k->kvpath), TSI_LI("version", m->version),
	    TSI_LS("accessor", r->tok.accessor));
	return vault_respond(r, 200,
	    vault_envelope(r, version_meta_json(m), NULL));
}

static int
do_write(struct kv_ctx *k)
{
	struct vault_request *r = k->r;
	struct kv_version_meta m;
	struct seal_arg sa;
	json_t *req = NULL, *data = NULL;
	char *pt = NULL;
	long long casv = -1;
	int ret;
	int rc;

	if (vault_kv_write_parse((const char *)tsi_buf_ptr(r->body),
	        tsi_buf_len(r->body), &req, &data, &casv) != TSI_OK)
		return finish_error(k, "error", 400, "malformed write body",
		    "body must be {\"data\": {...}, \"options\": {\"cas\": "
		    "N}?}");
	if ((pt = json_dumps(data, JSON_COMPACT)) == NULL) {
		json_decref(req);
		return finish_error(k, "error", 500, "out of memory",
		    "internal error");
	}
	if (record_decision(k) != TSI_OK) {
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	sa.key = &r->v->key;
	sa.path = k->kvpath;
	sa.pt = pt;
	sa.ptlen = strlen(pt);
	memset(&m, 0, sizeof(m));
	rc = r->v->store->ops->put(r->v->store, k->kvpath, casv, seal_cb, &sa,
	    vault_now_us(), &m);
	ret = put_answer(k, rc, &m, "kv.write");
out:
	tsi_strfree(pt);
	json_decref(req);
	return ret;
}

/* RFC 7396 JSON merge patch of the object target by the object patch, in
 * place: null removes a member, an object merges into the member (made an
 * object first), anything else replaces it. */
static int
merge_patch(json_t *target, json_t *patch)
{
	const char *key;
	json_t *pv, *tv;

	json_object_foreach (patch, key, pv) {
		if (json_is_null(pv)) {
			json_object_del(target, key);
			continue;
		}
		if (!json_is_object(pv)) {
			if (json_object_set(target, key, pv) != 0)
				return TSI_ERR_ALLOC;
			continue;
		}
		tv = json_object_get(target, key);
		if (!json_is_object(tv)) {
			if (json_object_set_new(target, key, json_object()) !=
			    0)
				return TSI_ERR_ALLOC;
			tv = json_object_get(target, key);
		}
		if (merge_patch(tv, pv) != TSI_OK)
			return TSI_ERR_ALLOC;
	}
	return TSI_OK;
}

/*
 * PATCH secret/data/P with Content-Type application/merge-patch+json:
 * the current version's data merged with "data" (RFC 7396) written as a
 * new version. The put is conditional on the version read (the caller's
 * cas when given, checked first), so a write in between is a 400
 * mismatch, never a lost update.
 */
static int
do_patch(struct kv_ctx *k)
{
	struct vault_request *r = k->r;
	struct kv_version_meta m;
	struct kv_meta meta;
	struct seal_arg sa;
	json_t *req = NULL, *data = NULL, *cur = NULL;
	json_error_t jerr;
	const char *ct;
	uint8_t *blob = NULL;
	size_t blen = 0, ptlen = 0;
	char *pt = NULL, *npt = NULL;
	long long casv = -1;
	int ret;
	int rc;

	ct = vault_req_header(r, "Content-Type");
	if (ct == NULL ||
	    strncmp(ct, "application/merge-patch+json", 28) != 0 ||
	    (ct[28] != '\0' && ct[28] != ';'))
		return finish_error(k, "error", 415, "unsupported content type",
		    "PATCH requires Content-Type application/merge-patch+json");
	if (vault_kv_write_parse((const char *)tsi_buf_ptr(r->body),
	        tsi_buf_len(r->body), &req, &data, &casv) != TSI_OK)
		return finish_error(k, "error", 400, "malformed patch body",
		    "body must be {\"data\": {...}, \"options\": {\"cas\": "
		    "N}?}");
	memset(&meta, 0, sizeof(meta));
	memset(&m, 0, sizeof(m));
	rc = r->v->store->ops->meta(r->v->store, k->kvpath, &meta);
	if (rc == TSI_OK && meta.current > 0)
		rc = r->v->store->ops->get(r->v->store, k->kvpath, 0,
		    vault_now_us(), &m, NULL, &blob, &blen);
	else if (rc == TSI_OK)
		rc = TSI_ERR_NOT_FOUND;
	if (rc == TSI_ERR_NOT_FOUND || (rc == TSI_OK && blob == NULL)) {
		ret = finish_error(k, "allow", 404, "no current version", NULL);
		goto out;
	}
	if (rc != TSI_OK) {
		ret = finish_error(k, "error", 500, tsi_strerror(rc),
		    "internal error");
		goto out;
	}
	if (casv < 0 && meta.cas_required) {
		ret = finish_error(k, "error", 400, "check-and-set required",
		    "check-and-set parameter required for this call");
		goto out;
	}
	if (casv >= 0 && (uint64_t)casv != m.version) {
		ret = finish_error(k, "error", 400, "check-and-set mismatch",
		    "check-and-set parameter did not match the current "
		    "version");
		goto out;
	}
	rc = vault_unseal(&r->v->key, k->kvpath, m.version, blob, blen, &pt,
	    &ptlen);
	if (rc != TSI_OK) {
		ret = finish_error(k, "error", 500,
		    "stored value failed authentication", "internal error");
		goto out;
	}
	cur = json_loadb(pt, ptlen, 0, &jerr);
	if (!json_is_object(cur)) {
		ret = finish_error(k, "error", 500, "stored value is not JSON",
		    "internal error");
		goto out;
	}
	if (merge_patch(cur, data) != TSI_OK ||
	    (npt = json_dumps(cur, JSON_COMPACT)) == NULL) {
		ret = finish_error(k, "error", 500, "out of memory",
		    "internal error");
		goto out;
	}
	k->a.version = (long long)m.version;
	if (record_decision(k) != TSI_OK) {
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	sa.key = &r->v->key;
	sa.path = k->kvpath;
	sa.pt = npt;
	sa.ptlen = strlen(npt);
	rc = r->v->store->ops->put(r->v->store, k->kvpath, (long long)m.version,
	    seal_cb, &sa, vault_now_us(), &m);
	ret = put_answer(k, rc, &m, "kv.patch");
out:
	/* The texts of the secret wiped (the trees are freed as do_write's). */
	if (npt != NULL)
		tsi_freezero(npt, strlen(npt) + 1);
	json_decref(cur);
	if (pt != NULL)
		tsi_freezero(pt, ptlen + 1);
	if (blob != NULL)
		tsi_freezero(blob, blen);
	kv_meta_clear(&meta);
	json_decref(req);
	return ret;
}

/* Vault's subkeys: the object's keys, every non-object value null, objects
 * followed down to depth levels (0: all). NULL when out of memory. */
static json_t *
subkeys_of(const json_t *o, unsigned long long depth, unsigned long long level)
{
	json_t *out = json_object(), *e;
	const char *key;

	if (out == NULL)
		return NULL;
	json_object_foreach ((json_t *)o, key, e) {
		json_t *v = json_is_object(e) && json_object_size(e) > 0 &&
		        (depth == 0 || level < depth)
		    ? subkeys_of(e, depth, level + 1)
		    : json_null();
		if (v == NULL || json_object_set_new(out, key, v) != 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* GET secret/subkeys/P[?version=N&depth=D]: the structure of a version
 * without its values. */
static int
do_subkeys(struct kv_ctx *k)
{
	struct vault_request *r = k->r;
	struct kv_version_meta m;
	unsigned long long ver = 0, depth = 0;
	uint8_t *blob = NULL;
	size_t blen = 0, ptlen = 0;
	char *vs, *ds, *pt = NULL;
	json_t *cur = NULL, *keys = NULL, *meta;
	json_error_t jerr;
	int ret;
	int bad = 0, rc;

	vs = vault_query_arg(r, "version", &bad);
	ds = vault_query_arg(r, "depth", &bad);
	if (bad || (vs != NULL && parse_uint(vs, &ver) != TSI_OK) ||
	    (ds != NULL && parse_uint(ds, &depth) != TSI_OK)) {
		free(vs);
		free(ds);
		return finish_error(k, "error", 400, "bad query parameter",
		    "version and depth must be non-negative integers");
	}
	free(vs);
	free(ds);
	memset(&m, 0, sizeof(m));
	rc = r->v->store->ops->get(r->v->store, k->kvpath, ver, vault_now_us(),
	    &m, NULL, &blob, &blen);
	if (rc == TSI_ERR_NOT_FOUND || (rc == TSI_OK && blob == NULL))
		return finish_error(k, "allow", 404,
		    "no such secret or version", NULL);
	if (rc != TSI_OK)
		return finish_error(k, "error", 500, tsi_strerror(rc),
		    "internal error");
	k->a.version = (long long)m.version;
	rc = vault_unseal(&r->v->key, k->kvpath, m.version, blob, blen, &pt,
	    &ptlen);
	tsi_freezero(blob, blen);
	if (rc != TSI_OK)
		return finish_error(k, "error", 500,
		    "stored value failed authentication", "internal error");
	cur = json_loadb(pt, ptlen, 0, &jerr);
	tsi_freezero(pt, ptlen + 1);
	if (!json_is_object(cur)) {
		json_decref(cur);
		return finish_error(k, "error", 500, "stored value is not JSON",
		    "internal error");
	}
	keys = subkeys_of(cur, depth, 1);
	json_decref(cur);
	if (keys == NULL)
		return finish_error(k, "error", 500, "out of memory",
		    "internal error");
	k->a.decision = "allow";
	k->a.reason = k->d.reason;
	k->a.status = 200;
	if (vault_audit(r, &k->a) != TSI_OK) {
		json_decref(keys);
		return vault_respond_audit_failed(r);
	}
	meta = version_meta_json(&m);
	ret = vault_respond(r, 200,
	    vault_envelope(r,
	        json_pack("{soso}", "subkeys", keys, "metadata", meta), NULL));
	return ret;
}

static void duration_str(long long s, char *out, size_t len);

/* GET secret/config: the mount's settings (max_versions 0 shown as the
 * server's kv_max_versions, which then applies). */
static int
do_config(struct kv_ctx *k)
{
	struct vault_request *r = k->r;
	struct kv_mount_cfg mc;
	char dva[48];
	int rc;

	if ((rc = r->v->store->ops->get_config(r->v->store, &mc)) != TSI_OK)
		return finish_error(k, "error", 500, tsi_strerror(rc),
		    "internal error");
	k->a.decision = "allow";
	k->a.reason = k->d.reason;
	k->a.status = 200;
	if (vault_audit(r, &k->a) != TSI_OK)
		return vault_respond_audit_failed(r);
	duration_str(mc.delete_after_s, dva, sizeof(dva));
	return vault_respond(r, 200,
	    vault_envelope(r,
	        json_pack("{sbsssI}", "cas_required", mc.cas_required,
	            "delete_version_after", dva, "max_versions",
	            (json_int_t)(mc.max_versions
	                    ? mc.max_versions
	                    : (unsigned)r->v->set->kv_max_versions)),
	        NULL));
}

/* POST secret/config {max_versions, cas_required, delete_version_after}:
 * the mount's defaults; settings not given keep their value, as Vault. */
static int
do_config_write(struct kv_ctx *k)
{
	struct vault_request *r = k->r;
	struct kv_meta_cfg c;
	struct kv_mount_cfg mc;
	json_t *req = NULL, *extra = NULL;
	const char *msg;
	int ret;
	int rc;

	if (vault_kv_meta_parse((const char *)tsi_buf_ptr(r->body),
	        tsi_buf_len(r->body), 0, &req, &c, &msg) != TSI_OK)
		return finish_error(k, "error", 400, "malformed config body",
		    msg);
	if (c.set_custom) {
		ret = finish_error(k, "error", 400, "custom_metadata on config",
		    "custom_metadata is set per path (secret/metadata/P)");
		goto out;
	}
	if ((extra = json_pack("{sO}", "settings", req)) == NULL) {
		ret = finish_error(k, "error", 500, "out of memory",
		    "internal error");
		goto out;
	}
	k->a.extra = extra;
	if (record_decision(k) != TSI_OK) {
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	/* Read and replace: the mount's settings change only here, and
	 * two administrators racing get one or the other, as in Vault. */
	rc = r->v->store->ops->get_config(r->v->store, &mc);
	if (rc == TSI_OK) {
		if (c.set_max_versions)
			mc.max_versions = c.max_versions;
		if (c.set_cas_required)
			mc.cas_required = c.cas_required;
		if (c.set_delete_after)
			mc.delete_after_s = c.delete_after_s;
		rc = r->v->store->ops->set_config(r->v->store, &mc);
	}
	if (rc != TSI_OK) {
		ret = store_failed(k, rc);
		goto out;
	}
	k->a.decision = "allow";
	k->a.reason = k->d.reason;
	k->a.status = 204;
	if (vault_audit(r, &k->a) != TSI_OK) {
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	tsi_log(TSI_LOG_INFO, "kv.config", TSI_LS("request_id", r->request_id),
	    TSI_LS("accessor", r->tok.accessor));
	ret = vault_respond(r, 204, NULL);
out:
	k->a.extra = NULL;
	json_decref(extra);
	json_decref(req);
	kv_meta_cfg_clear(&c);
	return ret;
}

static int
do_delete(struct kv_ctx *k)
{
	struct vault_request *r = k->r;
	struct kv_version_meta m;
	int rc;

	if (record_decision(k) != TSI_OK)
		return vault_respond_audit_failed(r);
	memset(&m, 0, sizeof(m));
	rc = r->v->store->ops->soft_delete(r->v->store, k->kvpath,
	    vault_now_us(), &m);
	/* Vault answers 204 also when there was nothing to delete. */
	if (rc != TSI_OK && rc != TSI_ERR_NOT_FOUND)
		return store_failed(k, rc);
	k->a.decision = "allow";
	k->a.reason = rc == TSI_OK ? k->d.reason : "nothing to delete";
	k->a.version = rc == TSI_OK ? (long long)m.version : 0;
	k->a.status = 204;
	if (vault_audit(r, &k->a) != TSI_OK)
		return vault_respond_audit_failed(r);
	return vault_respond(r, 204, NULL);
}

/* {"versions":[1,2]} as Vault takes it (its comma-int slice: integers, or
 * strings of them); kv.h. */
int
vault_kv_versions_parse(const char *body, size_t len, uint64_t **v, size_t *n)
{
	json_error_t jerr;
	json_t *j, *arr, *e;
	unsigned long long x;
	size_t i;
	int r = TSI_ERR_PARSE;

	*v = NULL;
	*n = 0;
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	arr = json_object_get(j, "versions");
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > VERSIONS_MAX)
		goto out;
	if ((*v = calloc(json_array_size(arr), sizeof(**v))) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	json_array_foreach (arr, i, e) {
		if (json_is_integer(e) && json_integer_value(e) >= 0)
			x = (unsigned long long)json_integer_value(e);
		else if (!json_is_string(e) ||
		    parse_uint(json_string_value(e), &x) != TSI_OK)
			goto out;
		(*v)[i] = x;
	}
	*n = json_array_size(arr);
	r = TSI_OK;
out:
	if (r != TSI_OK) {
		free(*v);
		*v = NULL;
	}
	json_decref(j);
	return r;
}

/* POST secret/delete|undelete|destroy/P {"versions":[...]}: 204, also when
 * the path or a version does not exist (Vault's answer). */
static int
do_versions(struct kv_ctx *k, enum kv_vop vop)
{
	struct vault_request *r = k->r;
	uint64_t *v = NULL;
	json_t *extra = NULL, *arr;
	size_t n = 0, i;
	int ret;
	int rc;

	if (vault_kv_versions_parse((const char *)tsi_buf_ptr(r->body),
	        tsi_buf_len(r->body), &v, &n) != TSI_OK)
		return finish_error(k, "error", 400,
		    "no version number provided", "no version number provided");
	if ((extra = json_object()) == NULL || (arr = json_array()) == NULL ||
	    json_object_set_new(extra, "versions", arr) != 0) {
		ret = finish_error(k, "error", 500, "out of memory",
		    "internal error");
		goto out;
	}
	for (i = 0; i < n; i++)
		json_array_append_new(arr, json_integer((json_int_t)v[i]));
	k->a.extra = extra;
	if (record_decision(k) != TSI_OK) {
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	rc = r->v->store->ops->versions(r->v->store, k->kvpath, vop, v, n,
	    vault_now_us());
	if (rc != TSI_OK && rc != TSI_ERR_NOT_FOUND) {
		ret = store_failed(k, rc);
		goto out;
	}
	k->a.decision = "allow";
	k->a.reason = rc == TSI_OK ? k->d.reason : "no such secret";
	k->a.status = 204;
	if (vault_audit(r, &k->a) != TSI_OK) {
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	tsi_log(TSI_LOG_INFO, "kv.versions",
	    TSI_LS("request_id", r->request_id), TSI_LS("op", k->a.op),
	    TSI_LS("path", k->kvpath), TSI_LS("accessor", r->tok.accessor));
	ret = vault_respond(r, 204, NULL);
out:
	k->a.extra = NULL;
	json_decref(extra);
	free(v);
	return ret;
}

/* DELETE secret/metadata/P: every version's value and the metadata. */
static int
do_meta_delete(struct kv_ctx *k)
{
	struct vault_request *r = k->r;
	int rc;

	if (record_decision(k) != TSI_OK)
		return vault_respond_audit_failed(r);
	rc = r->v->store->ops->remove(r->v->store, k->kvpath);
	if (rc != TSI_OK && rc != TSI_ERR_NOT_FOUND)
		return store_failed(k, rc);
	k->a.decision = "allow";
	k->a.reason = rc == TSI_OK ? k->d.reason : "nothing to delete";
	k->a.status = 204;
	if (vault_audit(r, &k->a) != TSI_OK)
		return vault_respond_audit_failed(r);
	tsi_log(TSI_LOG_INFO, "kv.metadata_delete",
	    TSI_LS("request_id", r->request_id), TSI_LS("path", k->kvpath),
	    TSI_LS("accessor", r->tok.accessor));
	return vault_respond(r, 204, NULL);
}

/*
 * A duration as Go's time.ParseDuration spells whole seconds ("3h25m19s",
 * "90s", "0s"), or a number of seconds, as Vault takes
 * delete_version_after. Units h, m, s only: finer ones cannot be kept.
 */
static int
parse_duration(const json_t *j, long long *out)
{
	const char *s;
	long long total = 0, n;
	int any = 0;

	if (json_is_integer(j)) {
		n = json_integer_value(j);
		if (n < 0 || n > DELETE_AFTER_MAX)
			return TSI_ERR_PARSE;
		*out = n;
		return TSI_OK;
	}
	if (!json_is_string(j))
		return TSI_ERR_PARSE;
	s = json_string_value(j);
	if (strspn(s, "0123456789") == strlen(s) && *s != '\0') {
		unsigned long long u;
		if (parse_uint(s, &u) != TSI_OK || u > DELETE_AFTER_MAX)
			return TSI_ERR_PARSE;
		*out = (long long)u;
		return TSI_OK;
	}
	while (*s != '\0') {
		long long mul;
		n = 0;
		if (*s < '0' || *s > '9')
			return TSI_ERR_PARSE;
		while (*s >= '0' && *s <= '9') {
			if (n > DELETE_AFTER_MAX)
				return TSI_ERR_PARSE;
			n = n * 10 + (*s++ - '0');
		}
		if (*s == 'h')
			mul = 3600;
		else if (*s == 'm' && s[1] != 's')
			mul = 60;
		else if (*s == 's')
			mul = 1;
		else
			return TSI_ERR_PARSE;
		s++;
		if (n > (DELETE_AFTER_MAX - total) / mul)
			return TSI_ERR_PARSE;
		total += n * mul;
		any = 1;
	}
	if (!any)
		return TSI_ERR_PARSE;
	*out = total;
	return TSI_OK;
}

/* Go's time.Duration String() of whole seconds. */
static void
duration_str(long long s, char *out, size_t len)
{
	if (s >= 3600)
		snprintf(out, len, "%lldh%lldm%llds", s / 3600, s % 3600 / 60,
		    s % 60);
	else if (s >= 60)
		snprintf(out, len, "%lldm%llds", s / 60, s % 60);
	else
		snprintf(out, len, "%llds", s);
}

/* The body of POST/PATCH secret/metadata/P; kv.h. */
int
vault_kv_meta_parse(const char *body, size_t len, int patch, json_t **req,
    struct kv_meta_cfg *c, const char **msg)
{
	json_error_t jerr;
	json_t *j, *v;
	const char *key;

	memset(c, 0, sizeof(*c));
	*req = NULL;
	*msg = "body must be a JSON object";
	j = len == 0 ? json_object()
	             : json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j))
		goto bad;
	if ((v = json_object_get(j, "max_versions")) != NULL) {
		*msg = "max_versions must be a non-negative integer";
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 1000000)
			goto bad;
		c->set_max_versions = 1;
		c->max_versions = (unsigned)json_integer_value(v);
	}
	if ((v = json_object_get(j, "cas_required")) != NULL) {
		*msg = "cas_required must be a boolean";
		if (!json_is_boolean(v))
			goto bad;
		c->set_cas_required = 1;
		c->cas_required = json_is_true(v);
	}
	if ((v = json_object_get(j, "delete_version_after")) != NULL) {
		*msg = "delete_version_after must be a duration (e.g. "
		       "\"3h25m19s\")";
		if (parse_duration(v, &c->delete_after_s) != TSI_OK)
			goto bad;
		c->set_delete_after = 1;
	}
	if ((v = json_object_get(j, "custom_metadata")) != NULL &&
	    !json_is_null(v)) {
		json_t *e;
		size_t i = 0;
		*msg =
		    "custom_metadata must be an object of at most 64 strings "
		    "(keys up to 128 bytes, values up to 512)";
		if (!json_is_object(v) || json_object_size(v) > CUSTOM_KEYS_MAX)
			goto bad;
		json_object_foreach (v, key, e) {
			if (strlen(key) == 0 || strlen(key) > CUSTOM_KEY_MAX ||
			    (!json_is_string(e) &&
			        !(patch && json_is_null(e))) ||
			    (json_is_string(e) &&
			        (json_string_length(e) > CUSTOM_VALUE_MAX ||
			            memchr(json_string_value(e), '\0',
			                json_string_length(e)) != NULL)))
				goto bad;
		}
		c->set_custom = 1;
		c->custom_merge = patch;
		if (json_object_size(v) > 0 &&
		    (c->custom = calloc(json_object_size(v),
		         sizeof(*c->custom))) == NULL)
			goto bad;
		json_object_foreach (v, key, e) {
			c->ncustom = i + 1;
			if ((c->custom[i].key = strdup(key)) == NULL ||
			    (json_is_string(e) &&
			        (c->custom[i].value =
			                strdup(json_string_value(e))) == NULL))
				goto bad;
			i++;
		}
	}
	*req = j;
	return TSI_OK;
bad:
	kv_meta_cfg_clear(c);
	json_decref(j);
	return TSI_ERR_PARSE;
}

/* POST (settings given replace) or PATCH (custom_metadata merged)
 * secret/metadata/P: 204, as Vault. */
static int
do_meta_write(struct kv_ctx *k)
{
	struct vault_request *r = k->r;
	struct kv_meta_cfg c;
	json_t *req = NULL, *extra = NULL;
	const char *msg;
	int ret;
	int rc;

	if (vault_kv_meta_parse((const char *)tsi_buf_ptr(r->body),
	        tsi_buf_len(r->body), strcmp(r->method, "PATCH") == 0, &req, &c,
	        &msg) != TSI_OK)
		return finish_error(k, "error", 400, "malformed metadata body",
		    msg);
	/* The settings under their own member: a body's names never stand
	 * for the record's own fields. */
	if ((extra = json_pack("{sO}", "settings", req)) == NULL) {
		ret = finish_error(k, "error", 500, "out of memory",
		    "internal error");
		goto out;
	}
	k->a.extra = extra;
	if (record_decision(k) != TSI_OK) {
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	rc = r->v->store->ops->set_meta(r->v->store, k->kvpath, &c,
	    vault_now_us());
	if (rc != TSI_OK) {
		ret = store_failed(k, rc);
		goto out;
	}
	k->a.decision = "allow";
	k->a.reason = k->d.reason;
	k->a.status = 204;
	if (vault_audit(r, &k->a) != TSI_OK) {
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	ret = vault_respond(r, 204, NULL);
out:
	k->a.extra = NULL;
	json_decref(extra);
	json_decref(req);
	kv_meta_cfg_clear(&c);
	return ret;
}

static int
do_list(struct kv_ctx *k)
{
	struct vault_request *r = k->r;
	struct kv_names l;
	json_t *keys = NULL;
	size_t i;
	int rc;

	rc = r->v->store->ops->list(r->v->store, k->kvpath, LIST_MAX, &l);
	if (rc != TSI_OK)
		return finish_error(k, "error", 500, tsi_strerror(rc),
		    "internal error");
	if (l.n == 0) {
		kv_names_clear(&l);
		return finish_error(k, "allow", 404, "nothing under this path",
		    NULL);
	}
	keys = json_array();
	for (i = 0; keys != NULL && i < l.n; i++)
		if (json_array_append_new(keys, json_string(l.name[i])) != 0) {
			json_decref(keys);
			keys = NULL;
		}
	kv_names_clear(&l);
	if (keys == NULL)
		return finish_error(k, "error", 500, "out of memory",
		    "internal error");
	k->a.decision = "allow";
	k->a.reason = k->d.reason;
	k->a.status = 200;
	if (vault_audit(r, &k->a) != TSI_OK) {
		json_decref(keys);
		return vault_respond_audit_failed(r);
	}
	return vault_respond(r, 200,
	    vault_envelope(r, json_pack("{so}", "keys", keys), NULL));
}

static int
do_meta(struct kv_ctx *k)
{
	struct vault_request *r = k->r;
	struct kv_meta m;
	struct kv_mount_cfg mc;
	json_t *versions, *data;
	char ct[40], ut[40], num[24], dva[48];
	long long after;
	size_t i;
	int rc;

	memset(&m, 0, sizeof(m));
	rc = r->v->store->ops->meta(r->v->store, k->kvpath, &m);
	if (rc == TSI_OK)
		rc = r->v->store->ops->get_config(r->v->store, &mc);
	if (rc == TSI_ERR_NOT_FOUND)
		return finish_error(k, "allow", 404, "no such secret", NULL);
	if (rc != TSI_OK) {
		kv_meta_clear(&m);
		return finish_error(k, "error", 500, tsi_strerror(rc),
		    "internal error");
	}
	/* Each version's deletion time as a read shows it: the soft delete,
	 * else the one delete_version_after schedules. */
	after = kv_delete_after(&m, &mc);
	for (i = 0; i < m.n; i++)
		m.versions[i].deleted_us =
		    kv_deletion_us(&m.versions[i], after);
	k->a.decision = "allow";
	k->a.reason = k->d.reason;
	k->a.status = 200;
	if (vault_audit(r, &k->a) != TSI_OK) {
		kv_meta_clear(&m);
		return vault_respond_audit_failed(r);
	}
	versions = json_object();
	for (i = 0; versions != NULL && i < m.n; i++) {
		json_t *vm = version_meta_json(&m.versions[i]);
		json_object_del(vm, "version");
		json_object_del(vm, "custom_metadata");
		snprintf(num, sizeof(num), "%llu",
		    (unsigned long long)m.versions[i].version);
		json_object_set_new(versions, num, vm);
	}
	vault_time_str(m.created_us, ct, sizeof(ct));
	vault_time_str(m.updated_us, ut, sizeof(ut));
	duration_str(m.delete_after_s, dva, sizeof(dva));
	data = json_pack("{sbsssosIsIsIsssssoss}", "cas_required",
	    m.cas_required, "created_time", ct, "custom_metadata",
	    custom_json(&m), "current_version", (json_int_t)m.current,
	    "max_versions", (json_int_t)m.max_versions, "oldest_version",
	    (json_int_t)m.oldest, "updated_time", ut, "delete_version_after",
	    dva, "versions", versions ? versions : json_object(), "path",
	    k->kvpath);
	kv_meta_clear(&m);
	return vault_respond(r, 200, vault_envelope(r, data, NULL));
}

int
vault_kv_handle(struct vault *v, struct vault_request *r,
    struct vault_answer *ans)
{
	struct kv_ctx k;
	struct tsi_policy_set *p = NULL;
	const char *m = r->method, *reason = NULL, *sub = NULL, *prefix = "";
	char *listq;
	int cap = 0, bad = 0, rc, n;
	int list = 0, post;
	enum kv_kind kind = KK_DATA;
	int ret;
	size_t i;

	memset(&k, 0, sizeof(k));
	k.r = r;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && sub == NULL; i++) {
		size_t pl = strlen(kinds[i].prefix);
		if (strncmp(r->path, kinds[i].prefix, pl) == 0 &&
		    (r->path[pl] == '\0' || r->path[pl] == '/')) {
			sub = r->path + pl;
			kind = kinds[i].kind;
			prefix = kinds[i].prefix;
		}
	}
	if (sub == NULL)
		return vault_respond_no_route(r);
	k.kvpath = *sub == '/' ? sub + 1 : sub;
	post = strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0;

	listq = vault_query_arg(r, "list", &bad);
	/* As Vault reads ?list=: Go's ParseBool, "" meaning false, any other
	 * spelling a 400. */
	if (!bad && listq != NULL && *listq != '\0' &&
	    vault_parse_bool(listq, &list) != TSI_OK)
		bad = 1;
	free(listq);
	if (bad)
		return vault_respond_error(r, 400,
		    "invalid value for the list parameter");
	if (kind == KK_CONFIG && post && !list) {
		k.op = KV_CONFIG_WRITE;
		cap = TSI_CAP_UPDATE;
	} else if (kind == KK_CONFIG || kind == KK_SUBKEYS) {
		if (strcmp(m, "GET") != 0 || list)
			return vault_respond_error(r, 405,
			    "method not allowed");
		k.op = kind == KK_CONFIG ? KV_CONFIG : KV_SUBKEYS;
		cap = TSI_CAP_READ;
	} else if (kind == KK_DELETE || kind == KK_UNDELETE ||
	    kind == KK_DESTROY) {
		if (!post)
			return vault_respond_error(r, 405,
			    "method not allowed");
		k.op = kind == KK_DELETE  ? KV_VDELETE
		    : kind == KK_UNDELETE ? KV_UNDELETE
		                          : KV_DESTROY;
		cap = TSI_CAP_UPDATE;
	} else if (kind == KK_DATA) {
		if (strcmp(m, "GET") == 0 && list)
			return vault_respond_error(r, 405,
			    "unsupported operation");
		if (strcmp(m, "GET") == 0)
			k.op = KV_READ, cap = TSI_CAP_READ;
		else if (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0)
			k.op = KV_WRITE;
		else if (strcmp(m, "DELETE") == 0)
			k.op = KV_DELETE, cap = TSI_CAP_DELETE;
		else if (strcmp(m, "PATCH") == 0)
			k.op = KV_PATCH, cap = TSI_CAP_PATCH;
		else
			return vault_respond_error(r, 405,
			    "method not allowed");
	} else {
		if (strcmp(m, "LIST") == 0 || (strcmp(m, "GET") == 0 && list))
			k.op = KV_LIST, cap = TSI_CAP_LIST;
		else if (strcmp(m, "GET") == 0)
			k.op = KV_META, cap = TSI_CAP_READ;
		else if (strcmp(m, "DELETE") == 0)
			k.op = KV_META_DELETE, cap = TSI_CAP_DELETE;
		else if (post)
			k.op = KV_META_WRITE; /* create or update: below */
		else if (strcmp(m, "PATCH") == 0)
			k.op = KV_META_WRITE, cap = TSI_CAP_PATCH;
		else
			return vault_respond_error(r, 405,
			    "method not allowed");
	}
	k.a.op = op_name(k.op);
	k.a.path = r->path;
	k.a.rule = "";
	if (kind == KK_CONFIG && *k.kvpath == '\0')
		k.kvpath = "config"; /* the policy path is secret/config */
	if (bad || !vault_kv_path_valid(k.kvpath, k.op == KV_LIST))
		return vault_respond_error(r, 400, "invalid secret path");

	/* The policy path; a listed folder always ends in '/'. */
	n = kind == KK_CONFIG
	    ? snprintf(k.ppath, sizeof(k.ppath), "%s", prefix)
	    : snprintf(k.ppath, sizeof(k.ppath), "%s/%s%s", prefix, k.kvpath,
	          k.op == KV_LIST && *k.kvpath != '\0' &&
	                  k.kvpath[strlen(k.kvpath) - 1] != '/'
	              ? "/"
	              : "");
	if (n < 0 || (size_t)n >= sizeof(k.ppath))
		return vault_respond_error(r, 400, "invalid secret path");
	k.a.path = k.ppath;
	if (k.op == KV_LIST)
		k.kvpath = k.ppath + strlen("secret/metadata/");

	if (vault_req_auth(r, &reason) != TSI_OK) {
		k.a.rule = "token";
		return finish_error(&k, "deny", 403, reason,
		    "permission denied");
	}
	k.a.claims = r->tok.claims;
	k.a.accessor = r->tok.accessor;

	if (k.op == KV_WRITE || (k.op == KV_META_WRITE && cap == 0)) {
		/* Vault's rule: create when the path has no version yet,
		 * update otherwise. */
		struct kv_meta meta;
		memset(&meta, 0, sizeof(meta));
		rc = r->v->store->ops->meta(r->v->store, k.kvpath, &meta);
		if (k.op == KV_WRITE)
			cap = rc == TSI_OK && meta.current > 0 ? TSI_CAP_UPDATE
			                                       : TSI_CAP_CREATE;
		else
			cap = rc == TSI_OK ? TSI_CAP_UPDATE : TSI_CAP_CREATE;
		kv_meta_clear(&meta);
	}
	if (r->tok.root) {
		/* Root skips roles but not guardrails (docs/policy.md). */
		p = vault_policy_get(r->v);
		rc = tsi_policy_eval_root(p, r->tok.claims, k.ppath, cap, &k.d);
	} else if ((p = vault_policy_get(r->v)) == NULL) {
		snprintf(k.d.rule, sizeof(k.d.rule), "default-deny");
		snprintf(k.d.reason, sizeof(k.d.reason), "no policy loaded");
		rc = TSI_ERR_DENIED;
	} else
		rc = vault_token_eval(p, &r->tok, k.ppath, cap, &k.d);
	tsi_policy_unref(p);
	k.a.rule = k.d.rule;
	if (rc != TSI_OK) {
		tsi_log(TSI_LOG_INFO, "kv.denied",
		    TSI_LS("request_id", r->request_id),
		    TSI_LS("path", k.ppath), TSI_LS("cap", tsi_cap_name(cap)),
		    TSI_LS("rule", k.d.rule),
		    TSI_LS("accessor", r->tok.accessor));
		return finish_error(&k, "deny", 403, k.d.reason,
		    "permission denied");
	}
	switch (k.op) {
	case KV_READ: ret = do_read(&k); break;
	case KV_WRITE: ret = do_write(&k); break;
	case KV_DELETE: ret = do_delete(&k); break;
	case KV_LIST: ret = do_list(&k); break;
	case KV_META: ret = do_meta(&k); break;
	case KV_VDELETE: ret = do_versions(&k, KV_VOP_DELETE); break;
	case KV_UNDELETE: ret = do_versions(&k, KV_VOP_UNDELETE); break;
	case KV_DESTROY: ret = do_versions(&k, KV_VOP_DESTROY); break;
	case KV_META_DELETE: ret = do_meta_delete(&k); break;
	case KV_META_WRITE: ret = do_meta_write(&k); break;
	case KV_PATCH: ret = do_patch(&k); break;
	case KV_SUBKEYS: ret = do_subkeys(&k); break;
	case KV_CONFIG: ret = do_config(&k); break;
	case KV_CONFIG_WRITE: ret = do_config_write(&k); break;
	default: ret = vault_respond_error(r, 500, "internal error"); break;
	}
	return ret;
}
