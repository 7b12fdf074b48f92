/*
 * The JSONPatch (RFC 6902) that injects tsi-sidecar into a pod: the --once
 * init container first among the init containers, the refresh sidecar when
 * tsi.refresh is "true", a memory-backed emptyDir for the secrets mounted
 * read-only into every other container, and the issuer's socket directory,
 * read-only, into the sidecar containers only.
 */
#include "patch.h"
#include "tsi/err.h"

#include <stdio.h>
#include <string.h>

#define ROLE_CHARS \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
#define ROLE_MAX_LEN 128

/* Appends {"op":"add","path":path,"value":value}; steals value. */
static int
op_add(json_t *ops, const char *path, json_t *value)
{
	json_t *op;

	if (value == NULL)
		return TSI_ERR_ALLOC;
	if ((op = json_pack("{s:s, s:s, s:o}", "op", "add", "path", path,
	         "value", value)) == NULL)
		return TSI_ERR_ALLOC;
	return json_array_append_new(ops, op) == 0 ? TSI_OK : TSI_ERR_ALLOC;
}

static json_t *
env_var(const char *name, const char *value)
{
	return json_pack("{s:s, s:s}", "name", name, "value", value);
}

static json_t *
sidecar_container(const struct tsi_injector_conf *c, int once,
    const char *secrets, const char *role, long long uid)
{
	char sock[TSI_INJECTOR_PATH_MAX * 2];
	json_t *ct = NULL, *env, *mounts, *sc;

	if (snprintf(sock, sizeof(sock), "%s/%s", c->issuer_mount_path,
	        c->issuer_socket_name) >= (int)sizeof(sock))
		return NULL;
	env = json_pack("[o, o, o, o, o]", env_var("TSI_SECRETS", secrets),
	    env_var("TSI_ROLE", role), env_var("VAULT_ADDR", c->vault_addr),
	    env_var("TSI_ISSUER_SOCKET", sock),
	    env_var("TSI_AUDIENCE", c->audience));
	mounts = json_pack("[{s:s, s:s}, {s:s, s:s, s:b}]", "name",
	    TSI_INJECTOR_VOL_SECRETS, "mountPath", c->secrets_mount_path,
	    "name", TSI_INJECTOR_VOL_ISSUER, "mountPath", c->issuer_mount_path,
	    "readOnly", 1);
	sc = json_pack("{s:b, s:b, s:b, s:{s:[s]}, s:{s:s}}",
	    "allowPrivilegeEscalation", 0, "readOnlyRootFilesystem", 1,
	    "runAsNonRoot", 1, "capabilities", "drop", "ALL", "seccompProfile",
	    "type", "RuntimeDefault");
	if (env == NULL || mounts == NULL || sc == NULL ||
	    json_array_append_new(env,
	        env_var("TSI_SECRETS_DIR", c->secrets_mount_path)) != 0)
		goto fail;
	if (c->vault_ca_configmap != NULL) {
		char ca[TSI_INJECTOR_PATH_MAX];
		if (snprintf(ca, sizeof(ca), "/etc/tsi/vault-ca/%s",
		        c->vault_ca_key) >= (int)sizeof(ca) ||
		    json_array_append_new(env, env_var("VAULT_CACERT", ca)) !=
		        0 ||
		    json_array_append_new(mounts,
		        json_pack("{s:s, s:s, s:b}", "name",
		            TSI_INJECTOR_VOL_CA, "mountPath",
		            "/etc/tsi/vault-ca", "readOnly", 1)) != 0)
			goto fail;
	}
	if (uid > 0 &&
	    json_object_set_new(sc, "runAsUser", json_integer(uid)) != 0)
		goto fail;
	/* Refresh mode is the sidecar's default: only the init container
	 * gets an argument. */
	ct = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, "
	               "s:{s:{s:s, s:s}, s:{s:s}}}",
	    "name", once ? TSI_INJECTOR_INIT_NAME : TSI_INJECTOR_SIDECAR_NAME,
	    "image", c->sidecar_image, "imagePullPolicy",
	    c->sidecar_pull_policy, "env", env, "volumeMounts", mounts,
	    "securityContext", sc, "resources", "requests", "cpu", "10m",
	    "memory", "16Mi", "limits", "memory", c->sidecar_memory_limit);
	if (ct != NULL && once &&
	    json_object_set_new(ct, "args", json_pack("[s]", "--once")) != 0) {
		json_decref(ct);
		return NULL;
	}
	return ct;
fail:
	json_decref(env);
	json_decref(mounts);
	json_decref(sc);
	return NULL;
}

