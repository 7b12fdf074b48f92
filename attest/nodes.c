/*
 * nodes.c - the inventory, for admins: register, list (with pending EKs),
 * show, remove, revoke, trust. Every change is audited before it is
 * committed.
 */
#include "attest.h"

#include "tsi/attest.h"
#include "tsi/err.h"
#include "tsi/hex.h"
#include "tsi/log.h"
#include "tsi/x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int
ek_hex_ok(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != 64)
		return 0;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		        (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Runs an admin change: audit record first (durable), then the commit. */
static void
finish_change(struct attest *a, const struct attest_req *req, MDB_txn *txn,
    const char *op, const char *node, const char *reason, const json_t *claims,
    struct attest_answer *ans, json_t *ok_body)
{
	char path[160];

	snprintf(path, sizeof(path), "nodes/%s", node);
	if (attest_audit(a, req, op, path, "allow", reason, claims) != TSI_OK) {
		mdb_txn_abort(txn);
		json_decref(ok_body);
		attest_answer_error(ans, 503, "audit log unavailable");
		return;
	}
	if (attest_store_commit(txn) != TSI_OK) {
		(void)attest_audit(a, req, op, path, "error", "commit failed",
		    claims);
		json_decref(ok_body);
		attest_answer_error(ans, 503, "inventory unavailable");
		return;
	}
	tsi_log(TSI_LOG_INFO, "node.changed", TSI_LS("op", op),
	    TSI_LS("node", node), TSI_LS("remote", req->remote));
	ans->status = 200;
	ans->json = ok_body;
}

static int
tags_ok(const json_t *tags)
{
	const char *k;
	json_t *v;

	if (tags == NULL)
		return 1;
	if (!json_is_object(tags) || json_object_size(tags) > ATTEST_TAGS_MAX)
		return 0;
	json_object_foreach ((json_t *)tags, k, v) {
		if (!tsi_location_value_ok(k) || !json_is_string(v) ||
		    !tsi_location_value_ok(json_string_value(v)))
			return 0;
	}
	return 1;
}

void
attest_nodes_register(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans)
{
	json_t *body = NULL, *entry = NULL, *tmp = NULL, *claims = NULL;
	const char *node, *ekcert, *pol;
	char ek[65] = "", why[256];
	STACK_OF(X509) *chain = NULL;
	MDB_txn *txn = NULL;
	json_t *empty_tags = json_object();
	int trust_hash;

	body = json_loadb(req->body ? req->body : "", req->body_len,
	    JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(body)) {
		attest_answer_error(ans, 400, "body is not a JSON object");
		goto out;
	}
	node = jstr(body, "node");
	if (!tsi_location_value_ok(node) ||
	    !tsi_location_value_ok(jstr(body, "cluster-name")) ||
	    !tsi_location_value_ok(jstr(body, "region")) ||
	    !tsi_location_value_ok(jstr(body, "datacenter"))) {
		attest_answer_error(ans, 400,
		    "node, cluster-name, region and "
		    "datacenter are required: 1-128 characters of "
		    "[A-Za-z0-9._-]");
		goto out;
	}
	if (!tags_ok(json_object_get(body, "tags"))) {
		attest_answer_error(ans, 400,
		    "tags: an object of at most 32 "
		    "key/value strings of [A-Za-z0-9._-]");
		goto out;
	}
	pol = jstr(body, "pcr_policy");
	if (json_object_get(body, "pcr_policy") != NULL &&
	    (pol == NULL || *pol == '\0' || strlen(pol) > 64)) {
		attest_answer_error(ans, 400, "pcr_policy: a policy name");
		goto out;
	}
	trust_hash = json_is_true(json_object_get(body, "ek_hash_trust"));
	ekcert = jstr(body, "ek_cert");
	if ((ekcert == NULL) == (jstr(body, "ek_sha256") == NULL)) {
		attest_answer_error(ans, 400,
		    "exactly one of ek_cert and "
		    "ek_sha256 is required");
		goto out;
	}
	if (ekcert != NULL) {
		X509 *leaf;
		int r;

		if (strlen(ekcert) > 16384 ||
		    tsi_x509_load_chain_pem(ekcert, strlen(ekcert), &chain) !=
		        TSI_OK) {
			attest_answer_error(ans, 400,
			    "ek_cert: not a PEM certificate");
			goto out;
		}
		leaf = sk_X509_value(chain, 0);
		r = tsi_attest_key_sha256(X509_get0_pubkey(leaf), ek);
		if (r == TSI_OK && !trust_hash)
			r = tsi_attest_ek_cert_verify(leaf, NULL, a->ek_ca, why,
			    sizeof(why));
		if (r != TSI_OK) {
			attest_answer_error(ans, 400,
			    r == TSI_ERR_BAD_CERT
			        ? why
			        : "ek_cert: no usable public key");
			goto out;
		}
	} else {
		snprintf(ek, sizeof(ek), "%s", jstr(body, "ek_sha256"));
		if (!ek_hex_ok(ek)) {
			attest_answer_error(ans, 400,
			    "ek_sha256: 64 lower-case hex "
			    "digits");
			goto out;
		}
	}
	if (pol != NULL) {
		int known;
		pthread_mutex_lock(&a->mu);
		known = attest_pcr_find(a->pcr, pol) != NULL;
		pthread_mutex_unlock(&a->mu);
		if (!known)
			tsi_log(TSI_LOG_WARN, "node.unknown_pcr_policy",
			    TSI_LS("node", node), TSI_LS("pcr_policy", pol),
			    TSI_LS("effect",
			        "enrollment refused until defined"));
	}
	entry =
	    json_pack("{sssssssssOsssbsssssI}", "node", node, "cluster-name",
	        jstr(body, "cluster-name"), "region", jstr(body, "region"),
	        "datacenter", jstr(body, "datacenter"), "tags",
	        json_object_get(body, "tags") ? json_object_get(body, "tags")
	                                      : empty_tags,
	        "ek_sha256", ek, "ek_hash_trust", trust_hash, "state",
	        "untrusted", "reason", "registered, not enrolled yet",
	        "registered_at", (json_int_t)attest_now());
	if (entry == NULL) {
		attest_answer_error(ans, 500, "internal error");
		goto out;
	}
	if (pol != NULL)
		json_object_set_new(entry, "pcr_policy", json_string(pol));
	if (attest_store_begin(a, 0, &txn) != TSI_OK) {
		attest_answer_error(ans, 503, "inventory unavailable");
		goto out;
	}
	if (attest_store_get(a, txn, a->db_nodes, node, &tmp) == TSI_OK) {
		attest_answer_error(ans, 409, "node already registered");
		goto out;
	}
	if (attest_store_get(a, txn, a->db_ek, ek, &tmp) == TSI_OK) {
		attest_answer_error(ans, 409,
		    "EK already registered to another "
		    "node");
		goto out;
	}
	json_decref(tmp);
	tmp = json_pack("{ss}", "node", node);
	if (tmp == NULL ||
	    attest_store_put(txn, a->db_nodes, node, entry) != TSI_OK ||
	    attest_store_put(txn, a->db_ek, ek, tmp) != TSI_OK) {
		attest_answer_error(ans, 503, "inventory unavailable");
		goto out;
	}
	(void)attest_store_del(txn, a->db_pending, ek);
	claims =
	    json_pack("{sOsOsOsOss}", "node", json_object_get(entry, "node"),
	        "cluster-name", json_object_get(entry, "cluster-name"),
	        "region", json_object_get(entry, "region"), "datacenter",
	        json_object_get(entry, "datacenter"), "ek_sha256", ek);
	finish_change(a, req, txn, "node.register", node,
	    trust_hash ? "registered (EK hash trusted without certificate)"
	               : "registered",
	    claims, ans,
	    json_pack("{s{ssss}}", "data", "node", node, "ek_sha256", ek));
	txn = NULL;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	sk_X509_pop_free(chain, X509_free);
	json_decref(body);
	json_decref(entry);
	json_decref(tmp);
	json_decref(claims);
	json_decref(empty_tags);
}

/* The contract's list shape from an inventory entry. */
static json_t *
list_item(const json_t *e)
{
	json_t *o = json_object();
	static const char *const keys[] = { "node", "cluster-name", "region",
		"datacenter", "tags", "state", "reason", "last_quote",
		"ek_sha256" };
	size_t i;

	for (i = 0; o != NULL && i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(e, keys[i]);
		json_object_set(o, keys[i], v ? v : json_null());
	}
	return o;
}

void
attest_nodes_list(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	json_t *nodes = json_array();
	int rc;

	(void)req;
	if (nodes == NULL || attest_store_begin(a, 1, &txn) != TSI_OK) {
		json_decref(nodes);
		attest_answer_error(ans, 503, "inventory unavailable");
		return;
	}
	if (mdb_cursor_open(txn, a->db_nodes, &cur) == 0) {
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			json_t *e = json_loadb(v.mv_data, v.mv_size, 0, NULL);
			if (e != NULL)
				json_array_append_new(nodes, list_item(e));
			json_decref(e);
		}
		mdb_cursor_close(cur);
	}
	if (mdb_cursor_open(txn, a->db_pending, &cur) == 0) {
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			json_t *e = json_loadb(v.mv_data, v.mv_size, 0, NULL);
			char reason[96];

			snprintf(reason, sizeof(reason),
			    "unregistered EK tried to "
			    "enroll (%lld attempts)",
			    (long long)json_integer_value(
			        json_object_get(e, "attempts")));
			if (e != NULL)
				json_array_append_new(nodes,
				    json_pack("{snsnsnsns{}sssssOsO}", "node",
				        "cluster-name", "region", "datacenter",
				        "tags", "state", "pending", "reason",
				        reason, "last_quote", json_null(),
				        "ek_sha256",
				        json_object_get(e, "ek_sha256")));
			json_decref(e);
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	ans->status = 200;
	ans->json = json_pack("{s{so}}", "data", "nodes", nodes);
}

static void
node_show(struct attest *a, const json_t *e, struct attest_answer *ans)
{
	json_t *out = json_deep_copy(e), *exp = json_array();
	const char *pol = jstr(e, "pcr_policy");
	char idx[4], hex[65];
	size_t s;
	int i;

	if (out == NULL || exp == NULL) {
		json_decref(out);
		json_decref(exp);
		attest_answer_error(ans, 500, "internal error");
		return;
	}
	if (pol != NULL) {
		const struct attest_pcr_policy *p;

		pthread_mutex_lock(&a->mu);
		p = attest_pcr_find(a->pcr, pol);
		for (s = 0; p != NULL && s < p->n_sets; s++) {
			json_t *set = json_object();
			for (i = 0; set != NULL && i < ATTEST_PCRS; i++) {
				if (!(p->sets[s].mask & (1u << i)))
					continue;
				snprintf(idx, sizeof(idx), "%d", i);
				tsi_hex_encode(p->sets[s].value[i], 32, hex);
				json_object_set_new(set, idx, json_string(hex));
			}
			json_array_append_new(exp, set);
		}
		pthread_mutex_unlock(&a->mu);
	}
	json_object_set_new(out, "expected_pcrs", exp);
	ans->status = 200;
	ans->json = json_pack("{so}", "data", out);
}

void
attest_nodes_node(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans)
{
	const char *rest = req->path + strlen("/v1/nodes/");
	const char *slash = strchr(rest, '/'), *action = slash ? slash + 1 : "";
	char node[TSI_LOCATION_MAX + 1], reason[256];
	json_t *e = NULL, *body = NULL, *claims = NULL;
	MDB_txn *txn = NULL;
	size_t nlen = slash ? (size_t)(slash - rest) : strlen(rest);
	const char *op;

	if (nlen == 0 || nlen > TSI_LOCATION_MAX) {
		attest_answer_error(ans, 404, "not found");
		return;
	}
	memcpy(node, rest, nlen);
	node[nlen] = '\0';
	if (!tsi_location_value_ok(node) ||
	    (slash != NULL && strcmp(action, "revoke") != 0 &&
	        strcmp(action, "trust") != 0)) {
		attest_answer_error(ans, 404, "not found");
		return;
	}
	if ((slash == NULL && strcmp(req->method, "GET") != 0 &&
	        strcmp(req->method, "DELETE") != 0) ||
	    (slash != NULL && strcmp(req->method, "POST") != 0)) {
		attest_answer_error(ans, 405, "method not allowed");
		return;
	}
	if (attest_store_begin(a, strcmp(req->method, "GET") == 0, &txn) !=
	    TSI_OK) {
		attest_answer_error(ans, 503, "inventory unavailable");
		return;
	}
	if (attest_store_get(a, txn, a->db_nodes, node, &e) != TSI_OK) {
		attest_answer_error(ans, 404, "no such node");
		goto out;
	}
	if (strcmp(req->method, "GET") == 0) {
		node_show(a, e, ans);
		goto out;
	}
	claims = json_pack("{sOsOsOsOsO}", "node", json_object_get(e, "node"),
	    "cluster-name", json_object_get(e, "cluster-name"), "region",
	    json_object_get(e, "region"), "datacenter",
	    json_object_get(e, "datacenter"), "ek_sha256",
	    json_object_get(e, "ek_sha256"));
	if (strcmp(req->method, "DELETE") == 0) {
		op = "node.remove";
		snprintf(reason, sizeof(reason), "removed from the inventory");
		json_object_set_new(e, "state", json_string("removed"));
		if (attest_store_del(txn, a->db_nodes, node) != TSI_OK ||
		    (jstr(e, "ek_sha256") != NULL &&
		        attest_store_del(txn, a->db_ek, jstr(e, "ek_sha256")) ==
		            TSI_ERR_STORE)) {
			attest_answer_error(ans, 503, "inventory unavailable");
			goto out;
		}
	} else if (strcmp(action, "revoke") == 0) {
		const char *why;

		body = json_loadb(req->body ? req->body : "", req->body_len,
		    JSON_REJECT_DUPLICATES, NULL);
		why = jstr(body, "reason");
		if (why == NULL || *why == '\0' || strlen(why) > 200) {
			attest_answer_error(ans, 400,
			    "reason: 1-200 characters "
			    "required");
			goto out;
		}
		op = "node.revoke";
		snprintf(reason, sizeof(reason), "revoked: %s", why);
		json_object_set_new(e, "state", json_string("revoked"));
		json_object_set_new(e, "reason", json_string(why));
	} else {
		op = "node.trust";
		snprintf(reason, sizeof(reason), "trusted by an admin");
		if (jstr(e, "cert_serial") != NULL) {
			json_object_set_new(e, "state", json_string("trusted"));
			json_object_set_new(e, "reason",
			    json_string("trusted by an "
			                "admin"));
		} else {
			json_object_set_new(e, "state",
			    json_string("untrusted"));
			json_object_set_new(e, "reason",
			    json_string("not enrolled "
			                "yet"));
		}
	}
	if (strcmp(req->method, "POST") == 0 &&
	    attest_store_put(txn, a->db_nodes, node, e) != TSI_OK) {
		attest_answer_error(ans, 503, "inventory unavailable");
		goto out;
	}
	finish_change(a, req, txn, op, node, reason, claims, ans,
	    json_pack("{s{sssO}}", "data", "node", node, "state",
	        json_object_get(e, "state")));
	txn = NULL;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	json_decref(e);
	json_decref(body);
	json_decref(claims);
}
