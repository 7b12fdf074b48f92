/*
 * guard.c - keeps connection slots for callers who send whole requests.
 *
 * libmicrohttpd's connection_timeout is an inactivity timeout: one byte a
 * second keeps a connection open for ever, so a few thousand trickling
 * connections (TLS handshakes or request heads sent a byte at a time) held
 * every slot. Two rules stop that:
 *
 *  1. Deadline. A connection has request_timeout seconds, counted from its
 *     accept (TLS handshake included) or from the end of its previous
 *     answer, to deliver a complete request, head and body. It is
 *     "receiving" until then; the reaper thread shuts down (shutdown(2))
 *     every receiving connection past its deadline, and libmicrohttpd then
 *     sees the end of the stream and closes it. An idle keep-alive
 *     connection is also receiving, so it lasts request_timeout at most.
 *     A connection whose request is complete (being answered, or waiting
 *     for its audit record) is busy and never touched here.
 *
 *  2. Reserve. When more than connection_limit minus a reserve (an eighth)
 *     are open, each new connection makes room: the oldest receiving
 *     connection of the address that holds the most connections is shut
 *     down. A flood from a few addresses then evicts itself, and a caller
 *     from any other address always finds a slot.
 *
 * The fd is shut down under the guard's mutex, and libmicrohttpd reports
 * the close (NOTIFY_CLOSED, which takes the mutex) before it closes the
 * fd, so a shut-down fd is never one reused for another connection.
 */
#include "vault.h"
#include "settings.h"
#include "guard.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define GUARD_BUCKETS 256
#define GUARD_TICK_MS 250

struct gaddr;

struct gconn {
	struct gconn *prev, *next; /* in its address's list */
	struct gaddr *a;
	MHD_socket fd;
	long long since_ms; /* start of the current receiving phase */
	int busy;           /* a complete request is being answered */
	int doomed;         /* shut down; waiting for MHD to close */
};

struct gaddr {
	struct gaddr *hnext;
	unsigned char key[17]; /* family byte, then 16 address bytes */
	size_t n;              /* connections, doomed ones included */
	struct gconn *conns;
};

struct vault_guard {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct gaddr *bucket[GUARD_BUCKETS];
	size_t n;    /* open connections */
	size_t high; /* eviction above this many */
	long long timeout_ms;
	int stopping;
	int running;
	pthread_t reaper;
	unsigned long long closed_slow; /* since the last log line */
	unsigned long long evicted;
	unsigned long long closed_slow_total, evicted_total;
};

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
addr_key(struct MHD_Connection *c, unsigned char key[17])
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	memset(key, 0, 17);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	key[0] = (unsigned char)sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    16);
}

static unsigned
addr_hash(const unsigned char key[17])
{
	unsigned h = 2166136261u;
	int i;

	for (i = 0; i < 17; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % GUARD_BUCKETS;
}

/* Under g->mu. */
static void
doom(struct vault_guard *g, struct gconn *gc)
{
	gc->doomed = 1;
	(void)shutdown(gc->fd, SHUT_RDWR);
}

/* Under g->mu: shuts down the oldest receiving connection of the address
 * with the most live connections, other than the one just accepted. */
static void
evict(struct vault_guard *g, const struct gconn *except)
{
	struct gaddr *a, *top = NULL;
	struct gconn *gc, *victim = NULL;
	size_t i, topn = 0;

	for (i = 0; i < GUARD_BUCKETS; i++)
		for (a = g->bucket[i]; a != NULL; a = a->hnext) {
			size_t live = 0;
			int candidate = 0;
			for (gc = a->conns; gc != NULL; gc = gc->next)
				if (!gc->doomed) {
					live++;
					if (!gc->busy && gc != except)
						candidate = 1;
				}
			if (candidate && live > topn) {
				top = a;
				topn = live;
			}
		}
	if (top == NULL)
		return;
	for (gc = top->conns; gc != NULL; gc = gc->next)
		if (!gc->doomed && !gc->busy && gc != except &&
		    (victim == NULL || gc->since_ms < victim->since_ms))
			victim = gc;
	if (victim != NULL) {
		doom(g, victim);
		g->evicted++;
	}
}

static void
notify(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct vault *v = cls;
	struct vault_guard *g = v->guard;
	struct gconn *gc;
	struct gaddr *a;
	const union MHD_ConnectionInfo *ci;
	unsigned char key[17];
	unsigned h;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = NULL;
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci == NULL || (gc = calloc(1, sizeof(*gc))) == NULL)
			return;
		gc->fd = ci->connect_fd;
		gc->since_ms = mono_ms();
		addr_key(c, key);
		h = addr_hash(key);
		pthread_mutex_lock(&g->mu);
		for (a = g->bucket[h]; a != NULL; a = a->hnext)
			if (memcmp(a->key, key, sizeof(key)) == 0)
				break;
		if (a == NULL && (a = calloc(1, sizeof(*a))) != NULL) {
			memcpy(a->key, key, sizeof(key));
			a->hnext = g->bucket[h];
			g->bucket[h] = a;
		}
		if (a == NULL) {
			pthread_mutex_unlock(&g->mu);
			free(gc);
			return;
		}
		gc->a = a;
		gc->next = a->conns;
		if (a->conns != NULL)
			a->conns->prev = gc;
		a->conns = gc;
		a->n++;
		g->n++;
		if (g->n > g->high)
			evict(g, gc);
		pthread_mutex_unlock(&g->mu);
		*socket_context = gc;
		return;
	}
	if ((gc = *socket_context) == NULL)
		return;
	*socket_context = NULL;
	pthread_mutex_lock(&g->mu);
	a = gc->a;
	if (gc->prev != NULL)
		gc->prev->next = gc->next;
	else
		a->conns = gc->next;
	if (gc->next != NULL)
		gc->next->prev = gc->prev;
	g->n--;
	if (--a->n == 0) {
		struct gaddr **pp = &g->bucket[addr_hash(a->key)];
		while (*pp != a)
			pp = &(*pp)->hnext;
		*pp = a->hnext;
		free(a);
	}
	pthread_mutex_unlock(&g->mu);
	free(gc);
}

