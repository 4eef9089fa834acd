/*
 * An API error as the wire carries it (docs/protocol.md section 1): HTTP
 * status, stable code, a message for people, and the extra fields some
 * codes carry (length, limit, reason). The queue's operations fill one in
 * and the HTTP layer turns it into the JSON body.
 */
#ifndef SKIFF_QUEUE_APIERR_H
#define SKIFF_QUEUE_APIERR_H

#include <stdint.h>

struct apierr {
	int status;
	const char *code;
	char msg[384];
	int has_length;
	int64_t length;
	int has_limit;
	int64_t limit;
	const char *reason;	/* a rejection reason code (section 11) */
	int retry_after;	/* seconds, 0: none */
};

/* Fills e (NULL is fine) and returns -1. */
int apierr_set(struct apierr *e, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define apierr_bad(e, ...)      apierr_set(e, 400, "bad_request", __VA_ARGS__)
#define apierr_notfound(e, ...) apierr_set(e, 404, "not_found", __VA_ARGS__)
#define apierr_conflict(e, ...) apierr_set(e, 409, "conflict", __VA_ARGS__)
#define apierr_lost(e, ...)     apierr_set(e, 410, "lease_lost", __VA_ARGS__)
#define apierr_internal(e, ...) apierr_set(e, 500, "internal", __VA_ARGS__)

/* 409 offset_mismatch carrying the server's length. */
int apierr_offset(struct apierr *e, int64_t length, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 413 too_large carrying the limit. */
int apierr_too_large(struct apierr *e, int64_t limit, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
