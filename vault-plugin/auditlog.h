/*
 * auditlog.h - what tsi-vault writes to the audit log (auditlog.c).
 */
#ifndef TSI_VAULT_AUDITLOG_H
#define TSI_VAULT_AUDITLOG_H

#include <jansson.h>
#include <stdint.h>

#include "http.h"

struct vault;

struct vault_audit_rec {
	const char *op; /* login, read, write, list, delete, patch,
	                          * undelete, destroy, ... */
	const char *path;
	long long version;    /* 0: none */
	const char *decision; /* allow, deny, error */
	const char *rule;
	const char *reason;
	const json_t *claims; /* NULL: {} */
	const char *accessor; /* NULL: "" */
	unsigned status;
	/* A change (write, delete) is recorded twice: its decision before
	 * the store is touched (phase "decision", no status: the outcome is
	 * not known yet) and its outcome after (phase "outcome", the status
	 * answered, ref_seq the decision's seq). NULL: a one-record decision. */
	const char *phase;
	uint64_t ref_seq;    /* 0: none */
	uint64_t *seq_out;   /* NULL, or receives the record's seq (the
	                          * waiting path only) */
	const json_t *extra; /* NULL, or an object whose members are
	                          * added to the record (borrowed) */
};
/* Appends the record (with the request's id and remote address) and waits
 * until it is durable. TSI_ERR_AUDIT: answer 503, release nothing.
 * For a request with audit_async set (reads and logins on MHD's thread),
 * the first record is submitted instead: the connection is suspended,
 * TSI_OK returned at once, and the server sends the answer the handler
 * then makes only once the record is durable (503 otherwise). */
int vault_audit(struct vault_request *r, const struct vault_audit_rec *rec);
/* The aggregate records of failed logins refused by the per-source limit
 * whose window ended (vault_limiter_drain), submitted without waiting. */
void vault_audit_throttled(struct vault_request *r);
/* 503 {"errors":["audit log unavailable"]}. */
int vault_respond_audit_failed(struct vault_request *r);
/* Audit records whose callback is still to come (requests with
 * audit_async): vault_audit counts them; the server waits for none to be
 * left before it stops, and from then on vault_audit waits instead. */
void vault_audit_async_init(struct vault *v);
void vault_audit_async_quiesce(struct vault *v);

#endif /* TSI_VAULT_AUDITLOG_H */
