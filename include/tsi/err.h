/*
 * err.h - the one error type of tsi.
 *
 * Every function that can fail returns an int that is TSI_OK or one of the
 * negative TSI_ERR_* codes below. The numbers are fixed: they appear in logs
 * and may be compared by tools. Library failures are wrapped into these codes;
 * their detail (OpenSSL error queue, Tss2_RC_Decode text, LMDB strerror) goes
 * to the log, never into an HTTP body.
 */
#ifndef TSI_ERR_H
#define TSI_ERR_H

#include <stddef.h>

enum tsi_err {
	TSI_OK = 0,
	TSI_ERR_INTERNAL = -1,    /* a bug or an impossible state */
	TSI_ERR_ALLOC = -2,       /* out of memory */
	TSI_ERR_INVALID_ARG = -3, /* caller passed something unusable */
	TSI_ERR_TOO_LARGE = -4,   /* input over its limit */
	TSI_ERR_PARSE = -5,  /* malformed input (JSON, PEM, base64url, ...) */
	TSI_ERR_CONFIG = -6, /* bad configuration file or setting */
	TSI_ERR_IO = -7,     /* file or socket I/O failed */
	TSI_ERR_CRYPTO = -8, /* a cryptographic operation failed */
	TSI_ERR_TPM = -9,    /* the TPM answered with an error */
	TSI_ERR_TPM_UNAVAILABLE =
	    -10,                 /* the TPM cannot be reached (retry later) */
	TSI_ERR_NOT_FOUND = -11, /* no such object */
	TSI_ERR_DENIED = -12,    /* policy or authentication said no */
	TSI_ERR_EXPIRED = -13,   /* a time bound does not hold */
	TSI_ERR_BAD_TOKEN = -14, /* a JWT failed verification */
	TSI_ERR_BAD_CERT = -15, /* a certificate or chain failed verification */
	TSI_ERR_STORE = -16,    /* the LMDB store failed */
	TSI_ERR_STORE_FULL = -17,  /* the store (map or disk) is full */
	TSI_ERR_TIMEOUT = -18,     /* a bounded wait ran out */
	TSI_ERR_AUDIT = -19,       /* the audit log could not record in time */
	TSI_ERR_EXISTS = -20,      /* object already exists */
	TSI_ERR_UNSUPPORTED = -21, /* valid but not supported here */
	TSI_ERR_AGAIN = -22, /* transient; the same call may succeed later */
	TSI_ERR_UNIDENTIFIED =
	    -23, /* the calling workload could not be identified */
};

/* A static, never-NULL, human-readable description of a code. */
const char *tsi_strerror(int err);

/* Formats a one-line reason ("file:line: reason") into err, errlen bytes,
 * truncating if needed. Does nothing when err is NULL or errlen is 0. */
void tsi_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* TSI_ERR_H */
