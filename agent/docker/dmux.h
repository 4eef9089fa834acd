/*
 * Demultiplexer for Docker's attach and logs streams of a container
 * without a TTY. Each frame is an 8-byte header, then the payload:
 *
 *   byte 0    stream: 0 stdin, 1 stdout, 2 stderr, 3 the engine's own
 *             error message ("systemerr", API 1.41 and later)
 *   bytes 1-3 zero
 *   bytes 4-7 payload length, big-endian
 *
 * The stream arrives in reads of any size, cut anywhere. Payload is passed
 * on as it comes, never gathered into a whole frame, so a frame of any
 * length costs no memory and output reaches the log as soon as it is read.
 * A header that breaks the format (a stream above 3, non-zero padding) is
 * refused: the connection does not carry what we expect, and guessing
 * frame boundaries in it would mix or lose output.
 */
#ifndef SKIFF_AGENT_DMUX_H
#define SKIFF_AGENT_DMUX_H

#include <stddef.h>
#include <stdint.h>

#define DMUX_STDIN     0
#define DMUX_STDOUT    1
#define DMUX_STDERR    2
#define DMUX_SYSTEMERR 3

struct dmux {
	unsigned char hdr[8];
	size_t hlen;		/* header bytes gathered so far */
	uint32_t left;		/* payload bytes still to come in this frame */
	int stream;
	int err;		/* sticky: once refused, always refused */
	uint64_t frames;
};

/* Payload bytes of one stream; n > 0. Return 0 to go on, < 0 to stop. */
typedef int (*dmux_fn)(void *arg, int stream, const char *data, size_t n);

void dmux_init(struct dmux *m);
/* 0, -EPROTO on a malformed header, or the callback's negative value;
 * after a failure every later call fails the same way. */
int dmux_feed(struct dmux *m, const char *data, size_t n, dmux_fn fn,
    void *arg);
/* At the end of the stream: 0 at a frame boundary, -EPROTO when a frame
 * was cut short, or the sticky error. */
int dmux_finish(const struct dmux *m);

#endif
