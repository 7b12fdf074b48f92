/*
 * audit_sink.h - audit streaming to a SIEM, like Vault's audit devices
 * (docs/audit.md "Sinks").
 *
 * After a record is durable in the audit store it is also written, as one
 * JSON line (the stored record: canonical JSON, keys sorted, no blanks,
 * "\n"-terminated), to each configured sink: a file, a Unix or TCP stream
 * socket, or syslog (a Unix datagram socket, /dev/log by default). Each
 * sink has its own thread that reads the store by seq, so a sink that is
 * down never blocks a release: records stay in the store and the sink
 * catches up from its position when it comes back (retrying with
 * exponential back-off). A sink's position (the last seq it delivered) is
 * kept in STATE_DIR/NAME.pos so that a restart resumes there.
 *
 * Guarantee: lines arrive in seq order and never with a gap (a seq skipped
 * only when retention pruned it before the sink sent it: logged). A stream
 * sink may repeat lines after its connection broke or after a restart (the
 * lines its peer may not have read are sent again); every line carries
 * "seq", so a receiver that drops a line whose seq is not above the last
 * one it kept sees every record exactly once, in order.
 */
#ifndef TSI_AUDIT_SINK_H
#define TSI_AUDIT_SINK_H

#include <stddef.h>
#include <stdint.h>

enum tsi_audit_sink_type {
	TSI_AUDIT_SINK_FILE = 1,
	TSI_AUDIT_SINK_UNIX, /* stream socket */
	TSI_AUDIT_SINK_TCP,
	TSI_AUDIT_SINK_SYSLOG, /* RFC 3164 datagrams to a Unix socket */
};

#define TSI_AUDIT_SINK_NAME_MAX 63

struct tsi_audit_sink_cfg {
	/* [A-Za-z0-9_.-], 1 to TSI_AUDIT_SINK_NAME_MAX bytes, unique: names
	 * the position file and the metrics' sink label. */
	const char *name;
	enum tsi_audit_sink_type type;
	const char *path;    /* file: the file; unix: the socket; syslog:
	                        * the socket (NULL: /dev/log) */
	const char *address; /* tcp: HOST:PORT ([v6]:PORT) */
	int facility;        /* syslog: LOG_LOCAL0 ... (<syslog.h> values) */
	const char *tag;     /* syslog: NULL: "tsi-vault" */
	size_t max_message;  /* syslog: bytes of a datagram; 0: 8192 */
	/* tcp, unix: bytes before what the peer has taken that are sent
	 * again after a broken connection (what the peer's kernel may have
	 * acknowledged, or the receiver read, without handling it); 0: tcp
	 * the system's largest TCP receive buffer (net.ipv4.tcp_rmem),
	 * unix 4 MiB. */
	size_t replay_bytes;
};

struct tsi_audit_sinks_opts {
	const char *state_dir; /* position files; created 0700 if missing */
	int retry_min_ms;      /* first back-off; 0: 100 */
	int retry_max_ms;      /* back-off cap; 0: 30000 */
	int sync_interval_ms;  /* fdatasync of files and positions; 0: 1000 */
	int io_timeout_ms;     /* a connect or a blocked write; 0: 10000 */
};

struct tsi_audit_sinks;

/* Checks cfg (name, type and the fields the type needs) without opening
 * anything. TSI_OK, or TSI_ERR_CONFIG with why in err. */
int tsi_audit_sink_check(const struct tsi_audit_sink_cfg *cfg, char *err,
    size_t errlen);

/* "kern", "user", "daemon", "auth", "authpriv", "local0".."local7" into a
 * <syslog.h> facility. TSI_ERR_CONFIG on another name. */
int tsi_audit_sink_facility(const char *name, int *facility);

/*
 * Starts one thread per sink, reading the audit log in audit_dir (a reader
 * of it is opened here; in a process that has the writer open, open that
 * first). cfg and opts are copied. *out: tsi_audit_sinks_stop. n may be 0.
 */
int tsi_audit_sinks_start(const char *audit_dir,
    const struct tsi_audit_sink_cfg *cfg, size_t n,
    const struct tsi_audit_sinks_opts *opts, struct tsi_audit_sinks **out);

/* Tells the sinks that records up to seq are durable: a
 * tsi_audit_durable_cb (arg is the struct tsi_audit_sinks). Without it the
 * sinks look at the store's head once a second. Never blocks on I/O. */
void tsi_audit_sinks_notify(void *sinks, uint64_t seq);

/* Reopens every file sink (SIGHUP, after logrotate's create). */
void tsi_audit_sinks_reopen(struct tsi_audit_sinks *s);

/* Stops the threads (a write in progress ends within io_timeout_ms),
 * saves and syncs each position, frees s. Accepts NULL. */
void tsi_audit_sinks_stop(struct tsi_audit_sinks *s);

struct tsi_audit_sink_stat {
	char name[TSI_AUDIT_SINK_NAME_MAX + 1];
	const char *type; /* "file", "unix", "tcp", "syslog" (static) */
	uint64_t pos;     /* last seq written to the sink */
	uint64_t head;    /* the store's last durable seq it knows */
	uint64_t lag;     /* head - pos */
	uint64_t sent;    /* lines written since start */
	uint64_t errors;  /* failed opens, connects and writes */
	uint64_t resent;  /* lines sent again after a break */
	int up;           /* open/connected and the last write worked */
};

size_t tsi_audit_sinks_count(const struct tsi_audit_sinks *s);
/* Sink i's counters. TSI_ERR_NOT_FOUND when i >= count. */
int tsi_audit_sinks_stat(struct tsi_audit_sinks *s, size_t i,
    struct tsi_audit_sink_stat *st);

#endif /* TSI_AUDIT_SINK_H */
