/*
 * Job states (docs/protocol.md section 9) and the results an agent may
 * complete a job with.
 */
#ifndef SKIFF_QUEUE_JSTATE_H
#define SKIFF_QUEUE_JSTATE_H

enum jstate {
	JS_QUEUED,
	JS_LEASED,
	JS_RUNNING,
	JS_SUCCEEDED,
	JS_FAILED,
	JS_CANCELED,
	JS_TIMED_OUT,
	JS_REJECTED,
	JS_EXPIRED,
	JS_LOST,
	JS_COUNT
};

const char *jstate_name(enum jstate s);
/* -EINVAL for an unknown name. */
int jstate_parse(const char *s, enum jstate *out);
/* Ended: no more bytes, leases or changes. */
int jstate_terminal(enum jstate s);
/* One of the five results an agent may send with complete. */
int jstate_is_result(enum jstate s);

#endif
