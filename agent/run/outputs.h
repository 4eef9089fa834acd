/*
 * A job's output variables (docs/protocol.md section 3.5): what its steps
 * set with ##skiff[set-output name='NAME' value='VALUE'] or by appending
 * NAME=VALUE lines to the file named by $SKIFF_OUTPUT. Later steps see
 * them as SKIFF_OUTPUT_<NAME>; the job's outputs go with complete.
 *
 * Everything here comes from a step, so every size is capped before it is
 * kept, and a bad line is refused with a reason, never fatal.
 */
#ifndef SKIFF_AGENT_OUTPUTS_H
#define SKIFF_AGENT_OUTPUTS_H

#include <stddef.h>

#define OUTPUTS_ENV_PREFIX "SKIFF_OUTPUT_"
#define OUTPUTS_MAX_NAME 64		/* bytes of a name */
#define OUTPUTS_MAX_VALUE 4096		/* bytes of a value */
#define OUTPUTS_MAX_COUNT 64		/* outputs per job */
#define OUTPUTS_MAX_TOTAL (16 * 1024)	/* names and values of a job */
/* A step's output file longer than this is ignored as a whole. */
#define OUTPUTS_MAX_FILE (64 * 1024)

struct outputs;

struct outputs *outputs_new(void);
void outputs_free(struct outputs *o);
/*
 * Sets name to value (a name set again takes the new value, in its old
 * place). Returns 0 or: -EINVAL a name that is not [A-Za-z_][A-Za-z0-9_]*
 * of 1 to OUTPUTS_MAX_NAME bytes; -EILSEQ a value that is not UTF-8 or
 * holds a control character other than tab; -EMSGSIZE a value over
 * OUTPUTS_MAX_VALUE; -E2BIG over OUTPUTS_MAX_COUNT or OUTPUTS_MAX_TOTAL.
 */
int outputs_set(struct outputs *o, const char *name, size_t nlen,
    const char *value, size_t vlen);
/* Words for an error of outputs_set. */
const char *outputs_strerror(int err);

/* A refused line of an output file: its number (1-based) and why. */
typedef void (*outputs_note_fn)(void *arg, size_t line, const char *why);
/*
 * The bytes of an output file: NAME=VALUE lines (a CR before the LF is
 * dropped, blank lines are skipped, the value is everything after the
 * first '='). Each refused line goes to note (which may be NULL); returns
 * how many lines set an output.
 */
size_t outputs_parse(struct outputs *o, const char *data, size_t n,
    outputs_note_fn note, void *arg);

size_t outputs_count(const struct outputs *o);
const char *outputs_name(const struct outputs *o, size_t i);
const char *outputs_value(const struct outputs *o, size_t i);

#endif
