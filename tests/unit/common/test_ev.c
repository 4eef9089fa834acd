/* The event loop: timer order, fd readiness, and watchers stopped or freed
 * from inside callbacks. Every loop here is bounded in rounds and time. */
#include "testkit.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "ev.h"

struct rec {
	int order[16];
	int n;
	int64_t at[16];
	struct ev_loop *loop;
	struct ev_timer *other;
	struct ev_io *io_other;
	struct ev_io *io_self;
	int fd;
	unsigned events;
	int calls;
};

static struct ev_loop *new_loop(void)
{
	struct ev_loop *l = NULL;

	assert_int_equal(ev_loop_new(&l), 0);
	assert_non_null(l);
	return l;
}

/* Runs rounds until cond holds or about two seconds pass. */
#define RUN_UNTIL(loop, cond) do {					\
	int64_t start_ = ev_now_update(loop);				\
	while (!(cond) && ev_now_update(loop) - start_ < 2000)		\
		assert_int_equal(ev_run_once((loop), 50), 0);		\
} while (0)

struct tagged {
	struct rec *r;
	int tag;
};

static void record_cb(struct ev_timer *t, void *arg)
{
	struct tagged *tg = arg;

	(void)t;
	tg->r->at[tg->r->n] = ev_now(tg->r->loop);
	tg->r->order[tg->r->n++] = tg->tag;
}

static void test_timers_fire_in_due_order(void **state)
{
	struct rec r = { .n = 0 };
	static const int ms[] = { 30, 10, 0, 20, 45 };
	struct tagged tg[5];
	struct ev_timer *t[5];

	(void)state;
	r.loop = new_loop();
	int64_t start = ev_now_update(r.loop);
	for (int i = 0; i < 5; i++) {
		tg[i].r = &r;
		tg[i].tag = ms[i];
		t[i] = ev_timer_new(r.loop, record_cb, &tg[i]);
		ev_timer_start(t[i], ms[i]);
		assert_true(ev_timer_active(t[i]));
	}
	RUN_UNTIL(r.loop, r.n == 5);
	assert_int_equal(r.n, 5);
	static const int want[] = { 0, 10, 20, 30, 45 };
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r.order[i], want[i]);
		/* Never early. */
		assert_true(r.at[i] - start >= want[i]);
		assert_false(ev_timer_active(t[i]));
	}
	for (int i = 0; i < 5; i++)
		ev_timer_free(t[i]);
	ev_loop_free(r.loop);
}

struct order_check {
	struct ev_loop *loop;
	int64_t last_tag;
	int fired;
	int bad;
};

struct order_item {
	struct order_check *c;
	int64_t tag;
};

static void order_cb(struct ev_timer *t, void *arg)
{
	struct order_item *it = arg;

	(void)t;
	if (it->tag < it->c->last_tag)
		it->c->bad++;
	it->c->last_tag = it->tag;
	it->c->fired++;
}

static void test_timer_heap_order(void **state)
{
	enum { N = 300 };
	struct order_check c = { .last_tag = -1 };
	struct order_item items[N];
	struct ev_timer *t[N];
	int armed = 0;

	(void)state;
	c.loop = new_loop();
	for (int i = 0; i < N; i++) {
		items[i].c = &c;
		items[i].tag = (i * 7919) % N;	/* a permutation */
		t[i] = ev_timer_new(c.loop, order_cb, &items[i]);
		ev_timer_start(t[i], 100000);
	}
	/* Stop every third; re-arm the rest at 0..N/5 ms, in scrambled
	 * order, so several share a millisecond. The tag becomes the due
	 * time: ev_timer_start counts from the loop time it refreshed. */
	for (int i = 0; i < N; i++) {
		if (i % 3 == 0) {
			ev_timer_stop(t[i]);
			continue;
		}
		armed++;
		ev_timer_start(t[i], items[i].tag / 5);
		items[i].tag = ev_now(c.loop) + items[i].tag / 5;
	}
	RUN_UNTIL(c.loop, c.fired == armed);
	assert_int_equal(c.fired, armed);
	assert_int_equal(c.bad, 0);
	for (int i = 0; i < N; i++)
		ev_timer_free(t[i]);
	ev_loop_free(c.loop);
}

