/*
 * audit_sink.c - audit streaming to files, sockets and syslog
 * (include/tsi/audit_sink.h, docs/audit.md "Sinks").
 *
 * Each sink is one thread that reads records from the store by seq
 * (tsi_audit_get) and writes them; nothing here runs in a request's path
 * except tsi_audit_sinks_notify, which only records a number. A sink's
 * position is what it has written (pos); what it saves to its position
 * file is what it knows was delivered (for a stream socket, less: see
 * stream_safe).
 */
#include "tsi/audit_sink.h"

#include "tsi/audit.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define BATCH_RECORDS 256
#define BATCH_BYTES (256 * 1024)
#define POLL_IDLE_MS 1000      /* look at the store's head this often */
#define TAIL_READ (128 * 1024) /* bytes read from a rotated file's end */
#define ROTATED_MAX 64         /* rotated siblings looked at */
#define DEFAULT_REPLAY ((size_t)6 << 20)
/* what a receiver may have read from a Unix socket and not yet handled
 * (its read buffer) when it dies */
#define UNIX_REPLAY ((size_t)4 << 20)

struct sent_mark {
	uint64_t seq;
	uint64_t end; /* connection bytes up to the end of its line */
};

struct sink {
	struct tsi_audit_sinks *set;
	struct tsi_audit_sink_cfg c; /* strings below are owned copies */
	char name[TSI_AUDIT_SINK_NAME_MAX + 1];
	char *path, *address, *tag;
	pthread_t thr;
	int started;
	int fd;
	int posfd;
	uint64_t pos;   /* last seq written */
	uint64_t saved; /* last seq written to the position file */
	int dirty;      /* a write or position not yet synced */
	long long last_sync_us;
	/* file */
	off_t end; /* the file's size after our last write */
	/* stream sockets */
	uint64_t conn_bytes, acked;
	uint64_t safe; /* seq known delivered on this connection */
	struct sent_mark *marks;
	size_t mark_head, mark_n, mark_cap;
	size_t replay;
	/* under set->mu */
	int reopen;
	uint64_t sent, errors, resent;
	int up;
};

struct tsi_audit_sinks {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t head;
	int stop;
	struct tsi_audit_reader *rd;
	struct tsi_audit_sinks_opts o;
	char *state_dir;
	size_t n;
	struct sink *s;
};

static const char *const type_names[] = { NULL, "file", "unix", "tcp",
	"syslog" };

static long long
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void
abs_deadline(struct timespec *ts, long long ms)
{
	long long t = mono_us() + ms * 1000;

	ts->tv_sec = (time_t)(t / 1000000);
	ts->tv_nsec = (long)(t % 1000000) * 1000;
}

/* pos is the sink thread's; tsi_audit_sinks_stat reads it */
static void
set_pos(struct sink *k, uint64_t v)
{
	__atomic_store_n(&k->pos, v, __ATOMIC_RELAXED);
}

