/*
 * The admission decision: AdmissionReview v1 in, AdmissionReview v1 out.
 * Pure: no I/O besides the log line naming the decision.
 */
#include "injector.h"
#include "patch.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UID_MAX_LEN 128

void
tsi_injector_refuse(struct tsi_injector_decision *d, int code, const char *fmt,
    ...)
{
	va_list ap;

	d->allowed = 0;
	d->code = code;
	va_start(ap, fmt);
	if (vsnprintf(d->reason, sizeof(d->reason), fmt, ap) < 0)
		d->reason[0] = '\0';
	va_end(ap);
}

const char *
tsi_injector_annotation(const json_t *pod, const char *key, int *present)
{
	json_t *v =
	    json_object_get(json_object_get(json_object_get(pod, "metadata"),
	                        "annotations"),
	        key);

	if (present != NULL)
		*present = v != NULL;
	return json_string_value(v);
}

/* Volumes of pod whose hostPath overlaps a protected host path. On UPDATE a
 * volume identical to the one of the same name in old is left alone: volumes
 * cannot change after creation, so it was judged then. */
static int
check_host_paths(const struct tsi_injector_conf *c, const json_t *pod,
    const json_t *old, struct tsi_injector_decision *d)
{
	char norm[TSI_INJECTOR_PATH_MAX];
	json_t *vols, *vol, *hp, *ovol;
	const char *path, *name;
	size_t i, j, k;

	vols = json_object_get(json_object_get(pod, "spec"), "volumes");
	json_array_foreach (vols, i, vol) {
		if ((hp = json_object_get(vol, "hostPath")) == NULL)
			continue;
		name = json_string_value(json_object_get(vol, "name"));
		if (name == NULL)
			name = "?";
		if (old != NULL) {
			int same = 0;
			json_array_foreach (json_object_get(json_object_get(old,
			                                        "spec"),
			                        "volumes"),
			    j, ovol)
				if (json_equal(ovol, vol))
					same = 1;
			if (same)
				continue;
		}
		path = json_string_value(json_object_get(hp, "path"));
		if (path == NULL ||
		    tsi_injector_path_normalise(path, norm, sizeof(norm)) !=
		        TSI_OK) {
			tsi_injector_refuse(d, 403,
			    "volume %s: hostPath.path must "
			    "be an absolute path",
			    name);
			return TSI_ERR_DENIED;
		}
		for (k = 0; k < c->nprotected; k++)
			if (tsi_injector_path_overlaps(norm, c->protected[k])) {
				tsi_injector_refuse(d, 403,
				    "volume %s: hostPath %s "
				    "overlaps the protected host path %s (it "
				    "reaches "
				    "the tsi-issuer's directory, the identity "
				    "it "
				    "gives, or other pods' secrets); pods may "
				    "not "
				    "mount it",
				    name, norm, c->protected[k]);
				return TSI_ERR_DENIED;
			}
	}
	return TSI_OK;
}

/* The container named name in list, or NULL. */
static json_t *
find_container(const json_t *list, const char *name)
{
	json_t *ct;
	size_t i;

	json_array_foreach (list, i, ct)
		if (json_is_string(json_object_get(ct, "name")) &&
		    strcmp(json_string_value(json_object_get(ct, "name")),
		        name) == 0)
			return ct;
	return NULL;
}

static int
image_changed(const json_t *pod, const json_t *old, const char *list,
    const char *name)
{
	json_t *a, *b;

	a = find_container(json_object_get(json_object_get(pod, "spec"), list),
	    name);
	b = find_container(json_object_get(json_object_get(old, "spec"), list),
	    name);
	if (a == NULL && b == NULL)
		return 0;
	if (a == NULL || b == NULL)
		return 1;
	return !json_equal(json_object_get(a, "image"),
	    json_object_get(b, "image"));
}

