/*
 * The backend-neutral KV suite: every KV backend passes it, written only
 * against store.h (open by URL, then each operation and its errors). A
 * new backend adds one row to `backends` below
 * (docs/internals/add-a-storage-backend.md).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <ftw.h>
#include <unistd.h>

#include "store.h"
#include "tsi/err.h"

/*
 * One row per backend. fresh: the URL of a new, empty store (and what to
 * remove afterwards in *scratch, or ""); small: options under which the
 * store fills up after a few MiB (NULL: the backend cannot be made small,
 * the storage-full case is skipped).
 */
struct backend {
	const char *name;
	int (*fresh)(char *url, size_t urllen, char *scratch, size_t slen);
	const struct kv_store_opts *small;
};

static int
lmdb_fresh(char *url, size_t urllen, char *scratch, size_t slen)
{
	char tmpl[] = "/tmp/tsi-kvsuite-XXXXXX";
	int n;

	if (mkdtemp(tmpl) == NULL)
		return -1;
	n = snprintf(scratch, slen, "%s", tmpl);
	if (n < 0 || (size_t)n >= slen)
		return -1;
	n = snprintf(url, urllen, "lmdb://%s/kv", tmpl);
	return n < 0 || (size_t)n >= urllen ? -1 : 0;
}

static const struct kv_store_opts lmdb_small = { .map_size = 1 << 20 };

static const struct backend backends[] = {
	{ "lmdb", lmdb_fresh, &lmdb_small },
};

/* ---- fixture ---- */

struct fx {
	const struct backend *b;
	char url[512];
	char scratch[256];
	struct kv_store *s;
};

static const struct backend *current;

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->b = current;
	if (f->b->fresh(f->url, sizeof(f->url), f->scratch,
	        sizeof(f->scratch)) != 0 ||
	    kv_store_open(f->url, NULL, &f->s) != TSI_OK) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f->s != NULL)
		f->s->ops->close(f->s);
	if (f->scratch[0] != '\0')
		nftw(f->scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Seals as "<text>#<version>", so that a read shows which write it got. */
static int
seal(void *arg, uint64_t version, uint8_t **blob, size_t *len)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "%s#%llu", (const char *)arg,
	    (unsigned long long)version);

	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    (*blob = malloc((size_t)n)) == NULL)
		return TSI_ERR_INTERNAL;
	memcpy(*blob, buf, (size_t)n);
	*len = (size_t)n;
	return TSI_OK;
}

static int
seal_fails(void *arg, uint64_t version, uint8_t **blob, size_t *len)
{
	(void)arg;
	(void)version;
	(void)blob;
	(void)len;
	return TSI_ERR_CRYPTO;
}

#define T0 1764000000000000LL /* a fixed "now", microseconds */
#define SEC 1000000LL

static uint64_t
put(struct kv_store *s, const char *path, long long cas, const char *text,
    long long now)
{
	struct kv_version_meta m;

	memset(&m, 0, sizeof(m));
	assert_int_equal(s->ops->put(s, path, cas, seal, (void *)text, now, &m),
	    TSI_OK);
	assert_int_equal(m.created_us, now);
	assert_int_equal(m.deleted_us, 0);
	return m.version;
}

/* Reads version v at now: the value's text, or NULL when it reads as
 * deleted; *meta filled. */
static char *
get(struct kv_store *s, const char *path, uint64_t v, long long now,
    struct kv_version_meta *meta)
{
	uint8_t *blob = NULL;
	size_t len = 0;
	char *text;

	memset(meta, 0, sizeof(*meta));
	assert_int_equal(s->ops->get(s, path, v, now, meta, NULL, &blob, &len),
	    TSI_OK);
	if (blob == NULL)
		return NULL;
	assert_non_null(text = calloc(1, len + 1));
	memcpy(text, blob, len);
	free(blob);
	return text;
}

