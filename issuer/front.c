/*
 * front.c - the front end's client of the signer (see privsep.h).
 *
 * A request takes a free channel, sends, and waits on that channel for its
 * answer: one request in flight per channel, so answers need no matching
 * beyond the id check. There is a channel for each event-loop thread and
 * two more. WAKE messages come on the notify channel, read by a thread of
 * their own that calls the wake registered for the handle.
 */

#include "issuer/privsep.h"
#include "issuer/enroll.h"
#include "issuer/priv_proto.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Requests waiting for a WAKE: at most one per connection. */
#define FRONT_WAITERS 1024

struct waiter {
	int used;
	uint32_t handle;
	struct tsi_wake wake;
};

/* One request in flight per channel: its message and its answer live
 * here, not on the heap for every request. */
struct chan {
	int fd;
	int busy;
	uint32_t next_id;
	struct tsi_priv_msg m;
	uint8_t ans[TSI_PRIV_MSG_MAX];
	size_t ans_len;
};

struct tsi_front {
	struct chan chan[TSI_PRIV_CHAN_MAX];
	size_t nchan;
	int notify;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct waiter waiters[FRONT_WAITERS];
	pthread_t reader;
	int reader_started;
	int stopping; /* under mu */
};

/* Reads WAKEs until the signer closes the channel (it is gone: so is the
 * front end's reason to run). */
static void *
notify_reader(void *arg)
{
	struct tsi_front *f = arg;
	uint8_t buf[64];
	struct tsi_priv_rd rd;
	struct tsi_wake wake;
	uint32_t type, id, n, handle;
	ssize_t len;
	size_t i;

	for (;;) {
		len = recv(f->notify, buf, sizeof(buf), 0);
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0) {
			pthread_mutex_lock(&f->mu);
			if (f->stopping) {
				pthread_mutex_unlock(&f->mu);
				return NULL;
			}
			pthread_mutex_unlock(&f->mu);
			tsi_log(TSI_LOG_ERROR, "front.signer_gone",
			    TSI_LS("reason", "the notify channel closed"));
			_exit(1);
		}
		if ((size_t)len != TSI_PRIV_HDR + 4)
			continue;
		memcpy(&type, buf, 4);
		memcpy(&id, buf + 4, 4);
		memcpy(&n, buf + 8, 4);
		if (type != TSI_PRIV_WAKE || n != 4)
			continue;
		rd.p = buf + TSI_PRIV_HDR;
		rd.len = 4;
		rd.off = 0;
		rd.failed = 0;
		handle = tsi_priv_get_u32(&rd);
		wake.fn = NULL;
		pthread_mutex_lock(&f->mu);
		for (i = 0; i < FRONT_WAITERS; i++)
			if (f->waiters[i].used &&
			    f->waiters[i].handle == handle) {
				wake = f->waiters[i].wake;
				f->waiters[i].used = 0;
				break;
			}
		pthread_mutex_unlock(&f->mu);
		if (wake.fn != NULL)
			wake.fn(wake.arg);
	}
	return NULL;
}

int
tsi_front_new(struct tsi_front **out)
{
	struct tsi_front *f;
	int type, fd, r = TSI_ERR_IO;
	socklen_t len;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return TSI_ERR_ALLOC;
	f->notify = TSI_PRIV_FD_NOTIFY;
	/* The channels are the SEQPACKET sockets from TSI_PRIV_FD_CHAN0 on. */
	for (fd = TSI_PRIV_FD_CHAN0; f->nchan < TSI_PRIV_CHAN_MAX; fd++) {
		len = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
		    type != SOCK_SEQPACKET)
			break;
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		f->chan[f->nchan].fd = fd;
		f->chan[f->nchan++].next_id = 1;
	}
	len = sizeof(type);
	if (f->nchan == 0 ||
	    getsockopt(f->notify, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
	    type != SOCK_SEQPACKET) {
		tsi_log(TSI_LOG_ERROR, "front.start_failed",
		    TSI_LS("reason",
		        "no channel to the signer (tsi-issuer runs the front "
		        "end "
		        "itself)"));
		free(f);
		return TSI_ERR_INVALID_ARG;
	}
	(void)fcntl(f->notify, F_SETFD, FD_CLOEXEC);
	if (pthread_mutex_init(&f->mu, NULL) != 0) {
		free(f);
		return r;
	}
	if (pthread_cond_init(&f->cv, NULL) != 0) {
		pthread_mutex_destroy(&f->mu);
		free(f);
		return r;
	}
	if (pthread_create(&f->reader, NULL, notify_reader, f) != 0) {
		tsi_front_free(f);
		return r;
	}
	f->reader_started = 1;
	*out = f;
	return TSI_OK;
}

