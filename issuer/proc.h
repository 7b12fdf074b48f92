/*
 * proc.h - what tsi-issuer reads about a process under proc_root (proc.c)
 * and the container id in its cgroup file (cgroup.c). Below both the peer
 * snapshot (peer.c) and the resolvers, which use it; includes neither.
 */
#ifndef TSI_ISSUER_PROC_H
#define TSI_ISSUER_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* Largest /proc/<pid>/cgroup read. */
#define TSI_CGROUP_MAX_BYTES 65536

/* The container id (64 lower-case hex) in the text of /proc/<pid>/cgroup
 * (cgroup v1 or v2; containerd, CRI-O, docker forms): the one path
 * component the runtime named after the container. TSI_ERR_NOT_FOUND when
 * the process is in no container; TSI_ERR_PARSE when the text is malformed
 * or ambiguous: a path naming more than one container id (a cgroup made
 * inside a container and named after another), v1 controller lines with
 * different paths, or a unified line naming another container. */
int tsi_cgroup_container_id(const char *text, size_t len, char id[65]);

/* The process start time (field 22 of <proc_root>/<pid>/stat, clock ticks
 * since boot), to notice a pid that was reused. */
int tsi_proc_starttime(const char *proc_root, pid_t pid,
    unsigned long long *out);

/* <proc_root>/<pid>/stat opened (O_CLOEXEC), to read the start time again
 * later without a path lookup: the open file stays bound to that process,
 * and reads fail once it is gone, even if the pid is reused. -1 on error. */
int tsi_proc_stat_open(const char *proc_root, pid_t pid);

/* The start time read again through an fd from tsi_proc_stat_open.
 * TSI_ERR_NOT_FOUND when the process is gone. */
int tsi_proc_starttime_fd(int fd, unsigned long long *out);

/* Reads a small file completely (at most max bytes). *out: free() (NUL
 * terminated); TSI_ERR_TOO_LARGE when longer. */
int tsi_read_small_file(const char *path, size_t max, char **out, size_t *len);

#endif /* TSI_ISSUER_PROC_H */