static int
stopping(struct tsi_audit_sinks *set)
{
	int st;

	pthread_mutex_lock(&set->mu);
	st = set->stop;
	pthread_mutex_unlock(&set->mu);
	return st;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* ---- configuration ---- */

int
tsi_audit_sink_facility(const char *name, int *facility)
{
	static const struct {
		const char *n;
		int f;
	} fac[] = {
		{ "kern", LOG_KERN },
		{ "user", LOG_USER },
		{ "daemon", LOG_DAEMON },
		{ "auth", LOG_AUTH },
		{ "authpriv", LOG_AUTHPRIV },
		{ "local0", LOG_LOCAL0 },
		{ "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 },
		{ "local3", LOG_LOCAL3 },
		{ "local4", LOG_LOCAL4 },
		{ "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 },
		{ "local7", LOG_LOCAL7 },
	};
	size_t i;

	for (i = 0; name != NULL && i < sizeof(fac) / sizeof(fac[0]); i++)
		if (strcmp(name, fac[i].n) == 0) {
			*facility = fac[i].f;
			return TSI_OK;
		}
	return TSI_ERR_CONFIG;
}

/* HOST:PORT or [V6]:PORT into host and port (borrowed into buffers). */
static int
split_address(const char *a, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon, *h = a;
	size_t n;

	if (a == NULL || (colon = strrchr(a, ':')) == NULL || colon[1] == '\0')
		return -1;
	n = (size_t)(colon - a);
	if (a[0] == '[') {
		if (n < 2 || a[n - 1] != ']')
			return -1;
		h = a + 1;
		n -= 2;
	}
	if (n == 0 || n >= hlen || strlen(colon + 1) >= plen)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	memcpy(port, colon + 1, strlen(colon + 1) + 1);
	return strspn(port, "0123456789") == strlen(port) ? 0 : -1;
}

int
tsi_audit_sink_check(const struct tsi_audit_sink_cfg *c, char *err,
    size_t errlen)
{
	char host[256], port[16];
	struct sockaddr_un sun;
	size_t n;

	if (c->name == NULL || (n = strlen(c->name)) == 0 ||
	    n > TSI_AUDIT_SINK_NAME_MAX ||
	    strspn(c->name,
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	        "_.-") != n ||
	    c->name[0] == '.') {
		snprintf(err, errlen,
		    "name: 1 to %d of [A-Za-z0-9_.-], not "
		    "starting with '.'",
		    TSI_AUDIT_SINK_NAME_MAX);
		return TSI_ERR_CONFIG;
	}
	switch (c->type) {
	case TSI_AUDIT_SINK_FILE:
		if (c->path == NULL || c->path[0] != '/') {
			snprintf(err, errlen,
			    "a file sink needs an absolute path");
			return TSI_ERR_CONFIG;
		}
		break;
	case TSI_AUDIT_SINK_UNIX:
	case TSI_AUDIT_SINK_SYSLOG:
		if (c->type == TSI_AUDIT_SINK_UNIX && c->path == NULL) {
			snprintf(err, errlen, "a unix sink needs a path");
			return TSI_ERR_CONFIG;
		}
		if (c->path != NULL &&
		    (c->path[0] != '/' ||
		        strlen(c->path) >= sizeof(sun.sun_path))) {
			snprintf(err, errlen,
			    "path: an absolute socket path "
			    "shorter than %zu bytes",
			    sizeof(sun.sun_path));
			return TSI_ERR_CONFIG;
		}
		if (c->type == TSI_AUDIT_SINK_SYSLOG && c->max_message != 0 &&
		    (c->max_message < 480 || c->max_message > 65536)) {
			snprintf(err, errlen, "max_message: 480 to 65536");
			return TSI_ERR_CONFIG;
		}
		if (c->tag != NULL &&
		    (strlen(c->tag) == 0 || strlen(c->tag) > 32 ||
		        strpbrk(c->tag, " :[]\n") != NULL)) {
			snprintf(err, errlen,
			    "tag: 1 to 32 bytes without "
			    "blanks, ':' or brackets");
			return TSI_ERR_CONFIG;
		}
		break;
	case TSI_AUDIT_SINK_TCP:
		if (split_address(c->address, host, sizeof(host), port,
		        sizeof(port)) != 0) {
			snprintf(err, errlen,
			    "a tcp sink needs address = "
			    "\"HOST:PORT\" (or \"[V6]:PORT\")");
			return TSI_ERR_CONFIG;
		}
		break;
	default:
		snprintf(err, errlen, "type: file, unix, tcp or syslog");
		return TSI_ERR_CONFIG;
	}
	return TSI_OK;
}

/* ---- the position file ---- */

static int
pos_open(struct sink *k)
{
	char p[PATH_MAX], b[32];
	ssize_t got;
	char *end;
	unsigned long long v;

	if (snprintf(p, sizeof(p), "%s/%s.pos", k->set->state_dir, k->name) >=
	    (int)sizeof(p))
		return TSI_ERR_TOO_LARGE;
	if ((k->posfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		tsi_log(TSI_LOG_ERROR, "audit_sink.position",
		    TSI_LS("sink", k->name), TSI_LS("path", p),
		    TSI_LS("error", strerror(errno)));
		return TSI_ERR_IO;
	}
	got = pread(k->posfd, b, sizeof(b) - 1, 0);
	if (got <= 0)
		return TSI_OK; /* a new sink: from the first record */
	b[got] = '\0';
	errno = 0;
	v = strtoull(b, &end, 10);
	if (errno != 0 || end == b || (*end != '\n' && *end != '\0')) {
		tsi_log(TSI_LOG_ERROR, "audit_sink.position",
		    TSI_LS("sink", k->name), TSI_LS("path", p),
		    TSI_LS("error", "unreadable"));
		return TSI_ERR_PARSE;
	}
	set_pos(k, k->saved = k->safe = v);
	return TSI_OK;
}

static void
sink_sync(struct sink *k, int force)
{
	long long now = mono_us();

	if (!k->dirty ||
	    (!force &&
	        now - k->last_sync_us <
	            (long long)k->set->o.sync_interval_ms * 1000))
		return;
	if (k->c.type == TSI_AUDIT_SINK_FILE && k->fd >= 0)
		(void)fdatasync(k->fd);
	(void)fdatasync(k->posfd);
	k->dirty = 0;
	k->last_sync_us = now;
}

/* Saves v (written only after the sink took the lines up to v). */
static void
pos_save(struct sink *k, uint64_t v)
{
	char b[32];
	int n;

	if (v == k->saved)
		return;
	n = snprintf(b, sizeof(b), "%020llu\n", (unsigned long long)v);
	if (n > 0 && n < (int)sizeof(b) &&
	    pwrite(k->posfd, b, (size_t)n, 0) == (ssize_t)n) {
		k->saved = v;
		k->dirty = 1;
	}
	sink_sync(k, 0);
}

/* ---- helpers for descriptors ---- */

static void
sink_close(struct sink *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

/* Writes all of buf to a non-blocking fd, waiting in short slices so that
 * a stop is noticed; fails after io_timeout_ms without progress. */
static int
write_all(struct sink *k, const char *buf, size_t len)
{
	long long limit = mono_us() + (long long)k->set->o.io_timeout_ms * 1000;
	struct pollfd pf;
	ssize_t w;

	while (len > 0) {
		w = write(k->fd, buf, len);
		if (w > 0) {
			buf += w;
			len -= (size_t)w;
			limit = mono_us() +
			    (long long)k->set->o.io_timeout_ms * 1000;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return TSI_ERR_IO;
		if (mono_us() > limit || stopping(k->set))
			return TSI_ERR_TIMEOUT;
		pf.fd = k->fd;
		pf.events = POLLOUT;
		(void)poll(&pf, 1, 200);
	}
	return TSI_OK;
}

/* ---- file sinks ---- */

static int
file_open(struct sink *k)
{
	struct stat st;

	k->fd = open(k->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (k->fd < 0)
		return TSI_ERR_IO;
	if (fstat(k->fd, &st) != 0) {
		sink_close(k);
		return TSI_ERR_IO;
	}
	k->end = st.st_size;
	return TSI_OK;
}

/* The seq of the last complete line of the file at path, 0 when none. */
static uint64_t
tail_seq(const char *path)
{
	char *b = NULL, *p, *q;
	struct stat st;
	off_t off;
	ssize_t got;
	uint64_t seq = 0;
	json_t *j, *s;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
	    (b = malloc(TAIL_READ + 1)) == NULL)
		goto out;
	off = st.st_size > TAIL_READ ? st.st_size - TAIL_READ : 0;
	if ((got = pread(fd, b, TAIL_READ, off)) <= 0)
		goto out;
	b[got] = '\0';
	/* drop a partial last line, then take the line before it */
	if ((q = memrchr(b, '\n', (size_t)got)) == NULL)
		goto out;
	*q = '\0';
	p = memrchr(b, '\n', (size_t)(q - b));
	p = p != NULL ? p + 1 : b;
	if (p == b && off > 0)
		goto out; /* a line longer than the window: unknowable */
	if ((j = json_loads(p, 0, NULL)) != NULL) {
		s = json_object_get(j, "seq");
		if (json_is_integer(s) && json_integer_value(s) > 0)
			seq = (uint64_t)json_integer_value(s);
		json_decref(j);
	}
out:
	free(b);
	close(fd);
	return seq;
}

/* After logrotate's copytruncate: the last seq in the newest rotated copy
 * of the file (NAME.1, NAME-20261205, ...; compressed ones cannot be read:
 * docs/audit.md asks for delaycompress), at most upto; 0 when none. */
static uint64_t
rotated_seq(const struct sink *k, uint64_t upto)
{
	char dir[PATH_MAX], p[PATH_MAX];
	const char *base, *slash = strrchr(k->path, '/');
	size_t blen, dlen, seen = 0;
	struct dirent *de;
	uint64_t best = 0, s;
	DIR *d;

	dlen = (size_t)(slash - k->path);
	if (dlen == 0)
		dlen = 1;
	if (dlen >= sizeof(dir))
		return 0;
	memcpy(dir, k->path, dlen);
	dir[dlen] = '\0';
	base = slash + 1;
	blen = strlen(base);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && seen < ROTATED_MAX) {
		size_t nl = strlen(de->d_name);

		if (nl <= blen + 1 || strncmp(de->d_name, base, blen) != 0 ||
		    (de->d_name[blen] != '.' && de->d_name[blen] != '-'))
			continue;
		if ((nl > 3 &&
		        (strcmp(de->d_name + nl - 3, ".gz") == 0 ||
		            strcmp(de->d_name + nl - 3, ".xz") == 0)) ||
		    (nl > 4 &&
		        (strcmp(de->d_name + nl - 4, ".bz2") == 0 ||
		            strcmp(de->d_name + nl - 4, ".zst") == 0)))
			continue;
		seen++;
		if (snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(p))
			continue;
		s = tail_seq(p);
		if (s <= upto && s > best)
			best = s;
	}
	closedir(d);
	return best;
}

/*
 * The file was truncated under us (copytruncate): lines written between
 * logrotate's copy and its truncation are in neither file. The newest
 * rotated copy says what it holds; the file is emptied (it holds at most
 * our last batch) and everything after the copy's last seq is written
 * again, so that no record is lost and none is in both files.
 */
static void
file_truncated(struct sink *k)
{
	uint64_t have = rotated_seq(k, k->pos);
	struct stat st;

	if (have == 0) {
		tsi_log(TSI_LOG_WARN, "audit_sink.truncated",
		    TSI_LS("sink", k->name),
		    TSI_LS("effect",
		        "no rotated copy readable: "
		        "records written while it was copied may be missing "
		        "from the rotated file"),
		    TSI_LI("pos", k->pos));
		k->end = fstat(k->fd, &st) == 0 ? st.st_size : 0;
		return;
	}
	if (ftruncate(k->fd, 0) != 0) {
		k->end = fstat(k->fd, &st) == 0 ? st.st_size : 0;
		return;
	}
	k->end = 0;
	tsi_log(TSI_LOG_INFO, "audit_sink.truncated", TSI_LS("sink", k->name),
	    TSI_LI("rotated_last_seq", have), TSI_LI("resend", k->pos - have));
	pthread_mutex_lock(&k->set->mu);
	k->resent += k->pos - have;
	pthread_mutex_unlock(&k->set->mu);
	set_pos(k, have);
}

/*
 * Before a write: when the path names another file (logrotate's create
 * came before our SIGHUP) that file is opened; when our file was removed
 * (no link left) the path is created again. A file renamed away with
 * nothing at the path yet keeps the lines until logrotate creates the new
 * one or SIGHUP comes: creating it here would race logrotate's own
 * create, which then moves ours aside as a ".backup" and fails.
 * A truncation is handled.
 */
static int
file_check(struct sink *k)
{
	struct stat fst, pst;
	int at_path;

	if (fstat(k->fd, &fst) != 0)
		return TSI_ERR_IO;
	at_path = stat(k->path, &pst) == 0;
	if ((at_path &&
	        (pst.st_ino != fst.st_ino || pst.st_dev != fst.st_dev)) ||
	    fst.st_nlink == 0) {
		sink_close(k);
		return file_open(k);
	}
	if (fst.st_size < k->end) {
		file_truncated(k);
		return TSI_ERR_AGAIN; /* pos moved: rebuild the batch */
	}
	return TSI_OK;
}

static int
file_write(struct sink *k, const char *buf, size_t len)
{
	struct stat st;
	ssize_t w;
	size_t done = 0;

	while (done < len) {
		w = write(k->fd, buf + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return TSI_ERR_IO;
		done += (size_t)w;
	}
	if (fstat(k->fd, &st) != 0)
		return TSI_ERR_IO;
	if (st.st_size < k->end + (off_t)len) {
		/* truncated while we wrote: pos is the batch's last */
		return TSI_ERR_AGAIN;
	}
	k->end = st.st_size;
	return TSI_OK;
}

/* Lines written after the position was last saved (a crash between the
 * write and the save) are in the file already: start after them. */
static void
file_resume(struct sink *k)
{
	uint64_t t = tail_seq(k->path);

	if (t > k->pos) {
		tsi_log(TSI_LOG_INFO, "audit_sink.resume",
		    TSI_LS("sink", k->name), TSI_LI("saved", k->pos),
		    TSI_LI("in_file", t));
		set_pos(k, t);
	}
}

/* ---- stream sockets ---- */

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ? -1 : 0;
}

static int
connect_wait(struct sink *k, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct pollfd pf = { .fd = fd, .events = POLLOUT };
	int e = 0, n;
	socklen_t el = sizeof(e);

	if (set_nonblock(fd) != 0)
		return TSI_ERR_IO;
	if (connect(fd, sa, salen) == 0)
		return TSI_OK;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return TSI_ERR_IO;
	n = poll(&pf, 1, k->set->o.io_timeout_ms);
	if (n == 0)
		errno = ETIMEDOUT;
	if (n <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
		return TSI_ERR_IO;
	if (e != 0) {
		errno = e; /* what the log line names */
		return TSI_ERR_IO;
	}
	return TSI_OK;
}

static int
unix_connect(struct sink *k, int type, const char *path)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1); /* length checked */
	if ((k->fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0)) < 0)
		return TSI_ERR_IO;
	if (connect_wait(k, k->fd, (struct sockaddr *)&sun, sizeof(sun)) !=
	    TSI_OK) {
		sink_close(k);
		return TSI_ERR_IO;
	}
	return TSI_OK;
}

static int
tcp_connect(struct sink *k)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256], port[16];
	int r = TSI_ERR_IO;

	if (split_address(k->address, host, sizeof(host), port, sizeof(port)) !=
	    0)
		return TSI_ERR_CONFIG;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return TSI_ERR_IO;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((k->fd = socket(ai->ai_family,
		         ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol)) < 0)
			continue;
		if (connect_wait(k, k->fd, ai->ai_addr, ai->ai_addrlen) ==
		    TSI_OK) {
			r = TSI_OK;
			break;
		}
		sink_close(k);
	}
	freeaddrinfo(res);
	return r;
}

