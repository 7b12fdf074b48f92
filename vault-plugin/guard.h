/*
 * guard.h - slots and deadlines for callers that send whole requests
 * (guard.c).
 */
#ifndef TSI_VAULT_GUARD_H
#define TSI_VAULT_GUARD_H

#include <microhttpd.h>

#include "tsi/buf.h"

struct vault;

struct vault_guard;
/* Starts the reaper (request_timeout, connection_limit from v->set);
 * before the MHD daemon. */
int vault_guard_start(struct vault *v);
/* After the MHD daemon has stopped. NULL guard is fine. */
void vault_guard_stop(struct vault *v);
/* For MHD_OPTION_NOTIFY_CONNECTION, with v as its closure. */
MHD_NotifyConnectionCallback vault_guard_notify(void);
/* The connection's request is complete (busy: no deadline), or its answer
 * is done (receiving again: the deadline restarts). */
void vault_guard_busy(struct vault *v, struct MHD_Connection *c);
void vault_guard_idle(struct vault *v, struct MHD_Connection *c);
/* Appends the connection gauges and counters (Prometheus text). */
int vault_guard_metrics(struct vault *v, struct tsi_buf *b);

#endif /* TSI_VAULT_GUARD_H */
