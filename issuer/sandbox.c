/*
 * sandbox.c - confines the issuer's front end: the process that parses
 * HTTP from workloads and the kubelet's pod list and so is the one a
 * parser bug hands to an attacker. What it keeps is what serving needs:
 * its open sockets, TCP to the kubelet, read-only files (the kubelet's
 * rotating token, its CA), memory and threads. docs/issuer.md gives the
 * reason for every system call in the list.
 */
#include "issuer/sandbox.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <linux/capability.h>

#if defined(__SANITIZE_ADDRESS__)
#define TSI_SANDBOX_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TSI_SANDBOX_LSAN 1
#endif
#endif
#ifdef TSI_SANDBOX_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* Passwd entries are short; a larger one is refused rather than grown. */
#define PW_BUF 4096

/*
 * Allowed whatever their arguments: they act on the process's own memory,
 * threads, signals and clocks, or on descriptors it already holds.
 * Names, not numbers, so that one list serves every architecture; a name
 * an architecture lacks (open, poll, select on arm64) is skipped.
 */
static const char *const allowed[] = {
	/* descriptors it holds: logging, the workload's connections, the
	 * signer's socketpair (SCM_RIGHTS), the kubelet's TLS connection */
	"read",
	"readv",
	"pread64",
	"write",
	"writev",
	"close",
	"lseek",
	"fstat",
	"newfstatat",
	"statx",
	"fcntl",
	"dup",
	"dup3",
	"pipe2",
	"eventfd2",
	"sendmsg",
	"recvmsg",
	"sendto",
	"recvfrom",
	"sendmmsg",
	"recvmmsg",
	"shutdown",
	"getsockopt",
	"setsockopt",
	"getsockname",
	"getpeername",
	"connect",
	"accept",
	"accept4",
	/* event loops: libmicrohttpd's threads, libcurl's waits */
	"epoll_create1",
	"epoll_ctl",
	"epoll_wait",
	"epoll_pwait",
	"epoll_pwait2",
	"poll",
	"ppoll",
	"select",
	"pselect6",
	/* threads and their locks */
	"futex",
	"set_robust_list",
	"rseq",
	"sched_yield",
	"sched_getaffinity",
	"madvise",
	"membarrier",
	/* memory (mmap and mprotect only without PROT_EXEC: below) */
	"brk",
	"munmap",
	"mremap",
	/* time, signals, identity of self, randomness for TLS */
	"clock_gettime",
	"clock_getres",
	"clock_nanosleep",
	"nanosleep",
	"gettimeofday",
	"time",
	"rt_sigaction",
	"rt_sigprocmask",
	"rt_sigreturn",
	"rt_sigsuspend",
	"pause",
	"sigaltstack",
	"restart_syscall",
	"getpid",
	"gettid",
	"getuid",
	"geteuid",
	"getgid",
	"getegid",
	"getresuid",
	"getresgid",
	"getgroups",
	"getrandom",
	"uname",
	"sysinfo",
	"getrusage",
	"exit",
	"exit_group",
};

static int
ctx_fail(const char *what, int rc)
{
	tsi_log(TSI_LOG_ERROR, "sandbox.failed", TSI_LS("step", what),
	    TSI_LS("error", strerror(rc < 0 ? -rc : rc)));
	return TSI_ERR_INTERNAL;
}

/* One rule; a system call this architecture does not have is skipped. */
static int
allow(scmp_filter_ctx ctx, const char *name, unsigned n,
    const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name), rc;

	if (nr == __NR_SCMP_ERROR)
		return TSI_OK;
	if ((rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, cmp)) != 0)
		return ctx_fail(name, rc);
	return TSI_OK;
}

#define ALLOW(ctx, name, ...) \
	allow((ctx), (name), \
	    (unsigned)(sizeof((struct scmp_arg_cmp[]){ __VA_ARGS__ }) / \
	        sizeof(struct scmp_arg_cmp)), \
	    (struct scmp_arg_cmp[]){ __VA_ARGS__ })

