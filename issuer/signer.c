/*
 * signer.c - the privileged half of tsi-issuer (see privsep.h): it runs
 * the front end, identifies the callers the front end hands it, and mints
 * only for them. Single-threaded: one request at a time, from any of the
 * front end's channels; hashing an executable runs on the hasher's threads
 * and comes back as a WAKE.
 */

#include "issuer/privsep.h"
#include "issuer/api_mhd.h"
#include "issuer/enroll.h"
#include "issuer/priv_proto.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A caller the signer identified: the connection (the signer's own copy,
 * never read), the snapshot of its process, and a hashing in flight. */
struct handle {
	int used;
	uint16_t gen;
	int fd;
	int waiting; /* a hash job's wake has not come */
	int dead;    /* released while waiting */
	struct tsi_peer peer;
	struct tsi_resolve_state rs;
	struct tsi_claims_memo *memo;
	struct signer *sg;
};

struct signer {
	const struct tsi_privsep_signer *s;
	struct handle *h;
	size_t nh;
	int chan[TSI_PRIV_CHAN_MAX];
	size_t nchan;
	int notify;
	pid_t front;
	int front_status; /* of the last front end reaped (waitpid's) */
	int installed;    /* a node certificate was installed */
	long long started_ms, restart_at_ms, backoff_ms;
	int wake_pipe[2];
	struct tsi_exe_hasher *hasher;
	uint8_t in[TSI_PRIV_MSG_MAX + 1];
	struct tsi_priv_msg out;
};

static volatile sig_atomic_t child_flag;

static void
on_child(int sig)
{
	(void)sig;
	child_flag = 1;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Handles name a slot and its generation: a handle of a freed slot never
 * names the caller that took the slot next. */
static uint32_t
handle_name(const struct signer *sg, const struct handle *h)
{
	return ((uint32_t)h->gen << 16) | (uint32_t)(h - sg->h);
}

static struct handle *
handle_find(struct signer *sg, uint32_t name)
{
	size_t slot = name & 0xffffu;
	struct handle *h;

	if (slot >= sg->nh)
		return NULL;
	h = &sg->h[slot];
	if (!h->used || h->dead || h->gen != (uint16_t)(name >> 16))
		return NULL;
	return h;
}

static void
handle_free(struct handle *h)
{
	if (!h->used)
		return;
	if (h->waiting) {
		/* The hashing thread still holds the state: freed at its
		 * wake. The connection is let go now. */
		h->dead = 1;
		if (h->fd >= 0)
			close(h->fd);
		h->fd = -1;
		return;
	}
	tsi_resolve_state_clear(&h->rs);
	tsi_peer_release(&h->peer);
	tsi_claims_memo_free(h->memo);
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->memo = NULL;
	h->used = 0;
	h->dead = 0;
	h->gen++;
}

/* Whether the caller's end of the connection is still open. */
static int
handle_connected(const struct handle *h)
{
	struct pollfd p = { h->fd, POLLRDHUP, 0 };

	if (h->fd < 0 || poll(&p, 1, 0) < 0)
		return 0;
	return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) == 0;
}

/* From a hashing thread: the slot goes through the pipe to the loop. */
static void
hash_wake(void *arg)
{
	struct handle *h = arg;
	uint32_t slot = (uint32_t)(h - h->sg->h);

	if (write(h->sg->wake_pipe[1], &slot, sizeof(slot)) != sizeof(slot))
		tsi_log(TSI_LOG_ERROR, "signer.wake_lost",
		    TSI_LI("slot", slot));
}

static int
send_out(struct signer *sg, int fd)
{
	if (tsi_priv_msg_end(&sg->out) != TSI_OK)
		return TSI_ERR_TOO_LARGE;
	if (send(fd, sg->out.b, sg->out.len, MSG_NOSIGNAL) !=
	    (ssize_t)sg->out.len)
		return TSI_ERR_IO;
	return TSI_OK;
}

static void
answer_status(struct signer *sg, int fd, uint32_t type, uint32_t id, int st)
{
	tsi_priv_msg_begin(&sg->out, type | TSI_PRIV_ANSWER, id);
	tsi_priv_put_u32(&sg->out, (uint32_t)st);
	(void)send_out(sg, fd);
}

