/*
 * The queue's core opened on a temporary directory, for unit tests that
 * drive it through the calls the endpoints make: open and close, submit a
 * job, register an agent. Static inline, like qtest.h.
 */
#ifndef SKIFF_QFIX_H
#define SKIFF_QFIX_H

#include "qtest.h"

#include <cjson/cJSON.h>

#include "apierr.h"
#include "config.h"
#include "ev.h"
#include "queue.h"

static inline void qf_open(struct queue *q, struct qcfg *cfg,
    struct ev_loop **loop, const char *dir)
{
	memset(q, 0, sizeof(*q));
	assert_int_equal(ev_loop_new(loop), 0);
	assert_int_equal(queue_open(q, cfg, *loop, dir), 0);
}

static inline void qf_close(struct queue *q, struct ev_loop *loop)
{
	queue_stop(q);
	queue_close(q);
	ev_loop_free(loop);
}

/* A job of pool "p" with labels (a JSON array text), signed for an hour. */
static inline void qf_submit(struct queue *q, const char *jti,
    const char *labels)
{
	char *jws = qt_job(jti, "p", labels, 3600);
	struct apierr e;
	cJSON *st = NULL;

	if (jobs_submit(q, jws, strlen(jws), &st, &e) < 0)
		fail_msg("submit %s: %s", jti, e.msg);
	cJSON_Delete(st);
	free(jws);
}

/* An agent of pool "p", registered through a registration token. */
static inline struct qagent *qf_agent(struct queue *q, const char *labels,
    int cap)
{
	static int n;
	char tok[32], body[256];
	struct apierr e;
	cJSON *out;
	struct qagent *a;

	snprintf(tok, sizeof(tok), "srt_unit%d", ++n);
	assert_int_equal(agents_token_add(q, "p", tok, "unit"), 0);
	snprintf(body, sizeof(body), "{\"name\":\"a%d\",\"labels\":%s,"
	    "\"capacity\":%d}", n, labels, cap);
	if (agents_register(q, tok, strlen(tok), body, strlen(body), &out,
	    &e) < 0)
		fail_msg("register: %s", e.msg);
	const char *at = cJSON_GetStringValue(cJSON_GetObjectItem(out,
	    "agent_token"));
	assert_int_equal(agents_auth(q, at, strlen(at), &a, &e), 0);
	cJSON_Delete(out);
	return a;
}

#endif
