/*
 * A small pool of worker threads for work the event loop must not wait
 * for (inflating, writing and syncing log bytes). An item's work runs on
 * a worker; its done then runs back on the loop thread, in the order the
 * works finished, woken through an eventfd that is one watcher of the
 * loop. Items carry their own state: the pool only moves them.
 *
 * Work functions see nothing of the loop and touch only their item (and
 * what the loop promised not to touch while the item is out); done
 * functions may submit more items.
 */
#ifndef SKIFF_QUEUE_WORKQ_H
#define SKIFF_QUEUE_WORKQ_H

#include <stddef.h>

#include "buf.h"

struct ev_loop;
struct workq;

struct workq_item {
	/* On a worker thread. scratch is the worker's own buffer (capped
	 * at the pool's scratch_max), kept between items. */
	void (*work)(struct workq_item *it, struct buf *scratch);
	/* On the loop thread, once work has returned. */
	void (*done)(struct workq_item *it);
	struct workq_item *next;	/* the pool's */
};

/* nthreads workers (1 to 64), each with a scratch buffer of at most
 * scratch_max bytes. 0 or a negative errno. */
int workq_new(struct ev_loop *loop, int nthreads, size_t scratch_max,
    struct workq **out);
/* Hands it to a worker (FIFO). Loop thread only. */
void workq_submit(struct workq *wq, struct workq_item *it);
/* Items submitted whose done has not run yet. */
size_t workq_busy(const struct workq *wq);
/* Blocks until every item submitted so far (and those their dones
 * submit) has run, running the dones on the caller's thread: for
 * stopping, when the loop no longer runs. */
void workq_drain(struct workq *wq);
/* Drains, stops the workers and joins them. NULL is fine. */
void workq_free(struct workq *wq);

#endif
