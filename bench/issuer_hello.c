/*
 * issuer_hello.c - the floor for tsi-issuer's token figure: libmicrohttpd on
 * a Unix socket, started exactly as tsi-issuer starts it (every setting from
 * issuer/api_mhd.h: flags, thread pool, connection limit, timeout and
 * memory; keep-alive kept by answering on the handler's second call; the
 * same two response headers), answering every GET with a fixed
 * {"token":"...","expires_at":N} body of the given size. No caller
 * identification, no claims, no signature, no log line: what is left is the
 * part of a token that no code of ours can remove, the HTTP exchange on the
 * socket, measured with the same load generator (bench/issuer_load.c).
 *
 *   issuer_hello --unix PATH [--body-bytes N]
 *
 * N (default 1200, 64..65536) is the whole body's length; bench/figures.sh
 * passes the length of a real token answer. Serves until SIGINT or SIGTERM;
 * prints "ready" on stdout once listening. Exit 0 on a clean stop, 1 when it
 * cannot start, 2 on bad usage.
 */
#include "issuer/api_mhd.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

static volatile sig_atomic_t stop;
static char *body;
static size_t body_len;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* A response body owned by the response, as tsi-issuer's (one copy of the
 * token per answer, freed by the library). */
static void
body_free(void *cls)
{
	free(cls);
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	static int first_call_marker;
	struct MHD_Response *resp;
	enum MHD_Result r;
	char *copy;

	(void)cls;
	(void)url;
	(void)version;
	(void)upload_data;
	/* Same as tsi-issuer: answer on the second call (keep-alive). */
	if (*req_cls == NULL) {
		*req_cls = &first_call_marker;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return MHD_NO;
	if ((copy = malloc(body_len)) == NULL)
		return MHD_NO;
	memcpy(copy, body, body_len);
	resp = MHD_create_response_from_buffer_with_free_callback_cls(body_len,
	    copy, body_free, copy);
	if (resp == NULL) {
		free(copy);
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, "Content-Type", "application/json");
	(void)MHD_add_response_header(resp, "Cache-Control", "no-store");
	r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

static int
usage(void)
{
	fprintf(stderr, "usage: issuer_hello --unix PATH [--body-bytes N]\n");
	return 2;
}

/* {"token":"AAAA...","expires_at":1795394921}, exactly n bytes. */
static char *
make_body(size_t n)
{
	static const char head[] = "{\"token\":\"";
	static const char tail[] = "\",\"expires_at\":1795394921}";
	size_t fixed = sizeof(head) - 1 + sizeof(tail) - 1;
	char *b;

	if (n < fixed || (b = malloc(n)) == NULL)
		return NULL;
	memcpy(b, head, sizeof(head) - 1);
	memset(b + sizeof(head) - 1, 'A', n - fixed);
	memcpy(b + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
	return b;
}

int
main(int argc, char **argv)
{
	struct sockaddr_un su;
	struct MHD_Daemon *d;
	const char *path = NULL;
	long n = 1200;
	mode_t old;
	int i, fd = -1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--unix") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--body-bytes") == 0 && i + 1 < argc)
			n = strtol(argv[++i], NULL, 10);
		else
			return usage();
	}
	if (path == NULL || n < 64 || n > 65536)
		return usage();
	if ((body = make_body((size_t)n)) == NULL)
		return usage();
	body_len = (size_t)n;

	/* Bound as tsi-issuer binds its socket (issuer/api.c bind_socket). */
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(su.sun_path))
		return usage();
	memcpy(su.sun_path, path, strlen(path) + 1);
	(void)unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&su, sizeof(su)) != 0) {
		umask(old);
		goto fail;
	}
	umask(old);
	if (listen(fd, 128) != 0)
		goto fail;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	d = MHD_start_daemon(TSI_ISSUER_MHD_FLAGS, 0, NULL, NULL, handle, NULL,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_THREAD_POOL_SIZE, tsi_issuer_mhd_threads(),
	    MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned int)TSI_ISSUER_MAX_CLIENTS_DEFAULT,
	    MHD_OPTION_CONNECTION_TIMEOUT, TSI_ISSUER_CONN_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, TSI_ISSUER_CONN_MEMORY,
	    MHD_OPTION_END);
	if (d == NULL)
		goto fail;
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		pause();
	MHD_stop_daemon(d);
	(void)unlink(path);
	free(body);
	return 0;
fail:
	fprintf(stderr, "issuer_hello: cannot serve on %s\n", path);
	if (fd >= 0)
		close(fd);
	(void)unlink(path);
	free(body);
	return 1;
}