static struct gconn *
conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

void
vault_guard_busy(struct vault *v, struct MHD_Connection *c)
{
	struct gconn *gc = conn_of(c);

	if (gc == NULL || v->guard == NULL)
		return;
	pthread_mutex_lock(&v->guard->mu);
	gc->busy = 1;
	pthread_mutex_unlock(&v->guard->mu);
}

void
vault_guard_idle(struct vault *v, struct MHD_Connection *c)
{
	struct gconn *gc = conn_of(c);

	if (gc == NULL || v->guard == NULL)
		return;
	pthread_mutex_lock(&v->guard->mu);
	gc->busy = 0;
	gc->since_ms = mono_ms();
	pthread_mutex_unlock(&v->guard->mu);
}

static void *
reaper_main(void *arg)
{
	struct vault *v = arg;
	struct vault_guard *g = v->guard;
	struct timespec until;
	struct gaddr *a;
	struct gconn *gc;
	unsigned long long slow, ev;
	long long now;
	size_t i;

	pthread_mutex_lock(&g->mu);
	while (!g->stopping) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += GUARD_TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&g->cv, &g->mu, &until);
		if (g->stopping)
			break;
		now = mono_ms();
		for (i = 0; i < GUARD_BUCKETS; i++)
			for (a = g->bucket[i]; a != NULL; a = a->hnext)
				for (gc = a->conns; gc != NULL; gc = gc->next)
					if (!gc->busy && !gc->doomed &&
					    now - gc->since_ms >
					        g->timeout_ms) {
						doom(g, gc);
						g->closed_slow++;
					}
		slow = g->closed_slow;
		ev = g->evicted;
		g->closed_slow = g->evicted = 0;
		if (slow == 0 && ev == 0)
			continue;
		g->closed_slow_total += slow;
		g->evicted_total += ev;
		/* One line per tick, not per connection: a flood must not
		 * become a flood of log lines. */
		pthread_mutex_unlock(&g->mu);
		tsi_log(TSI_LOG_WARN, "http.connections_closed",
		    TSI_LI("past_request_timeout", (long long)slow),
		    TSI_LI("evicted_for_room", (long long)ev));
		pthread_mutex_lock(&g->mu);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

int
vault_guard_start(struct vault *v)
{
	struct vault_guard *g;
	size_t limit = (size_t)v->set->conn_limit, reserve;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return TSI_ERR_ALLOC;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	reserve = limit / 8 > 0 ? limit / 8 : 1;
	g->high = limit > reserve ? limit - reserve : 0;
	g->timeout_ms = v->set->request_timeout * 1000;
	v->guard = g;
	if (pthread_create(&g->reaper, NULL, reaper_main, v) != 0) {
		v->guard = NULL;
		pthread_mutex_destroy(&g->mu);
		pthread_cond_destroy(&g->cv);
		free(g);
		return TSI_ERR_INTERNAL;
	}
	g->running = 1;
	return TSI_OK;
}

MHD_NotifyConnectionCallback
vault_guard_notify(void)
{
	return notify;
}

int
vault_guard_metrics(struct vault *v, struct tsi_buf *b)
{
	struct vault_guard *g = v->guard;
	unsigned long long slow = 0, ev = 0;
	size_t n = 0;

	if (g != NULL) {
		pthread_mutex_lock(&g->mu);
		n = g->n;
		slow = g->closed_slow_total + g->closed_slow;
		ev = g->evicted_total + g->evicted;
		pthread_mutex_unlock(&g->mu);
	}
	return tsi_buf_putf(b,
	    "# HELP tsi_vault_connections Open client connections.\n"
	    "# TYPE tsi_vault_connections gauge\n"
	    "tsi_vault_connections %zu\n"
	    "# HELP tsi_vault_connections_closed_total Connections closed by "
	    "the server before a complete request: past request_timeout, or "
	    "evicted to keep room for other addresses.\n"
	    "# TYPE tsi_vault_connections_closed_total counter\n"
	    "tsi_vault_connections_closed_total{reason=\"request_timeout\"} "
	    "%llu\n"
	    "tsi_vault_connections_closed_total{reason=\"evicted\"} %llu\n",
	    n, slow, ev);
}

void
vault_guard_stop(struct vault *v)
{
	struct vault_guard *g = v->guard;
	size_t i;

	if (g == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	g->stopping = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	if (g->running)
		pthread_join(g->reaper, NULL);
	/* MHD has stopped: every connection was reported closed. */
	for (i = 0; i < GUARD_BUCKETS; i++)
		while (g->bucket[i] != NULL) {
			struct gaddr *a = g->bucket[i];
			g->bucket[i] = a->hnext;
			while (a->conns != NULL) {
				struct gconn *gc = a->conns;
				a->conns = gc->next;
				free(gc);
			}
			free(a);
		}
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
	free(g);
	v->guard = NULL;
}
