/*
 * store.h - the storage interface under KV v2, in curl's vtls spirit.
 *
 * kv.c talks only to this interface; a backend is one file that fills a
 * struct kv_store_ops and one row of the table in store.c, picked by the
 * scheme of the URL given to kv_store_open ("lmdb:///var/lib/tsi/kv"; a
 * "postgresql://" row is the next one). docs/internals/add-a-storage-backend.md
 * says how to add one and which suite it must pass.
 *
 * A store keeps, per path, a list of versions; each version is an opaque
 * sealed blob (kv.c encrypts before calling put) plus its metadata. The
 * interface speaks bytes and plain structs, never a JSON library's values,
 * so that a backend stores them however it likes. Every call is atomic on
 * its own: put reads the current version, checks CAS, seals and writes in
 * one transaction, so two writers never get the same version number.
 *
 * Paths given to a store are already validated by kv.c (no empty segments,
 * no "..", no control bytes, bounded length).
 */
#ifndef TSI_VAULT_STORE_H
#define TSI_VAULT_STORE_H

#include <stddef.h>
#include <stdint.h>

#define KV_PATH_MAX 512

struct kv_version_meta {
	uint64_t version;
	long long created_us; /* unix microseconds */
	long long deleted_us; /* 0 when not soft-deleted */
	int destroyed;
};

/* One custom_metadata entry; both strings owned by the struct holding
 * the array. In a kv_meta_cfg of a merge, value NULL removes key. */
struct kv_pair {
	char *key;
	char *value;
};

struct kv_meta {
	uint64_t current; /* 0: the path has no versions */
	uint64_t oldest;
	long long created_us;
	long long updated_us;
	size_t n; /* entries in versions, oldest first */
	struct kv_version_meta *versions; /* owned; kv_meta_clear frees */
	/* Settings of the path (POST secret/metadata/P), Vault's names. */
	unsigned max_versions; /* 0: the mount's */
	int cas_required;
	long long delete_after_s; /* delete_version_after; 0: the mount's */
	size_t ncustom;           /* custom_metadata, sorted by key */
	struct kv_pair *custom;   /* owned; kv_meta_clear frees */
};

/* A change of a path's settings; set_* say which fields are given. */
struct kv_meta_cfg {
	int set_max_versions, set_cas_required, set_delete_after, set_custom;
	unsigned max_versions;
	int cas_required;
	long long delete_after_s;
	size_t ncustom;
	struct kv_pair *custom; /* owned; kv_meta_cfg_clear frees */
	int custom_merge;       /* 1: merged into the current one, a NULL value
	                        * removing its key (PATCH); 0: replaces it */
};

/* The mount's settings (secret/config): defaults for every path. */
struct kv_mount_cfg {
	unsigned
	    max_versions; /* 0: the store's (the server's kv_max_versions) */
	int cas_required;
	long long delete_after_s; /* 0: never */
};

/* A listing: names, owned; kv_names_clear frees. */
struct kv_names {
	size_t n;
	char **name;
};

/* store.c. Each accepts NULL and leaves the struct zeroed. */
void kv_meta_clear(struct kv_meta *m);
void kv_meta_cfg_clear(struct kv_meta_cfg *c);
void kv_names_clear(struct kv_names *l);
/* Copies n pairs (value NULL kept as NULL). *out: free with kv_pairs_free. */
int kv_pairs_dup(const struct kv_pair *p, size_t n, struct kv_pair **out);
void kv_pairs_free(struct kv_pair *p, size_t n);
/* The version's effective deletion time: its soft delete, else (when
 * delete_after_s > 0) created + delete_after_s; 0 when neither. */
long long kv_deletion_us(const struct kv_version_meta *v,
    long long delete_after_s);
/* The delete_version_after in force for a path: its own, else the
 * mount's. */
long long kv_delete_after(const struct kv_meta *m,
    const struct kv_mount_cfg *c);

/* Produces the blob stored for version (the store passes the version it is
 * about to write, so that it can be bound into the ciphertext).
 * *blob: malloc'd; the store takes ownership and frees it with tsi_freezero. */