static void
do_identify(struct signer *sg, int fd, uint32_t id, int conn)
{
	const struct tsi_issuer_config *cfg = sg->s->cfg;
	struct handle *h = NULL;
	size_t i;
	int r;

	if (conn < 0) {
		answer_status(sg, fd, TSI_PRIV_IDENTIFY, id,
		    TSI_ERR_INVALID_ARG);
		return;
	}
	for (i = 0; i < sg->nh && h == NULL; i++)
		if (!sg->h[i].used)
			h = &sg->h[i];
	if (h == NULL) {
		tsi_log(TSI_LOG_WARN, "signer.handles_full",
		    TSI_LI("max", sg->nh));
		close(conn);
		answer_status(sg, fd, TSI_PRIV_IDENTIFY, id, TSI_ERR_TOO_LARGE);
		return;
	}
	memset(&h->rs, 0, sizeof(h->rs));
	h->fd = conn;
	h->used = 1;
	h->waiting = 0;
	h->dead = 0;
	h->memo = tsi_claims_memo_new(); /* NULL: no reuse, still correct */
	if ((r = tsi_peer_take(cfg->proc_root, cfg->resolver, conn,
	         &h->peer)) != TSI_OK) {
		handle_free(h);
		answer_status(sg, fd, TSI_PRIV_IDENTIFY, id, r);
		return;
	}
	tsi_priv_msg_begin(&sg->out, TSI_PRIV_IDENTIFY | TSI_PRIV_ANSWER, id);
	tsi_priv_put_u32(&sg->out, (uint32_t)TSI_OK);
	tsi_priv_put_u32(&sg->out, handle_name(sg, h));
	tsi_priv_put_u32(&sg->out, (uint32_t)h->peer.pid);
	tsi_priv_put_u32(&sg->out, (uint32_t)h->peer.uid);
	tsi_priv_put_u32(&sg->out, (uint32_t)h->peer.gid);
	tsi_priv_put_str(&sg->out, h->peer.container,
	    strlen(h->peer.container));
	if (send_out(sg, fd) != TSI_OK)
		handle_free(h);
}

static void
sign_refused(struct signer *sg, int fd, uint32_t id, int st, const char *reason)
{
	tsi_priv_msg_begin(&sg->out, TSI_PRIV_SIGN | TSI_PRIV_ANSWER, id);
	tsi_priv_put_u32(&sg->out, (uint32_t)st);
	tsi_priv_put_str(&sg->out, reason,
	    strnlen(reason, TSI_PRIV_REASON_MAX));
	(void)send_out(sg, fd);
}

/*
 * Mints for the caller behind the handle, and only while it is there: the
 * connection still open, the process the one that connected. The identity
 * in the claims is the signer's own: a host workload is resolved here; a
 * Kubernetes workload's pod, namespace and images come from the front end
 * (the kubelet's answer), for the container the signer found.
 */
