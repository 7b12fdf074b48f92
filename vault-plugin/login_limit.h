/*
 * login_limit.h - per-source limits on failed logins (login_limit.c).
 */
#ifndef TSI_VAULT_LOGIN_LIMIT_H
#define TSI_VAULT_LOGIN_LIMIT_H

#include <stddef.h>
#include <time.h>

/* Per-source limits on failed logins. limit 0: off (every call a no-op).
 * slots bounds the memory. *out: vault_limiter_free. Thread-safe. */
struct vault_limiter;
int vault_limiter_new(unsigned limit, unsigned window_s, size_t slots,
    struct vault_limiter **out);
void vault_limiter_free(struct vault_limiter *l); /* accepts NULL */
/* Before a login: 0 to go on, or the seconds until remote's window ends
 * when it is over its limit (the refusal is counted for the aggregate
 * record; *first is 1 for the first refusal of the window). */
unsigned vault_limiter_check(struct vault_limiter *l, const char *remote,
    time_t now, int *first);
/* A failed login from remote. */
void vault_limiter_fail(struct vault_limiter *l, const char *remote,
    time_t now);
/* For each source whose window ended with refusals: fn(arg, source,
 * refusals, window start, window length), once, at most max (8) per
 * call and one pass a second. Returns how many. fn runs unlocked. */
size_t vault_limiter_drain(struct vault_limiter *l, time_t now,
    void (*fn)(void *arg, const char *src, unsigned count, time_t start,
        unsigned window),
    void *arg, size_t max);
/* Sources over their limit now. */
size_t vault_limiter_throttled(struct vault_limiter *l, time_t now);

#endif /* TSI_VAULT_LOGIN_LIMIT_H */