typedef int kv_seal_fn(void *arg, uint64_t version, uint8_t **blob,
    size_t *len);

struct kv_store;

/* What versions() does to each listed version. */
enum kv_vop {
	KV_VOP_DELETE,   /* soft delete: kept, marked deleted */
	KV_VOP_UNDELETE, /* clears a soft delete (not a destroy) */
	KV_VOP_DESTROY,  /* the sealed value removed, marked destroyed */
};

struct kv_store_ops {
	const char *name;
	/* Appends a new version. cas < 0: unconditional; cas == 0: only when
	 * the path has no version; cas > 0: only when the current version is
	 * cas (TSI_ERR_EXISTS otherwise). cas < 0 when the path's or the
	 * mount's settings have cas_required: TSI_ERR_DENIED. Versions
	 * beyond max_versions (the path's, else the mount's, else the
	 * store's; oldest first) are removed. *out describes the new
	 * version. TSI_ERR_STORE_FULL when the store has no room. */
	int (*put)(struct kv_store *s, const char *path, long long cas,
	    kv_seal_fn *seal, void *arg, long long now_us,
	    struct kv_version_meta *out);
	/* Reads version (0: the current one) as of now_us.
	 * TSI_ERR_NOT_FOUND when the path or the version does not exist.
	 * meta->deleted_us is kv_deletion_us under the delete_version_after
	 * in force (kv_delete_after), which may lie in the future. A
	 * soft-deleted or destroyed version, or one whose deletion time has
	 * come, returns TSI_OK with meta filled and *blob NULL.
	 * path_meta (may be NULL): the path's metadata, kv_meta_clear.
	 * *blob: caller frees with tsi_freezero(*blob, *len). */
	int (*get)(struct kv_store *s, const char *path, uint64_t version,
	    long long now_us, struct kv_version_meta *meta,
	    struct kv_meta *path_meta, uint8_t **blob, size_t *len);
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
	 * trailing '/' for folders, sorted, at most max. An empty listing
	 * when none. out: kv_names_clear. */
	int (*list)(struct kv_store *s, const char *prefix, size_t max,
	    struct kv_names *out);
	/* The mount's settings; all zero when never set. */
	int (*get_config)(struct kv_store *s, struct kv_mount_cfg *out);
	/* Replaces the mount's settings. c: borrowed. */
	int (*set_config)(struct kv_store *s, const struct kv_mount_cfg *c);
	void (*close)(struct kv_store *s); /* accepts NULL */
};

struct kv_store {
	const struct kv_store_ops *ops;
};

/* Options every backend reads (each ignores what it has no use for). */
struct kv_store_opts {
	size_t map_size;       /* LMDB: bytes of the map; 0: 1 GiB */
	unsigned max_versions; /* 0: 10 (Vault's default) */
	unsigned max_readers;  /* LMDB: reader slots; 0: 256 */
};

/*
 * One row per backend: the URL scheme it answers and how it opens. where
 * is the URL after "scheme://" (for lmdb, the directory: "lmdb:///var/x"
 * gives "/var/x").
 */
struct kv_backend {
	const char *scheme;
	int (*open)(const char *where, const struct kv_store_opts *opts,
	    struct kv_store **out);
};

/* store_lmdb.c */
extern const struct kv_backend kv_backend_lmdb;

/* Opens the store named by url ("lmdb:///dir"; the directory is created
 * 0700 when missing). TSI_ERR_INVALID_ARG for a URL no backend takes.
 * opts may be NULL. *out: close with (*out)->ops->close. */
int kv_store_open(const char *url, const struct kv_store_opts *opts,
    struct kv_store **out);

/* Nonzero when a backend takes url's scheme and the rest is not empty
 * (what a configuration check can know without opening it). */
int kv_store_url_ok(const char *url);

/* The URL of the default store under data_dir ("lmdb://<data_dir>/kv").
 * *url: malloc'd, caller frees. */
int kv_store_default_url(const char *data_dir, char **url);

#endif /* TSI_VAULT_STORE_H */
