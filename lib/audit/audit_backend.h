/*
 * audit_backend.h - the table of audit log backends (not a public header).
 *
 * A log is named by a URL whose scheme picks a row of audit_backends[]
 * (lib/audit/audit_backend.c); the rest of the URL is the backend's own address
 * ("lmdb:///var/lib/tsi/audit": a directory). Adding a backend is a row
 * here and its file; tests/unit/audit/test_backend.c, written against the
 * public interface, is the suite every row must pass (one line there).
 */
#ifndef TSI_AUDIT_BACKEND_H
#define TSI_AUDIT_BACKEND_H

#include "tsi/audit.h"

struct tsi_audit_backend_ops {
	const char *scheme;   /* "lmdb" */
	/* tsi_audit_open / tsi_audit_reader_open of the address (borrowed
	 * for the call); the same contracts */
	int (*open)(const char *addr, const struct tsi_audit_opts *opts,
	    struct tsi_audit **out);
	int (*reader_open)(const char *addr, struct tsi_audit_reader **out);
	/* 1 when a log is stored at addr, without opening it */
	int (*exists)(const char *addr);
};

/* The row for url's scheme and, in *addr, where the address starts in
 * url; NULL when the scheme is unknown or the address malformed. */
const struct tsi_audit_backend_ops *audit_backend_find(const char *url,
    const char **addr);

#endif /* TSI_AUDIT_BACKEND_H */
