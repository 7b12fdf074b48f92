/*
 * mhd_audit.c - the second limit for tsi-vault's KV reads: mhd_hello's
 * hello-world server (same libmicrohttpd set-up, same answer) that also
 * makes one audit record durable per request through the same audit
 * library, the way tsi-vault does for a read: on the request's final call
 * the connection is suspended and the record submitted
 * (tsi_audit_submit); the callback resumes the connection; the answer is
 * queued on the next call, once the record is committed. No token, policy,
 * KV store or decryption: the gap between this and tsi-vault is the KV read
 * path's own cost, the gap between mhd_hello and this the durable audit's.
 *
 *   mhd_audit --port P --dir DIR [--threads N] [--epoll] [--record FILE]
 *
 * DIR: the audit environment (created). --record: the record to submit, a
 * JSON object (a record tsi-vault stored, so that the size is the same;
 * the writer's fields seq, time, time_us, prev and hash are dropped first);
 * without it, a KV read record of a logged-in workload built in. Audit
 * options are tsi-vault's defaults. Prints "ready" once listening; serves
 * until SIGINT or SIGTERM. Exit 0 on a clean stop, 1 when it cannot start,
 * 2 on bad usage.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "tsi/audit.h"
#include "tsi/err.h"

/* mhd_hello's answer. */
static const char body[] =
    "{\"request_id\":\"6a1c3c5e-6a39-4c2f-9a7a-6f8c2b1d0e11\",\"lease_id\":"
    "\"\","
    "\"renewable\":false,\"lease_duration\":0,\"data\":{\"data\":"
    "{\"password\":\"correct-horse-battery-staple\"},\"metadata\":"
    "{\"created_time\":\"2026-01-01T00:00:00.000000Z\",\"custom_metadata\":"
    "null,"
    "\"deletion_time\":\"\",\"destroyed\":false,\"version\":1}},"
    "\"wrap_info\":null,\"warnings\":null,\"auth\":null}";
static const char denied[] = "{\"errors\":[\"permission denied\"]}";

/* A KV read record as tsi-vault writes it for a logged-in token. */
static const char builtin_record[] =
    "{\"op\":\"read\",\"path\":\"secret/data/bench/s17\",\"version\":1,"
    "\"decision\":\"allow\",\"rule\":\"bench-rw\",\"reason\":"
    "\"rule bench-rw grants read on secret/data/bench/*\",\"claims\":"
    "{\"sub\":\"wl:bench-cluster/bench-ns/bench-pod\",\"iss\":\"bench-node\","
    "\"aud\":\"tsi-vault\",\"cluster-name\":\"bench-cluster\",\"region\":"
    "\"bench-region\",\"datacenter\":\"bench-dc\",\"namespace\":\"bench-ns\","
    "\"pod\":\"bench-pod\",\"images\":[\"registry.example/bench:1\"],"
    "\"images-names\":[\"bench\"],\"machineid\":\"0123456789abcdef\"},"
    "\"accessor\":\"Wm9vMkF0cjVjY2Vzc29yMTIz\",\"remote\":\"127.0.0.1\","
    "\"request_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"status\":200}";

static volatile sig_atomic_t stop;
static struct tsi_audit *audit;
static json_t *record;
/* Held shared around a submit; main takes it exclusively to close. */
static pthread_rwlock_t closing_lock = PTHREAD_RWLOCK_INITIALIZER;
static int closing;

struct req {
	struct MHD_Connection *conn;
	int submitted;
	int done; /* atomic */
	int rc;   /* atomic */
};

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
durable(void *arg, int rc, uint64_t seq)
{
	struct req *r = arg;
	struct MHD_Connection *c = r->conn;

	(void)seq;
	__atomic_store_n(&r->rc, rc, __ATOMIC_RELEASE);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	MHD_resume_connection(c);
}

static enum MHD_Result
answer(struct MHD_Connection *conn, unsigned int status, const char *text,
    size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	resp = MHD_create_response_from_buffer(len, (void *)text,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	static const char failed[] = "{\"errors\":[\"audit log unavailable\"]}";
	struct req *r = *req_cls;
	const char *tok;

	(void)cls;
	(void)url;
	(void)version;
	(void)upload_data;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		r->conn = conn;
		*req_cls = r;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->submitted) {
		if (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE))
			return MHD_YES;
		if (__atomic_load_n(&r->rc, __ATOMIC_ACQUIRE) != TSI_OK)
			return answer(conn, 503, failed, sizeof(failed) - 1);
		return answer(conn, MHD_HTTP_OK, body, sizeof(body) - 1);
	}
	tok =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Vault-Token");
	if (strcmp(method, "GET") != 0 || tok == NULL || tok[0] == '\0')
		return answer(conn,
		    strcmp(method, "GET") != 0 ? MHD_HTTP_METHOD_NOT_ALLOWED
		                               : MHD_HTTP_FORBIDDEN,
		    denied, sizeof(denied) - 1);
	/* Suspended first: the callback may come before submit returns. */
	MHD_suspend_connection(conn);
	r->submitted = 1;
	pthread_rwlock_rdlock(&closing_lock);
	if (closing || tsi_audit_submit(audit, record, durable, r) != TSI_OK)
		durable(r, TSI_ERR_AUDIT, 0);
	pthread_rwlock_unlock(&closing_lock);
	return MHD_YES;
}

static void
completed(void *cls, struct MHD_Connection *c, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	free(*req_cls);
	*req_cls = NULL;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: mhd_audit --port P --dir DIR [--threads N] "
	    "[--epoll] [--record FILE]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	static const char *const writer_keys[] = { "seq", "time", "time_us",
		"prev", "hash" };
	struct sockaddr_in sa;
	struct tsi_audit_opts ao;
	struct MHD_Daemon *d;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	const char *dir = NULL, *record_file = NULL;
	json_error_t jerr;
	long port = -1, threads = 2;
	size_t k;
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
			port = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--record") == 0 && i + 1 < argc)
			record_file = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--epoll") == 0)
			flags |= MHD_USE_EPOLL;
		else
			return usage();
	}
	if (port <= 0 || port > 65535 || dir == NULL || threads < 1 ||
	    threads > 64)
		return usage();
	record = record_file ? json_load_file(record_file, 0, &jerr)
	                     : json_loads(builtin_record, 0, &jerr);
	if (!json_is_object(record)) {
		fprintf(stderr, "mhd_audit: %s:%d: %s\n",
		    record_file ? record_file : "built-in record", jerr.line,
		    jerr.text);
		return 2;
	}
	for (k = 0; k < sizeof(writer_keys) / sizeof(writer_keys[0]); k++)
		json_object_del(record, writer_keys[k]);
	memset(&ao, 0, sizeof(ao)); /* tsi-vault's defaults */
	ao.map_size = (size_t)1 << 30;
	ao.commit_timeout_ms = 2000;
	ao.batch_max = 256;
	ao.commit_delay_us = 200; /* tsi-vault's audit_commit_delay_us */
	if ((rc = tsi_audit_open(dir, &ao, &audit)) != TSI_OK) {
		fprintf(stderr,
		    "mhd_audit: cannot open the audit log in %s: %s\n", dir,
		    tsi_strerror(rc));
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	d = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "mhd_audit: cannot start the server\n");
		tsi_audit_close(audit);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		pause();
	/* Closing the log first delivers every callback still to come, so
	 * no connection stays suspended when the daemon stops. */
	pthread_rwlock_wrlock(&closing_lock);
	closing = 1;
	pthread_rwlock_unlock(&closing_lock);
	tsi_audit_close(audit);
	MHD_stop_daemon(d);
	json_decref(record);
	return 0;
}
