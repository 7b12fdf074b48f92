/*
 * cgroup.c - the container id of a process, from /proc/<pid>/cgroup.
 *
 * Runtimes name the leaf cgroup after the container:
 *   containerd (systemd driver)  .../cri-containerd-<64hex>.scope
 *   containerd/cgroupfs, k8s v1  /kubepods/<qos>/pod<uid>/<64hex>
 *   CRI-O                        .../crio-<64hex>.scope
 *   docker                       .../docker-<64hex>.scope, /docker/<64hex>
 * The deepest matching component of each line wins; all lines that name a
 * container must name the same one.
 */
#include "issuer/resolve.h"

#include "tsi/err.h"

#include <string.h>

static int
is_hex64(const char *p, size_t n)
{
	size_t i;

	if (n != 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
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

int
tsi_cgroup_container_id(const char *text, size_t len, char id[65])
{
	const char *line = text, *end = text + len;
	int found = 0;

	if (text == NULL || id == NULL)
		return TSI_ERR_INVALID_ARG;
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *le = nl ? nl : end;
		const char *c1, *c2, *path, *comp, *best = NULL;

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
		for (comp = path; comp < le;) {
			const char *slash = memchr(comp, '/', (size_t)(le - comp));
			const char *ce = slash ? slash : le;
			const char *cid = component_id(comp, (size_t)(ce - comp));

			if (cid != NULL)
				best = cid;
			comp = ce + 1;
		}
		if (best != NULL) {
			if (found && memcmp(id, best, 64) != 0)
				return TSI_ERR_PARSE;
			memcpy(id, best, 64);
			id[64] = '\0';
			found = 1;
		}
		line = le + 1;
	}
	return found ? TSI_OK : TSI_ERR_NOT_FOUND;
}