static void
check_update(const json_t *pod, const json_t *old,
    struct tsi_injector_decision *d)
{
	static const char *const anns[] = { TSI_ANN_SECRETS, TSI_ANN_ROLE,
		TSI_ANN_REFRESH, TSI_ANN_INJECTED, NULL };
	const char *inj;
	size_t i;

	for (i = 0; anns[i] != NULL; i++) {
		json_t *a = json_object_get(json_object_get(json_object_get(pod,
		                                                "metadata"),
		                                "annotations"),
		    anns[i]);
		json_t *b = json_object_get(json_object_get(json_object_get(old,
		                                                "metadata"),
		                                "annotations"),
		    anns[i]);
		if ((a == NULL) != (b == NULL) ||
		    (a != NULL && !json_equal(a, b))) {
			tsi_injector_refuse(d, 403,
			    "annotation %s cannot change "
			    "after the pod is created",
			    anns[i]);
			return;
		}
	}
	inj = tsi_injector_annotation(old, TSI_ANN_INJECTED, NULL);
	if ((inj != NULL && strcmp(inj, "true") == 0) ||
	    find_container(json_object_get(json_object_get(old, "spec"),
	                       "initContainers"),
	        TSI_INJECTOR_INIT_NAME) != NULL) {
		if (image_changed(pod, old, "initContainers",
		        TSI_INJECTOR_INIT_NAME) ||
		    image_changed(pod, old, "containers",
		        TSI_INJECTOR_SIDECAR_NAME)) {
			tsi_injector_refuse(d, 403,
			    "the tsi-sidecar image of an "
			    "injected pod cannot change");
			return;
		}
	}
	d->allowed = 1;
}

static int
is_pod_kind(const json_t *req)
{
	json_t *k = json_object_get(req, "kind");
	const char *g = json_string_value(json_object_get(k, "group"));
	const char *v = json_string_value(json_object_get(k, "version"));
	const char *n = json_string_value(json_object_get(k, "kind"));

	return g != NULL && v != NULL && n != NULL && g[0] == '\0' &&
	    strcmp(v, "v1") == 0 && strcmp(n, "Pod") == 0;
}

static void
decide(const struct tsi_injector_conf *c, const json_t *req,
    struct tsi_injector_decision *d)
{
	const char *op = json_string_value(json_object_get(req, "operation"));
	const char *sub =
	    json_string_value(json_object_get(req, "subResource"));
	const json_t *pod = json_object_get(req, "object");
	const json_t *old = json_object_get(req, "oldObject");

	d->allowed = 1;
	if (!is_pod_kind(req) || (sub != NULL && sub[0] != '\0') ||
	    op == NULL ||
	    (strcmp(op, "CREATE") != 0 && strcmp(op, "UPDATE") != 0))
		return; /* not ours to judge */
	if (!json_is_object(pod) ||
	    !json_is_object(json_object_get(pod, "spec"))) {
		tsi_injector_refuse(d, 400, "request.object is not a pod");
		return;
	}
	if (strcmp(op, "UPDATE") == 0) {
		if (!json_is_object(old)) {
			tsi_injector_refuse(d, 400,
			    "request.oldObject is missing");
			return;
		}
		if (check_host_paths(c, pod, old, d) != TSI_OK)
			return;
		check_update(pod, old, d);
		return;
	}
	if (check_host_paths(c, pod, NULL, d) != TSI_OK)
		return;
	tsi_injector_patch_build(c, pod, d);
}

