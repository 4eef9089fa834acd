/*
 * The queue's URLs (SKIFF_QUEUE_URL, one or several replicas of one
 * queue) and which of them the agent uses now. Sticky: every request goes
 * to the current URL, and a success keeps it there, so that a long-poll
 * and what follows it stay on one replica. A request that got no HTTP
 * answer (connection refused or reset, TLS failure, timeout) or a 5xx
 * moves the agent to the next URL, round robin; a 4xx never does, since
 * any replica would say the same (docs/agent.md, "Several queue URLs").
 *
 * Requests in flight to a replica that dies fail together. Each request
 * carries the generation of the URL it was sent to (qurls_current); only
 * a failure of the current generation moves, so the first failure moves
 * the agent one URL on and the others, finding it moved, do nothing.
 *
 * Implemented in net.c (the network half's one place for URLs).
 */
#ifndef SKIFF_AGENT_QURLS_H
#define SKIFF_AGENT_QURLS_H

#include <stddef.h>
#include <stdint.h>

struct qurls {
	char *const *v;		/* borrowed: the configuration's list */
	size_t n;
	size_t cur;		/* index into v */
	uint64_t gen;		/* moves so far */
};

void qurls_init(struct qurls *q, char *const *v, size_t n);
/* The URL requests go to now; *gen (if not NULL) its generation. */
const char *qurls_current(const struct qurls *q, uint64_t *gen);
/* 1 when an answer with status (0: no HTTP answer) is a reason to try
 * another replica: 0 or 5xx. */
int qurls_moves_on(long status);
/*
 * A request sent at generation gen failed with status. Moves to the next
 * URL when qurls_moves_on(status), there is more than one URL, and gen is
 * still the current generation. Returns 1 when it moved.
 */
int qurls_failed(struct qurls *q, uint64_t gen, long status);
/* How two lists of URLs (as config_parse_queue_urls keeps them) relate,
 * ignoring order and case: QURLS_SAME, QURLS_OVERLAP (at least one in
 * common) or QURLS_DISJOINT. */
#define QURLS_SAME	0
#define QURLS_OVERLAP	1
#define QURLS_DISJOINT	2
int qurls_compare(char *const *a, size_t na, char *const *b, size_t nb);

#endif
