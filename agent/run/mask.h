/*
 * Secret masking for everything that reaches the queue. A mask holds the
 * byte strings to hide (each secret and the forms it is likely to appear
 * in: each line of a multi-line value, base64, base64url, JSON-escaped).
 * A mask stream replaces every occurrence with "***" in a byte stream fed
 * in pieces: a tail that could be the start of a secret is held back until
 * the next piece (or the end) decides, so a secret written in two writes,
 * or split across two reads or two log chunks, is still masked.
 */
#ifndef SKIFF_AGENT_MASK_H
#define SKIFF_AGENT_MASK_H

#include <stddef.h>

#include "buf.h"

#define MASK_REPLACEMENT "***"
#define MASK_MAX_SECRET 8192

struct mask;

struct mask_stream {
	const struct mask *m;
	struct buf hold;	/* bytes that may begin a secret */
	struct buf work;
};

typedef void (*mask_out_fn)(void *arg, const char *data, size_t n);

struct mask *mask_new(void);
/* Adds a secret value and its derived forms. */
void mask_add(struct mask *m, const char *value, size_t n);
size_t mask_count(const struct mask *m);
void mask_free(struct mask *m);

void mask_stream_init(struct mask_stream *s, const struct mask *m);
/* Masks data; out() gets the masked bytes in order. With final, nothing
 * is held back. */
void mask_feed(struct mask_stream *s, const char *data, size_t n, int final,
    mask_out_fn out, void *arg);
/* Bytes currently held back. */
size_t mask_held(const struct mask_stream *s);
void mask_stream_free(struct mask_stream *s);
/* Masks a whole string at once; returns a heap string. */
char *mask_string(const struct mask *m, const char *s);

#endif