/* Bytes the peer has taken: for TCP, acknowledged by its kernel; for a
 * Unix stream socket, read by the receiver (SIOCOUTQ counts what is
 * queued unread, in buffer units, so this errs low). Taken is not
 * handled: replay covers what a receiver may hold when it dies. */
static void
stream_update_acked(struct sink *k)
{
	int outq = 0;
	uint64_t a;

	if (k->fd < 0 || ioctl(k->fd, SIOCOUTQ, &outq) != 0 || outq < 0)
		return;
	a = (uint64_t)outq >= k->conn_bytes ? 0
	                                    : k->conn_bytes - (uint64_t)outq;
	if (a > k->acked)
		k->acked = a;
}

/* Drops the marks of lines known delivered: those ending at or before
 * acked - replay. safe becomes the last of them. */
static void
stream_safe(struct sink *k)
{
	uint64_t lim = k->acked > k->replay ? k->acked - k->replay : 0;

	while (k->mark_n > 0 && k->marks[k->mark_head].end <= lim) {
		k->safe = k->marks[k->mark_head].seq;
		k->mark_head++;
		k->mark_n--;
	}
	if (k->mark_n == 0)
		k->mark_head = 0;
}

static int
stream_mark(struct sink *k, uint64_t seq, uint64_t end)
{
	struct sent_mark *m;
	size_t cap;

	if (k->mark_head > 0 && k->mark_head + k->mark_n == k->mark_cap) {
		memmove(k->marks, k->marks + k->mark_head,
		    k->mark_n * sizeof(*k->marks));
		k->mark_head = 0;
	}
	if (k->mark_head + k->mark_n == k->mark_cap) {
		cap = k->mark_cap ? k->mark_cap * 2 : 1024;
		if ((m = realloc(k->marks, cap * sizeof(*m))) == NULL)
			return TSI_ERR_ALLOC;
		k->marks = m;
		k->mark_cap = cap;
	}
	k->marks[k->mark_head + k->mark_n].seq = seq;
	k->marks[k->mark_head + k->mark_n].end = end;
	k->mark_n++;
	return TSI_OK;
}