static void
get_is(struct kv_store *s, const char *path, uint64_t v, long long now,
    const char *want)
{
	struct kv_version_meta m;
	char *got = get(s, path, v, now, &m);

	if (want == NULL)
		assert_null(got);
	else {
		assert_non_null(got);
		assert_string_equal(got, want);
	}
	free(got);
}

static void
get_missing(struct kv_store *s, const char *path, uint64_t v)
{
	struct kv_version_meta m;
	uint8_t *blob = (uint8_t *)"sentinel";
	size_t len = 1;

	assert_int_equal(s->ops->get(s, path, v, T0, &m, NULL, &blob, &len),
	    TSI_ERR_NOT_FOUND);
	assert_null(blob);
}

/* ---- the suite ---- */

static void
test_open_by_url(void **state)
{
	struct fx *f = *state;
	struct kv_store *s = NULL;

	assert_string_equal(f->s->ops->name, f->b->name);
	assert_int_equal(kv_store_open("nosuch:///x", NULL, &s),
	    TSI_ERR_INVALID_ARG);
	assert_null(s);
	assert_int_equal(kv_store_open("lmdb://", NULL, &s),
	    TSI_ERR_INVALID_ARG);
	assert_int_equal(kv_store_open("/no/scheme", NULL, &s),
	    TSI_ERR_INVALID_ARG);
	assert_false(kv_store_url_ok("nosuch:///x"));
	assert_true(kv_store_url_ok(f->url));
}

static void
test_put_get(void **state)
{
	struct kv_store *s = ((struct fx *)*state)->s;
	struct kv_version_meta m;
	struct kv_meta pm;
	uint8_t *blob = NULL;
	size_t len = 0;

	get_missing(s, "a/b", 0);
	assert_int_equal(put(s, "a/b", -1, "one", T0), 1);
	assert_int_equal(put(s, "a/b", -1, "two", T0 + SEC), 2);
	get_is(s, "a/b", 0, T0 + 2 * SEC, "two#2");
	get_is(s, "a/b", 1, T0 + 2 * SEC, "one#1");
	get_missing(s, "a/b", 3);
	get_missing(s, "a/bc", 0);
	get_missing(s, "a", 0);
	/* The path's metadata comes with a read when asked for. */
	memset(&pm, 0, sizeof(pm));
	assert_int_equal(s->ops->get(s, "a/b", 1, T0, &m, &pm, &blob, &len),
	    TSI_OK);
	assert_int_equal(m.version, 1);
	assert_int_equal(m.created_us, T0);
	assert_int_equal(pm.current, 2);
	assert_int_equal(pm.n, 2);
	free(blob);
	kv_meta_clear(&pm);
	/* Metadata: versions oldest first, times kept. */
	assert_int_equal(s->ops->meta(s, "a/b", &pm), TSI_OK);
	assert_int_equal(pm.current, 2);
	assert_int_equal(pm.oldest, 1);
	assert_int_equal(pm.created_us, T0);
	assert_int_equal(pm.updated_us, T0 + SEC);
	assert_int_equal(pm.versions[0].version, 1);
	assert_int_equal(pm.versions[1].created_us, T0 + SEC);
	kv_meta_clear(&pm);
	assert_int_equal(s->ops->meta(s, "nope", &pm), TSI_ERR_NOT_FOUND);
	/* A seal that fails writes nothing. */
	assert_int_equal(s->ops->put(s, "a/b", -1, seal_fails, NULL, T0, &m),
	    TSI_ERR_CRYPTO);
	assert_int_equal(s->ops->put(s, "a/new", -1, seal_fails, NULL, T0, &m),
	    TSI_ERR_CRYPTO);
	get_missing(s, "a/new", 0);
	assert_int_equal(s->ops->meta(s, "a/new", &pm), TSI_ERR_NOT_FOUND);
	get_is(s, "a/b", 0, T0, "two#2");
}

