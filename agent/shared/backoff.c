#include "backoff.h"

#include <sodium.h>

void backoff_init(struct backoff *b, int64_t base_ms, int64_t cap_ms)
{
	b->attempt = 0;
	b->base_ms = base_ms;
	b->cap_ms = cap_ms;
}

int64_t backoff_next(struct backoff *b, int retry_after_s)
{
	int64_t d = b->base_ms;

	for (int i = 0; i < b->attempt && d < b->cap_ms; i++)
		d *= 2;
	if (d > b->cap_ms)
		d = b->cap_ms;
	if (b->attempt < 62)
		b->attempt++;
	int64_t half = d / 2;
	int64_t delay = half + (half > 0 ? (int64_t)randombytes_uniform(
	    (uint32_t)(half > UINT32_MAX - 1 ? UINT32_MAX - 1 : half) + 1) : 0);
	if (retry_after_s >= 0 && (int64_t)retry_after_s * 1000 > delay)
		delay = (int64_t)retry_after_s * 1000;
	return delay;
}

void backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}
