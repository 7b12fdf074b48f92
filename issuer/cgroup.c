/*
 * cgroup.c - the container id of a process, from /proc/<pid>/cgroup.
 *
 * Runtimes name the leaf cgroup they make for a container after it:
 *   containerd (systemd driver)  .../cri-containerd-<64hex>.scope
 *   containerd/cgroupfs, k8s v1  /kubepods/<qos>/pod<uid>/<64hex>
 *   CRI-O                        .../crio-<64hex>.scope
 *   docker                       .../docker-<64hex>.scope, /docker/<64hex>
 * A container that may make cgroups under its own (a privileged pod, a
 * systemd-in-container runtime) can name a child after another container:
 * .../cri-containerd-<B>.scope/<A>. Only the runtime's own component counts,
 * so a path naming two container ids is refused rather than guessed at;
 * anything below the one id (a child cgroup with another name) is still
 * that container. On cgroup v1 every controller line must name the same
 * path: a process moved in one hierarchy only is refused. The unified line
 * of a hybrid host ("0::") must either be that path or name no container
 * (systemd's own tracking, "0::/").
 */
#include "issuer/proc.h"

#include "tsi/err.h"

#include <string.h>

static int
is_hex64(const char *p, size_t n)
{
	size_t i;

	if (n != 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		        (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

/* The container id named by one path component, or NULL. */
static const char *
component_id(const char *c, size_t n)
{
	static const char *const prefixes[] = { "cri-containerd-", "crio-",
		"docker-", "libpod-", NULL };
	const char *const *p;
	const char *suffix = ".scope";
	size_t sl = strlen(suffix);

	if (is_hex64(c, n))
		return c;
	if (n < sl || memcmp(c + n - sl, suffix, sl) != 0)
		return NULL;
	for (p = prefixes; *p != NULL; p++) {
		size_t pl = strlen(*p);
		if (n > pl + sl && memcmp(c, *p, pl) == 0 &&
		    is_hex64(c + pl, n - pl - sl))
			return c + pl;
	}
	return NULL;
}

/* The one container id of a path: TSI_OK with *id set, TSI_ERR_NOT_FOUND
 * when it names none, TSI_ERR_PARSE when it names more than one. */
static int
path_id(const char *path, const char *end, const char **id)
{
	const char *comp, *found = NULL;

	for (comp = path; comp < end;) {
		const char *slash = memchr(comp, '/', (size_t)(end - comp));
		const char *ce = slash ? slash : end;
		const char *cid = component_id(comp, (size_t)(ce - comp));

		if (cid != NULL) {
			if (found != NULL)
				return TSI_ERR_PARSE; /* nested */
			found = cid;
		}
		comp = ce + 1;
	}
	if (found == NULL)
		return TSI_ERR_NOT_FOUND;
	*id = found;
	return TSI_OK;
}

int
tsi_cgroup_container_id(const char *text, size_t len, char id[65])
{
	const char *line = text, *end = text + len;
	const char *v1 = NULL, *v1_end = NULL, *v2 = NULL, *v2_end = NULL;
	const char *cid = NULL;
	int r, n_v2 = 0;

	if (text == NULL || id == NULL)
		return TSI_ERR_INVALID_ARG;
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *le = nl ? nl : end;
		const char *c1, *c2, *path;

		if (le == line) {
			line = le + 1;
			continue;
		}
		/* hierarchy-id ':' controllers ':' path */
		if ((c1 = memchr(line, ':', (size_t)(le - line))) == NULL ||
		    (c2 = memchr(c1 + 1, ':', (size_t)(le - c1 - 1))) == NULL ||
		    c2 + 1 >= le || c2[1] != '/')
			return TSI_ERR_PARSE;
		path = c2 + 1;
		if (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1) {
			if (n_v2++ > 0)
				return TSI_ERR_PARSE;
			v2 = path;
			v2_end = le;
		} else if (v1 == NULL) {
			v1 = path;
			v1_end = le;
		} else if (le - path != v1_end - v1 ||
		    memcmp(path, v1, (size_t)(le - path)) != 0)
			return TSI_ERR_PARSE; /* controllers disagree */
		line = le + 1;
	}
	if (v1 != NULL) {
		if ((r = path_id(v1, v1_end, &cid)) == TSI_ERR_PARSE)
			return r;
		/* The unified line of a hybrid host: the same path, or none
		 * of a container at all. */
		if (v2 != NULL &&
		    (v2_end - v2 != v1_end - v1 ||
		        memcmp(v2, v1, (size_t)(v1_end - v1)) != 0)) {
			const char *other;
			if (path_id(v2, v2_end, &other) != TSI_ERR_NOT_FOUND)
				return TSI_ERR_PARSE;
		}
	} else if (v2 != NULL)
		r = path_id(v2, v2_end, &cid);
	else
		r = TSI_ERR_NOT_FOUND;
	if (r != TSI_OK)
		return r;
	memcpy(id, cid, 64);
	id[64] = '\0';
	return TSI_OK;
}
