/*
 * monitor.h - a background thread that probes the TPM every
 * TSI_MONITOR_INTERVAL_MS (reconnecting when it is back) and rotates the
 * session key when due. The API refuses tokens while the last probe failed,
 * so a node that lost its TPM stops vouching within one interval even in
 * delegated mode.
 */
#ifndef TSI_ISSUER_MONITOR_H
#define TSI_ISSUER_MONITOR_H

#include <stddef.h>

#include "issuer/mint.h"
#include "issuer/tpm.h"

#define TSI_MONITOR_INTERVAL_MS 250
#define TSI_MONITOR_STALE_MS 900 /* no probe result for longer: unavailable */

struct tsi_monitor;

/* tpm and minter are borrowed until tsi_monitor_stop. The first probe runs
 * before this returns. *out: tsi_monitor_stop. */
int tsi_monitor_start(struct tsi_tpm *tpm, struct tsi_minter *minter,
    struct tsi_monitor **out);

/* Stops and joins the thread, frees. Accepts NULL. */
void tsi_monitor_stop(struct tsi_monitor *m);

/* TSI_OK when the last probe succeeded; else its error and reason. */
int tsi_monitor_status(struct tsi_monitor *m, char *reason, size_t len);

/* Records a failure seen elsewhere (a signing call) at once. */
void tsi_monitor_report(struct tsi_monitor *m, int err, const char *reason);

#endif /* TSI_ISSUER_MONITOR_H */
