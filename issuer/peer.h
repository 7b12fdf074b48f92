/*
 * peer.h - who is at the other end of a connection, taken once when it is
 * accepted and checked again for every request on it.
 *
 * SO_PEERCRED names the process that called connect(), for the life of the
 * connection. The connection can outlive what that process was: it may
 * execve() another program (keeping the pid and start time), exit (and its
 * pid be reused), or share the socket with a child that sends the request.
 * The snapshot binds the identity to the process image at accept; a request
 * is served only while the pid still names that process (same start time,
 * read through the stat file opened at accept) running the same executable
 * (same device and inode behind <pid>/exe) or, for the kubelet resolver,
 * in the same container.
 */
#ifndef TSI_ISSUER_PEER_H
#define TSI_ISSUER_PEER_H

#include <sys/types.h>

#include "issuer/config.h"

struct tsi_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	unsigned long long starttime; /* field 22 of <pid>/stat */
	int stat_fd;                  /* <pid>/stat opened at accept, or -1 */
	int has_exe;                  /* unix resolver: exe_dev/exe_ino set */
	dev_t exe_dev;
	ino_t exe_ino;
	char container[65]; /* kubelet resolver: the container id
	                                 * at accept, "" when in none */
};

/* The snapshot of the process pid (with the credentials the socket gave)
 * for the resolver kind: start time always; the executable's identity for
 * unix; the container id for kubelet. *out is filled even on failure
 * (stat_fd -1 or open); release it with tsi_peer_release either way.
 * TSI_ERR_UNIDENTIFIED when the process cannot be described. */
int tsi_peer_take_pid(const char *proc_root, enum tsi_resolver_kind kind,
    pid_t pid, uid_t uid, gid_t gid, struct tsi_peer *out);

/* The same from a connected Unix socket (SO_PEERCRED). */
int tsi_peer_take(const char *proc_root, enum tsi_resolver_kind kind, int sock,
    struct tsi_peer *out);

/* TSI_OK while pid is still the process taken, running the executable it
 * ran then (unix); TSI_ERR_UNIDENTIFIED (logged with the reason)
 * otherwise. */
int tsi_peer_check(const char *proc_root, const struct tsi_peer *p);

/* The identity of the file <proc_root>/<pid>/exe names now. */
int tsi_proc_exe_id(const char *proc_root, pid_t pid, dev_t *dev, ino_t *ino);

/* Closes what the snapshot holds (not the struct itself). */
void tsi_peer_release(struct tsi_peer *p);

#endif /* TSI_ISSUER_PEER_H */
