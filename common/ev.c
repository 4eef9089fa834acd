#include "ev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "xalloc.h"

struct ev_io {
	struct ev_loop *loop;
	int fd;
	unsigned events;
	ev_io_cb cb;
	void *arg;
	int dead;
	struct ev_io *next_dead;
};

struct ev_timer {
	struct ev_loop *loop;
	ev_timer_cb cb;
	void *arg;
	int64_t due;
	size_t heap_idx;	/* (size_t)-1 when not armed */
};

struct ev_loop {
	int epfd;
	int64_t now;
	int stop;
	struct ev_timer **heap;
	size_t nheap, capheap;
	struct ev_io *dead;	/* freed at the end of a round */
};

#define NOT_ARMED ((size_t)-1)

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ev_loop_new(struct ev_loop **out)
{
	struct ev_loop *l = xcalloc(1, sizeof(*l));

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int r = -errno;
		free(l);
		return r;
	}
	l->now = mono_ms();
	*out = l;
	return 0;
}

static void reap(struct ev_loop *l)
{
	while (l->dead) {
		struct ev_io *w = l->dead;
		l->dead = w->next_dead;
		free(w);
	}
}

void ev_loop_free(struct ev_loop *l)
{
	if (l == NULL)
		return;
	reap(l);
	for (size_t i = 0; i < l->nheap; i++)
		l->heap[i]->heap_idx = NOT_ARMED;
	free(l->heap);
	close(l->epfd);
	free(l);
}

int64_t ev_now(struct ev_loop *l)
{
	return l->now;
}

int64_t ev_now_update(struct ev_loop *l)
{
	return l->now = mono_ms();
}

static uint32_t to_epoll(unsigned ev)
{
	return (ev & EV_READ ? EPOLLIN : 0) | (ev & EV_WRITE ? EPOLLOUT : 0);
}

struct ev_io *ev_io_start(struct ev_loop *l, int fd, unsigned events,
    ev_io_cb cb, void *arg)
{
	struct ev_io *w = xcalloc(1, sizeof(*w));
	struct epoll_event e = { .events = to_epoll(events), .data.ptr = w };

	w->loop = l;
	w->fd = fd;
	w->events = events;
	w->cb = cb;
	w->arg = arg;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		free(w);
		return NULL;
	}
	return w;
}

int ev_io_set(struct ev_io *w, unsigned events)
{
	struct epoll_event e = { .events = to_epoll(events), .data.ptr = w };

	if (w->events == events)
		return 0;
	if (epoll_ctl(w->loop->epfd, EPOLL_CTL_MOD, w->fd, &e) < 0)
		return -errno;
	w->events = events;
	return 0;
}

void ev_io_stop(struct ev_io *w)
{
	if (w == NULL || w->dead)
		return;
	/* The fd may already be closed, in which case epoll dropped it. */
	epoll_ctl(w->loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->dead = 1;
	w->next_dead = w->loop->dead;
	w->loop->dead = w;
}

/* ---- timer heap ---- */

static void heap_swap(struct ev_loop *l, size_t a, size_t b)
{
	struct ev_timer *t = l->heap[a];
	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->heap_idx = a;
	l->heap[b]->heap_idx = b;
}

static void sift_up(struct ev_loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p]->due <= l->heap[i]->due)
			break;
		heap_swap(l, p, i);
		i = p;
	}
}

static void sift_down(struct ev_loop *l, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1, m = i;
		if (c < l->nheap && l->heap[c]->due < l->heap[m]->due)
			m = c;
		if (c + 1 < l->nheap && l->heap[c + 1]->due < l->heap[m]->due)
			m = c + 1;
		if (m == i)
			return;
		heap_swap(l, i, m);
		i = m;
	}
}

struct ev_timer *ev_timer_new(struct ev_loop *l, ev_timer_cb cb, void *arg)
{
	struct ev_timer *t = xcalloc(1, sizeof(*t));

	t->loop = l;
	t->cb = cb;
	t->arg = arg;
	t->heap_idx = NOT_ARMED;
	return t;
}

void ev_timer_stop(struct ev_timer *t)
{
	struct ev_loop *l;
	size_t i;

	if (t == NULL || t->heap_idx == NOT_ARMED)
		return;
	l = t->loop;
	i = t->heap_idx;
	t->heap_idx = NOT_ARMED;
	if (i != --l->nheap) {
		l->heap[i] = l->heap[l->nheap];
		l->heap[i]->heap_idx = i;
		sift_down(l, i);
		sift_up(l, i);
	}
}

void ev_timer_start(struct ev_timer *t, int64_t ms)
{
	struct ev_loop *l = t->loop;

	ev_timer_stop(t);
	t->due = ev_now_update(l) + (ms > 0 ? ms : 0);
	if (l->nheap == l->capheap) {
		l->capheap = l->capheap ? l->capheap * 2 : 16;
		l->heap = xreallocarray(l->heap, l->capheap, sizeof(*l->heap));
	}
	t->heap_idx = l->nheap;
	l->heap[l->nheap++] = t;
	sift_up(l, t->heap_idx);
}

int ev_timer_active(const struct ev_timer *t)
{
	return t && t->heap_idx != NOT_ARMED;
}

void ev_timer_free(struct ev_timer *t)
{
	if (t == NULL)
		return;
	ev_timer_stop(t);
	free(t);
}

/* ---- the loop ---- */

static void run_timers(struct ev_loop *l)
{
	/* Bounded so that a timer re-arming itself at 0 ms cannot starve
	 * the fds. */
	for (int n = 0; n < 1024 && l->nheap && l->heap[0]->due <= l->now; n++) {
		struct ev_timer *t = l->heap[0];
		ev_timer_stop(t);
		t->cb(t, t->arg);
	}
}

int ev_run_once(struct ev_loop *l, int max_ms)
{
	struct epoll_event evs[64];
	int timeout = max_ms;

	ev_now_update(l);
	run_timers(l);
	if (l->nheap) {
		int64_t d = l->heap[0]->due - l->now;
		if (d < 0)
			d = 0;
		if (timeout < 0 || d < timeout)
			timeout = d > 0x7fffffff ? 0x7fffffff : (int)d;
	}
	if (l->stop)
		timeout = 0;
	int n = epoll_wait(l->epfd, evs, 64, timeout);
	if (n < 0 && errno != EINTR)
		return -errno;
	ev_now_update(l);
	for (int i = 0; i < n; i++) {
		struct ev_io *w = evs[i].data.ptr;
		unsigned got = 0;
		if (w->dead)
			continue;
		if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			got |= EV_READ;
		if (evs[i].events & EPOLLOUT)
			got |= EV_WRITE;
		if (evs[i].events & (EPOLLHUP | EPOLLERR))
			got |= EV_ERROR;
		w->cb(w, w->fd, got, w->arg);
	}
	run_timers(l);
	reap(l);
	return 0;
}

int ev_run(struct ev_loop *l)
{
	int r = 0;

	l->stop = 0;
	while (!l->stop && (r = ev_run_once(l, -1)) == 0)
		;
	l->stop = 0;
	return r;
}

void ev_break(struct ev_loop *l)
{
	l->stop = 1;
}
