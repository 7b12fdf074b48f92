/*
 * audit_backend.c - audit logs opened from a URL (docs/audit.md
 * "Backends"): the table of backends and the URL rule, and the reader
 * handle's calls, which go to its row's ops.
 *
 * The LMDB backend (audit_lmdb_writer.c) is the first row: the address is
 * an absolute directory path ("lmdb:///var/lib/tsi/audit"), and
 * tsi_audit_open(dir) is the same as tsi_audit_open_url("lmdb://" dir).
 */
#include "audit_backend.h"
#include "tsi/err.h"

#include <stdlib.h>
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

static int
reader_open_with(const struct tsi_audit_backend_ops *ops, const char *addr,
    struct tsi_audit_reader **out)
{
	struct tsi_audit_reader *r;
	int rc;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return TSI_ERR_ALLOC;
	r->ops = ops;
	if ((rc = ops->reader_open(addr, &r->be)) != TSI_OK) {
		free(r);
		return rc;
	}
	*out = r;
	return TSI_OK;
}

int
tsi_audit_reader_open(const char *dir, struct tsi_audit_reader **out)
{
	if (dir == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	*out = NULL;
	return reader_open_with(&audit_lmdb_backend, dir, out);
}

void
tsi_audit_reader_close(struct tsi_audit_reader *r)
{
	if (r == NULL)
		return;
	r->ops->reader_close(r->be);
	free(r);
}

int
tsi_audit_get(struct tsi_audit_reader *r, uint64_t seq, json_t **rec)
{
	if (r == NULL)
		return TSI_ERR_INVALID_ARG;
	return r->ops->get(r->be, seq, rec);
}

int
tsi_audit_query(struct tsi_audit_reader *r, const struct tsi_audit_query *q,
    int (*cb)(const json_t *rec, void *arg), void *arg, uint64_t *next_seq)
{
	return tsi_audit_query_cursor(r, q, cb, arg, next_seq, NULL);
}

int
tsi_audit_query_cursor(struct tsi_audit_reader *r,
    const struct tsi_audit_query *q, int (*cb)(const json_t *rec, void *arg),
    void *arg, uint64_t *next_seq, uint64_t *cursor)
{
	if (r == NULL)
		return TSI_ERR_INVALID_ARG;
	return r->ops->query(r->be, q, cb, arg, next_seq, cursor);
}

int
tsi_audit_reader_info(struct tsi_audit_reader *r, struct tsi_audit_info *info)
{
	if (r == NULL)
		return TSI_ERR_INVALID_ARG;
	return r->ops->info(r->be, info);
}

int
tsi_audit_verify_key(struct tsi_audit_reader *r, EVP_PKEY *trusted,
    struct tsi_audit_verify_result *res)
{
	if (r == NULL)
		return TSI_ERR_INVALID_ARG;
	return r->ops->verify(r->be, trusted, res);
}

int
tsi_audit_verify(struct tsi_audit_reader *r,
    struct tsi_audit_verify_result *res)
{
	return tsi_audit_verify_key(r, NULL, res);
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
	return reader_open_with(be, addr, out);
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
