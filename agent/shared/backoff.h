/*
 * Capped exponential backoff with jitter (docs/protocol.md section 1):
 * d = min(cap, base * 2^attempt), delay in [d/2, d]. Never zero, so a
 * server that fails at once is not hammered; spread, so that a pool of
 * agents does not retry in lock step; reset by the caller on success.
 */
#ifndef SKIFF_AGENT_BACKOFF_H
#define SKIFF_AGENT_BACKOFF_H

#include <stdint.h>

struct backoff {
	int attempt;
	int64_t base_ms;
	int64_t cap_ms;
};

void backoff_init(struct backoff *b, int64_t base_ms, int64_t cap_ms);
/* The next delay in ms; retry_after_s (or -1) is honoured when larger. */
int64_t backoff_next(struct backoff *b, int retry_after_s);
void backoff_reset(struct backoff *b);

#endif