static void
do_sign(struct signer *sg, int fd, struct tsi_priv_req *q)
{
	const struct tsi_issuer_config *cfg = sg->s->cfg;
	struct tsi_workload *w = NULL;
	struct handle *h;
	char reason[256], *token = NULL;
	long long exp = 0;
	int r;

	if ((h = handle_find(sg, q->handle)) == NULL) {
		tsi_log(TSI_LOG_WARN, "signer.refused",
		    TSI_LI("handle", q->handle),
		    TSI_LS("reason", "no such caller"));
		sign_refused(sg, fd, q->id, TSI_ERR_NOT_FOUND,
		    "no such caller");
		return;
	}
	if (!handle_connected(h)) {
		tsi_log(TSI_LOG_WARN, "signer.refused",
		    TSI_LI("pid", h->peer.pid),
		    TSI_LS("reason",
		        "the caller's connection "
		        "is closed"));
		handle_free(h);
		sign_refused(sg, fd, q->id, TSI_ERR_UNIDENTIFIED,
		    "the caller's connection is closed");
		return;
	}
	if (*sg->s->minter == NULL) {
		sign_refused(sg, fd, q->id, TSI_ERR_AGAIN, "not enrolled yet");
		return;
	}
	if (tsi_monitor_status(*sg->s->monitor, reason, sizeof(reason)) !=
	    TSI_OK) {
		sign_refused(sg, fd, q->id, TSI_ERR_TPM_UNAVAILABLE, reason);
		return;
	}
	if (cfg->resolver == TSI_RESOLVER_UNIX) {
		if (h->waiting) {
			/* Asked again before the wake: the job is the
			 * hashing thread's until then. */
			sign_refused(sg, fd, q->id, TSI_ERR_AGAIN, "hashing");
			return;
		}
		if (q->w != NULL) {
			sign_refused(sg, fd, q->id, TSI_ERR_DENIED,
			    "claims for a host workload");
			return;
		}
		r = tsi_unix_resolve(cfg->proc_root, h->peer.pid, h->peer.uid,
		    &h->peer, sg->hasher, &h->rs,
		    &(struct tsi_wake){ hash_wake, h }, &w);
		if (r == TSI_ERR_AGAIN) {
			h->waiting = 1;
			sign_refused(sg, fd, q->id, TSI_ERR_AGAIN, "hashing");
			return;
		}
		tsi_resolve_state_clear(&h->rs);
		if (r != TSI_OK) {
			sign_refused(sg, fd, q->id, r, tsi_strerror(r));
			return;
		}
	} else {
		if (q->w == NULL || h->peer.container[0] == '\0' ||
		    strcmp(q->container, h->peer.container) != 0) {
			tsi_log(TSI_LOG_WARN, "signer.refused",
			    TSI_LI("pid", h->peer.pid),
			    TSI_LS("reason",
			        "claims for another "
			        "container than the caller's"));
			sign_refused(sg, fd, q->id, TSI_ERR_DENIED,
			    "claims for another container");
			return;
		}
		w = q->w;
		q->w = NULL;
	}
	/* Still the process that connected, after everything was read. */
	if ((r = tsi_peer_check(cfg->proc_root, &h->peer)) != TSI_OK) {
		sign_refused(sg, fd, q->id, r, "the caller changed");
		goto out;
	}
	r = tsi_minter_mint_memo(*sg->s->minter, w, q->aud, h->memo, &token,
	    &exp);
	if (r == TSI_ERR_TPM_UNAVAILABLE || r == TSI_ERR_TPM) {
		tsi_monitor_report(*sg->s->monitor, r,
		    "signing failed: TPM unavailable");
		sign_refused(sg, fd, q->id, r,
		    "signing failed: TPM unavailable");
		goto out;
	}
	if (r != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "token.mint_failed",
		    TSI_LS("error", tsi_strerror(r)));
		sign_refused(sg, fd, q->id, r, "mint failed");
		goto out;
	}
	tsi_priv_msg_begin(&sg->out, TSI_PRIV_SIGN | TSI_PRIV_ANSWER, q->id);
	tsi_priv_put_u32(&sg->out, (uint32_t)TSI_OK);
	tsi_priv_put_i64(&sg->out, exp);
	tsi_priv_put_str(&sg->out, token, strlen(token));
	tsi_priv_put_str(&sg->out, w->exe != NULL ? w->exe : "",
	    w->exe != NULL ? strnlen(w->exe, TSI_PRIV_EXE_MAX) : 0);
	if (send_out(sg, fd) != TSI_OK)
		tsi_log(TSI_LOG_ERROR, "signer.answer_failed",
		    TSI_LS("error", "the token does not fit an answer"));
out:
	/* The answer buffer held the token. */
	explicit_bzero(sg->out.b, sg->out.len);
	tsi_strfree(token);
	tsi_workload_free(w);
}

static void
do_jwks(struct signer *sg, int fd, uint32_t id)
{
	json_t *jwks = NULL;
	char *text = NULL;
	int r;

	if (*sg->s->minter == NULL) {
		answer_status(sg, fd, TSI_PRIV_JWKS, id, TSI_ERR_AGAIN);
		return;
	}
	if ((r = tsi_minter_jwks(*sg->s->minter, &jwks)) != TSI_OK ||
	    (text = json_dumps(jwks, JSON_COMPACT)) == NULL) {
		answer_status(sg, fd, TSI_PRIV_JWKS, id,
		    r != TSI_OK ? r : TSI_ERR_ALLOC);
		goto out;
	}
	tsi_priv_msg_begin(&sg->out, TSI_PRIV_JWKS | TSI_PRIV_ANSWER, id);
	tsi_priv_put_u32(&sg->out, (uint32_t)TSI_OK);
	tsi_priv_put_str(&sg->out, text, strlen(text));
	(void)send_out(sg, fd);
out:
	free(text);
	json_decref(jwks);
}