static int
add_rules(scmp_filter_ctx ctx)
{
	const scmp_datum_t wflags = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND;
	const scmp_datum_t self = (scmp_datum_t)getpid();
	size_t i;
	int r, rc;

	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if ((r = allow(ctx, allowed[i], 0, NULL)) != TSI_OK)
			return r;
	/*
	 * Files only for reading: the kubelet's bearer token is re-read for
	 * each fetch (the kubelet rotates it), libcurl loads kubelet_ca_file
	 * (or the system store under /etc/ssl/certs) for each connection,
	 * glibc's resolver reads /etc/hosts and /etc/resolv.conf.
	 */
	if ((r = ALLOW(ctx, "openat",
	         SCMP_A2(SCMP_CMP_MASKED_EQ, wflags, O_RDONLY))) != TSI_OK ||
	    (r = ALLOW(ctx, "open",
	         SCMP_A1(SCMP_CMP_MASKED_EQ, wflags, O_RDONLY))) != TSI_OK)
		return r;
	/* No executable memory: code injected through a parser bug cannot be
	 * made runnable, nor a library loaded. */
	if ((r = ALLOW(ctx, "mmap",
	         SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) != TSI_OK ||
	    (r = ALLOW(ctx, "mprotect",
	         SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) != TSI_OK)
		return r;
	/* TCP (and DNS over UDP) to the kubelet, Unix sockets; no raw,
	 * packet or netlink sockets. */
	if ((r = ALLOW(ctx, "socket", SCMP_A0(SCMP_CMP_EQ, AF_UNIX))) !=
	        TSI_OK ||
	    (r = ALLOW(ctx, "socket", SCMP_A0(SCMP_CMP_EQ, AF_INET))) !=
	        TSI_OK ||
	    (r = ALLOW(ctx, "socket", SCMP_A0(SCMP_CMP_EQ, AF_INET6))) !=
	        TSI_OK ||
	    (r = ALLOW(ctx, "socketpair", SCMP_A0(SCMP_CMP_EQ, AF_UNIX))) !=
	        TSI_OK)
		return r;
	/* Threads, never processes: clone only with CLONE_THREAD. clone3
	 * passes its flags in memory a filter cannot read, so it answers
	 * ENOSYS and glibc falls back to clone. */
	if ((r = ALLOW(ctx, "clone",
	         SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD))) !=
	    TSI_OK)
		return r;
	if (seccomp_syscall_resolve_name("clone3") != __NR_SCMP_ERROR &&
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
	         seccomp_syscall_resolve_name("clone3"), 0)) != 0)
		return ctx_fail("clone3", rc);
	/* Signals only to itself (abort, raise). */
	if ((r = ALLOW(ctx, "kill", SCMP_A0(SCMP_CMP_EQ, self))) != TSI_OK ||
	    (r = ALLOW(ctx, "tgkill", SCMP_A0(SCMP_CMP_EQ, self))) != TSI_OK)
		return r;
	/* Thread names, the stack size limit (read only), non-blocking
	 * sockets and terminal checks of stderr. */
	if ((r = ALLOW(ctx, "prctl", SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME))) !=
	        TSI_OK ||
	    (r = ALLOW(ctx, "prctl", SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME))) !=
	        TSI_OK ||
	    (r = ALLOW(ctx, "prlimit64", SCMP_A2(SCMP_CMP_EQ, 0))) != TSI_OK ||
	    (r = ALLOW(ctx, "ioctl", SCMP_A1(SCMP_CMP_EQ, FIONBIO))) !=
	        TSI_OK ||
	    (r = ALLOW(ctx, "ioctl", SCMP_A1(SCMP_CMP_EQ, FIONREAD))) !=
	        TSI_OK ||
	    (r = ALLOW(ctx, "ioctl", SCMP_A1(SCMP_CMP_EQ, TCGETS))) != TSI_OK)
		return r;
	return TSI_OK;
}

/* The filter's length in BPF instructions, for the log. */
static long
filter_size(scmp_filter_ctx ctx)
{
	char buf[65536];
	long total = 0;
	ssize_t n;
	int p[2];

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	if (seccomp_export_bpf(ctx, p[1]) != 0)
		total = -1;
	(void)close(p[1]);
	while (total >= 0 && (n = read(p[0], buf, sizeof(buf))) > 0)
		total += n;
	(void)close(p[0]);
	return total < 0 ? -1 : total / 8; /* struct sock_filter: 8 bytes */
}