static void
test_cas(void **state)
{
	struct kv_store *s = ((struct fx *)*state)->s;
	struct kv_version_meta m;
	struct kv_meta_cfg c;
	struct kv_mount_cfg mc;

	assert_int_equal(s->ops->put(s, "c", 1, seal, "x", T0, &m),
	    TSI_ERR_EXISTS);
	assert_int_equal(put(s, "c", 0, "x", T0), 1);
	assert_int_equal(s->ops->put(s, "c", 0, seal, "x", T0, &m),
	    TSI_ERR_EXISTS);
	assert_int_equal(s->ops->put(s, "c", 2, seal, "x", T0, &m),
	    TSI_ERR_EXISTS);
	assert_int_equal(put(s, "c", 1, "y", T0), 2);
	get_is(s, "c", 0, T0, "y#2");
	/* The path's cas_required refuses a write without cas. */
	memset(&c, 0, sizeof(c));
	c.set_cas_required = 1;
	c.cas_required = 1;
	assert_int_equal(s->ops->set_meta(s, "c", &c, T0), TSI_OK);
	assert_int_equal(s->ops->put(s, "c", -1, seal, "z", T0, &m),
	    TSI_ERR_DENIED);
	assert_int_equal(put(s, "c", 2, "z", T0), 3);
	/* The mount's cas_required holds for every path. */
	memset(&mc, 0, sizeof(mc));
	mc.cas_required = 1;
	assert_int_equal(s->ops->set_config(s, &mc), TSI_OK);
	assert_int_equal(s->ops->put(s, "other", -1, seal, "z", T0, &m),
	    TSI_ERR_DENIED);
	assert_int_equal(put(s, "other", 0, "z", T0), 1);
	mc.cas_required = 0;
	assert_int_equal(s->ops->set_config(s, &mc), TSI_OK);
	assert_int_equal(put(s, "other", -1, "w", T0), 2);
}

static void
test_delete_undelete_destroy(void **state)
{
	struct kv_store *s = ((struct fx *)*state)->s;
	struct kv_version_meta m;
	uint64_t v[] = { 1, 2, 99 };
	char *text;

	assert_int_equal(s->ops->soft_delete(s, "d", T0, &m),
	    TSI_ERR_NOT_FOUND);
	assert_int_equal(s->ops->versions(s, "d", KV_VOP_DELETE, v, 1, T0),
	    TSI_ERR_NOT_FOUND);
	put(s, "d", -1, "a", T0);
	put(s, "d", -1, "b", T0);
	put(s, "d", -1, "c", T0);
	/* Soft delete of the current version: it reads as deleted. */
	assert_int_equal(s->ops->soft_delete(s, "d", T0 + SEC, &m), TSI_OK);
	assert_int_equal(m.version, 3);
	assert_int_equal(m.deleted_us, T0 + SEC);
	text = get(s, "d", 0, T0 + 2 * SEC, &m);
	assert_null(text);
	assert_int_equal(m.deleted_us, T0 + SEC);
	assert_false(m.destroyed);
	/* Delete of listed versions; one the path lacks is skipped. */
	assert_int_equal(s->ops->versions(s, "d", KV_VOP_DELETE, v, 3,
	                     T0 + 2 * SEC),
	    TSI_OK);
	get_is(s, "d", 1, T0 + 3 * SEC, NULL);
	get_is(s, "d", 2, T0 + 3 * SEC, NULL);
	/* Undelete brings the value back. */
	assert_int_equal(s->ops->versions(s, "d", KV_VOP_UNDELETE, v, 1,
	                     T0 + 3 * SEC),
	    TSI_OK);
	get_is(s, "d", 1, T0 + 3 * SEC, "a#1");
	/* Destroy: marked, value gone, and no undelete brings it back. */
	assert_int_equal(s->ops->versions(s, "d", KV_VOP_DESTROY, v + 1, 1,
	                     T0 + 4 * SEC),
	    TSI_OK);
	text = get(s, "d", 2, T0 + 5 * SEC, &m);
	assert_null(text);
	assert_true(m.destroyed);
	assert_int_equal(s->ops->versions(s, "d", KV_VOP_UNDELETE, v + 1, 1,
	                     T0 + 5 * SEC),
	    TSI_OK);
	text = get(s, "d", 2, T0 + 5 * SEC, &m);
	assert_null(text);
	assert_true(m.destroyed);
	get_is(s, "d", 1, T0 + 5 * SEC, "a#1");
	/* A new version after a delete reads normally. */
	assert_int_equal(put(s, "d", -1, "e", T0 + 6 * SEC), 4);
	get_is(s, "d", 0, T0 + 6 * SEC, "e#4");
}