static void
do_health(struct signer *sg, int fd, uint32_t id)
{
	const struct tsi_location *loc;
	char reason[256], kid[44];
	int r;

	if (*sg->s->minter == NULL) {
		tsi_priv_msg_begin(&sg->out, TSI_PRIV_HEALTH | TSI_PRIV_ANSWER,
		    id);
		tsi_priv_put_u32(&sg->out, (uint32_t)TSI_ERR_AGAIN);
		tsi_priv_put_str(&sg->out, "not enrolled yet", 16);
		tsi_priv_put_str(&sg->out, "", 0);
		tsi_priv_put_str(&sg->out, "", 0);
		tsi_priv_put_str(&sg->out, "", 0);
		(void)send_out(sg, fd);
		return;
	}
	loc = tsi_minter_location(*sg->s->minter);
	reason[0] = '\0';
	kid[0] = '\0';
	if ((r = tsi_monitor_status(*sg->s->monitor, reason, sizeof(reason))) ==
	        TSI_OK &&
	    tsi_minter_kid(*sg->s->minter, kid) != TSI_OK)
		kid[0] = '\0';
	tsi_priv_msg_begin(&sg->out, TSI_PRIV_HEALTH | TSI_PRIV_ANSWER, id);
	tsi_priv_put_u32(&sg->out, (uint32_t)r);
	tsi_priv_put_str(&sg->out, reason,
	    strnlen(reason, TSI_PRIV_REASON_MAX));
	tsi_priv_put_str(&sg->out, kid, strlen(kid));
	tsi_priv_put_str(&sg->out, loc->cluster_name,
	    strnlen(loc->cluster_name, TSI_LOCATION_MAX));
	tsi_priv_put_str(&sg->out, loc->datacenter,
	    strnlen(loc->datacenter, TSI_LOCATION_MAX));
	(void)send_out(sg, fd);
}

/* A borrowed, NUL-free span as a string of its own (*out: free). */
static int
span_str(const uint8_t *p, size_t n, char **out)
{
	if ((*out = malloc(n + 1)) == NULL)
		return TSI_ERR_ALLOC;
	memcpy(*out, p, n);
	(*out)[n] = '\0';
	return TSI_OK;
}

/* NODE_INSTALL: the certificate is checked here, against this TPM's key,
 * whatever the front end says of it; then the signer switches to it. */
static int
install(struct signer *sg, const struct tsi_priv_req *q, char *reason,
    size_t reasonlen)
{
	const struct tsi_issuer_config *cfg = sg->s->cfg;
	char *cert = NULL, *ca = NULL;
	int r;

	if ((r = span_str(q->a, q->alen, &cert)) != TSI_OK ||
	    (r = span_str(q->b, q->blen, &ca)) != TSI_OK)
		goto out;
	if ((r = tsi_enroll_install(cfg, sg->s->tpm, cert, ca, reason,
	         reasonlen)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "enroll.install_refused",
		    TSI_LS("error", tsi_strerror(r)), TSI_LS("reason", reason));
		goto out;
	}
	tsi_log(TSI_LOG_INFO, "enroll.installed",
	    TSI_LS("node_cert", cfg->node_cert),
	    TSI_LS("node_ca", cfg->node_ca));
	sg->installed = 1;
	if (sg->s->renew != NULL)
		*sg->s->renew_flag = 1;
out:
	free(cert);
	free(ca);
	return r;
}

/* The enrollment requests: the TPM's evidence about itself (its EK, the
 * AK, the signing key; certify and quote over the front end's nonce,
 * activation of its credential) and the node certificate. */
