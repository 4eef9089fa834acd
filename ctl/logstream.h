/*
 * Reading a job log (docs/protocol.md section 10) as it arrives, in any
 * pieces: records "<timestamp> SP <tag> SP <data> LF", tags out, err, skf,
 * with a trailing '+' when the data did not end a line.
 *
 * Three ways out: the records as they are (LS_RECORDS), or one stream's
 * bytes put back together as the step wrote them (LS_OUT, LS_ERR: the
 * data of each record, and a newline after every one whose tag has no
 * '+'). Either can be limited to one step: the records that follow an
 * skf record "step N/…" up to the next such record of another step.
 */
#ifndef SKIFF_CTL_LOGSTREAM_H
#define SKIFF_CTL_LOGSTREAM_H

#include <stddef.h>

#include "buf.h"

enum logstream_mode { LS_RECORDS, LS_OUT, LS_ERR };

/* A record is at most 64 KiB of data plus its timestamp and tag. */
#define LOGSTREAM_MAX_RECORD (128 * 1024)

typedef void (*logstream_emit)(void *arg, const char *p, size_t n);

struct logstream {
	enum logstream_mode mode;
	int step;		/* 1-based; 0: every step */
	int cur_step;		/* of the records being read; 0 before any */
	struct buf line;	/* a record not yet complete */
	int skipping;		/* dropping an oversized record to its LF */
	size_t malformed;	/* records that were not of the form */
	logstream_emit emit;
	void *arg;
};

void logstream_init(struct logstream *ls, enum logstream_mode mode,
    int step, logstream_emit emit, void *arg);
/* 0, or -E2BIG for a record over LOGSTREAM_MAX_RECORD (it is skipped). */
int logstream_feed(struct logstream *ls, const char *p, size_t n);
/* The end of the log: a last record without its LF is read too. */
void logstream_finish(struct logstream *ls);
void logstream_free(struct logstream *ls);

#endif
