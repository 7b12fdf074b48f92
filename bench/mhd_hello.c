/*
 * mhd_hello.c - the limit for tsi-vault's KV reads: a libmicrohttpd server
 * that does nothing but HTTP, set up as tsi-vault is (internal polling
 * thread, a thread pool of 2, keep-alive kept by answering on the second
 * call of the handler, bound with MHD_OPTION_SOCK_ADDR).
 *
 * Every GET answers 200 with a JSON body shaped and sized like a KV v2 read
 * response; a request without X-Vault-Token gets 403, so the load generator
 * exercises the same header lookup as a real read.
 *
 * With --login it is the HTTP part of tsi-vault's login instead: a POST
 * (its body, a login request of any size, read and dropped) answers 200
 * with a body shaped and sized like a login answer (940 bytes, the
 * envelope with the auth object of a bench/run token); other methods 405.
 *
 *   mhd_hello --port P | --unix PATH [--threads N] [--epoll] [--login]
 *
 * Serves on 127.0.0.1:P (or on a Unix socket, the issuer's transport, to
 * check the Unix-socket load generator) until SIGINT or SIGTERM; prints "ready" on stdout
 * once listening. Exit 0 on a clean stop, 1 when it cannot start, 2 on bad
 * usage.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

/* About the size of a KV v2 read of a small secret. */
static const char body[] =
    "{\"request_id\":\"6a1c3c5e-6a39-4c2f-9a7a-6f8c2b1d0e11\",\"lease_id\":"
    "\"\","
    "\"renewable\":false,\"lease_duration\":0,\"data\":{\"data\":"
    "{\"password\":\"correct-horse-battery-staple\"},\"metadata\":"
    "{\"created_time\":\"2026-01-01T00:00:00.000000Z\",\"custom_metadata\":"
    "null,"
    "\"deletion_time\":\"\",\"destroyed\":false,\"version\":1}},"
    "\"wrap_info\":null,\"warnings\":null,\"auth\":null}";
/* A login answer for a bench/run token (mint_tokens), byte for byte the
 * size tsi-vault sends. */
static const char login_answer[] =
    "{\"request_id\":\"664f9962-cdfc-44bf-9ff7-ca99f13cb24b\",\"lease_id\":"
    "\"\","
    "\"renewable\":false,\"lease_duration\":0,\"data\":null,\"auth\":"
    "{\"client_token\":\"hvs.cD958AlaO62CyxNwwquKLQoVenCKvgxklz0FyOCkE4U\","
    "\"accessor\":\"CDDcAJxkicZgTiZqU2OS0SMz\",\"policies\":[\"bench-rw\"],"
    "\"token_policies\":[\"bench-rw\"],\"metadata\":{\"iss\":"
    "\"tsi-issuer/bench-node\",\"sub\":\"spiffe://bench.tsi/ns/bench/sa/"
    "bench\","
    "\"aud\":\"tsi-vault\",\"iat\":\"1795394442\",\"nbf\":\"1795394442\","
    "\"exp\":\"1795398042\",\"jti\":\"37238fd48c7cec52c145b160c0d5ff0f\","
    "\"images\":\"sha256:"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaa\",\"images-names\":\"registry.example/bench/app:1\","
    "\"cluster-name\":\"bench-cluster\",\"region\":\"bench-region\","
    "\"datacenter\":\"bench-dc\",\"node\":\"bench-node\",\"namespace\":"
    "\"bench\",\"pod\":\"bench-4\",\"service-account\":\"bench\"},"
    "\"lease_duration\":3121,\"renewable\":false,\"entity_id\":\"\","
    "\"token_type\":\"service\",\"mfa_requirement\":null,\"orphan\":true},"
    "\"wrap_info\":null,\"warnings\":null,\"mount_type\":\"\"}";
static const char denied[] = "{\"errors\":[\"permission denied\"]}";

static volatile sig_atomic_t stop;
static int login_mode;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	static int first_call_marker;
	struct MHD_Response *resp;
	const char *tok;
	unsigned int status = MHD_HTTP_OK;
	enum MHD_Result r;

	(void)cls;
	(void)url;
	(void)version;
	(void)upload_data;
	/* Answering on the first call closes the connection after the
	 * response (GnuTLS build): answer on the second call, as tsi-vault. */
	if (*req_cls == NULL) {
		*req_cls = &first_call_marker;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* discard request bodies */
		return MHD_YES;
	}
	if (login_mode) {
		if (strcmp(method, "POST") == 0)
			resp =
			    MHD_create_response_from_buffer(sizeof(
			                                        login_answer) -
			            1,
			        (void *)login_answer, MHD_RESPMEM_MUST_COPY);
		else {
			status = MHD_HTTP_METHOD_NOT_ALLOWED;
			resp =
			    MHD_create_response_from_buffer(sizeof(denied) - 1,
			        (void *)denied, MHD_RESPMEM_MUST_COPY);
		}
		goto send;
	}
	if (strcmp(method, "GET") != 0)
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	tok =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Vault-Token");
	if (status == MHD_HTTP_OK && (tok == NULL || tok[0] == '\0'))
		status = MHD_HTTP_FORBIDDEN;
	if (status == MHD_HTTP_OK)
		resp = MHD_create_response_from_buffer(sizeof(body) - 1,
		    (void *)body, MHD_RESPMEM_MUST_COPY);
	else
		resp = MHD_create_response_from_buffer(sizeof(denied) - 1,
		    (void *)denied, MHD_RESPMEM_MUST_COPY);
send:
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: mhd_hello --port P | --unix PATH [--threads N] "
	    "[--epoll] [--login]\n");
	return 2;
}

/* A listening Unix socket at path (replacing a stale one), or -1. */
static int
listen_unix(const char *path)
{
	struct sockaddr_un su;
	int fd;

	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(su.sun_path))
		return -1;
	memcpy(su.sun_path, path, strlen(path) + 1);
	unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&su, sizeof(su)) != 0 ||
	    listen(fd, 128) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	unsigned int flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	const char *unix_path = NULL;
	long port = -1, threads = 2;
	int i, lfd = -1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
			port = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--unix") == 0 && i + 1 < argc)
			unix_path = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--epoll") == 0)
			flags |= MHD_USE_EPOLL;
		else if (strcmp(argv[i], "--login") == 0)
			login_mode = 1;
		else
			return usage();
	}
	if ((unix_path == NULL) == (port <= 0 || port > 65535) || threads < 1 ||
	    threads > 64)
		return usage();
	if (unix_path != NULL && (lfd = listen_unix(unix_path)) < 0) {
		fprintf(stderr, "mhd_hello: cannot listen on %s\n", unix_path);
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	if (lfd >= 0)
		d = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL,
		    MHD_OPTION_LISTEN_SOCKET, lfd, MHD_OPTION_THREAD_POOL_SIZE,
		    (unsigned int)threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		    (size_t)(16 * 1024), MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned int)30, MHD_OPTION_END);
	else
		d = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL,
		    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
		    MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "mhd_hello: cannot start the server\n");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		pause();
	MHD_stop_daemon(d);
	if (unix_path != NULL)
		unlink(unix_path);
	return 0;
}