static void
test_max_versions(void **state)
{
	struct kv_store *s = ((struct fx *)*state)->s;
	struct kv_meta_cfg c;
	struct kv_mount_cfg mc;
	struct kv_meta m;
	char path[16];
	int i;

	/* The store's default is Vault's: 10. */
	for (i = 1; i <= 12; i++)
		put(s, "m/def", -1, "v", T0 + i);
	assert_int_equal(s->ops->meta(s, "m/def", &m), TSI_OK);
	assert_int_equal(m.n, 10);
	assert_int_equal(m.oldest, 3);
	assert_int_equal(m.versions[0].version, 3);
	kv_meta_clear(&m);
	get_missing(s, "m/def", 2);
	get_is(s, "m/def", 3, T0, "v#3");
	/* The path's own limit. */
	memset(&c, 0, sizeof(c));
	c.set_max_versions = 1;
	c.max_versions = 2;
	assert_int_equal(s->ops->set_meta(s, "m/own", &c, T0), TSI_OK);
	for (i = 1; i <= 4; i++)
		put(s, "m/own", -1, "v", T0 + i);
	assert_int_equal(s->ops->meta(s, "m/own", &m), TSI_OK);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.oldest, 3);
	assert_int_equal(m.current, 4);
	assert_int_equal(m.max_versions, 2);
	kv_meta_clear(&m);
	get_missing(s, "m/own", 1);
	get_missing(s, "m/own", 2);
	/* The mount's limit for paths without their own. */
	memset(&mc, 0, sizeof(mc));
	mc.max_versions = 3;
	assert_int_equal(s->ops->set_config(s, &mc), TSI_OK);
	for (i = 1; i <= 5; i++) {
		snprintf(path, sizeof(path), "m/mnt");
		put(s, path, -1, "v", T0 + i);
	}
	assert_int_equal(s->ops->meta(s, "m/mnt", &m), TSI_OK);
	assert_int_equal(m.n, 3);
	assert_int_equal(m.oldest, 3);
	kv_meta_clear(&m);
	/* The path's own limit still wins over the mount's. */
	put(s, "m/own", -1, "v", T0 + 9);
	assert_int_equal(s->ops->meta(s, "m/own", &m), TSI_OK);
	assert_int_equal(m.n, 2);
	kv_meta_clear(&m);
}