static void
do_enroll(struct signer *sg, int fd, const struct tsi_priv_req *q)
{
	const struct tsi_issuer_config *cfg = sg->s->cfg;
	struct tsi_tpm *tpm = sg->s->tpm;
	uint8_t *x = NULL, *y = NULL, pcrs[TSI_TPM_PCRS][32];
	uint8_t secret[TSI_PRIV_SECRET_MAX], vals[TSI_TPM_PCRS * 32];
	size_t xl = 0, yl = 0, sl = 0, vl = 0;
	char *csr = NULL, reason[512];
	time_t renew_at = 0;
	int valid = 0, r, i;

	reason[0] = '\0';
	switch (q->type) {
	case TSI_PRIV_ATT_EK: r = tsi_tpm_ek(tpm, &x, &xl, &y, &yl); break;
	case TSI_PRIV_ATT_AK: r = tsi_tpm_ak_pub(tpm, &x, &xl); break;
	case TSI_PRIV_ATT_KEY:
		r = tsi_enroll_key(cfg, tpm, &x, &xl, &csr);
		break;
	case TSI_PRIV_ATT_ACTIVATE:
		r = tsi_tpm_activate(tpm, q->a, q->alen, q->b, q->blen, secret,
		    sizeof(secret), &sl);
		break;
	case TSI_PRIV_ATT_CERTIFY:
		r = tsi_tpm_certify(tpm, q->a, q->alen, &x, &xl, &y, &yl);
		break;
	case TSI_PRIV_ATT_QUOTE:
		r = tsi_tpm_quote(tpm, q->a, q->alen, q->mask, &x, &xl, &y, &yl,
		    pcrs);
		break;
	case TSI_PRIV_NODE_STATE:
		(void)tsi_enroll_due(cfg, tpm, time(NULL), &valid, &renew_at);
		r = TSI_OK;
		break;
	case TSI_PRIV_NODE_INSTALL:
		r = install(sg, q, reason, sizeof(reason));
		break;
	default: r = TSI_ERR_UNSUPPORTED; break;
	}
	if (r != TSI_OK && q->type != TSI_PRIV_NODE_INSTALL)
		tsi_log(TSI_LOG_WARN, "signer.enroll_failed",
		    TSI_LI("type", q->type), TSI_LS("error", tsi_strerror(r)));
	tsi_priv_msg_begin(&sg->out, q->type | TSI_PRIV_ANSWER, q->id);
	tsi_priv_put_u32(&sg->out, (uint32_t)r);
	if (q->type == TSI_PRIV_NODE_INSTALL)
		tsi_priv_put_str(&sg->out, reason,
		    strnlen(reason, TSI_PRIV_REASON_MAX));
	else if (r == TSI_OK)
		switch (q->type) {
		case TSI_PRIV_ATT_ACTIVATE:
			tsi_priv_put_str(&sg->out, (const char *)secret, sl);
			break;
		case TSI_PRIV_ATT_KEY:
			tsi_priv_put_str(&sg->out, (const char *)x, xl);
			tsi_priv_put_str(&sg->out, csr, strlen(csr));
			break;
		case TSI_PRIV_NODE_STATE:
			tsi_priv_put_u32(&sg->out, (uint32_t)valid);
			tsi_priv_put_i64(&sg->out, (int64_t)renew_at);
			break;
		default:
			/* EK: cert, public; AK: public; CERTIFY and QUOTE:
			 * attest, signature (and the PCRs). */
			tsi_priv_put_str(&sg->out,
			    x != NULL ? (const char *)x : "", xl);
			if (q->type != TSI_PRIV_ATT_AK)
				tsi_priv_put_str(&sg->out,
				    y != NULL ? (const char *)y : "", yl);
			if (q->type == TSI_PRIV_ATT_QUOTE) {
				for (i = 0; i < TSI_TPM_PCRS; i++)
					if (q->mask & (1u << i)) {
						memcpy(vals + vl, pcrs[i], 32);
						vl += 32;
					}
				tsi_priv_put_str(&sg->out, (const char *)vals,
				    vl);
			}
			break;
		}
	(void)send_out(sg, fd);
	/* The answer held the activated credential. */
	explicit_bzero(sg->out.b, sg->out.len);
	explicit_bzero(secret, sizeof(secret));
	free(x);
	free(y);
	free(csr);
}

/* Reads one datagram from a channel and answers it. The fd that may come
 * with it is taken only by IDENTIFY and closed otherwise. -1 when the
 * channel is gone. */
static int
serve_one(struct signer *sg, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov = { sg->in, sizeof(sg->in) };
	struct msghdr mh;
	struct cmsghdr *c;
	struct tsi_priv_req q;
	int fds[4], nfds = 0, conn = -1, i, r;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		size_t k, cnt;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < cnt; k++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + k * sizeof(int), sizeof(f));
			if (nfds < 4)
				fds[nfds++] = f;
			else
				close(f);
		}
	}
	/* One fd with an IDENTIFY and no other case: anything else is
	 * closed and the request refused below. */
	if (nfds == 1 && (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == 0)
		conn = fds[0];
	else
		for (i = 0; i < nfds; i++)
			close(fds[i]);
	r = (mh.msg_flags & MSG_TRUNC)
	    ? TSI_ERR_TOO_LARGE
	    : tsi_priv_req_decode(sg->in, (size_t)n, &q);
	if (r != TSI_OK) {
		/* Only a cut datagram was not decoded; a payload over its
		 * type's bound was, and its answer names it (type, id): the
		 * front end waits for the answer with its id. */
		if (mh.msg_flags & MSG_TRUNC)
			memset(&q, 0, sizeof(q));
		tsi_log(TSI_LOG_WARN, "signer.bad_request",
		    TSI_LI("type", q.type), TSI_LS("error", tsi_strerror(r)));
		if (conn >= 0)
			close(conn);
		answer_status(sg, fd, q.type, q.id, r);
		tsi_priv_req_clear(&q);
		return 0;
	}
	if (q.type != TSI_PRIV_IDENTIFY && conn >= 0) {
		close(conn);
		conn = -1;
	}
	switch (q.type) {
	case TSI_PRIV_IDENTIFY: do_identify(sg, fd, q.id, conn); break;
	case TSI_PRIV_RELEASE: {
		struct handle *h = handle_find(sg, q.handle);

		if (h != NULL)
			handle_free(h);
		answer_status(sg, fd, q.type, q.id,
		    h != NULL ? TSI_OK : TSI_ERR_NOT_FOUND);
		break;
	}
	case TSI_PRIV_SIGN: do_sign(sg, fd, &q); break;
	case TSI_PRIV_JWKS: do_jwks(sg, fd, q.id); break;
	case TSI_PRIV_HEALTH: do_health(sg, fd, q.id); break;
	case TSI_PRIV_WAKE:
		/* The signer's to send. */
		answer_status(sg, fd, q.type, q.id, TSI_ERR_UNSUPPORTED);
		break;
	default: do_enroll(sg, fd, &q); break;
	}
	tsi_priv_req_clear(&q);
	return 0;
}