static char *
b64(const char *s)
{
	size_t n = strlen(s);
	unsigned char *out;

	if (n > (size_t)(1 << 28) ||
	    (out = malloc(4 * ((n + 2) / 3) + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock(out, (const unsigned char *)s, (int)n);
	return (char *)out;
}

static char *
error_body(const char *msg)
{
	json_t *o = json_pack("{s:[s]}", "errors", msg);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

int
tsi_injector_review(const struct tsi_injector_conf *c, const char *body,
    size_t len, char **resp, int *status)
{
	struct tsi_injector_decision d;
	json_t *root = NULL, *req, *out = NULL, *r;
	json_error_t jerr;
	const char *uid, *av, *kind, *ns, *name, *op;
	char *patch = NULL, *enc = NULL;
	int rc = TSI_ERR_INTERNAL;

	memset(&d, 0, sizeof(d));
	*resp = NULL;
	*status = 400;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	req = json_object_get(root, "request");
	av = json_string_value(json_object_get(root, "apiVersion"));
	kind = json_string_value(json_object_get(root, "kind"));
	uid = json_string_value(json_object_get(req, "uid"));
	if (root == NULL || av == NULL || kind == NULL ||
	    strcmp(av, "admission.k8s.io/v1") != 0 ||
	    strcmp(kind, "AdmissionReview") != 0 || !json_is_object(req) ||
	    uid == NULL || uid[0] == '\0' || strlen(uid) > UID_MAX_LEN) {
		tsi_log(TSI_LOG_WARN, "admission.bad_request",
		    TSI_LS("reason",
		        root == NULL ? jerr.text
		                     : "not an admission.k8s.io/v1 "
		                       "AdmissionReview with a request.uid"));
		*resp = error_body(
		    "expected an admission.k8s.io/v1 AdmissionReview "
		    "with request.uid");
		rc = *resp ? TSI_ERR_PARSE : TSI_ERR_ALLOC;
		goto out;
	}
	decide(c, req, &d);
	if (d.alloc_failed) {
		rc = TSI_ERR_ALLOC;
		goto out;
	}
	if ((r = json_pack("{s:s, s:b}", "uid", uid, "allowed", d.allowed)) ==
	        NULL ||
	    (out = json_pack("{s:s, s:s, s:o}", "apiVersion",
	         "admission.k8s.io/v1", "kind", "AdmissionReview", "response",
	         r)) == NULL) {
		rc = TSI_ERR_ALLOC;
		goto out;
	}
	if (!d.allowed) {
		if (json_object_set_new(r, "status",
		        json_pack("{s:s, s:s, s:i, s:s}", "status", "Failure",
		            "reason",
		            d.code == 400 ? "BadRequest" : "Forbidden", "code",
		            d.code, "message", d.reason)) != 0) {
			rc = TSI_ERR_ALLOC;
			goto out;
		}
	} else if (d.patch != NULL) {
		if ((patch = json_dumps(d.patch, JSON_COMPACT)) == NULL ||
		    (enc = b64(patch)) == NULL ||
		    json_object_set_new(r, "patchType",
		        json_string("JSONPatch")) != 0 ||
		    json_object_set_new(r, "patch", json_string(enc)) != 0) {
			rc = TSI_ERR_ALLOC;
			goto out;
		}
	}
	if ((*resp = json_dumps(out, JSON_COMPACT)) == NULL) {
		rc = TSI_ERR_ALLOC;
		goto out;
	}
	ns = json_string_value(json_object_get(req, "namespace"));
	name = json_string_value(json_object_get(req, "name"));
	if (name == NULL || name[0] == '\0')
		name = json_string_value(
		    json_object_get(json_object_get(json_object_get(req,
		                                        "object"),
		                        "metadata"),
		        "generateName"));
	op = json_string_value(json_object_get(req, "operation"));
	tsi_log(d.allowed ? TSI_LOG_INFO : TSI_LOG_WARN, "admission.decision",
	    TSI_LS("uid", uid), TSI_LS("operation", op ? op : ""),
	    TSI_LS("namespace", ns ? ns : ""), TSI_LS("pod", name ? name : ""),
	    TSI_LS("decision",
	        !d.allowed    ? "refused"
	            : d.patch ? "patched"
	                      : "allowed"),
	    TSI_LS("reason", d.reason));
	*status = 200;
	rc = TSI_OK;
out:
	free(patch);
	free(enc);
	json_decref(d.patch);
	json_decref(out);
	json_decref(root);
	return rc;
}
