/*
 * Bounded reading of a whole small file (keys, certificates, tokens,
 * values), with the checks some callers need. One reader for every program,
 * so that the bound, the refusal of FIFOs and directories and the
 * permission check on secret files are the same everywhere.
 */
#ifndef TSI_FILE_H
#define TSI_FILE_H

#include <stddef.h>

#define TSI_FILE_REGULAR \
	0x01u /* only a regular file (a FIFO is never
                                 * waited on: it is refused before a read) */
#define TSI_FILE_PRIVATE \
	0x02u /* a regular file with no group or other
                                 * permission bit (keys, tokens) */
#define TSI_FILE_NOFOLLOW \
	0x04u                     /* refuse a symbolic link as the last
                                 * component */
#define TSI_FILE_NONEMPTY 0x08u   /* refuse an empty file */
#define TSI_FILE_DASH_STDIN 0x10u /* "-" names standard input (not closed) */

/*
 * Reads the whole of path: at most max bytes, and a file of max + 1 bytes or
 * more is refused without reading past max + 1. flags: TSI_FILE_* above.
 * Returns TSI_OK; TSI_ERR_NOT_FOUND (no such file); TSI_ERR_TOO_LARGE (over
 * max); TSI_ERR_DENIED (a flag's check failed: not a regular file, mode,
 * symbolic link); TSI_ERR_PARSE (empty, with TSI_FILE_NONEMPTY); TSI_ERR_IO
 * (open or read failed, e.g. a directory without TSI_FILE_REGULAR);
 * TSI_ERR_ALLOC. err (may be NULL) gets a one-line reason that names path
 * and never quotes the content.
 * *out: the content plus a NUL (it may itself hold NULs: use *outlen), set
 * only on TSI_OK; caller frees with tsi_freezero(*out, *outlen + 1) (or
 * tsi_strfree, or free for what is not secret). outlen may be NULL.
 */
int tsi_file_read(const char *path, size_t max, unsigned flags, char **out,
    size_t *outlen, char *err, size_t errlen);

#endif /* TSI_FILE_H */