static int
load_filter(int log_only)
{
	scmp_filter_ctx ctx;
	long insns;
	int r = TSI_ERR_INTERNAL, rc;

	if ((ctx = seccomp_init(
	         log_only ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS)) == NULL) {
		tsi_log(TSI_LOG_ERROR, "sandbox.failed",
		    TSI_LS("step", "seccomp_init"));
		return TSI_ERR_INTERNAL;
	}
	/* A system call made through another ABI (i386 int 0x80 on x86_64)
	 * would go around the list. NO_NEW_PRIVS is set by the caller. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
	         SCMP_ACT_KILL_PROCESS)) != 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) != 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) != 0) {
		r = ctx_fail("seccomp_attr_set", rc);
		goto out;
	}
	if ((r = add_rules(ctx)) != TSI_OK)
		goto out;
	insns = filter_size(ctx);
	if ((rc = seccomp_load(ctx)) != 0) {
		r = ctx_fail("seccomp_load", rc);
		goto out;
	}
	tsi_log(TSI_LOG_INFO, "sandbox.seccomp",
	    TSI_LI("bpf_instructions", insns),
	    TSI_LS("default_action", log_only ? "log" : "kill_process"));
	r = TSI_OK;
out:
	seccomp_release(ctx);
	return r;
}

static int
parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return 0;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && *end == '\0' && *out < 0xffffffffUL;
}

int
tsi_sandbox_user(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	char buf[PW_BUF], idbuf[32];
	const char *colon;
	unsigned long u, g;
	size_t n;

	if (user == NULL || user[0] == '\0')
		return TSI_ERR_CONFIG;
	if ((colon = strchr(user, ':')) != NULL) {
		n = (size_t)(colon - user);
		if (n >= sizeof(idbuf))
			return TSI_ERR_CONFIG;
		memcpy(idbuf, user, n);
		idbuf[n] = '\0';
		if (!parse_id(idbuf, &u) || !parse_id(colon + 1, &g))
			return TSI_ERR_CONFIG;
	} else if (parse_id(user, &u)) {
		g = u;
		if (getpwuid_r((uid_t)u, &pw, buf, sizeof(buf), &res) == 0 &&
		    res != NULL)
			g = (unsigned long)pw.pw_gid;
	} else {
		if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 ||
		    res == NULL)
			return TSI_ERR_CONFIG;
		u = (unsigned long)pw.pw_uid;
		g = (unsigned long)pw.pw_gid;
	}
	/* Root, as user or group, is what the front end leaves behind. */
	if (u == 0 || g == 0)
		return TSI_ERR_CONFIG;
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return TSI_OK;
}

/* One "Name:\tvalue" line of /proc/self/task/TID/status equal to want. */
static int
task_field_is(FILE *f, const char *name, const char *want)
{
	char line[256];
	size_t n = strlen(name), w = strlen(want);

	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			const char *v =
			    line + n + 1 + strspn(line + n + 1, " \t");
			return strncmp(v, want, w) == 0 &&
			    (v[w] == '\n' || v[w] == ' ' || v[w] == '\0');
		}
	return 0;
}

/*
 * Capabilities belong to a thread, and the front end may have started
 * threads (libmicrohttpd's, the kubelet client's) before it is confined.
 * glibc makes every thread call setresuid itself, and a thread leaving
 * uid 0 loses its permitted, effective and ambient sets; checked here for
 * each thread rather than trusted. (Their bounding sets stay as they were:
 * with no_new_privs, which the filter's TSYNC gives every thread, and
 * execve killed, they can grant nothing.)
 */
static int
every_thread_dropped(uid_t uid)
{
	char path[64], want[64];
	struct dirent *de;
	DIR *d;
	int ok = 1, n = 0;

	(void)snprintf(want, sizeof(want), "%lu\t%lu\t%lu\t%lu",
	    (unsigned long)uid, (unsigned long)uid, (unsigned long)uid,
	    (unsigned long)uid);
	if ((d = opendir("/proc/self/task")) == NULL)
		return 0;
	while (ok && (de = readdir(d)) != NULL) {
		FILE *f;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		if (snprintf(path, sizeof(path), "/proc/self/task/%s/status",
		        de->d_name) >= (int)sizeof(path) ||
		    (f = fopen(path, "re")) == NULL) {
			ok = 0;
			break;
		}
		ok = task_field_is(f, "Uid", want) &&
		    task_field_is(f, "CapPrm", "0000000000000000") &&
		    task_field_is(f, "CapEff", "0000000000000000") &&
		    task_field_is(f, "CapAmb", "0000000000000000");
		(void)fclose(f);
		n++;
	}
	(void)closedir(d);
	return ok && n > 0;
}

static int
capget_self(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3,
		0 };

	return (int)syscall(SYS_capget, &hdr, data);
}