/* The hashing threads' wakes: the front end hears of each. */
static void
drain_wakes(struct signer *sg)
{
	uint32_t slot;
	struct handle *h;

	while (read(sg->wake_pipe[0], &slot, sizeof(slot)) == sizeof(slot)) {
		if (slot >= sg->nh)
			continue;
		h = &sg->h[slot];
		h->waiting = 0;
		if (h->dead || !h->used) {
			h->dead = 0;
			handle_free(h);
			continue;
		}
		tsi_priv_msg_begin(&sg->out, TSI_PRIV_WAKE, 0);
		tsi_priv_put_u32(&sg->out, handle_name(sg, h));
		if (sg->notify >= 0)
			(void)send_out(sg, sg->notify);
	}
}

static void
close_front_fds(struct signer *sg)
{
	size_t i;

	for (i = 0; i < sg->nchan; i++)
		if (sg->chan[i] >= 0)
			close(sg->chan[i]);
	sg->nchan = 0;
	if (sg->notify >= 0)
		close(sg->notify);
	sg->notify = -1;
}

/* Every caller the front end had is forgotten with it. */
static void
front_gone(struct signer *sg)
{
	size_t i;

	close_front_fds(sg);
	for (i = 0; i < sg->nh; i++)
		handle_free(&sg->h[i]);
}

/* Moves fd to a number at least 64 (so dup2 to the fixed numbers does not
 * overwrite another one), close-on-exec. */
static int
high_fd(int fd)
{
	int n = fcntl(fd, F_DUPFD_CLOEXEC, 64);

	close(fd);
	return n;
}

static int
front_start(struct signer *sg)
{
	int pair[2], theirs[TSI_PRIV_CHAN_MAX + 1], listen_hi = -1;
	char *argv[6];
	/* A channel per event-loop thread and two more; enrolling, the front
	 * end makes one request at a time. */
	size_t i,
	    n = sg->s->enroll_only ? 1 : (size_t)tsi_issuer_front_threads() + 2;
	sigset_t none;
	pid_t pid;
	int r = TSI_ERR_IO;

	if (n > TSI_PRIV_CHAN_MAX)
		n = TSI_PRIV_CHAN_MAX;
	for (i = 0; i <= n; i++)
		theirs[i] = -1;
	/* theirs[0]: notify; theirs[1..n]: request channels. */
	for (i = 0; i <= n; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		        pair) != 0)
			goto fail;
		if ((theirs[i] = high_fd(pair[1])) < 0) {
			close(pair[0]);
			goto fail;
		}
		if (i == 0)
			sg->notify = pair[0];
		else
			sg->chan[sg->nchan++] = pair[0];
		(void)fcntl(pair[0], F_SETFL, O_NONBLOCK);
	}
	if (sg->notify >= 0)
		(void)fcntl(sg->notify, F_SETFL, 0); /* WAKEs are not lost */
	if (sg->s->listen_fd >= 0 &&
	    (listen_hi = fcntl(sg->s->listen_fd, F_DUPFD_CLOEXEC, 64)) < 0)
		goto fail;
	argv[0] = (char *)sg->s->exe;
	argv[1] = "front";
	argv[2] = "--config";
	argv[3] = (char *)sg->s->config_path;
	argv[4] = sg->s->enroll_only ? "--enroll" : NULL;
	argv[5] = NULL;
	sigemptyset(&none);
	if ((pid = fork()) < 0)
		goto fail;
	if (pid == 0) {
		/* Only async-signal-safe calls until execv. */
		(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(1);
		if ((listen_hi >= 0 &&
		        dup2(listen_hi, TSI_PRIV_FD_LISTEN) < 0) ||
		    dup2(theirs[0], TSI_PRIV_FD_NOTIFY) < 0)
			_exit(1);
		for (i = 1; i <= n; i++)
			if (dup2(theirs[i], TSI_PRIV_FD_CHAN0 + (int)i - 1) < 0)
				_exit(1);
		signal(SIGCHLD, SIG_DFL);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		execv(argv[0], argv);
		_exit(127);
	}
	sg->front = pid;
	sg->started_ms = now_ms();
	tsi_log(TSI_LOG_INFO, "front.started", TSI_LI("pid", pid),
	    TSI_LI("channels", n));
	r = TSI_OK;
	goto out;
fail:
	tsi_log(TSI_LOG_ERROR, "front.start_failed",
	    TSI_LS("error", strerror(errno)));
	close_front_fds(sg);
out:
	for (i = 0; i <= n; i++)
		if (theirs[i] >= 0)
			close(theirs[i]);
	if (listen_hi >= 0)
		close(listen_hi);
	return r;
}

