/*
 * sandbox.h - the confinement of the issuer's unprivileged front end
 * (docs/issuer.md, "The front end's sandbox"): another uid, no
 * capabilities, no new privileges, not dumpable, and a seccomp allow-list
 * whose default action kills the process.
 */
#ifndef TSI_ISSUER_SANDBOX_H
#define TSI_ISSUER_SANDBOX_H

#include <sys/types.h>

struct tsi_sandbox_cfg {
	/* "name", "uid" or "uid:gid" (borrowed for the call). A name takes
	 * its group from the password database; a bare uid with no entry
	 * there takes the same number as its gid. Never root. */
	const char *user;
	/* Violations are logged by the kernel (SCMP_ACT_LOG) instead of
	 * killing the process: only to find a system call a platform needs
	 * that the list lacks, never in production. */
	int log_only;
};

/*
 * Enters the sandbox for good; nothing here can be undone. Call it after
 * every file the front end needs open at once is open and every library
 * that loads code at first use (libcurl, OpenSSL, the resolver's NSS
 * modules: curl_global_init, then this warms NSS itself) is initialised,
 * and before a byte from the network is parsed. Threads may already run:
 * the ids change in all of them (glibc), the filter is synchronised to
 * all of them (TSYNC), and each one's capabilities are checked.
 *
 * TSI_OK: the process runs as the configured user with empty capability
 * sets (permitted, effective, inheritable, ambient and, when it was
 * allowed to change it, bounding), PR_SET_NO_NEW_PRIVS, not dumpable, and
 * the filter loaded. Anything else (the reason is logged): the process
 * may be half confined and must exit; the front end fails closed.
 */
int tsi_sandbox_enter(const struct tsi_sandbox_cfg *cfg);

/* Resolves a front_user setting to ids without entering anything.
 * TSI_ERR_CONFIG when it names nobody known or names root. */
int tsi_sandbox_user(const char *user, uid_t *uid, gid_t *gid);

#endif /* TSI_ISSUER_SANDBOX_H */