void
tsi_front_free(struct tsi_front *f)
{
	size_t i;

	if (f == NULL)
		return;
	/* The reader blocks in recv: shutting the channel ends it. */
	if (f->reader_started) {
		pthread_mutex_lock(&f->mu);
		f->stopping = 1;
		pthread_mutex_unlock(&f->mu);
		(void)shutdown(f->notify, SHUT_RDWR);
		(void)pthread_join(f->reader, NULL);
	}
	for (i = 0; i < f->nchan; i++)
		close(f->chan[i].fd);
	close(f->notify);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static struct chan *
chan_take(struct tsi_front *f)
{
	struct chan *c = NULL;
	size_t i;

	pthread_mutex_lock(&f->mu);
	for (;;) {
		for (i = 0; i < f->nchan && c == NULL; i++)
			if (!f->chan[i].busy)
				c = &f->chan[i];
		if (c != NULL)
			break;
		pthread_cond_wait(&f->cv, &f->mu);
	}
	c->busy = 1;
	pthread_mutex_unlock(&f->mu);
	return c;
}

static void
chan_put(struct tsi_front *f, struct chan *c)
{
	pthread_mutex_lock(&f->mu);
	c->busy = 0;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* Takes a channel and begins a request of type in its message. */
static struct chan *
req_begin(struct tsi_front *f, uint32_t type)
{
	struct chan *c = chan_take(f);

	tsi_priv_msg_begin(&c->m, type, 0);
	return c;
}

/* The answer (a token, a credential's secret) is wiped and the channel
 * given back. */
static void
req_end(struct tsi_front *f, struct chan *c)
{
	explicit_bzero(c->ans, c->ans_len);
	c->ans_len = 0;
	chan_put(f, c);
}

/*
 * Sends the channel's message (with fd, when not -1), receives the answer
 * into its buffer and opens it as an answer to want: the reader in rd, the
 * signer's status in *st. The answer is to this request (same id); a signer
 * that is gone ends the front end, which it would restart anyway.
 */
static int
req_call(struct chan *c, int fd, uint32_t want, struct tsi_priv_rd *rd,
    int32_t *st)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov;
	struct msghdr mh;
	struct cmsghdr *cm;
	ssize_t n;
	uint32_t id, got;

	id = c->next_id++;
	memcpy(c->m.b + 4, &id, 4);
	if (tsi_priv_msg_end(&c->m) != TSI_OK)
		return TSI_ERR_TOO_LARGE;
	iov.iov_base = c->m.b;
	iov.iov_len = c->m.len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	while ((n = sendmsg(c->fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)c->m.len)
		goto gone;
	for (;;) {
		while ((n = recv(c->fd, c->ans, sizeof(c->ans), 0)) < 0 &&
		    errno == EINTR)
			;
		if (n <= 0)
			goto gone;
		c->ans_len = (size_t)n;
		/* An answer to an earlier request this channel gave up on
		 * cannot happen (one in flight), but is skipped if it does. */
		if ((size_t)n >= TSI_PRIV_HDR) {
			memcpy(&got, c->ans + 4, 4);
			if (got == id)
				break;
		}
	}
	return tsi_priv_ans_open(c->ans, c->ans_len, want, rd, &got, st);
gone:
	tsi_log(TSI_LOG_ERROR, "front.signer_gone",
	    TSI_LS("error", n < 0 ? strerror(errno) : "channel closed"));
	_exit(1);
}

int
tsi_front_identify(struct tsi_front *f, int sock, struct tsi_peer *peer,
    uint32_t *handle)
{
	struct tsi_priv_rd rd;
	struct chan *c;
	int32_t st;
	int r;

	memset(peer, 0, sizeof(*peer));
	peer->stat_fd = -1;
	c = req_begin(f, TSI_PRIV_IDENTIFY);
	if ((r = req_call(c, sock, TSI_PRIV_IDENTIFY, &rd, &st)) != TSI_OK)
		goto out;
	if (st != TSI_OK) {
		r = st;
		goto out;
	}
	*handle = tsi_priv_get_u32(&rd);
	peer->pid = (pid_t)tsi_priv_get_u32(&rd);
	peer->uid = (uid_t)tsi_priv_get_u32(&rd);
	peer->gid = (gid_t)tsi_priv_get_u32(&rd);
	tsi_priv_get_str(&rd, peer->container, sizeof(peer->container) - 1);
	r = tsi_priv_rd_end(&rd);
out:
	req_end(f, c);
	return r;
}

void
tsi_front_release(struct tsi_front *f, uint32_t handle)
{
	struct tsi_priv_rd rd;
	struct chan *c;
	int32_t st;
	size_t i;

	pthread_mutex_lock(&f->mu);
	for (i = 0; i < FRONT_WAITERS; i++)
		if (f->waiters[i].used && f->waiters[i].handle == handle)
			f->waiters[i].used = 0;
	pthread_mutex_unlock(&f->mu);
	c = req_begin(f, TSI_PRIV_RELEASE);
	tsi_priv_put_u32(&c->m, handle);
	(void)req_call(c, -1, TSI_PRIV_RELEASE, &rd, &st);
	req_end(f, c);
}

/* Registered before the request goes, so a WAKE that overtakes the
 * answer finds it. */
static int
waiter_add(struct tsi_front *f, uint32_t handle, const struct tsi_wake *w)
{
	size_t i;

	pthread_mutex_lock(&f->mu);
	for (i = 0; i < FRONT_WAITERS; i++)
		if (!f->waiters[i].used) {
			f->waiters[i].used = 1;
			f->waiters[i].handle = handle;
			f->waiters[i].wake = *w;
			break;
		}
	pthread_mutex_unlock(&f->mu);
	return i < FRONT_WAITERS ? TSI_OK : TSI_ERR_IO;
}

static void
waiter_drop(struct tsi_front *f, uint32_t handle)
{
	size_t i;

	pthread_mutex_lock(&f->mu);
	for (i = 0; i < FRONT_WAITERS; i++)
		if (f->waiters[i].used && f->waiters[i].handle == handle)
			f->waiters[i].used = 0;
	pthread_mutex_unlock(&f->mu);
}

int
tsi_front_sign(struct tsi_front *f, uint32_t handle, const char *aud,
    const char *container, const struct tsi_workload *w,
    const struct tsi_wake *wake, char **token, long long *exp, char *reason,
    size_t reasonlen)
{
	struct tsi_priv_rd rd;
	struct chan *c;
	const char *tok, *why;
	size_t tl, wl;
	int32_t st;
	int r, waiting = 0;

	if (reasonlen > 0)
		reason[0] = '\0';
	c = chan_take(f);
	if ((r = tsi_priv_enc_sign(&c->m, 0, handle, aud,
	         w != NULL ? container : "", w)) != TSI_OK)
		goto out;
	if (wake != NULL) {
		if ((r = waiter_add(f, handle, wake)) != TSI_OK)
			goto out;
		waiting = 1;
	}
	if ((r = req_call(c, -1, TSI_PRIV_SIGN, &rd, &st)) != TSI_OK)
		goto out;
	if (st != TSI_OK) {
		tsi_priv_get_span(&rd, &why, &wl, TSI_PRIV_REASON_MAX);
		if (tsi_priv_rd_end(&rd) == TSI_OK && reasonlen > 0) {
			if (wl >= reasonlen)
				wl = reasonlen - 1;
			memcpy(reason, why, wl);
			reason[wl] = '\0';
		}
		r = st;
		if (r == TSI_ERR_AGAIN && wake != NULL)
			waiting = 0; /* the WAKE comes */
		else if (r == TSI_ERR_AGAIN)
			r = TSI_ERR_IO;
		goto out;
	}
	*exp = tsi_priv_get_i64(&rd);
	tsi_priv_get_span(&rd, &tok, &tl, TSI_PRIV_TOKEN_MAX);
	tsi_priv_get_span(&rd, &why, &wl, TSI_PRIV_EXE_MAX);
	if ((r = tsi_priv_rd_end(&rd)) != TSI_OK)
		goto out;
	if ((*token = malloc(tl + 1)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	memcpy(*token, tok, tl);
	(*token)[tl] = '\0';
	if (reasonlen > 0 && wl < reasonlen) {
		memcpy(reason, why, wl); /* the exe, for the log */
		reason[wl] = '\0';
	}
	r = TSI_OK;
out:
	if (waiting)
		waiter_drop(f, handle);
	req_end(f, c);
	return r;
}

int
tsi_front_jwks(struct tsi_front *f, json_t **out)
{
	struct tsi_priv_rd rd;
	struct chan *c;
	const char *text;
	size_t tl;
	int32_t st;
	int r;

	c = req_begin(f, TSI_PRIV_JWKS);
	if ((r = req_call(c, -1, TSI_PRIV_JWKS, &rd, &st)) != TSI_OK)
		goto out;
	if ((r = st) != TSI_OK)
		goto out;
	tsi_priv_get_span(&rd, &text, &tl, TSI_PRIV_MSG_MAX);
	if ((r = tsi_priv_rd_end(&rd)) != TSI_OK)
		goto out;
	r = (*out = json_loadb(text, tl, 0, NULL)) != NULL ? TSI_OK
	                                                   : TSI_ERR_PARSE;
out:
	req_end(f, c);
	return r;
}

int
tsi_front_health(struct tsi_front *f, char *reason, size_t reasonlen,
    char kid[44], char cluster[129], char datacenter[129])
{
	struct tsi_priv_rd rd;
	struct chan *c;
	char why[TSI_PRIV_REASON_MAX + 1];
	size_t len;
	int32_t st;
	int r;

	c = req_begin(f, TSI_PRIV_HEALTH);
	if ((r = req_call(c, -1, TSI_PRIV_HEALTH, &rd, &st)) != TSI_OK)
		goto out;
	tsi_priv_get_str(&rd, why, sizeof(why) - 1);
	tsi_priv_get_str(&rd, kid, 43);
	tsi_priv_get_str(&rd, cluster, 128);
	tsi_priv_get_str(&rd, datacenter, 128);
	if ((r = tsi_priv_rd_end(&rd)) != TSI_OK)
		goto out;
	if (reasonlen > 0) {
		len = strlen(why);
		if (len >= reasonlen)
			len = reasonlen - 1;
		memcpy(reason, why, len);
		reason[len] = '\0';
	}
	r = st;
out:
	req_end(f, c);
	return r;
}

/* Enrollment's node operations (enroll.h), answered by the signer. */

/* Sends the channel's request of type: the signer's status, or the error
 * of the exchange. */
static int
att_call(struct chan *c, uint32_t type, struct tsi_priv_rd *rd)
{
	int32_t st;
	int r;

	if ((r = req_call(c, -1, type, rd, &st)) != TSI_OK)
		return r;
	return st;
}

/* A span of the answer copied out (*out: free; NULL when empty and
 * may_be_empty). */
static int
att_bytes(struct tsi_priv_rd *rd, size_t max, int may_be_empty, uint8_t **out,
    size_t *len)
{
	const char *p;
	size_t n;

	*out = NULL;
	*len = 0;
	tsi_priv_get_span(rd, &p, &n, max);
	if (rd->failed || (n == 0 && !may_be_empty))
		return TSI_ERR_PARSE;
	if (n == 0)
		return TSI_OK;
	if ((*out = malloc(n)) == NULL)
		return TSI_ERR_ALLOC;
	memcpy(*out, p, n);
	*len = n;
	return TSI_OK;
}

static int
front_ek(void *ctx, uint8_t **cert, size_t *cert_len, uint8_t **pub,
    size_t *pub_len)
{
	struct chan *c = req_begin(ctx, TSI_PRIV_ATT_EK);
	struct tsi_priv_rd rd;
	int r;

	*cert = *pub = NULL;
	if ((r = att_call(c, TSI_PRIV_ATT_EK, &rd)) == TSI_OK &&
	    (r = att_bytes(&rd, TSI_PRIV_EK_CERT_MAX, 1, cert, cert_len)) ==
	        TSI_OK &&
	    (r = att_bytes(&rd, TSI_PRIV_TPM2B_MAX, 0, pub, pub_len)) == TSI_OK)
		r = tsi_priv_rd_end(&rd);
	if (r != TSI_OK) {
		free(*cert);
		free(*pub);
		*cert = *pub = NULL;
	}
	req_end(ctx, c);
	return r;
}

static int
front_ak_pub(void *ctx, uint8_t **pub, size_t *len)
{
	struct chan *c = req_begin(ctx, TSI_PRIV_ATT_AK);
	struct tsi_priv_rd rd;
	int r;

	*pub = NULL;
	if ((r = att_call(c, TSI_PRIV_ATT_AK, &rd)) == TSI_OK &&
	    (r = att_bytes(&rd, TSI_PRIV_TPM2B_MAX, 0, pub, len)) == TSI_OK)
		r = tsi_priv_rd_end(&rd);
	if (r != TSI_OK) {
		free(*pub);
		*pub = NULL;
	}
	req_end(ctx, c);
	return r;
}

static int
front_key(void *ctx, uint8_t **pub, size_t *len, char **csr)
{
	struct chan *c = req_begin(ctx, TSI_PRIV_ATT_KEY);
	struct tsi_priv_rd rd;
	uint8_t *text = NULL;
	size_t tl = 0;
	int r;

	*pub = NULL;
	*csr = NULL;
	if ((r = att_call(c, TSI_PRIV_ATT_KEY, &rd)) == TSI_OK &&
	    (r = att_bytes(&rd, TSI_PRIV_TPM2B_MAX, 0, pub, len)) == TSI_OK &&
	    (r = att_bytes(&rd, TSI_PRIV_CSR_MAX, 0, &text, &tl)) == TSI_OK &&
	    (r = tsi_priv_rd_end(&rd)) == TSI_OK) {
		if (memchr(text, '\0', tl) != NULL)
			r = TSI_ERR_PARSE;
		else if ((*csr = malloc(tl + 1)) == NULL)
			r = TSI_ERR_ALLOC;
		else {
			memcpy(*csr, text, tl);
			(*csr)[tl] = '\0';
		}
	}
	free(text);
	if (r != TSI_OK) {
		free(*pub);
		*pub = NULL;
	}
	req_end(ctx, c);
	return r;
}

static int
front_activate(void *ctx, const uint8_t *blob, size_t blob_len,
    const uint8_t *enc_secret, size_t enc_secret_len, uint8_t *out,
    size_t outcap, size_t *outlen)
{
	struct chan *c = chan_take(ctx);
	struct tsi_priv_rd rd;
	const char *p;
	size_t n;
	int r;

	if ((r = tsi_priv_enc_activate(&c->m, 0, blob, blob_len, enc_secret,
	         enc_secret_len)) != TSI_OK ||
	    (r = att_call(c, TSI_PRIV_ATT_ACTIVATE, &rd)) != TSI_OK)
		goto out;
	tsi_priv_get_span(&rd, &p, &n, TSI_PRIV_SECRET_MAX);
	if ((r = tsi_priv_rd_end(&rd)) != TSI_OK)
		goto out;
	if (n == 0 || n > outcap) {
		r = TSI_ERR_PARSE;
		goto out;
	}
	memcpy(out, p, n);
	*outlen = n;
out:
	req_end(ctx, c);
	return r;
}

/* CERTIFY and QUOTE: attest and signature, and QUOTE's PCR values. */
static int
front_evidence(void *ctx, uint32_t type, const uint8_t *nonce, size_t nonce_len,
    uint32_t mask, uint8_t **attest, size_t *attest_len, uint8_t **sig,
    size_t *sig_len, uint8_t values[TSI_TPM_PCRS][32])
{
	struct chan *c = chan_take(ctx);
	struct tsi_priv_rd rd;
	const char *p;
	size_t n, off = 0;
	int r, i;

	*attest = *sig = NULL;
	if ((r = tsi_priv_enc_nonce(&c->m, type, 0, nonce, nonce_len, mask)) !=
	        TSI_OK ||
	    (r = att_call(c, type, &rd)) != TSI_OK ||
	    (r = att_bytes(&rd, TSI_PRIV_TPM2B_MAX, 0, attest, attest_len)) !=
	        TSI_OK ||
	    (r = att_bytes(&rd, TSI_PRIV_TPM2B_MAX, 0, sig, sig_len)) != TSI_OK)
		goto out;
	if (type == TSI_PRIV_ATT_QUOTE) {
		tsi_priv_get_span(&rd, &p, &n, TSI_PRIV_PCRS * 32);
		if (rd.failed || n != 32 * (size_t)__builtin_popcount(mask)) {
			r = TSI_ERR_PARSE;
			goto out;
		}
		for (i = 0; i < TSI_TPM_PCRS; i++)
			if (mask & (1u << i)) {
				memcpy(values[i], p + off, 32);
				off += 32;
			}
	}
	r = tsi_priv_rd_end(&rd);
out:
	if (r != TSI_OK) {
		free(*attest);
		free(*sig);
		*attest = *sig = NULL;
	}
	req_end(ctx, c);
	return r;
}

static int
front_certify(void *ctx, const uint8_t *nonce, size_t nonce_len,
    uint8_t **attest, size_t *attest_len, uint8_t **sig, size_t *sig_len)
{
	return front_evidence(ctx, TSI_PRIV_ATT_CERTIFY, nonce, nonce_len, 0,
	    attest, attest_len, sig, sig_len, NULL);
}

static int
front_quote(void *ctx, const uint8_t *nonce, size_t nonce_len, uint32_t mask,
    uint8_t **attest, size_t *attest_len, uint8_t **sig, size_t *sig_len,
    uint8_t values[TSI_TPM_PCRS][32])
{
	return front_evidence(ctx, TSI_PRIV_ATT_QUOTE, nonce, nonce_len, mask,
	    attest, attest_len, sig, sig_len, values);
}

/* Validity is the signer's, by its clock; due is by the caller's now. */
static int
front_state(void *ctx, time_t now, int *valid, time_t *renew_at)
{
	struct chan *c = req_begin(ctx, TSI_PRIV_NODE_STATE);
	struct tsi_priv_rd rd;
	int r;

	*valid = 0;
	*renew_at = 0;
	if ((r = att_call(c, TSI_PRIV_NODE_STATE, &rd)) == TSI_OK) {
		*valid = tsi_priv_get_u32(&rd) == 1;
		*renew_at = (time_t)tsi_priv_get_i64(&rd);
		r = tsi_priv_rd_end(&rd);
	}
	req_end(ctx, c);
	if (r != TSI_OK) {
		/* Unknown: enrolling again is the safe answer. */
		*valid = 0;
		*renew_at = 0;
		return 1;
	}
	return !*valid || now >= *renew_at;
}

static int
front_install(void *ctx, const char *cert_pem, const char *ca_pem, char *reason,
    size_t reasonlen)
{
	struct chan *c = chan_take(ctx);
	struct tsi_priv_rd rd;
	char why[TSI_PRIV_REASON_MAX + 1];
	int r, st;

	if (reason != NULL && reasonlen > 0)
		reason[0] = '\0';
	why[0] = '\0';
	memset(&rd, 0, sizeof(rd));
	if ((r = tsi_priv_enc_install(&c->m, 0, cert_pem, ca_pem)) != TSI_OK)
		goto out;
	st = att_call(c, TSI_PRIV_NODE_INSTALL, &rd);
	tsi_priv_get_str(&rd, why, sizeof(why) - 1);
	if ((r = tsi_priv_rd_end(&rd)) == TSI_OK)
		r = st;
	else if (st != TSI_OK)
		r = st;
	if (r != TSI_OK && reason != NULL && reasonlen > 0)
		(void)snprintf(reason, reasonlen, "%s",
		    why[0] != '\0' ? why
		                   : "the signer refused the node certificate");
out:
	if (r == TSI_ERR_TOO_LARGE && reason != NULL && reasonlen > 0)
		(void)snprintf(reason, reasonlen,
		    "the node certificate or its CA from tsi-attest is larger "
		    "than the signer takes (%u and %u bytes of PEM)",
		    TSI_PRIV_CERT_MAX, TSI_PRIV_CA_MAX);
	req_end(ctx, c);
	return r;
}

void
tsi_front_enroll_node(struct tsi_front *f, struct tsi_enroll_node *out)
{
	out->ctx = f;
	out->ek = front_ek;
	out->ak_pub = front_ak_pub;
	out->key = front_key;
	out->activate = front_activate;
	out->certify = front_certify;
	out->quote = front_quote;
	out->state = front_state;
	out->install = front_install;
}
