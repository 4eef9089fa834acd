/*
 * Streaming gzip inflation with a cap on the output (docs/protocol.md
 * sections 4.4 and 4.5). Input is fed as it arrives; output goes to a sink
 * in pieces of at most 16 KiB, so memory stays constant whatever the body
 * inflates to. The moment the output would pass the cap the stream is
 * refused (-E2BIG) and nothing more is inflated: a gzip bomb costs the
 * queue at most cap bytes of work.
 *
 * Exactly one gzip member is accepted; bytes after its end are an error.
 */
#ifndef SKIFF_QUEUE_GZ_H
#define SKIFF_QUEUE_GZ_H

#include <stddef.h>
#include <stdint.h>

struct gz;

/* A sink returns 0 or a negative errno, which stops the stream. */
typedef int (*gz_sink)(void *arg, const void *p, size_t n);

int gz_new(uint64_t cap, struct gz **out);
void gz_free(struct gz *g);
/*
 * Inflates n more input bytes. 0; -E2BIG past the cap; -EBADMSG for data
 * that is not gzip, is corrupt, or follows the end of the member; or the
 * sink's error.
 */
int gz_feed(struct gz *g, const void *in, size_t n, gz_sink sink, void *arg);
/* After the last input: -EBADMSG when the member did not end. */
int gz_finish(struct gz *g);
/* Bytes produced so far. */
uint64_t gz_total_out(const struct gz *g);

/* All of in (one member) into a sink; the whole sequence above. */
int gz_inflate_all(const void *in, size_t n, uint64_t cap, gz_sink sink,
    void *arg);

#endif