/* A peer that closed its end shows as readable with nothing to read. */
static int
stream_alive(struct sink *k)
{
	struct pollfd pf = { .fd = k->fd, .events = POLLIN | POLLRDHUP };
	char junk[512];
	ssize_t n;

	if (poll(&pf, 1, 0) <= 0)
		return 1;
	if (pf.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL))
		return 0;
	/* a receiver should not talk; what it says is discarded */
	n = recv(k->fd, junk, sizeof(junk), MSG_DONTWAIT);
	return n != 0 && !(n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* A broken connection: go back to what is known delivered. */
static void
stream_broken(struct sink *k)
{
	stream_safe(k);
	if (k->pos > k->safe) {
		pthread_mutex_lock(&k->set->mu);
		k->resent += k->pos - k->safe;
		pthread_mutex_unlock(&k->set->mu);
		tsi_log(TSI_LOG_INFO, "audit_sink.rewind",
		    TSI_LS("sink", k->name), TSI_LI("from", k->pos),
		    TSI_LI("to", k->safe));
	}
	set_pos(k, k->safe);
	k->mark_head = k->mark_n = 0;
	k->conn_bytes = k->acked = 0;
	sink_close(k);
}

/* ---- syslog ---- */

/* One record as an RFC 3164 message, as syslog(3) writes it to /dev/log:
 * "<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG". A record longer than max_message
 * is replaced by a summary naming it (its seq, time and hash) and its size:
 * the record itself stays in the store (`tsi audit show SEQ`). */
static int
syslog_format(const struct sink *k, const json_t *rec, const char *line,
    size_t llen, char *out, size_t outlen, size_t *n)
{
	char ts[32], summary[512];
	struct tm tm;
	time_t now = time(NULL);
	size_t max = k->c.max_message ? k->c.max_message : 8192;
	int h, m;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(ts, sizeof(ts), "%b %e %H:%M:%S", &tm) == 0)
		return TSI_ERR_INTERNAL;
	h = snprintf(out, outlen, "<%d>%s %s[%ld]: ", k->c.facility | LOG_INFO,
	    ts, k->tag ? k->tag : "tsi-vault", (long)getpid());
	if (h < 0 || (size_t)h >= outlen)
		return TSI_ERR_TOO_LARGE;
	if ((size_t)h + llen > max) {
		m = snprintf(summary, sizeof(summary),
		    "{\"hash\":\"%s\",\"oversize\""
		    ":%zu,\"seq\":%lld,\"time\":\"%s\",\"truncated\":true}",
		    json_string_value(json_object_get(rec, "hash"))
		        ? json_string_value(json_object_get(rec, "hash"))
		        : "",
		    llen,
		    (long long)json_integer_value(json_object_get(rec, "seq")),
		    json_string_value(json_object_get(rec, "time"))
		        ? json_string_value(json_object_get(rec, "time"))
		        : "");
		if (m < 0 || (size_t)m >= sizeof(summary))
			return TSI_ERR_TOO_LARGE;
		line = summary;
		llen = (size_t)m;
	}
	if (llen > outlen - (size_t)h)
		return TSI_ERR_TOO_LARGE;
	memcpy(out + h, line, llen);
	*n = (size_t)h + llen;
	return TSI_OK;
}

