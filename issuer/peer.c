/*
 * peer.c - the caller's identity at accept, checked per request (peer.h).
 */
#include "issuer/peer.h"
#include "issuer/proc.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int
tsi_proc_exe_id(const char *proc_root, pid_t pid, dev_t *dev, ino_t *ino)
{
	char path[512];
	struct stat st;
	int n;

	n = snprintf(path, sizeof(path), "%s/%ld/exe", proc_root, (long)pid);
	if (n < 0 || (size_t)n >= sizeof(path))
		return TSI_ERR_TOO_LARGE;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return TSI_ERR_NOT_FOUND;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return TSI_OK;
}

static int
container_now(const char *proc_root, pid_t pid, char id[65])
{
	char path[512], *text = NULL;
	size_t len = 0;
	int n, r;

	n = snprintf(path, sizeof(path), "%s/%ld/cgroup", proc_root, (long)pid);
	if (n < 0 || (size_t)n >= sizeof(path))
		return TSI_ERR_TOO_LARGE;
	if ((r = tsi_read_small_file(path, TSI_CGROUP_MAX_BYTES, &text,
	         &len)) != TSI_OK)
		return r;
	r = tsi_cgroup_container_id(text, len, id);
	free(text);
	return r;
}

int
tsi_peer_take_pid(const char *proc_root, enum tsi_resolver_kind kind, pid_t pid,
    uid_t uid, gid_t gid, struct tsi_peer *out)
{
	memset(out, 0, sizeof(*out));
	out->stat_fd = -1;
	out->pid = pid;
	out->uid = uid;
	out->gid = gid;
	if (pid <= 0 ||
	    (out->stat_fd = tsi_proc_stat_open(proc_root, pid)) < 0 ||
	    tsi_proc_starttime_fd(out->stat_fd, &out->starttime) != TSI_OK)
		return TSI_ERR_UNIDENTIFIED;
	if (kind == TSI_RESOLVER_UNIX) {
		if (tsi_proc_exe_id(proc_root, pid, &out->exe_dev,
		        &out->exe_ino) != TSI_OK)
			return TSI_ERR_UNIDENTIFIED;
		out->has_exe = 1;
	} else if (container_now(proc_root, pid, out->container) != TSI_OK)
		out->container[0] = '\0'; /* refused when it asks */
	/* Read after the rest: what was read belongs to the process whose
	 * start time this is, not to a successor under the same pid. */
	{
		unsigned long long st2;
		if (tsi_proc_starttime_fd(out->stat_fd, &st2) != TSI_OK ||
		    st2 != out->starttime)
			return TSI_ERR_UNIDENTIFIED;
	}
	return TSI_OK;
}

int
tsi_peer_take(const char *proc_root, enum tsi_resolver_kind kind, int sock,
    struct tsi_peer *out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    len != sizeof(cred) || cred.pid <= 0) {
		memset(out, 0, sizeof(*out));
		out->stat_fd = -1;
		return TSI_ERR_UNIDENTIFIED;
	}
	return tsi_peer_take_pid(proc_root, kind, cred.pid, cred.uid, cred.gid,
	    out);
}

int
tsi_peer_check(const char *proc_root, const struct tsi_peer *p)
{
	unsigned long long st = 0;
	const char *why = NULL;
	dev_t dev;
	ino_t ino;

	if (p->stat_fd < 0 ||
	    tsi_proc_starttime_fd(p->stat_fd, &st) != TSI_OK ||
	    st != p->starttime)
		why = "the connecting process is gone";
	else if (p->has_exe &&
	    (tsi_proc_exe_id(proc_root, p->pid, &dev, &ino) != TSI_OK ||
	        dev != p->exe_dev || ino != p->exe_ino))
		why = "the connecting process runs another executable than "
		      "when it connected";
	/* The start time once more: the exe just read was that process's. */
	else if (tsi_proc_starttime_fd(p->stat_fd, &st) != TSI_OK ||
	    st != p->starttime)
		why = "the connecting process is gone";
	if (why == NULL)
		return TSI_OK;
	tsi_log(TSI_LOG_WARN, "token.denied", TSI_LI("pid", p->pid),
	    TSI_LI("uid", p->uid), TSI_LS("reason", why));
	return TSI_ERR_UNIDENTIFIED;
}

void
tsi_peer_release(struct tsi_peer *p)
{
	if (p != NULL && p->stat_fd >= 0) {
		close(p->stat_fd);
		p->stat_fd = -1;
	}
}