static void count_cb(struct ev_timer *t, void *arg)
{
	(void)t;
	(*(int *)arg)++;
}

static void test_timer_restart_and_stop(void **state)
{
	struct ev_loop *l = new_loop();
	int n = 0, m = 0;
	struct ev_timer *t = ev_timer_new(l, count_cb, &n);
	struct ev_timer *u = ev_timer_new(l, count_cb, &m);

	(void)state;
	int64_t start = ev_now_update(l);
	ev_timer_start(t, 10);
	ev_timer_start(t, 60);		/* re-arming replaces, not adds */
	ev_timer_start(u, 5);
	ev_timer_stop(u);
	ev_timer_stop(u);		/* twice is fine */
	assert_false(ev_timer_active(u));
	RUN_UNTIL(l, n > 0);
	assert_int_equal(n, 1);
	assert_true(ev_now(l) - start >= 60);
	/* Nothing else comes. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(ev_run_once(l, 30), 0);
	assert_int_equal(n, 1);
	assert_int_equal(m, 0);
	ev_timer_free(t);
	ev_timer_free(u);
	ev_timer_free(NULL);
	ev_timer_stop(NULL);
	assert_false(ev_timer_active(NULL));
	ev_loop_free(l);
}

/* A stops B, which is due in the same round: B does not run. A frees C,
 * also due: no use after free (ASan would say). */
struct stopper {
	struct ev_timer *victim_stop;
	struct ev_timer **victim_free;
	int calls;
};

static void stopper_cb(struct ev_timer *t, void *arg)
{
	struct stopper *s = arg;

	(void)t;
	s->calls++;
	ev_timer_stop(s->victim_stop);
	ev_timer_free(*s->victim_free);
	*s->victim_free = NULL;
}

static void test_timer_stop_others_in_callback(void **state)
{
	struct ev_loop *l = new_loop();
	int nb = 0, nc = 0;
	struct ev_timer *b = ev_timer_new(l, count_cb, &nb);
	struct ev_timer *c = ev_timer_new(l, count_cb, &nc);
	struct stopper s = { b, &c, 0 };
	struct ev_timer *a = ev_timer_new(l, stopper_cb, &s);

	(void)state;
	ev_timer_start(a, 1);
	ev_timer_start(b, 2);
	ev_timer_start(c, 3);
	usleep(20000);			/* all three due in the next round */
	assert_int_equal(ev_run_once(l, 0), 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(nb, 0);
	assert_int_equal(nc, 0);
	assert_false(ev_timer_active(b));
	assert_null(c);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ev_run_once(l, 10), 0);
	assert_int_equal(nb, 0);
	ev_timer_free(a);
	ev_timer_free(b);
	ev_loop_free(l);
}

static void free_self_cb(struct ev_timer *t, void *arg)
{
	(*(int *)arg)++;
	ev_timer_free(t);
}

static void rearm_cb(struct ev_timer *t, void *arg)
{
	int *n = arg;

	if (++*n < 5)
		ev_timer_start(t, 1);
}

static void test_timer_free_or_rearm_self(void **state)
{
	struct ev_loop *l = new_loop();
	int freed = 0, rearmed = 0;
	struct ev_timer *t = ev_timer_new(l, free_self_cb, &freed);
	struct ev_timer *r = ev_timer_new(l, rearm_cb, &rearmed);

	(void)state;
	ev_timer_start(t, 0);
	ev_timer_start(r, 0);
	RUN_UNTIL(l, freed == 1 && rearmed == 5);
	assert_int_equal(freed, 1);
	assert_int_equal(rearmed, 5);
	assert_false(ev_timer_active(r));
	ev_timer_free(r);
	ev_loop_free(l);
}

/* A timer that re-arms itself at 0 ms cannot starve the fds. */
static void spin_cb(struct ev_timer *t, void *arg)
{
	(*(int *)arg)++;
	ev_timer_start(t, 0);
}

static void io_count_cb(struct ev_io *w, int fd, unsigned events, void *arg)
{
	struct rec *r = arg;
	char c;

	(void)w;
	r->calls++;
	r->events = events;
	r->fd = fd;
	if (events & EV_READ)
		(void)!read(fd, &c, 1);
}

static void test_spinning_timer_does_not_starve_io(void **state)
{
	struct ev_loop *l = new_loop();
	int spins = 0;
	struct rec r = { .calls = 0 };
	int p[2];
	struct ev_timer *t = ev_timer_new(l, spin_cb, &spins);

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	struct ev_io *w = ev_io_start(l, p[0], EV_READ, io_count_cb, &r);
	assert_non_null(w);
	assert_int_equal(write(p[1], "x", 1), 1);
	ev_timer_start(t, 0);
	assert_int_equal(ev_run_once(l, 1000), 0);
	assert_true(spins > 0);
	assert_true(spins <= 2048);
	assert_int_equal(r.calls, 1);
	ev_timer_free(t);
	ev_io_stop(w);
	ev_loop_free(l);
	close(p[0]);
	close(p[1]);
}

static void test_io_read_write(void **state)
{
	struct ev_loop *l = new_loop();
	struct rec rr = { .calls = 0 }, wr = { .calls = 0 };
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	struct ev_io *rw = ev_io_start(l, p[0], EV_READ, io_count_cb, &rr);
	assert_non_null(rw);
	/* Nothing to read yet. */
	assert_int_equal(ev_run_once(l, 20), 0);
	assert_int_equal(rr.calls, 0);
	assert_int_equal(write(p[1], "a", 1), 1);
	RUN_UNTIL(l, rr.calls == 1);
	assert_int_equal(rr.calls, 1);
	assert_int_equal(rr.fd, p[0]);
	assert_true(rr.events & EV_READ);
	assert_false(rr.events & EV_ERROR);
	/* The write end is writable at once. */
	struct ev_io *ww = ev_io_start(l, p[1], EV_WRITE, io_count_cb, &wr);
	assert_non_null(ww);
	RUN_UNTIL(l, wr.calls > 0);
	assert_true(wr.events & EV_WRITE);
	/* Interest changed to read: the write end never becomes readable. */
	assert_int_equal(ev_io_set(ww, EV_READ), 0);
	assert_int_equal(ev_io_set(ww, EV_READ), 0);
	int before = wr.calls;
	assert_int_equal(ev_run_once(l, 20), 0);
	assert_int_equal(wr.calls, before);
	/* The peer goes away: read end sees READ and ERROR (hang-up). */
	ev_io_stop(ww);
	close(p[1]);
	RUN_UNTIL(l, rr.calls == 2);
	assert_int_equal(rr.calls, 2);
	assert_true(rr.events & EV_READ);
	assert_true(rr.events & EV_ERROR);
	ev_io_stop(rw);
	ev_io_stop(NULL);
	close(p[0]);
	ev_loop_free(l);
}

/* Both fds ready in one round; whichever callback runs first stops both
 * watchers: the other callback must not run (its events are pending). */
static void stop_both_cb(struct ev_io *w, int fd, unsigned events, void *arg)
{
	struct rec *r = arg;

	(void)w;
	(void)fd;
	(void)events;
	r->calls++;
	ev_io_stop(r->io_self);
	ev_io_stop(r->io_other);
	ev_io_stop(r->io_self);		/* twice is fine */
}

static void test_io_stop_inside_callback(void **state)
{
	struct ev_loop *l = new_loop();
	int p[2], q[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(pipe2(q, O_CLOEXEC), 0);
	assert_int_equal(write(p[1], "a", 1), 1);
	assert_int_equal(write(q[1], "b", 1), 1);
	struct rec a = { .calls = 0 }, b = { .calls = 0 };
	struct ev_io *wa = ev_io_start(l, p[0], EV_READ, stop_both_cb, &a);
	struct ev_io *wb = ev_io_start(l, q[0], EV_READ, stop_both_cb, &b);
	a.io_self = wa;
	a.io_other = wb;
	b.io_self = wb;
	b.io_other = wa;
	assert_int_equal(ev_run_once(l, 1000), 0);
	assert_int_equal(a.calls + b.calls, 1);
	/* Stopped watchers stay quiet though their fds are still ready. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(ev_run_once(l, 10), 0);
	assert_int_equal(a.calls + b.calls, 1);
	close(p[0]); close(p[1]); close(q[0]); close(q[1]);
	ev_loop_free(l);
}

/* A callback that stops its own watcher and closes the fd, as a client
 * connection does on EOF. */
static void close_self_cb(struct ev_io *w, int fd, unsigned events, void *arg)
{
	struct rec *r = arg;

	(void)events;
	r->calls++;
	ev_io_stop(w);
	close(fd);
}

static void test_io_stop_and_close_self(void **state)
{
	struct ev_loop *l = new_loop();
	struct rec r = { .calls = 0 };
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_non_null(ev_io_start(l, p[0], EV_READ, close_self_cb, &r));
	close(p[1]);
	RUN_UNTIL(l, r.calls == 1);
	assert_int_equal(r.calls, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ev_run_once(l, 10), 0);
	assert_int_equal(r.calls, 1);
	ev_loop_free(l);
}

static void break_cb(struct ev_timer *t, void *arg)
{
	struct rec *r = arg;

	(void)t;
	r->calls++;
	ev_break(r->loop);
}

static void test_break(void **state)
{
	struct rec r = { .calls = 0 };
	int n = 0;

	(void)state;
	r.loop = new_loop();
	struct ev_timer *t = ev_timer_new(r.loop, break_cb, &r);
	struct ev_timer *later = ev_timer_new(r.loop, count_cb, &n);
	ev_timer_start(t, 10);
	ev_timer_start(later, 5000);
	int64_t start = ev_now_update(r.loop);
	assert_int_equal(ev_run(r.loop), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(n, 0);
	assert_true(ev_now_update(r.loop) - start < 4000);
	/* ev_run again runs until the next break. */
	ev_timer_start(t, 5);
	assert_int_equal(ev_run(r.loop), 0);
	assert_int_equal(r.calls, 2);
	ev_timer_free(t);
	ev_timer_free(later);
	ev_loop_free(r.loop);
}

static void test_run_once_waits(void **state)
{
	struct ev_loop *l = new_loop();
	int64_t t0 = ev_now_update(l);

	(void)state;
	assert_int_equal(ev_run_once(l, 30), 0);
	int64_t dt = ev_now_update(l) - t0;
	assert_true(dt >= 25);
	assert_true(dt < 2000);
	assert_true(ev_now(l) >= t0);
	ev_loop_free(l);
	ev_loop_free(NULL);
}

static void test_io_start_bad_fd(void **state)
{
	struct ev_loop *l = new_loop();
	struct rec r = { .calls = 0 };

	(void)state;
	assert_null(ev_io_start(l, -1, EV_READ, io_count_cb, &r));
	assert_null(ev_io_start(l, 9999, EV_READ, io_count_cb, &r));
	ev_loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_fire_in_due_order),
		cmocka_unit_test(test_timer_heap_order),
		cmocka_unit_test(test_timer_restart_and_stop),
		cmocka_unit_test(test_timer_stop_others_in_callback),
		cmocka_unit_test(test_timer_free_or_rearm_self),
		cmocka_unit_test(test_spinning_timer_does_not_starve_io),
		cmocka_unit_test(test_io_read_write),
		cmocka_unit_test(test_io_stop_inside_callback),
		cmocka_unit_test(test_io_stop_and_close_self),
		cmocka_unit_test(test_break),
		cmocka_unit_test(test_run_once_waits),
		cmocka_unit_test(test_io_start_bad_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