/* ---- the sink thread ---- */

static int
sink_open(struct sink *k)
{
	int r;

	switch (k->c.type) {
	case TSI_AUDIT_SINK_FILE: return file_open(k);
	case TSI_AUDIT_SINK_UNIX:
		r = unix_connect(k, SOCK_STREAM, k->path);
		break;
	case TSI_AUDIT_SINK_TCP: r = tcp_connect(k); break;
	case TSI_AUDIT_SINK_SYSLOG:
		return unix_connect(k, SOCK_DGRAM,
		    k->path ? k->path : "/dev/log");
	default: return TSI_ERR_INTERNAL;
	}
	if (r == TSI_OK) {
		k->conn_bytes = k->acked = 0;
		k->mark_head = k->mark_n = 0;
		k->safe = k->pos;
	}
	return r;
}

/* Waits until stop or ms passed (notifications do not cut it short). */
static void
backoff_wait(struct sink *k, int ms)
{
	struct tsi_audit_sinks *set = k->set;
	struct timespec dl;

	abs_deadline(&dl, ms);
	pthread_mutex_lock(&set->mu);
	while (!set->stop &&
	    pthread_cond_timedwait(&set->cv, &set->mu, &dl) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&set->mu);
}

/* The head to send up to: the last notified, or the store's. */
static uint64_t
current_head(struct sink *k)
{
	struct tsi_audit_info info;
	uint64_t h;

	pthread_mutex_lock(&k->set->mu);
	h = k->set->head;
	pthread_mutex_unlock(&k->set->mu);
	if (tsi_audit_reader_info(k->set->rd, &info) == TSI_OK &&
	    info.last_seq > h) {
		h = info.last_seq;
		pthread_mutex_lock(&k->set->mu);
		if (h > k->set->head)
			k->set->head = h;
		pthread_mutex_unlock(&k->set->mu);
	}
	return h;
}