static int
valid_role(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= ROLE_MAX_LEN && s[strspn(s, ROLE_CHARS)] == '\0';
}

/* Refuses names and mount paths the injection would collide with. */
static int
check_conflicts(const struct tsi_injector_conf *c, const json_t *spec,
    struct tsi_injector_decision *d)
{
	static const char *const lists[] = { "initContainers", "containers",
		NULL };
	char norm[TSI_INJECTOR_PATH_MAX];
	json_t *ct, *vol, *m;
	const char *s;
	size_t i, j, k;

	json_array_foreach (json_object_get(spec, "volumes"), i, vol) {
		s = json_string_value(json_object_get(vol, "name"));
		if (s != NULL &&
		    (strcmp(s, TSI_INJECTOR_VOL_SECRETS) == 0 ||
		        strcmp(s, TSI_INJECTOR_VOL_ISSUER) == 0 ||
		        strcmp(s, TSI_INJECTOR_VOL_CA) == 0)) {
			tsi_injector_refuse(d, 403,
			    "volume name %s is reserved "
			    "for tsi",
			    s);
			return TSI_ERR_DENIED;
		}
	}
	for (k = 0; lists[k] != NULL; k++)
		json_array_foreach (json_object_get(spec, lists[k]), i, ct) {
			s = json_string_value(json_object_get(ct, "name"));
			if (s != NULL &&
			    (strcmp(s, TSI_INJECTOR_INIT_NAME) == 0 ||
			        strcmp(s, TSI_INJECTOR_SIDECAR_NAME) == 0)) {
				tsi_injector_refuse(d, 403,
				    "container name %s is "
				    "reserved for tsi",
				    s);
				return TSI_ERR_DENIED;
			}
			json_array_foreach (json_object_get(ct, "volumeMounts"),
			    j, m) {
				s = json_string_value(
				    json_object_get(m, "mountPath"));
				if (s == NULL || s[0] != '/')
					continue; /* the API server rejects these */
				if (tsi_injector_path_normalise(s, norm,
				        sizeof(norm)) != TSI_OK ||
				    tsi_injector_path_overlaps(norm,
				        c->secrets_mount_path)) {
					tsi_injector_refuse(d, 403,
					    "a volume is "
					    "already mounted at or around %s",
					    c->secrets_mount_path);
					return TSI_ERR_DENIED;
				}
			}
		}
	return TSI_OK;
}

/* Adds the read-only secrets mount to every container of list. */
static int
add_app_mounts(const struct tsi_injector_conf *c, json_t *ops,
    const json_t *spec, const char *list)
{
	char path[128];
	json_t *ct;
	size_t i;
	int r;

	json_array_foreach (json_object_get(spec, list), i, ct) {
		json_t *m = json_pack("{s:s, s:s, s:b}", "name",
		    TSI_INJECTOR_VOL_SECRETS, "mountPath",
		    c->secrets_mount_path, "readOnly", 1);
		if (m == NULL)
			return TSI_ERR_ALLOC;
		if (json_is_array(json_object_get(ct, "volumeMounts"))) {
			snprintf(path, sizeof(path),
			    "/spec/%s/%zu/volumeMounts/-", list, i);
			r = op_add(ops, path, m);
		} else {
			snprintf(path, sizeof(path),
			    "/spec/%s/%zu/volumeMounts", list, i);
			r = op_add(ops, path, json_pack("[o]", m));
		}
		if (r != TSI_OK)
			return r;
	}
	return TSI_OK;
}

/* The runAsUser the pod's first container runs with, when it says so: files
 * are written 0400, so the sidecar must share the application's uid. */
static long long
app_uid(const struct tsi_injector_conf *c, const json_t *spec)
{
	json_t *u;

	if (c->sidecar_run_as_user > 0)
		return c->sidecar_run_as_user;
	u = json_object_get(json_object_get(json_array_get(json_object_get(spec,
	                                                       "containers"),
	                                        0),
	                        "securityContext"),
	    "runAsUser");
	if (!json_is_integer(u))
		u = json_object_get(json_object_get(spec, "securityContext"),
		    "runAsUser");
	return json_is_integer(u) && json_integer_value(u) > 0
	    ? json_integer_value(u)
	    : 0;
}

static int
add_list_items(json_t *ops, const json_t *spec, const char *list, json_t *item,
    int prepend)
{
	char path[64];

	if (item == NULL)
		return TSI_ERR_ALLOC;
	if (!json_is_array(json_object_get(spec, list))) {
		snprintf(path, sizeof(path), "/spec/%s", list);
		return op_add(ops, path, json_pack("[o]", item));
	}
	snprintf(path, sizeof(path), "/spec/%s/%s", list, prepend ? "0" : "-");
	return op_add(ops, path, item);
}

