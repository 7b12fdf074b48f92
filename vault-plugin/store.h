/*
 * store.h - the storage interface under KV v2.
 *
 * kv.c talks only to this interface, so that a replicated store can replace
 * LMDB (store_lmdb.c) without touching request handling. A store keeps, per
 * path, a list of versions; each version is an opaque sealed blob (kv.c
 * encrypts before calling put) plus its metadata. Every call is atomic on its
 * own: put reads the current version, checks CAS, seals and writes in one
 * transaction, so two writers never get the same version number.
 *
 * Paths given to a store are already validated by kv.c (no empty segments,
 * no "..", no control bytes, bounded length).
 */
#ifndef TSI_VAULT_STORE_H
#define TSI_VAULT_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define KV_PATH_MAX 512

struct kv_version_meta {
	uint64_t version;
	long long created_us;  /* unix microseconds */
	long long deleted_us;  /* 0 when not soft-deleted */
	int destroyed;
};

struct kv_meta {
	uint64_t current;      /* 0: the path has no versions */
	uint64_t oldest;
	long long created_us;
	long long updated_us;
	size_t n;              /* entries in versions, oldest first */
	struct kv_version_meta *versions;  /* owned; kv_meta_clear frees */
	/* Settings of the path (POST secret/metadata/P), Vault's names. */
	unsigned max_versions; /* 0: the store's */
	int cas_required;
	long long delete_after_s;  /* delete_version_after; 0: never */
	json_t *custom;        /* custom_metadata: string -> string, or NULL;
	                        * owned, kv_meta_clear releases */
};

/* A change of a path's settings; set_* say which fields are given. */
struct kv_meta_cfg {
	int set_max_versions, set_cas_required, set_delete_after;
	unsigned max_versions;
	int cas_required;
	long long delete_after_s;
	const json_t *custom;  /* NULL: unchanged; borrowed */
	int custom_merge;      /* 1: merged into the current one, a null value
	                        * removing its key (PATCH); 0: replaces it */
};

void kv_meta_clear(struct kv_meta *m);
/* store_lmdb.c: parses a path's stored metadata (JSON, as the LMDB store
 * writes it). TSI_ERR_STORE when it is not that shape. out: kv_meta_clear. */
int kv_meta_decode(const void *text, size_t len, struct kv_meta *out);
/* store_lmdb.c: the stored form of m. *text: malloc'd, caller frees. */
int kv_meta_encode(const struct kv_meta *m, char **text);

/* Produces the blob stored for version (the store passes the version it is
 * about to write, so that it can be bound into the ciphertext).
 * *blob: malloc'd; the store takes ownership and frees it with tsi_freezero. */
typedef int kv_seal_fn(void *arg, uint64_t version, uint8_t **blob,
    size_t *len);

struct kv_store;

/* What versions() does to each listed version. */
enum kv_vop {
	KV_VOP_DELETE,    /* soft delete: kept, marked deleted */
	KV_VOP_UNDELETE,  /* clears a soft delete (not a destroy) */
	KV_VOP_DESTROY,   /* the sealed value removed, marked destroyed */
};

struct kv_store_ops {
	const char *name;
	/* Appends a new version. cas < 0: unconditional; cas == 0: only when
	 * the path has no version; cas > 0: only when the current version is
	 * cas (TSI_ERR_EXISTS otherwise). cas < 0 on a path whose settings
	 * have cas_required: TSI_ERR_DENIED. Versions beyond max_versions
	 * (the path's, else the store's; oldest first) are removed. *out
	 * describes the new version. */
	int (*put)(struct kv_store *s, const char *path, long long cas,
	    kv_seal_fn *seal, void *arg, long long now_us,
	    struct kv_version_meta *out);
	/* Reads version (0: the current one). TSI_ERR_NOT_FOUND when the path
	 * or the version does not exist. A soft-deleted or destroyed version
	 * returns TSI_OK with meta filled and *blob NULL.
	 * *blob: caller frees with tsi_freezero(*blob, *len). */
	int (*get)(struct kv_store *s, const char *path, uint64_t version,
	    struct kv_version_meta *meta, uint8_t **blob, size_t *len);
	/* All metadata of a path; TSI_ERR_NOT_FOUND when it has none.
	 * out: kv_meta_clear. */
	int (*meta)(struct kv_store *s, const char *path, struct kv_meta *out);
	/* Soft-deletes the current version (kept, marked deleted).
	 * TSI_ERR_NOT_FOUND when the path has no version. */
	int (*soft_delete)(struct kv_store *s, const char *path,
	    long long now_us, struct kv_version_meta *out);
	/* Applies op to each listed version of path, in one transaction;
	 * versions the path does not hold are skipped, as Vault does.
	 * Destroy removes the sealed value from the store (its bytes are no
	 * longer reachable from the database), not only the mark.
	 * TSI_ERR_NOT_FOUND when the path has no metadata. v: borrowed. */
	int (*versions)(struct kv_store *s, const char *path, enum kv_vop op,
	    const uint64_t *v, size_t n, long long now_us);
	/* Changes the settings of path, creating its metadata (with no
	 * version) when it has none. c: borrowed. */
	int (*set_meta)(struct kv_store *s, const char *path,
	    const struct kv_meta_cfg *c, long long now_us);
	/* Removes path: its metadata and every version's sealed value.
	 * TSI_ERR_NOT_FOUND when it has none. */
	int (*remove)(struct kv_store *s, const char *path);
	/* Immediate children of prefix ("" or ending in '/'): names, with a
	 * trailing '/' for folders, sorted, at most max.
	 * *keys: JSON array, caller json_decref. Empty array when none. */
	int (*list)(struct kv_store *s, const char *prefix, size_t max,
	    json_t **keys);
	void (*close)(struct kv_store *s);
};

struct kv_store {
	const struct kv_store_ops *ops;
};

struct kv_lmdb_opts {
	size_t map_size;        /* bytes; 0: 1 GiB */
	unsigned max_versions;  /* 0: 10 (Vault's default) */
	unsigned max_readers;   /* 0: 256 */
};

/* Opens (creating) the LMDB store in dir (created 0700 if missing).
 * *out: close with out->ops->close. */
int kv_store_lmdb_open(const char *dir, const struct kv_lmdb_opts *opts,
    struct kv_store **out);

#endif /* TSI_VAULT_STORE_H */
