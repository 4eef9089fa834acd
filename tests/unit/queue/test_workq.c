/* The worker pool: works on workers, dones on the loop thread in the
 * order the works finished, scratch buffers, chains, draining, stop. */
#include "qtest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "ev.h"
#include "workq.h"

struct item {
	struct workq_item wi;
	pthread_t worker;
	int worked, done;
	int scratch_rc;
	int *order;			/* where the done writes its index */
	int *next_slot;
	int index;
	struct workq *chain;		/* done submits the next, if set */
	int chain_left;
	struct item *chain_next;
	pthread_mutex_t *gate;		/* work waits here, if set */
};

static pthread_t loop_thread;
static atomic_int in_work;

static void work(struct workq_item *wi, struct buf *scratch)
{
	struct item *it = (struct item *)(void *)wi;
	char big[4096];

	atomic_fetch_add(&in_work, 1);
	if (it->gate) {
		pthread_mutex_lock(it->gate);
		pthread_mutex_unlock(it->gate);
	}
	it->worker = pthread_self();
	memset(big, 'x', sizeof(big));
	buf_reset(scratch);
	it->scratch_rc = buf_append(scratch, big, sizeof(big));
	it->worked++;
	atomic_fetch_sub(&in_work, 1);
}

static void done(struct workq_item *wi)
{
	struct item *it = (struct item *)(void *)wi;

	/* On the loop thread, after its work, exactly once. */
	assert_true(pthread_equal(pthread_self(), loop_thread));
	assert_int_equal(it->worked, 1);
	it->done++;
	if (it->order)
		it->order[(*it->next_slot)++] = it->index;
	if (it->chain && it->chain_next)
		workq_submit(it->chain, &it->chain_next->wi);
}

static void init(struct item *it, int index)
{
	memset(it, 0, sizeof(*it));
	it->wi.work = work;
	it->wi.done = done;
	it->index = index;
}

/* Runs the loop until want dones ran, at most a few seconds. */
static void run_until(struct ev_loop *loop, const struct item *v, int n,
    int want)
{
	for (int round = 0; round < 500; round++) {
		int got = 0;
		for (int i = 0; i < n; i++)
			got += v[i].done;
		if (got >= want)
			return;
		assert_int_equal(ev_run_once(loop, 10), 0);
	}
	fail_msg("the dones did not all run");
}

static void test_work_then_done(void **state)
{
	enum { N = 200 };
	static struct item v[N];
	struct ev_loop *loop;
	struct workq *wq;

	(void)state;
	loop_thread = pthread_self();
	assert_int_equal(ev_loop_new(&loop), 0);
	assert_int_equal(workq_new(loop, 3, 1024, &wq), 0);
	for (int i = 0; i < N; i++) {
		init(&v[i], i);
		workq_submit(wq, &v[i].wi);
	}
	assert_int_equal(workq_busy(wq), N);
	/* No done runs before the loop does. */
	for (int i = 0; i < N; i++)
		assert_int_equal(v[i].done, 0);
	run_until(loop, v, N, N);
	assert_int_equal(workq_busy(wq), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(v[i].done, 1);
		assert_false(pthread_equal(v[i].worker, loop_thread));
		/* The scratch buffer is capped where the pool said. */
		assert_int_equal(v[i].scratch_rc, -E2BIG);
	}
	workq_free(wq);
	ev_loop_free(loop);
}

static void test_one_worker_keeps_order(void **state)
{
	enum { N = 50 };
	static struct item v[N];
	int order[N], slot = 0;
	struct ev_loop *loop;
	struct workq *wq;

	(void)state;
	loop_thread = pthread_self();
	assert_int_equal(ev_loop_new(&loop), 0);
	assert_int_equal(workq_new(loop, 1, 8192, &wq), 0);
	for (int i = 0; i < N; i++) {
		init(&v[i], i);
		v[i].order = order;
		v[i].next_slot = &slot;
		workq_submit(wq, &v[i].wi);
	}
	run_until(loop, v, N, N);
	assert_int_equal(slot, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(order[i], i);
		assert_int_equal(v[i].scratch_rc, 0);
	}
	workq_free(wq);
	ev_loop_free(loop);
}

/* A done that submits the next item: drain follows the chain to its end
 * without the loop running. */
static void test_drain_follows_chains(void **state)
{
	enum { N = 40 };
	static struct item v[N];
	struct ev_loop *loop;
	struct workq *wq;

	(void)state;
	loop_thread = pthread_self();
	assert_int_equal(ev_loop_new(&loop), 0);
	assert_int_equal(workq_new(loop, 2, 0, &wq), 0);
	for (int i = 0; i < N; i++) {
		init(&v[i], i);
		v[i].chain = wq;
		v[i].chain_next = i + 1 < N ? &v[i + 1] : NULL;
	}
	workq_submit(wq, &v[0].wi);
	workq_drain(wq);
	assert_int_equal(workq_busy(wq), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(v[i].done, 1);
	workq_free(wq);
	ev_loop_free(loop);
}

/* Freeing with items out waits for them: every work and done runs, the
 * threads are joined (no leak under ASan). */
static void test_free_finishes_what_is_out(void **state)
{
	enum { N = 30 };
	static struct item v[N];
	pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
	struct ev_loop *loop;
	struct workq *wq;

	(void)state;
	loop_thread = pthread_self();
	assert_int_equal(ev_loop_new(&loop), 0);
	assert_int_equal(workq_new(loop, 4, 0, &wq), 0);
	pthread_mutex_lock(&gate);
	for (int i = 0; i < N; i++) {
		init(&v[i], i);
		v[i].gate = &gate;
		workq_submit(wq, &v[i].wi);
	}
	/* The works are held at the gate: the loop has nothing to run. */
	assert_int_equal(ev_run_once(loop, 20), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(v[i].done, 0);
	pthread_mutex_unlock(&gate);
	workq_free(wq);
	for (int i = 0; i < N; i++)
		assert_int_equal(v[i].done, 1);
	assert_int_equal(atomic_load(&in_work), 0);
	ev_loop_free(loop);
	workq_free(NULL);
}

static void test_bad_sizes(void **state)
{
	struct ev_loop *loop;
	struct workq *wq = NULL;

	(void)state;
	assert_int_equal(ev_loop_new(&loop), 0);
	assert_int_equal(workq_new(loop, 0, 0, &wq), -EINVAL);
	assert_int_equal(workq_new(loop, 65, 0, &wq), -EINVAL);
	assert_null(wq);
	ev_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_work_then_done),
		cmocka_unit_test(test_one_worker_keeps_order),
		cmocka_unit_test(test_drain_follows_chains),
		cmocka_unit_test(test_free_finishes_what_is_out),
		cmocka_unit_test(test_bad_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