/* Reaps the front end if it ended: logs how, forgets its callers, and
 * plans its restart after the back-off. */
static void
front_reap(struct signer *sg)
{
	int st;
	pid_t p;

	if (sg->front <= 0)
		return;
	if ((p = waitpid(sg->front, &st, WNOHANG)) <= 0)
		return;
	sg->front_status = st;
	if (sg->s->enroll_only) {
		sg->front = 0;
		front_gone(sg);
		return;
	}
	if (WIFSIGNALED(st))
		tsi_log(TSI_LOG_ERROR, "front.exited", TSI_LI("pid", p),
		    TSI_LI("signal", WTERMSIG(st)),
		    TSI_LI("restart_ms", sg->backoff_ms));
	else
		tsi_log(TSI_LOG_ERROR, "front.exited", TSI_LI("pid", p),
		    TSI_LI("status", WEXITSTATUS(st)),
		    TSI_LI("restart_ms", sg->backoff_ms));
	sg->front = 0;
	front_gone(sg);
	if (now_ms() - sg->started_ms >= TSI_PRIV_STABLE_MS)
		sg->backoff_ms = TSI_PRIV_BACKOFF_MIN_MS;
	sg->restart_at_ms = now_ms() + sg->backoff_ms;
	sg->backoff_ms *= 2;
	if (sg->backoff_ms > TSI_PRIV_BACKOFF_MAX_MS)
		sg->backoff_ms = TSI_PRIV_BACKOFF_MAX_MS;
}

static void
front_stop(struct signer *sg)
{
	long long end;
	struct timespec ts = { 0, 20 * 1000000L };

	if (sg->front <= 0)
		return;
	(void)kill(sg->front, SIGTERM);
	end = now_ms() + TSI_PRIV_STOP_MS;
	while (waitpid(sg->front, NULL, WNOHANG) == 0) {
		if (now_ms() >= end) {
			(void)kill(sg->front, SIGKILL);
			(void)waitpid(sg->front, NULL, 0);
			break;
		}
		(void)nanosleep(&ts, NULL);
	}
	sg->front = 0;
}

/* The end of an enrolling front end: it must have exited 0 and a node
 * certificate must have been installed (an exit status alone proves
 * nothing). One still running past its time is stopped. */
static int
enroll_end(struct signer *sg)
{
	int st = sg->front_status;

	if (sg->front > 0) {
		tsi_log(TSI_LOG_ERROR, "enroll.failed",
		    TSI_LS("reason", "the enrolling front end took too long"),
		    TSI_LI("limit_ms", TSI_PRIV_ENROLL_MS));
		front_stop(sg);
		return TSI_ERR_AGAIN;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && sg->installed)
		return TSI_OK;
	if (WIFSIGNALED(st))
		tsi_log(TSI_LOG_ERROR, "enroll.front_died",
		    TSI_LI("signal", WTERMSIG(st)));
	return TSI_ERR_DENIED;
}

