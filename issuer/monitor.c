/*
 * monitor.c - TPM liveness and session rotation in the background.
 */
#include "issuer/monitor.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tsi_monitor {
	struct tsi_tpm *tpm;
	struct tsi_minter *minter;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	/* status, probed_ms, reason: read by every request (read lock, so
	 * requests never wait for each other), written by the probe. */
	pthread_rwlock_t st;
	int status;
	long long probed_ms; /* when the last probe finished */
	char reason[256];
};

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
probe(struct tsi_monitor *m)
{
	char reason[256];
	int r;

	r = tsi_tpm_check(m->tpm, reason, sizeof(reason));
	if (r == TSI_OK && m->minter != NULL &&
	    (r = tsi_minter_refresh(m->minter)) != TSI_OK)
		(void)snprintf(reason, sizeof(reason),
		    "session key rotation failed: %s", tsi_strerror(r));
	pthread_rwlock_wrlock(&m->st);
	if (r != m->status)
		tsi_log(r == TSI_OK ? TSI_LOG_INFO : TSI_LOG_WARN, "tpm.status",
		    TSI_LS("status", r == TSI_OK ? "ok" : "unavailable"),
		    TSI_LS("reason", r == TSI_OK ? "" : reason));
	m->status = r;
	m->probed_ms = mono_ms();
	(void)snprintf(m->reason, sizeof(m->reason), "%s",
	    r == TSI_OK ? "" : reason);
	pthread_rwlock_unlock(&m->st);
}

static void *
run(void *arg)
{
	struct tsi_monitor *m = arg;
	struct timespec ts;

	pthread_mutex_lock(&m->mu);
	while (!m->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TSI_MONITOR_INTERVAL_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		(void)pthread_cond_timedwait(&m->cv, &m->mu, &ts);
		if (m->stop)
			break;
		pthread_mutex_unlock(&m->mu);
		probe(m);
		pthread_mutex_lock(&m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

int
tsi_monitor_start(struct tsi_tpm *tpm, struct tsi_minter *minter,
    struct tsi_monitor **out)
{
	struct tsi_monitor *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return TSI_ERR_ALLOC;
	m->tpm = tpm;
	m->minter = minter;
	m->status = TSI_OK;
	if (pthread_rwlock_init(&m->st, NULL) != 0) {
		free(m);
		return TSI_ERR_INTERNAL;
	}
	if (pthread_mutex_init(&m->mu, NULL) != 0) {
		pthread_rwlock_destroy(&m->st);
		free(m);
		return TSI_ERR_INTERNAL;
	}
	if (pthread_cond_init(&m->cv, NULL) != 0) {
		pthread_mutex_destroy(&m->mu);
		pthread_rwlock_destroy(&m->st);
		free(m);
		return TSI_ERR_INTERNAL;
	}
	probe(m);
	if (pthread_create(&m->thread, NULL, run, m) != 0) {
		pthread_cond_destroy(&m->cv);
		pthread_mutex_destroy(&m->mu);
		pthread_rwlock_destroy(&m->st);
		free(m);
		return TSI_ERR_INTERNAL;
	}
	*out = m;
	return TSI_OK;
}

void
tsi_monitor_stop(struct tsi_monitor *m)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	m->stop = 1;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
	pthread_join(m->thread, NULL);
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	pthread_rwlock_destroy(&m->st);
	free(m);
}

int
tsi_monitor_status(struct tsi_monitor *m, char *reason, size_t len)
{
	int r;

	long long age;

	pthread_rwlock_rdlock(&m->st);
	r = m->status;
	age = mono_ms() - m->probed_ms;
	if (len > 0)
		(void)snprintf(reason, len, "%s", m->reason);
	pthread_rwlock_unlock(&m->st);
	/* The probe itself is stuck in a TPM command: nobody vouches. */
	if (r == TSI_OK && age > TSI_MONITOR_STALE_MS) {
		(void)snprintf(reason, len,
		    "TPM not answering (no probe result "
		    "for %lld ms)",
		    age);
		r = TSI_ERR_TPM_UNAVAILABLE;
	}
	return r;
}

void
tsi_monitor_report(struct tsi_monitor *m, int err, const char *reason)
{
	pthread_rwlock_wrlock(&m->st);
	m->status = err;
	(void)snprintf(m->reason, sizeof(m->reason), "%s", reason);
	pthread_rwlock_unlock(&m->st);
}
