#include "tsi/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *
tsi_strerror(int err)
{
	switch (err) {
	case TSI_OK: return "success";
	case TSI_ERR_INTERNAL: return "internal error";
	case TSI_ERR_ALLOC: return "out of memory";
	case TSI_ERR_INVALID_ARG: return "invalid argument";
	case TSI_ERR_TOO_LARGE: return "input too large";
	case TSI_ERR_PARSE: return "malformed input";
	case TSI_ERR_CONFIG: return "bad configuration";
	case TSI_ERR_IO: return "I/O error";
	case TSI_ERR_CRYPTO: return "cryptographic operation failed";
	case TSI_ERR_TPM: return "TPM error";
	case TSI_ERR_TPM_UNAVAILABLE: return "TPM unavailable";
	case TSI_ERR_NOT_FOUND: return "not found";
	case TSI_ERR_DENIED: return "permission denied";
	case TSI_ERR_EXPIRED: return "expired or not yet valid";
	case TSI_ERR_BAD_TOKEN: return "invalid token";
	case TSI_ERR_BAD_CERT: return "invalid certificate";
	case TSI_ERR_STORE: return "storage error";
	case TSI_ERR_STORE_FULL: return "storage full";
	case TSI_ERR_TIMEOUT: return "timed out";
	case TSI_ERR_AUDIT: return "audit log unavailable";
	case TSI_ERR_EXISTS: return "already exists";
	case TSI_ERR_UNSUPPORTED: return "not supported";
	case TSI_ERR_AGAIN: return "temporarily unavailable";
	case TSI_ERR_UNIDENTIFIED: return "caller not identifiable";
	}
	return "unknown error";
}

void
tsi_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	if (vsnprintf(err, errlen, fmt, ap) < 0)
		err[0] = '\0';
	va_end(ap);
}
