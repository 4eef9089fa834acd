/*
 * A small single-threaded event loop on epoll: fd watchers and timers (a
 * binary heap, so that ten thousand long-poll deadlines cost log n each).
 * The agent runs libcurl's multi interface on it through curl's socket
 * callbacks; the queue runs libmicrohttpd's epoll fd on it. The loop sleeps
 * in epoll_wait until an fd is ready or the nearest timer is due: nothing
 * in skiff polls on a fixed interval.
 *
 * Watchers and timers may be stopped or freed from inside any callback,
 * also ones whose events are pending in the same round.
 */
#ifndef SKIFF_EV_H
#define SKIFF_EV_H

#include <stdint.h>

#define EV_READ  0x1u
#define EV_WRITE 0x4u
#define EV_ERROR 0x8u	/* EPOLLERR or EPOLLHUP; also reported as READ */

struct ev_loop;
struct ev_io;
struct ev_timer;

typedef void (*ev_io_cb)(struct ev_io *w, int fd, unsigned events, void *arg);
typedef void (*ev_timer_cb)(struct ev_timer *t, void *arg);

int ev_loop_new(struct ev_loop **out);
void ev_loop_free(struct ev_loop *loop);
/* Monotonic milliseconds, refreshed each round (and by ev_now_update). */
int64_t ev_now(struct ev_loop *loop);
int64_t ev_now_update(struct ev_loop *loop);

struct ev_io *ev_io_start(struct ev_loop *loop, int fd, unsigned events,
    ev_io_cb cb, void *arg);
int ev_io_set(struct ev_io *w, unsigned events);
/* Stops watching and frees w (the fd is not closed). NULL is fine. */
void ev_io_stop(struct ev_io *w);

struct ev_timer *ev_timer_new(struct ev_loop *loop, ev_timer_cb cb, void *arg);
/* (Re)arms t to fire once, ms from now. */
void ev_timer_start(struct ev_timer *t, int64_t ms);
void ev_timer_stop(struct ev_timer *t);
int ev_timer_active(const struct ev_timer *t);
void ev_timer_free(struct ev_timer *t);

/* One round: waits at most max_ms (-1: until something happens). */
int ev_run_once(struct ev_loop *loop, int max_ms);
/* Rounds until ev_break. */
int ev_run(struct ev_loop *loop);
void ev_break(struct ev_loop *loop);

#endif