int
tsi_privsep_signer_run(const struct tsi_privsep_signer *s)
{
	struct pollfd pfd[TSI_PRIV_CHAN_MAX + 1];
	struct sigaction sa;
	struct signer *sg;
	struct timespec ts, *tsp;
	size_t i, np;
	long long wait;
	int r = TSI_ERR_INTERNAL;

	if ((sg = calloc(1, sizeof(*sg))) == NULL)
		return TSI_ERR_ALLOC;
	sg->s = s;
	sg->notify = -1;
	sg->wake_pipe[0] = sg->wake_pipe[1] = -1;
	sg->backoff_ms = TSI_PRIV_BACKOFF_MIN_MS;
	/* A handle per connection the front end may hold, and as many
	 * again whose release is on its way. */
	sg->nh = (size_t)s->cfg->max_clients * 2;
	if (sg->nh > 0xffff)
		sg->nh = 0xffff;
	if ((sg->h = calloc(sg->nh, sizeof(*sg->h))) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < sg->nh; i++) {
		sg->h[i].fd = -1;
		sg->h[i].peer.stat_fd = -1;
		sg->h[i].sg = sg;
	}
	if (pipe2(sg->wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		r = TSI_ERR_IO;
		goto out;
	}
	if (s->cfg->resolver == TSI_RESOLVER_UNIX &&
	    (r = tsi_exe_hasher_new(s->cfg->max_exe_size, &sg->hasher)) !=
	        TSI_OK)
		goto out;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_child;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGCHLD, &sa, NULL);
	if ((r = front_start(sg)) != TSI_OK)
		goto out;
	r = TSI_OK;
	while (!*s->stop) {
		if (*s->renew_flag && s->renew != NULL) {
			*s->renew_flag = 0;
			if ((r = s->renew(s->renew_arg)) != TSI_OK)
				goto out;
		}
		/* waitpid only when a child changed state: not a system
		 * call per request. */
		if (child_flag) {
			child_flag = 0;
			front_reap(sg);
		}
		if (s->enroll_only &&
		    (sg->front == 0 ||
		        now_ms() - sg->started_ms > TSI_PRIV_ENROLL_MS)) {
			r = enroll_end(sg);
			goto out;
		}
		if (sg->front == 0 && now_ms() >= sg->restart_at_ms &&
		    front_start(sg) != TSI_OK) {
			sg->restart_at_ms = now_ms() + sg->backoff_ms;
			sg->backoff_ms =
			    sg->backoff_ms * 2 > TSI_PRIV_BACKOFF_MAX_MS
			    ? TSI_PRIV_BACKOFF_MAX_MS
			    : sg->backoff_ms * 2;
		}
		np = 0;
		pfd[np].fd = sg->wake_pipe[0];
		pfd[np++].events = POLLIN;
		for (i = 0; i < sg->nchan; i++) {
			pfd[np].fd = sg->chan[i];
			pfd[np++].events = POLLIN;
		}
		tsp = NULL;
		if (s->enroll_only) {
			/* Its deadline; SIGCHLD ends the wait before. */
			ts.tv_sec = 1;
			ts.tv_nsec = 0;
			tsp = &ts;
		} else if (sg->front == 0) {
			wait = sg->restart_at_ms - now_ms();
			if (wait < 0)
				wait = 0;
			ts.tv_sec = wait / 1000;
			ts.tv_nsec = (wait % 1000) * 1000000L;
			tsp = &ts;
		}
		if (ppoll(pfd, np, tsp, s->wait_mask) < 0) {
			if (errno == EINTR)
				continue;
			r = TSI_ERR_IO;
			goto out;
		}
		if (pfd[0].revents & POLLIN)
			drain_wakes(sg);
		for (i = 1; i < np; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (serve_one(sg, pfd[i].fd) < 0) {
				/* The front end is gone or going: its callers
				 * are forgotten now, its exit is reaped (and
				 * logged) when SIGCHLD comes. An enrolling one
				 * closes its channel as it exits: its status
				 * says how it ended. */
				if (sg->front > 0 && !s->enroll_only)
					(void)kill(sg->front, SIGKILL);
				front_gone(sg);
				break;
			}
		}
	}
out:
	front_stop(sg);
	close_front_fds(sg);
	/* Every hashing thread ends after its wake: then no handle waits. */
	tsi_exe_hasher_stop(sg->hasher);
	if (sg->wake_pipe[0] >= 0)
		drain_wakes(sg);
	if (sg->h != NULL)
		for (i = 0; i < sg->nh; i++) {
			sg->h[i].waiting = 0;
			handle_free(&sg->h[i]);
		}
	tsi_exe_hasher_free(sg->hasher);
	if (sg->wake_pipe[0] >= 0)
		close(sg->wake_pipe[0]);
	if (sg->wake_pipe[1] >= 0)
		close(sg->wake_pipe[1]);
	free(sg->h);
	tsi_freezero(sg, sizeof(*sg));
	return r;
}