static void
test_delete_version_after(void **state)
{
	struct kv_store *s = ((struct fx *)*state)->s;
	struct kv_meta_cfg c;
	struct kv_mount_cfg mc;
	struct kv_version_meta m;
	char *text;

	/* Path setting: 10 s. Before it is due the deletion time shows and
	 * the value reads; once due the version reads as deleted. */
	memset(&c, 0, sizeof(c));
	c.set_delete_after = 1;
	c.delete_after_s = 10;
	assert_int_equal(s->ops->set_meta(s, "t/p", &c, T0), TSI_OK);
	put(s, "t/p", -1, "v", T0);
	text = get(s, "t/p", 0, T0 + 9 * SEC, &m);
	assert_non_null(text);
	assert_string_equal(text, "v#1");
	assert_int_equal(m.deleted_us, T0 + 10 * SEC);
	free(text);
	text = get(s, "t/p", 0, T0 + 10 * SEC, &m);
	assert_null(text);
	assert_int_equal(m.deleted_us, T0 + 10 * SEC);
	/* A later version has its own clock. */
	put(s, "t/p", -1, "w", T0 + 20 * SEC);
	get_is(s, "t/p", 0, T0 + 25 * SEC, "w#2");
	get_is(s, "t/p", 1, T0 + 25 * SEC, NULL);
	/* Without a setting nothing expires. */
	put(s, "t/none", -1, "v", T0);
	text = get(s, "t/none", 0, T0 + 86400 * SEC, &m);
	assert_non_null(text);
	assert_int_equal(m.deleted_us, 0);
	free(text);
	/* The mount's setting applies to paths without their own. */
	memset(&mc, 0, sizeof(mc));
	mc.delete_after_s = 60;
	assert_int_equal(s->ops->set_config(s, &mc), TSI_OK);
	get_is(s, "t/none", 0, T0 + 59 * SEC, "v#1");
	get_is(s, "t/none", 0, T0 + 60 * SEC, NULL);
	get_is(s, "t/p", 0, T0 + 29 * SEC, "w#2"); /* its own 10 s */
	get_is(s, "t/p", 0, T0 + 30 * SEC, NULL);
	/* An undelete does not revive a version past its time. */
	assert_int_equal(s->ops->versions(s, "t/none", KV_VOP_UNDELETE,
	                     (uint64_t[]){ 1 }, 1, T0 + 61 * SEC),
	    TSI_OK);
	get_is(s, "t/none", 0, T0 + 61 * SEC, NULL);
}

static void
cfg_pairs(struct kv_meta_cfg *c, const char *const *kv, size_t n, int merge)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	c->set_custom = 1;
	c->custom_merge = merge;
	c->ncustom = n;
	assert_non_null(c->custom = calloc(n + 1, sizeof(*c->custom)));
	for (i = 0; i < n; i++) {
		assert_non_null(c->custom[i].key = strdup(kv[2 * i]));
		if (kv[2 * i + 1] != NULL)
			assert_non_null(
			    c->custom[i].value = strdup(kv[2 * i + 1]));
	}
}

static void
test_settings_and_custom(void **state)
{
	struct kv_store *s = ((struct fx *)*state)->s;
	static const char *const first[] = { "tier", "b", "owner", "team-a",
		"zone", "z0" };
	static const char *const merge[] = { "owner", NULL, "zone", "z1", "new",
		"n", "absent", NULL };
	struct kv_meta_cfg c;
	struct kv_meta m;

	/* Settings on a path with no version create its metadata. */
	cfg_pairs(&c, first, 3, 0);
	c.set_max_versions = 1;
	c.max_versions = 4;
	c.set_delete_after = 1;
	c.delete_after_s = 90;
	assert_int_equal(s->ops->set_meta(s, "s/p", &c, T0), TSI_OK);
	kv_meta_cfg_clear(&c);
	assert_int_equal(s->ops->meta(s, "s/p", &m), TSI_OK);
	assert_int_equal(m.current, 0);
	assert_int_equal(m.n, 0);
	assert_int_equal(m.max_versions, 4);
	assert_int_equal(m.delete_after_s, 90);
	assert_int_equal(m.ncustom, 3);
	assert_string_equal(m.custom[0].key, "owner"); /* sorted */
	assert_string_equal(m.custom[2].value, "z0");
	kv_meta_clear(&m);
	get_missing(s, "s/p", 0);
	/* A merge: NULL removes, others replace or add; the rest stays. */
	cfg_pairs(&c, merge, 4, 1);
	assert_int_equal(s->ops->set_meta(s, "s/p", &c, T0 + SEC), TSI_OK);
	kv_meta_cfg_clear(&c);
	assert_int_equal(s->ops->meta(s, "s/p", &m), TSI_OK);
	assert_int_equal(m.ncustom, 3);
	assert_string_equal(m.custom[0].key, "new");
	assert_string_equal(m.custom[1].key, "tier");
	assert_string_equal(m.custom[2].key, "zone");
	assert_string_equal(m.custom[2].value, "z1");
	assert_int_equal(m.max_versions, 4); /* not given: kept */
	assert_int_equal(m.updated_us, T0 + SEC);
	kv_meta_clear(&m);
	/* A replace drops what it does not name. */
	cfg_pairs(&c, first, 1, 0);
	assert_int_equal(s->ops->set_meta(s, "s/p", &c, T0), TSI_OK);
	kv_meta_cfg_clear(&c);
	assert_int_equal(s->ops->meta(s, "s/p", &m), TSI_OK);
	assert_int_equal(m.ncustom, 1);
	assert_string_equal(m.custom[0].key, "tier");
	kv_meta_clear(&m);
	/* Writes keep the settings. */
	put(s, "s/p", -1, "v", T0);
	assert_int_equal(s->ops->meta(s, "s/p", &m), TSI_OK);
	assert_int_equal(m.ncustom, 1);
	assert_int_equal(m.max_versions, 4);
	kv_meta_clear(&m);
}

