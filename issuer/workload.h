/*
 * workload.h - what the issuer learned about a caller from its peer
 * credentials (never from what the caller says). Owned by whoever holds it;
 * every string is owned by the struct.
 */
#ifndef TSI_ISSUER_WORKLOAD_H
#define TSI_ISSUER_WORKLOAD_H

#include <stddef.h>
#include <sys/types.h>

enum tsi_workload_kind {
	TSI_WORKLOAD_K8S = 0,
	TSI_WORKLOAD_UNIX = 1
};

#define TSI_WORKLOAD_MAX_IMAGES 64

struct tsi_workload {
	enum tsi_workload_kind kind;
	/* Kubernetes workloads */
	char *namespace;
	char *pod;
	char *service_account;
	char *container; /* the calling container's name */
	/* host workloads */
	uid_t uid;
	char *exe;
	/* both: "sha256:<64 hex>", sorted, no duplicates */
	char *images[TSI_WORKLOAD_MAX_IMAGES];
	size_t n_images;
	/* image references as named (pod spec order, no duplicates) */
	char *image_names[TSI_WORKLOAD_MAX_IMAGES];
	size_t n_image_names;
};

/* A zeroed workload of the given kind. NULL when out of memory.
 * Caller frees with tsi_workload_free. */
struct tsi_workload *tsi_workload_new(enum tsi_workload_kind kind);

/* Accepts NULL. */
void tsi_workload_free(struct tsi_workload *w);

/* Adds a digest (must be sha256:<64 lower hex>) keeping the list sorted and
 * unique. TSI_ERR_TOO_LARGE past TSI_WORKLOAD_MAX_IMAGES. */
int tsi_workload_add_image(struct tsi_workload *w, const char *digest);

/* Appends an image reference unless already present. */
int tsi_workload_add_image_name(struct tsi_workload *w, const char *name);

/* Normalises an image id as runtimes report it ("sha256:<hex>",
 * "docker-pullable://repo@sha256:<hex>", "repo@sha256:<HEX>") to
 * "sha256:<64 lower hex>". out must hold 72 bytes. TSI_ERR_PARSE when there
 * is no sha256 digest at the end. */
int tsi_image_digest_normalize(const char *image_id, char out[72]);

#endif /* TSI_ISSUER_WORKLOAD_H */
