/*
 * A job's log pipeline: step output (stdout, stderr) and skiff's own lines
 * go through the job's mask, then are framed into records
 * "<timestamp> <tag> <data>\n" (docs/protocol.md section 10) and handed to
 * the sink in batches. A partial line is held until its newline, until it
 * reaches 64 KiB, or until it has waited LOGPIPE_FLUSH_MS, then sent with a
 * "+" tag; bytes the mask holds back are never flushed early.
 */
#ifndef SKIFF_AGENT_LOGPIPE_H
#define SKIFF_AGENT_LOGPIPE_H

#include <stddef.h>

struct ev_loop;
struct logpipe;
struct mask;

#define LOGPIPE_LINE_MAX (64 * 1024)
#define LOGPIPE_FLUSH_MS 1000

enum logpipe_stream { LP_OUT, LP_ERR, LP_SKF, LP_NSTREAMS };

typedef void (*logpipe_sink)(void *arg, const char *data, size_t n);

struct logpipe *logpipe_new(struct ev_loop *loop, const struct mask *m,
    logpipe_sink sink, void *arg);
void logpipe_write(struct logpipe *lp, enum logpipe_stream s,
    const char *data, size_t n);
/* The stream ended (the step exited): flush everything, held bytes too. */
void logpipe_end(struct logpipe *lp, enum logpipe_stream s);
/* One line from skiff itself (masked like the rest). */
void logpipe_printf(struct logpipe *lp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Called with each whole line of step output that begins with '#' (after
 * masking), for service messages. */
void logpipe_on_line(struct logpipe *lp,
    void (*fn)(void *arg, const char *line, size_t n), void *arg);
void logpipe_free(struct logpipe *lp);

#endif
