/*
 * JWS compact serialisation (RFC 7515) with EdDSA over Ed25519 (RFC 8037),
 * the only algorithm skiff accepts.
 *
 * jws_verify works on the raw bytes as received: it checks the size and the
 * form, decodes and reads the small protected header (alg, kid, crit),
 * verifies the signature over "header.payload" exactly as sent, and only
 * then hands the decoded payload to the caller. The payload is never
 * parsed before its signature holds.
 */
#ifndef SKIFF_JWS_H
#define SKIFF_JWS_H

#include <stddef.h>

struct buf;
struct err;
struct jwk;
struct jwks;

#define JWS_MAX_COMPACT (256 * 1024)
#define JWS_MAX_HEADER 1024

/* Signs payload with an Ed25519 private key; *out is a heap string. */
int jws_sign(const struct jwk *key, const void *payload, size_t n,
    char **out);
/*
 * Verifies compact (n bytes, need not be NUL-terminated) against the
 * trusted set. On success appends the payload bytes to *payload and, if
 * key is not NULL, points it at the key that signed. On failure e->code is
 * a job_reason (see job.h) and the message names the failed check.
 */
int jws_verify(const char *compact, size_t n, const struct jwks *trusted,
    struct buf *payload, const struct jwk **key, struct err *e);
/* Decodes the payload without verifying it: for the queue's bookkeeping
 * only, never to decide what runs. */
int jws_peek_payload(const char *compact, size_t n, struct buf *payload,
    struct err *e);

#endif
