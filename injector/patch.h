/*
 * patch.h - internal to tsi-injector: the decision record and the JSONPatch
 * builder for a pod that asks for secrets.
 */
#ifndef TSI_INJECTOR_PATCH_H
#define TSI_INJECTOR_PATCH_H

#include "injector.h"

#include <jansson.h>

struct tsi_injector_decision {
	int allowed;
	int code; /* HTTP-like code in response.status when refused */
	int alloc_failed;
	json_t *patch;    /* owned; NULL: no patch */
	char reason[512]; /* shown to the pod's author when refused */
};

/* Marks d refused with code and a formatted reason. */
void tsi_injector_refuse(struct tsi_injector_decision *d, int code,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The string value of annotation key of pod (borrowed from pod), NULL when
 * absent or not a string; *present (may be NULL) tells whether it exists. */
const char *tsi_injector_annotation(const json_t *pod, const char *key,
    int *present);

/* For a CREATE of pod (borrowed): leaves d allowed without a patch when the
 * pod does not ask for secrets, sets d->patch when it does, or refuses. */
void tsi_injector_patch_build(const struct tsi_injector_conf *c,
    const json_t *pod, struct tsi_injector_decision *d);

#endif /* TSI_INJECTOR_PATCH_H */