/* Sends records pos+1 .. head, a batch at a time. */
static int
send_some(struct sink *k, uint64_t head)
{
	char *buf = NULL, *line = NULL, *msg = NULL;
	size_t used = 0, n, llen, mlen;
	uint64_t seq, last = k->pos, first = k->pos + 1;
	struct tsi_audit_info info;
	json_t *rec = NULL;
	int r = TSI_ERR_INTERNAL, rc;

	if (k->c.type == TSI_AUDIT_SINK_FILE && (r = file_check(k)) != TSI_OK)
		return r == TSI_ERR_AGAIN ? TSI_OK : r;
	if ((k->c.type == TSI_AUDIT_SINK_UNIX ||
	        k->c.type == TSI_AUDIT_SINK_TCP) &&
	    !stream_alive(k))
		return TSI_ERR_IO;
	if ((buf = malloc(BATCH_BYTES)) == NULL ||
	    (msg = malloc(65536 + 512)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	for (seq = first, n = 0; seq <= head && n < BATCH_RECORDS; seq++) {
		rc = tsi_audit_get(k->set->rd, seq, &rec);
		if (rc == TSI_ERR_NOT_FOUND &&
		    tsi_audit_reader_info(k->set->rd, &info) == TSI_OK &&
		    seq < info.first_seq) {
			tsi_log(TSI_LOG_WARN, "audit_sink.pruned",
			    TSI_LS("sink", k->name), TSI_LI("from", seq),
			    TSI_LI("to", info.first_seq - 1));
			seq = info.first_seq - 1;
			if (used == 0)
				last = seq;
			continue;
		}
		if (rc != TSI_OK) {
			r = TSI_ERR_STORE;
			goto out;
		}
		free(line);
		line = NULL;
		/* The bytes as stored (docs/audit-format.md): a SIEM can
		 * re-hash each line against the chain. */
		if ((r = tsi_audit_record_text(rec, &line, &llen)) != TSI_OK)
			goto out;
		if (k->c.type == TSI_AUDIT_SINK_SYSLOG) {
			if ((r = syslog_format(k, rec, line, llen, msg,
			         65536 + 512, &mlen)) != TSI_OK)
				goto out;
			if (send(k->fd, msg, mlen, MSG_DONTWAIT) < 0) {
				r = errno == EAGAIN || errno == ENOBUFS
				    ? TSI_ERR_AGAIN
				    : TSI_ERR_IO;
				goto out;
			}
			set_pos(k, seq);
			pthread_mutex_lock(&k->set->mu);
			k->sent++;
			pthread_mutex_unlock(&k->set->mu);
			json_decref(rec);
			rec = NULL;
			n++;
			continue;
		}
		if (used > 0 && llen + 1 > BATCH_BYTES - used) {
			json_decref(rec);
			rec = NULL;
			break;
		}
		if (llen + 1 > BATCH_BYTES) {
			r = TSI_ERR_TOO_LARGE; /* records are at most 64 KiB */
			goto out;
		}
		memcpy(buf + used, line, llen);
		buf[used + llen] = '\n';
		used += llen + 1;
		if (k->c.type != TSI_AUDIT_SINK_FILE &&
		    (r = stream_mark(k, seq, k->conn_bytes + used)) != TSI_OK)
			goto out;
		last = seq;
		json_decref(rec);
		rec = NULL;
		n++;
	}
	if (k->c.type == TSI_AUDIT_SINK_SYSLOG) {
		r = TSI_OK;
		goto out;
	}
	if (used > 0) {
		if (k->c.type == TSI_AUDIT_SINK_FILE) {
			r = file_write(k, buf, used);
			if (r == TSI_ERR_AGAIN) {
				set_pos(k, last);
				file_truncated(k);
				r = TSI_OK;
				goto out;
			}
		} else {
			r = write_all(k, buf, used);
			if (r == TSI_OK) {
				k->conn_bytes += used;
				stream_update_acked(k);
				stream_safe(k);
			}
		}
		if (r != TSI_OK)
			goto out;
		pthread_mutex_lock(&k->set->mu);
		k->sent += last - k->pos;
		pthread_mutex_unlock(&k->set->mu);
	}
	set_pos(k, last);
	r = TSI_OK;
out:
	json_decref(rec);
	free(line);
	free(buf);
	free(msg);
	return r;
}

/* The position that survives a restart: for a stream socket what is known
 * delivered, otherwise what was written. */
static uint64_t
durable_pos(struct sink *k)
{
	if (k->c.type == TSI_AUDIT_SINK_UNIX || k->c.type == TSI_AUDIT_SINK_TCP)
		return k->fd >= 0 ? k->safe : k->pos;
	return k->pos;
}

static void
set_up(struct sink *k, int up, int error)
{
	pthread_mutex_lock(&k->set->mu);
	if (error)
		k->errors++;
	k->up = up;
	pthread_mutex_unlock(&k->set->mu);
}

static void *
sink_main(void *arg)
{
	struct sink *k = arg;
	struct tsi_audit_sinks *set = k->set;
	struct timespec dl;
	int backoff = set->o.retry_min_ms, r, reopen, was_up = 0;
	uint64_t head;

	for (;;) {
		pthread_mutex_lock(&set->mu);
		abs_deadline(&dl, POLL_IDLE_MS);
		while (!set->stop && !k->reopen && set->head <= k->pos &&
		    k->fd >= 0 &&
		    pthread_cond_timedwait(&set->cv, &set->mu, &dl) !=
		        ETIMEDOUT)
			;
		reopen = k->reopen;
		k->reopen = 0;
		if (set->stop) {
			pthread_mutex_unlock(&set->mu);
			break;
		}
		pthread_mutex_unlock(&set->mu);
		if (k->fd >= 0 &&
		    (k->c.type == TSI_AUDIT_SINK_UNIX ||
		        k->c.type == TSI_AUDIT_SINK_TCP)) {
			/* an idle connection's peer keeps taking what was
			 * queued: the saved position follows */
			stream_update_acked(k);
			stream_safe(k);
			pos_save(k, durable_pos(k));
		}
		/* the last batch of a sink gone idle is synced too */
		sink_sync(k, 0);
		if (reopen && k->c.type == TSI_AUDIT_SINK_FILE)
			sink_close(k);
		if (k->fd < 0 && (r = sink_open(k)) != TSI_OK) {
			if (was_up || backoff == set->o.retry_min_ms)
				tsi_log(TSI_LOG_WARN, "audit_sink.down",
				    TSI_LS("sink", k->name),
				    TSI_LS("error", strerror(errno)),
				    TSI_LI("retry_ms", backoff));
			was_up = 0;
			set_up(k, 0, 1);
			backoff_wait(k, backoff);
			backoff = backoff > set->o.retry_max_ms / 2
			    ? set->o.retry_max_ms
			    : backoff * 2;
			continue;
		}
		head = current_head(k);
		r = head > k->pos ? send_some(k, head) : TSI_OK;
		if (r == TSI_ERR_AGAIN) {
			/* a full datagram queue: the receiver is slow */
			backoff_wait(k, set->o.retry_min_ms);
			continue;
		}
		if (r != TSI_OK) {
			tsi_log(TSI_LOG_WARN, "audit_sink.write",
			    TSI_LS("sink", k->name),
			    TSI_LS("error", tsi_strerror(r)),
			    TSI_LI("pos", k->pos));
			if (k->c.type == TSI_AUDIT_SINK_UNIX ||
			    k->c.type == TSI_AUDIT_SINK_TCP)
				stream_broken(k);
			else
				sink_close(k);
			was_up = 0;
			set_up(k, 0, 1);
			backoff_wait(k, backoff);
			backoff = backoff > set->o.retry_max_ms / 2
			    ? set->o.retry_max_ms
			    : backoff * 2;
			continue;
		}
		if (!was_up)
			tsi_log(TSI_LOG_INFO, "audit_sink.up",
			    TSI_LS("sink", k->name), TSI_LI("pos", k->pos));
		was_up = 1;
		backoff = set->o.retry_min_ms;
		set_up(k, 1, 0);
		pos_save(k, durable_pos(k));
	}
	if (k->fd >= 0 &&
	    (k->c.type == TSI_AUDIT_SINK_UNIX ||
	        k->c.type == TSI_AUDIT_SINK_TCP)) {
		/* give the peer a moment to take what is queued */
		long long until = mono_us() + 1000000;
		int outq = 1;

		while (mono_us() < until &&
		    ioctl(k->fd, SIOCOUTQ, &outq) == 0 && outq > 0)
			(void)poll(NULL, 0, 20);
		stream_update_acked(k);
		stream_safe(k);
	}
	pos_save(k, durable_pos(k));
	sink_sync(k, 1);
	return NULL;
}

/* ---- the set ---- */

static size_t
tcp_rmem_max(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_rmem", "re");
	unsigned long a, b, c;
	size_t v = DEFAULT_REPLAY;

	if (f == NULL)
		return v;
	if (fscanf(f, "%lu %lu %lu", &a, &b, &c) == 3 && c > 0)
		v = (size_t)c;
	fclose(f);
	return v;
}

static void
sinks_free(struct tsi_audit_sinks *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		struct sink *k = &s->s[i];

		sink_close(k);
		if (k->posfd >= 0)
			close(k->posfd);
		free(k->path);
		free(k->address);
		free(k->tag);
		free(k->marks);
	}
	free(s->s);
	tsi_audit_reader_close(s->rd);
	free(s->state_dir);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int
tsi_audit_sinks_start(const char *audit_dir,
    const struct tsi_audit_sink_cfg *cfg, size_t n,
    const struct tsi_audit_sinks_opts *opts, struct tsi_audit_sinks **out)
{
	struct tsi_audit_sinks *s = NULL;
	pthread_condattr_t ca;
	char err[160];
	size_t i, j;
	int r = TSI_ERR_INTERNAL;

	if (audit_dir == NULL || out == NULL ||
	    (n > 0 && (cfg == NULL || opts == NULL || opts->state_dir == NULL)))
		return TSI_ERR_INVALID_ARG;
	*out = NULL;
	for (i = 0; i < n; i++) {
		if (tsi_audit_sink_check(&cfg[i], err, sizeof(err)) != TSI_OK) {
			tsi_log(TSI_LOG_ERROR, "audit_sink.config",
			    TSI_LS("sink", cfg[i].name ? cfg[i].name : ""),
			    TSI_LS("error", err));
			return TSI_ERR_CONFIG;
		}
		for (j = 0; j < i; j++)
			if (strcmp(cfg[i].name, cfg[j].name) == 0)
				return TSI_ERR_CONFIG;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return TSI_ERR_ALLOC;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (opts != NULL)
		s->o = *opts;
	if (s->o.retry_min_ms <= 0)
		s->o.retry_min_ms = 100;
	if (s->o.retry_max_ms < s->o.retry_min_ms)
		s->o.retry_max_ms =
		    s->o.retry_min_ms > 30000 ? s->o.retry_min_ms : 30000;
	if (s->o.sync_interval_ms <= 0)
		s->o.sync_interval_ms = 1000;
	if (s->o.io_timeout_ms <= 0)
		s->o.io_timeout_ms = 10000;
	s->o.state_dir = NULL;
	if ((s->s = calloc(n ? n : 1, sizeof(*s->s))) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		s->s[i].fd = -1;
		s->s[i].posfd = -1;
	}
	s->n = n;
	if (n == 0) {
		*out = s;
		return TSI_OK;
	}
	if ((s->state_dir = strdup(opts->state_dir)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if (mkdir(s->state_dir, 0700) != 0 && errno != EEXIST) {
		tsi_log(TSI_LOG_ERROR, "audit_sink.state_dir",
		    TSI_LS("path", s->state_dir),
		    TSI_LS("error", strerror(errno)));
		r = TSI_ERR_IO;
		goto out;
	}
	if ((r = tsi_audit_reader_open(audit_dir, &s->rd)) != TSI_OK)
		goto out;
	for (i = 0; i < n; i++) {
		struct sink *k = &s->s[i];

		k->set = s;
		k->c = cfg[i];
		memcpy(k->name, cfg[i].name, strlen(cfg[i].name) + 1);
		k->c.name = k->name;
		if ((cfg[i].path &&
		        (k->path = dup_or_null(cfg[i].path)) == NULL) ||
		    (cfg[i].address &&
		        (k->address = dup_or_null(cfg[i].address)) == NULL) ||
		    (cfg[i].tag &&
		        (k->tag = dup_or_null(cfg[i].tag)) == NULL)) {
			r = TSI_ERR_ALLOC;
			goto out;
		}
		k->c.path = k->path;
		k->c.address = k->address;
		k->c.tag = k->tag;
		if (k->c.type == TSI_AUDIT_SINK_TCP)
			k->replay = cfg[i].replay_bytes ? cfg[i].replay_bytes
			                                : tcp_rmem_max();
		else if (k->c.type == TSI_AUDIT_SINK_UNIX)
			k->replay = cfg[i].replay_bytes ? cfg[i].replay_bytes
			                                : UNIX_REPLAY;
		if ((r = pos_open(k)) != TSI_OK)
			goto out;
		if (k->c.type == TSI_AUDIT_SINK_FILE)
			file_resume(k);
		k->last_sync_us = mono_us();
	}
	for (i = 0; i < n; i++) {
		if (pthread_create(&s->s[i].thr, NULL, sink_main, &s->s[i]) !=
		    0) {
			r = TSI_ERR_INTERNAL;
			goto out;
		}
		s->s[i].started = 1;
		tsi_log(TSI_LOG_INFO, "audit_sink.start",
		    TSI_LS("sink", s->s[i].name),
		    TSI_LS("type", type_names[s->s[i].c.type]),
		    TSI_LI("pos", s->s[i].pos));
	}
	*out = s;
	s = NULL;
	r = TSI_OK;
out:
	if (s != NULL)
		tsi_audit_sinks_stop(s);
	return r;
}

void
tsi_audit_sinks_notify(void *arg, uint64_t seq)
{
	struct tsi_audit_sinks *s = arg;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	if (seq > s->head) {
		s->head = seq;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
}

void
tsi_audit_sinks_reopen(struct tsi_audit_sinks *s)
{
	size_t i;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->n; i++)
		if (s->s[i].c.type == TSI_AUDIT_SINK_FILE)
			s->s[i].reopen = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void
tsi_audit_sinks_stop(struct tsi_audit_sinks *s)
{
	size_t i;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (i = 0; i < s->n; i++)
		if (s->s[i].started)
			pthread_join(s->s[i].thr, NULL);
	sinks_free(s);
}

size_t
tsi_audit_sinks_count(const struct tsi_audit_sinks *s)
{
	return s != NULL ? s->n : 0;
}

int
tsi_audit_sinks_stat(struct tsi_audit_sinks *s, size_t i,
    struct tsi_audit_sink_stat *st)
{
	struct sink *k;

	memset(st, 0, sizeof(*st));
	if (s == NULL || i >= s->n)
		return TSI_ERR_NOT_FOUND;
	k = &s->s[i];
	pthread_mutex_lock(&s->mu);
	memcpy(st->name, k->name, sizeof(st->name));
	st->type = type_names[k->c.type];
	st->pos = __atomic_load_n(&k->pos, __ATOMIC_RELAXED);
	st->head = s->head;
	st->lag = st->head > st->pos ? st->head - st->pos : 0;
	st->sent = k->sent;
	st->errors = k->errors;
	st->resent = k->resent;
	st->up = k->up;
	pthread_mutex_unlock(&s->mu);
	return TSI_OK;
}
