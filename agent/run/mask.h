/*
 * Secret masking for everything that reaches the queue. A mask holds the
 * byte strings to hide: each secret and the forms it is likely to appear
 * in (each line of a multi-line value; base64 and base64url at the three
 * alignments a value can have inside a longer encoded string; hex;
 * percent-encoding; JSON-escaped). A mask stream replaces every stretch
 * of output covered by occurrences with "***" (overlapping occurrences
 * become one), in a byte stream fed in pieces: a tail that could be the
 * start of an occurrence is held back until the next piece (or the end)
 * decides, so a secret written in two writes, or split across two reads
 * or two log chunks, is still masked.
 *
 * A step can add a value at run time with a line of its own output,
 *
 *   ##skiff[add-mask value='...']
 *
 * which the stream holds whole (it never reaches the log: the line shows
 * as MASK_ADD_SHOWN) and hands to the mask's owner, which adds the value
 * with mask_add_runtime: from then on every stream of that mask hides it.
 *
 * Matching is an Aho-Corasick automaton, a full transition table for its
 * shallow states (where ordinary text keeps it) and failure links below,
 * so the cost per byte does not grow with the number of values.
 */
#ifndef SKIFF_AGENT_MASK_H
#define SKIFF_AGENT_MASK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define MASK_REPLACEMENT "***"
#define MASK_MAX_SECRET 8192
/* A derived form shorter than this is not masked: the hex of a 1-byte
 * value would hide every pair of digits of that value, its base64 pieces
 * every word that contains them. Six base64 characters happen by chance
 * once in 6.9e10, six hex digits once in 1.7e7. */
#define MASK_MIN_FORM 6
/* Values added at run time: at least this long (shorter ones would mask
 * ordinary text, as GitHub's runner refuses them too), at most this many
 * per mask. */
#define MASK_MIN_RUNTIME 4
#define MASK_MAX_RUNTIME 256
/* Bytes of derived forms and run-time values a mask holds; the values of
 * sealed secrets are masked whatever they add up to. About 15 bytes of
 * automaton per pattern byte. */
#define MASK_MAX_BYTES (512 * 1024)
/* An add-mask line longer than this is refused (and still not shown). */
#define MASK_LINE_MAX 4096
#define MASK_ADD_PREFIX "##skiff[add-mask"
#define MASK_ADD_SHOWN "##skiff[add-mask value='***']"
/* set-secret is the documented name of add-mask: the same message. */
#define MASK_SECRET_PREFIX "##skiff[set-secret"
#define MASK_SECRET_SHOWN "##skiff[set-secret value='***']"
/* A set-output line is held whole too, so that its owner gets the value
 * before masking (a later step gets it as it was written); the log gets
 * the line masked. */
#define MASK_OUTPUT_PREFIX "##skiff[set-output"
#define MASK_OUTPUT_OVER "##skiff[set-output ...] (line too long, not shown)"

struct mask;

struct mask_span {
	uint64_t start, end;
};

struct mask_stream {
	const struct mask *m;
	unsigned long gen;	/* the automaton state belongs to */
	uint32_t state;
	uint64_t pos;		/* bytes fed through the automaton */
	uint64_t done;		/* bytes before this are out (or replaced) */
	uint64_t hold_off;	/* stream offset of hold.data[0] */
	struct buf hold;	/* bytes from done on: they may begin a secret */
	struct mask_span *span;	/* occurrences not yet out, merged */
	size_t sp0, nspan, capspan;
	int star;		/* span[sp0]'s "***" is out already */
	int bol;		/* at the beginning of a line */
	int nocap;		/* add-mask lines are plain text here */
	int capturing;		/* inside an add-mask line */
	int cap_over;		/* ... longer than MASK_LINE_MAX */
	char pend[32];		/* may begin a held line */
	size_t npend;
	struct buf line;	/* the add-mask line */
	struct buf work;
};

typedef void (*mask_out_fn)(void *arg, const char *data, size_t n);
/* An add-mask line was read: value is its value, NULL when the line is
 * malformed. */
typedef void (*mask_line_fn)(void *arg, const char *value, size_t n);
/* A set-output line was read: m is the parsed message, NULL when the line
 * is malformed or over MASK_LINE_MAX. */
struct svcmsg;
typedef void (*mask_msg_fn)(void *arg, const struct svcmsg *m);

struct mask *mask_new(void);
/* Adds a secret value and its derived forms. -E2BIG when some derived
 * forms did not fit in MASK_MAX_BYTES (the value itself always does). */
int mask_add(struct mask *m, const char *value, size_t n);
/* The same for n values at once: the automaton is built once, not once a
 * value (a job's 64 secrets of 4 KiB took 0.2 s one by one). */
int mask_add_values(struct mask *m, const char *const *values,
    const size_t *lens, size_t n);
/* Adds a value a step asked for: -EINVAL when it is shorter than
 * MASK_MIN_RUNTIME or longer than MASK_MAX_SECRET, -E2BIG when the mask
 * has MASK_MAX_RUNTIME of them, -ENOSPC when it does not fit in
 * MASK_MAX_BYTES. */
int mask_add_runtime(struct mask *m, const char *value, size_t n);
/* Streams of m (not mask_string) hold add-mask lines and give them to fn.
 * fn may add to m; it must not feed the stream that calls it. */
void mask_on_add_line(struct mask *m, mask_line_fn fn, void *arg);
/* Streams of m (with an add-line fn) also hold set-output lines for fn. */
void mask_on_output_line(struct mask *m, mask_msg_fn fn, void *arg);
/* Byte strings masked (values and forms). */
size_t mask_count(const struct mask *m);
void mask_free(struct mask *m);

void mask_stream_init(struct mask_stream *s, const struct mask *m);
/* add-mask lines are plain text in s: for skiff's own lines, which may
 * quote one. */
void mask_stream_no_add(struct mask_stream *s);
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