static int
caps_empty(void)
{
	struct __user_cap_data_struct d[2];

	if (capget_self(d) != 0)
		return 0;
	return (d[0].effective | d[0].permitted | d[0].inheritable |
	           d[1].effective | d[1].permitted | d[1].inheritable) == 0;
}

/* Bounding set and ambient set; needs CAP_SETPCAP, which root has. */
static int
drop_bounding(int privileged)
{
	int cap;

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
	    errno != EINVAL)
		return -1;
	for (cap = 0; cap < 64; cap++) {
		int has = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (has < 0)
			break; /* past the kernel's last capability */
		if (has == 0)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
			/* Without CAP_SETPCAP the set cannot shrink; with no
			 * capability held and no execve, it cannot grant one. */
			if (!privileged && errno == EPERM)
				return 1;
			return -1;
		}
	}
	return 0;
}

static int
drop_user(uid_t uid, gid_t gid)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (geteuid() == 0) {
		if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 ||
		    setresuid(uid, uid, uid) != 0)
			return -1;
	} else if (getuid() != uid || geteuid() != uid || getgid() != gid) {
		errno = EPERM; /* only root can become another user */
		return -1;
	}
	/* Verified, not assumed: no way back to root. */
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 ||
	    ru != uid || eu != uid || su != uid || rg != gid || eg != gid ||
	    sg != gid)
		return -1;
	if (setuid(0) == 0 || setgid(0) == 0) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

int
tsi_sandbox_enter(const struct tsi_sandbox_cfg *cfg)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3,
		0 };
	struct __user_cap_data_struct none[2];
	struct addrinfo hints, *ai = NULL;
	uid_t uid;
	gid_t gid;
	int privileged = geteuid() == 0, bset;

	if (cfg == NULL || tsi_sandbox_user(cfg->user, &uid, &gid) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "sandbox.failed",
		    TSI_LS("step", "front_user"),
		    TSI_LS("user",
		        cfg != NULL && cfg->user != NULL ? cfg->user : ""),
		    TSI_LS("reason",
		        "no such user, "
		        "or root"));
		return TSI_ERR_CONFIG;
	}
	/* glibc loads the resolver's NSS modules at the first lookup; loaded
	 * now, a host name in kubelet_url resolves without mapping code
	 * later (the filter forbids it). The answer does not matter. */
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo("localhost", NULL, &hints, &ai) == 0)
		freeaddrinfo(ai);
#ifdef TSI_SANDBOX_LSAN
	/* Sanitizer builds: LeakSanitizer's check at exit stops the world
	 * with ptrace, which the filter kills. Run it now, once; it does not
	 * run again at exit. */
	__lsan_do_leak_check();
#endif
	if ((bset = drop_bounding(privileged)) < 0) {
		tsi_log(TSI_LOG_ERROR, "sandbox.failed",
		    TSI_LS("step", "bounding set"),
		    TSI_LS("error", strerror(errno)));
		return TSI_ERR_INTERNAL;
	}
	if (drop_user(uid, gid) != 0) {
		tsi_log(TSI_LOG_ERROR, "sandbox.failed", TSI_LS("step", "user"),
		    TSI_LI("uid", uid), TSI_LI("gid", gid),
		    TSI_LS("error", strerror(errno)));
		return TSI_ERR_INTERNAL;
	}
	/* setresuid away from root cleared the sets; said again for a
	 * process that was never root but held capabilities. */
	memset(none, 0, sizeof(none));
	if (syscall(SYS_capset, &hdr, none) != 0 || !caps_empty() ||
	    !every_thread_dropped(uid)) {
		tsi_log(TSI_LOG_ERROR, "sandbox.failed",
		    TSI_LS("step", "capabilities"),
		    TSI_LS("error", strerror(errno)));
		return TSI_ERR_INTERNAL;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		tsi_log(TSI_LOG_ERROR, "sandbox.failed",
		    TSI_LS("step", "prctl"), TSI_LS("error", strerror(errno)));
		return TSI_ERR_INTERNAL;
	}
	if (load_filter(cfg->log_only) != TSI_OK)
		return TSI_ERR_INTERNAL;
	tsi_log(TSI_LOG_INFO, "sandbox.entered", TSI_LI("pid", getpid()),
	    TSI_LI("uid", uid), TSI_LI("gid", gid),
	    TSI_LS("bounding_set",
	        bset == 0 ? "empty"
	                  : "unchanged (no CAP_SETPCAP; no capability held)"));
	return TSI_OK;
}
