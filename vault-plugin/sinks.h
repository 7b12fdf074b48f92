/*
 * sinks.h - tsi-vault's audit sinks (sinks.c, docs/audit.md "Sinks"): the
 * audit_sinks setting, and the sinks started on the audit log.
 */
#ifndef TSI_VAULT_SINKS_H
#define TSI_VAULT_SINKS_H

#include <stddef.h>

#include "tsi/buf.h"

struct tsi_config;
struct vault;
struct vault_sinks_cfg;

/* The audit_sinks setting of c: *out NULL when absent, else
 * vault_sinks_cfg_free. TSI_ERR_CONFIG with "file:line: why" in err. */
int vault_sinks_parse(const struct tsi_config *c, struct vault_sinks_cfg **out,
    char *err, size_t errlen);
void vault_sinks_cfg_free(struct vault_sinks_cfg *sc); /* accepts NULL */
/* Starts the configured sinks on v->audit (open) with their positions in
 * DATA_DIR/audit-sinks; stop before tsi_audit_close. */
int vault_sinks_start(struct vault *v);
void vault_sinks_stop(struct vault *v);
void vault_sinks_reopen(struct vault *v); /* SIGHUP: file sinks */
/* Appends each sink's gauges and counters (Prometheus text). */
int vault_sinks_metrics(struct vault *v, struct tsi_buf *b);

#endif /* TSI_VAULT_SINKS_H */