static void
test_remove(void **state)
{
	struct kv_store *s = ((struct fx *)*state)->s;
	struct kv_names l;
	struct kv_meta m;

	assert_int_equal(s->ops->remove(s, "r/x"), TSI_ERR_NOT_FOUND);
	put(s, "r/x", -1, "a", T0);
	put(s, "r/x", -1, "b", T0);
	put(s, "r/y", -1, "c", T0);
	assert_int_equal(s->ops->remove(s, "r/x"), TSI_OK);
	get_missing(s, "r/x", 0);
	get_missing(s, "r/x", 1);
	assert_int_equal(s->ops->meta(s, "r/x", &m), TSI_ERR_NOT_FOUND);
	assert_int_equal(s->ops->remove(s, "r/x"), TSI_ERR_NOT_FOUND);
	assert_int_equal(s->ops->list(s, "r/", 100, &l), TSI_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.name[0], "y");
	kv_names_clear(&l);
	/* Written again, it starts over at version 1. */
	assert_int_equal(put(s, "r/x", -1, "d", T0), 1);
	get_is(s, "r/y", 0, T0, "c#1");
}

static void
test_list(void **state)
{
	struct kv_store *s = ((struct fx *)*state)->s;
	static const char *const paths[] = { "l/b", "l/a/1", "l/a/2", "l/c/d/e",
		"l/ab", "lz", "m" };
	struct kv_names l;
	size_t i;

	assert_int_equal(s->ops->list(s, "", 100, &l), TSI_OK);
	assert_int_equal(l.n, 0);
	kv_names_clear(&l);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		put(s, paths[i], -1, "v", T0);
	assert_int_equal(s->ops->list(s, "l/", 100, &l), TSI_OK);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.name[0], "a/");
	assert_string_equal(l.name[1], "ab");
	assert_string_equal(l.name[2], "b");
	assert_string_equal(l.name[3], "c/");
	kv_names_clear(&l);
	assert_int_equal(s->ops->list(s, "", 100, &l), TSI_OK);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.name[0], "l/");
	assert_string_equal(l.name[1], "lz");
	assert_string_equal(l.name[2], "m");
	kv_names_clear(&l);
	assert_int_equal(s->ops->list(s, "l/", 2, &l), TSI_OK);
	assert_int_equal(l.n, 2);
	kv_names_clear(&l);
	assert_int_equal(s->ops->list(s, "l/c/d/", 100, &l), TSI_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.name[0], "e");
	kv_names_clear(&l);
	assert_int_equal(s->ops->list(s, "none/", 100, &l), TSI_OK);
	assert_int_equal(l.n, 0);
	kv_names_clear(&l);
}