void
tsi_injector_patch_build(const struct tsi_injector_conf *c, const json_t *pod,
    struct tsi_injector_decision *d)
{
	const json_t *spec = json_object_get(pod, "spec");
	const char *ann, *role, *refresh;
	char *canon = NULL;
	char why[384] = "";
	int present, r = TSI_ERR_ALLOC, want_refresh = 0;
	long long uid;
	json_t *ops = NULL, *vols;

	ann = tsi_injector_annotation(pod, TSI_ANN_SECRETS, &present);
	if (!present)
		return; /* allowed, untouched */
	if (ann == NULL) {
		tsi_injector_refuse(d, 403, "annotation %s must be a string",
		    TSI_ANN_SECRETS);
		return;
	}
	if (tsi_injector_secrets_validate(c, ann, &canon, why, sizeof(why)) !=
	    TSI_OK) {
		if (canon == NULL && why[0] == '\0')
			d->alloc_failed = 1;
		tsi_injector_refuse(d, 403, "%s", why);
		goto out;
	}
	role = tsi_injector_annotation(pod, TSI_ANN_ROLE, &present);
	if (!present)
		role = c->default_role;
	if (role == NULL || !valid_role(role)) {
		tsi_injector_refuse(d, 403,
		    "annotation %s must name a role (1-%d "
		    "characters of [A-Za-z0-9._-])",
		    TSI_ANN_ROLE, ROLE_MAX_LEN);
		goto out;
	}
	refresh = tsi_injector_annotation(pod, TSI_ANN_REFRESH, &present);
	if (present) {
		if (refresh != NULL && strcmp(refresh, "true") == 0)
			want_refresh = 1;
		else if (refresh == NULL || strcmp(refresh, "false") != 0) {
			tsi_injector_refuse(d, 403,
			    "annotation %s must be \"true\" "
			    "or \"false\"",
			    TSI_ANN_REFRESH);
			goto out;
		}
	}
	if (check_conflicts(c, spec, d) != TSI_OK)
		goto out;
	uid = app_uid(c, spec);
	if ((ops = json_array()) == NULL)
		goto out;
	/* Mounts first, by the containers' original indices; the init
	 * container is prepended after that. */
	if ((r = add_app_mounts(c, ops, spec, "initContainers")) != TSI_OK ||
	    (r = add_app_mounts(c, ops, spec, "containers")) != TSI_OK ||
	    (r = add_list_items(ops, spec, "initContainers",
	         sidecar_container(c, 1, canon, role, uid), 1)) != TSI_OK ||
	    (want_refresh &&
	        (r = add_list_items(ops, spec, "containers",
	             sidecar_container(c, 0, canon, role, uid), 0)) != TSI_OK))
		goto out;
	vols = json_pack("[{s:s, s:{s:s, s:s}}, {s:s, s:{s:s, s:s}}]", "name",
	    TSI_INJECTOR_VOL_SECRETS, "emptyDir", "medium", "Memory",
	    "sizeLimit", c->secrets_size_limit, "name", TSI_INJECTOR_VOL_ISSUER,
	    "hostPath", "path", c->issuer_host_path, "type", "Directory");
	if (vols == NULL)
		goto out;
	if (c->vault_ca_configmap != NULL &&
	    json_array_append_new(vols,
	        json_pack("{s:s, s:{s:s, s:[{s:s, s:s}]}}", "name",
	            TSI_INJECTOR_VOL_CA, "configMap", "name",
	            c->vault_ca_configmap, "items", "key", c->vault_ca_key,
	            "path", c->vault_ca_key)) != 0) {
		json_decref(vols);
		goto out;
	}
	if (!json_is_array(json_object_get(spec, "volumes"))) {
		if ((r = op_add(ops, "/spec/volumes", vols)) != TSI_OK)
			goto out;
	} else {
		size_t i;
		json_t *v;
		json_array_foreach (vols, i, v)
			if ((r = op_add(ops, "/spec/volumes/-",
			         json_incref(v))) != TSI_OK) {
				json_decref(vols);
				goto out;
			}
		json_decref(vols);
	}
	/* annotations exist: tsi.secrets is one of them */
	if ((r = op_add(ops, "/metadata/annotations/" TSI_ANN_INJECTED,
	         json_string("true"))) != TSI_OK)
		goto out;
	d->patch = ops;
	ops = NULL; /* transferred */
	r = TSI_OK;
out:
	if (r == TSI_ERR_ALLOC && d->allowed)
		d->alloc_failed = 1;
	json_decref(ops);
	free(canon);
}
