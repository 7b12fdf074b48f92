/* Retry and refresh timing. Pure functions: the caller supplies randomness. */
#include "sidecar/sidecar.h"

long
tsi_sidecar_backoff_ms(unsigned attempt, long base_ms, long cap_ms,
    uint32_t rnd)
{
	long d = base_ms, half;
	unsigned i;

	if (base_ms <= 0 || cap_ms <= 0)
		return 0;
	if (base_ms > cap_ms)
		d = cap_ms;
	/* Doubling stops at the cap, so no overflow however large attempt is. */
	for (i = 0; i < attempt && d < cap_ms; i++)
		d = (d > cap_ms / 2) ? cap_ms : d * 2;
	half = d / 2;
	/* [d - half, d]: never below half the nominal delay, never above it. */
	return d - half + (long)(rnd % (uint32_t)(half + 1));
}

long
tsi_sidecar_jitter_ms(long interval_ms, uint32_t rnd)
{
	/* factor in [0.8, 1.2) in steps of 1/1000 */
	long long f = 800 + (long long)(rnd % 400u);

	if (interval_ms <= 0)
		return 0;
	return (long)((long long)interval_ms * f / 1000);
}