static void
test_reopen(void **state)
{
	struct fx *f = *state;
	struct kv_meta_cfg c;
	struct kv_mount_cfg mc;
	struct kv_meta m;

	put(f->s, "p/a", -1, "one", T0);
	put(f->s, "p/a", -1, "two", T0);
	assert_int_equal(f->s->ops->versions(f->s, "p/a", KV_VOP_DESTROY,
	                     (uint64_t[]){ 1 }, 1, T0),
	    TSI_OK);
	cfg_pairs(&c, (const char *const[]){ "k", "v" }, 1, 0);
	c.set_cas_required = 1;
	c.cas_required = 1;
	assert_int_equal(f->s->ops->set_meta(f->s, "p/a", &c, T0), TSI_OK);
	kv_meta_cfg_clear(&c);
	memset(&mc, 0, sizeof(mc));
	mc.max_versions = 7;
	mc.delete_after_s = 3600;
	assert_int_equal(f->s->ops->set_config(f->s, &mc), TSI_OK);
	f->s->ops->close(f->s);
	f->s = NULL;
	assert_int_equal(kv_store_open(f->url, NULL, &f->s), TSI_OK);
	get_is(f->s, "p/a", 2, T0, "two#2");
	get_is(f->s, "p/a", 1, T0, NULL);
	assert_int_equal(f->s->ops->meta(f->s, "p/a", &m), TSI_OK);
	assert_true(m.versions[0].destroyed);
	assert_true(m.cas_required);
	assert_int_equal(m.ncustom, 1);
	assert_string_equal(m.custom[0].value, "v");
	kv_meta_clear(&m);
	memset(&mc, 0, sizeof(mc));
	assert_int_equal(f->s->ops->get_config(f->s, &mc), TSI_OK);
	assert_int_equal(mc.max_versions, 7);
	assert_int_equal(mc.delete_after_s, 3600);
	assert_false(mc.cas_required);
}

/* A full store refuses with TSI_ERR_STORE_FULL (the server's 503), and
 * keeps answering reads. */
static void
test_full(void **state)
{
	struct fx *f = *state;
	struct kv_version_meta m;
	char *big, path[32];
	int i, r = TSI_OK;

	if (f->b->small == NULL)
		skip();
	f->s->ops->close(f->s);
	f->s = NULL;
	assert_int_equal(kv_store_open(f->url, f->b->small, &f->s), TSI_OK);
	put(f->s, "first", -1, "kept", T0);
	assert_non_null(big = malloc(200));
	memset(big, 'x', 199);
	big[199] = '\0';
	/* Bounded: 1 MiB of 200-byte values fills well before 100000. */
	for (i = 0; i < 100000 && r == TSI_OK; i++) {
		snprintf(path, sizeof(path), "fill/%d", i);
		r = f->s->ops->put(f->s, path, -1, seal, big, T0, &m);
	}
	free(big);
	assert_int_equal(r, TSI_ERR_STORE_FULL);
	get_is(f->s, "first", 0, T0, "kept#1");
}

static const struct CMUnitTest suite[] = {
	cmocka_unit_test_setup_teardown(test_open_by_url, setup, teardown),
	cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
	cmocka_unit_test_setup_teardown(test_cas, setup, teardown),
	cmocka_unit_test_setup_teardown(test_delete_undelete_destroy, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_max_versions, setup, teardown),
	cmocka_unit_test_setup_teardown(test_delete_version_after, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_settings_and_custom, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
	cmocka_unit_test_setup_teardown(test_list, setup, teardown),
	cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
	cmocka_unit_test_setup_teardown(test_full, setup, teardown),
};

int
main(void)
{
	size_t i;
	int failed = 0;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		current = &backends[i];
		failed += _cmocka_run_group_tests(backends[i].name, suite,
		    sizeof(suite) / sizeof(suite[0]), NULL, NULL);
	}
	return failed != 0;
}
