/*
 * audit_backend.c - audit logs opened from a URL (docs/audit.md
 * "Backends"): the table of backends and the URL rule.
 *
 * The LMDB backend (audit_lmdb_writer.c) is the first row: the address is
 * an absolute directory path ("lmdb:///var/lib/tsi/audit"), and
 * tsi_audit_open(dir) is the same as tsi_audit_open_url("lmdb://" dir).
 */
#include "audit_backend.h"
#include "tsi/err.h"

#include <string.h>

static const struct tsi_audit_backend_ops *const audit_backends[] = {
	&audit_lmdb_backend,
};

const struct tsi_audit_backend_ops *
audit_backend_find(const char *url, const char **addr)
{
	size_t i, n;

	if (url == NULL)
		return NULL;
	for (i = 0; i < sizeof(audit_backends) / sizeof(audit_backends[0]);
	    i++) {
		n = strlen(audit_backends[i]->scheme);
		if (strncmp(url, audit_backends[i]->scheme, n) != 0 ||
		    strncmp(url + n, "://", 3) != 0)
			continue;
		/* "scheme:///abs/path": no host part, an absolute path */
		if (url[n + 3] != '/')
			return NULL;
		*addr = url + n + 3;
		return audit_backends[i];
	}
	return NULL;
}

int
tsi_audit_open_url(const char *url, const struct tsi_audit_opts *opts,
    struct tsi_audit **out)
{
	const struct tsi_audit_backend_ops *be;
	const char *addr = NULL;

	if (out == NULL)
		return TSI_ERR_INVALID_ARG;
	*out = NULL;
	if ((be = audit_backend_find(url, &addr)) == NULL)
		return TSI_ERR_INVALID_ARG;
	return audit_open_backend(be, addr, opts, out);
}

int
tsi_audit_reader_open_url(const char *url, struct tsi_audit_reader **out)
{
	const struct tsi_audit_backend_ops *be;
	const char *addr = NULL;

	if (out == NULL)
		return TSI_ERR_INVALID_ARG;
	*out = NULL;
	if ((be = audit_backend_find(url, &addr)) == NULL)
		return TSI_ERR_INVALID_ARG;
	return be->reader_open(addr, out);
}

int
tsi_audit_exists_url(const char *url)
{
	const struct tsi_audit_backend_ops *be;
	const char *addr = NULL;

	if ((be = audit_backend_find(url, &addr)) == NULL)
		return 0;
	return be->exists(addr);
}
