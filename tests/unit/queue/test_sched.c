/*
 * The queue's core without HTTP: a real store in a temporary directory
 * and the event loop, driven through the same calls the endpoints make.
 * FIFO, labels, capacity, held requests woken by a submit, the ack window,
 * the TTL and the attempt limit, exclusion of earlier holders, and what a
 * restart brings back.
 */
#include "qfix.h"

#include <errno.h>
#include <cjson/cJSON.h>

#include "apierr.h"
#include "config.h"
#include "ev.h"
#include "queue.h"
#include "reqjson.h"
#include "log.h"

struct fixture {
	char dir[PATH_MAX];
	struct qcfg cfg;
	struct ev_loop *loop;
	struct queue q;
};

static void open_queue(struct fixture *f)
{
	qf_open(&f->q, &f->cfg, &f->loop, f->dir);
}

static void close_queue(struct fixture *f)
{
	qf_close(&f->q, f->loop);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	if (sodium_init() < 0)
		return -1;
	log_setup("test_sched", LOGL_ERROR, LOGF_LOGFMT);
	qt_tmpdir(f->dir);
	cfg_defaults(&f->cfg);
	f->cfg.heartbeat_interval = 1;
	f->cfg.ack_window = 1;
	f->cfg.lease_ttl = 1;
	f->cfg.max_attempts = 2;
	f->cfg.sync_full = 0;
	open_queue(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close_queue(f);
	qt_rmdir(f->dir);
	free(f);
	return 0;
}

/* A lease request answered at once: the job id, or "" for 204. */
static const char *lease_now(struct fixture *f, struct qagent *a,
    struct qlease **out)
{
	struct qwaiter w;
	struct qlease *l = NULL;
	struct apierr e;

	memset(&w, 0, sizeof(w));
	assert_int_equal(lease_request(&f->q, a, 0, &w, &l, &e), 0);
	if (out)
		*out = l;
	return l ? l->job->id : "";
}

static const char *state_of(struct fixture *f, const char *id)
{
	static char s[32];
	struct apierr e;
	cJSON *st;

	assert_int_equal(jobs_status(&f->q, id, &st, &e), 0);
	snprintf(s, sizeof(s), "%s", cJSON_GetStringValue(
	    cJSON_GetObjectItem(st, "state")));
	cJSON_Delete(st);
	return s;
}

static void run_for(struct fixture *f, int64_t ms)
{
	int64_t end = ev_now_update(f->loop) + ms;

	while (ev_now_update(f->loop) < end)
		ev_run_once(f->loop, (int)(end - ev_now(f->loop)));
}

static void test_fifo_labels_capacity(void **state)
{
	struct fixture *f = *state;
	struct qagent *plain = qf_agent(&f->q, "[]", 5), *gpu = qf_agent(&f->q, "[\"gpu\"]", 1);

	qf_submit(&f->q, "job-aaaa1", "[\"gpu\"]");
	qf_submit(&f->q, "job-aaaa2", "[]");
	qf_submit(&f->q, "job-aaaa3", "[]");
	/* plain cannot take the gpu job: it gets the next ones in order. */
	assert_string_equal(lease_now(f, plain, NULL), "job-aaaa2");
	assert_string_equal(lease_now(f, plain, NULL), "job-aaaa3");
	assert_string_equal(lease_now(f, plain, NULL), "");
	assert_string_equal(lease_now(f, gpu, NULL), "job-aaaa1");
	/* gpu has capacity 1 and holds a lease. */
	qf_submit(&f->q, "job-aaaa4", "[]");
	assert_string_equal(lease_now(f, gpu, NULL), "");
	assert_string_equal(state_of(f, "job-aaaa4"), "queued");
}

struct woken {
	int n;
	int status;
	char job[ID_MAX + 1];
};

static void on_wake(struct qwaiter *w)
{
	struct woken *k = w->arg;

	k->n++;
	k->status = w->status;
	if (w->lease)
		snprintf(k->job, sizeof(k->job), "%s", w->lease->job->id);
}

static void test_held_request_woken_by_submit(void **state)
{
	struct fixture *f = *state;
	struct qagent *a = qf_agent(&f->q, "[\"docker\"]", 1);
	struct qwaiter w;
	struct woken k = { 0 };
	struct qlease *l = NULL;
	struct apierr e;

	memset(&w, 0, sizeof(w));
	w.wake = on_wake;
	w.arg = &k;
	assert_int_equal(lease_request(&f->q, a, 30, &w, &l, &e), 1);
	assert_int_equal(a->pool->nwaiters, 1);
	/* A job the agent cannot take leaves it waiting. */
	qf_submit(&f->q, "job-bbbb1", "[\"gpu\"]");
	assert_int_equal(k.n, 0);
	qf_submit(&f->q, "job-bbbb2", "[\"docker\"]");
	assert_int_equal(k.n, 1);
	assert_int_equal(k.status, 1);
	assert_string_equal(k.job, "job-bbbb2");
	assert_int_equal(a->pool->nwaiters, 0);
	assert_string_equal(state_of(f, "job-bbbb2"), "leased");
}

static void test_held_request_times_out(void **state)
{
	struct fixture *f = *state;
	struct qagent *a = qf_agent(&f->q, "[]", 1);
	struct qwaiter w;
	struct woken k = { 0 };
	struct qlease *l = NULL;
	struct apierr e;

	f->cfg.max_lease_wait = 1;
	memset(&w, 0, sizeof(w));
	w.wake = on_wake;
	w.arg = &k;
	assert_int_equal(lease_request(&f->q, a, 30, &w, &l, &e), 1);
	run_for(f, 1200);
	assert_int_equal(k.n, 1);
	assert_int_equal(k.status, 0);
}

static void test_ack_window_then_ttl_then_lost(void **state)
{
	struct fixture *f = *state;
	struct qagent *a1 = qf_agent(&f->q, "[]", 1), *a2 = qf_agent(&f->q, "[]", 1);
	struct qlease *l;
	struct apierr e;
	cJSON *hb;

	qf_submit(&f->q, "job-cccc1", "[]");
	assert_string_equal(lease_now(f, a1, &l), "job-cccc1");
	/* Not acknowledged: back after the ack window, same attempt. */
	run_for(f, 1300);
	assert_string_equal(state_of(f, "job-cccc1"), "queued");
	assert_string_equal(lease_now(f, a1, &l), "job-cccc1");
	assert_int_equal(l->attempt, 1);
	assert_int_equal(lease_heartbeat(&f->q, a1, l->id, &hb, &e), 0);
	cJSON_Delete(hb);
	assert_string_equal(state_of(f, "job-cccc1"), "running");
	/* Acknowledged and silent: the TTL counts an attempt; a1 is never
	 * offered the job again. */
	run_for(f, 1300);
	assert_string_equal(state_of(f, "job-cccc1"), "queued");
	assert_string_equal(lease_now(f, a1, NULL), "");
	assert_string_equal(lease_now(f, a2, &l), "job-cccc1");
	assert_int_equal(l->attempt, 2);
	assert_int_equal(lease_heartbeat(&f->q, a2, l->id, &hb, &e), 0);
	cJSON_Delete(hb);
	run_for(f, 1300);
	assert_string_equal(state_of(f, "job-cccc1"), "lost");
}

static void test_complete_and_restart(void **state)
{
	struct fixture *f = *state;
	struct qagent *a = qf_agent(&f->q, "[]", 2);
	struct reqj_complete c;
	struct qlease *l;
	struct apierr e;
	cJSON *out;
	char agent_id[ID_MAX + 1], lease_id[ID_MAX + 1];

	qf_submit(&f->q, "job-dddd1", "[]");
	qf_submit(&f->q, "job-dddd2", "[]");
	qf_submit(&f->q, "job-dddd3", "[]");
	assert_string_equal(lease_now(f, a, &l), "job-dddd1");
	memset(&c, 0, sizeof(c));
	c.result = JS_SUCCEEDED;
	assert_int_equal(lease_complete(&f->q, a, l->id, &c, &out, &e), 0);
	cJSON_Delete(out);
	assert_string_equal(lease_now(f, a, &l), "job-dddd2");
	snprintf(agent_id, sizeof(agent_id), "%s", a->id);
	snprintf(lease_id, sizeof(lease_id), "%s", l->id);
	/* A restart brings back the result, the lease and the queue. */
	close_queue(f);
	f->cfg.ack_window = 60;
	open_queue(f);
	assert_string_equal(state_of(f, "job-dddd1"), "succeeded");
	assert_string_equal(state_of(f, "job-dddd2"), "leased");
	assert_string_equal(state_of(f, "job-dddd3"), "queued");
	assert_non_null(lease_find(&f->q, lease_id));
	assert_string_equal(lease_find(&f->q, lease_id)->agent->id, agent_id);
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	struct qagent *a = qf_agent(&f->q, "[]", 1);
	struct qlease *l;
	struct apierr e;
	cJSON *st, *hb;

	qf_submit(&f->q, "job-eeee1", "[]");
	qf_submit(&f->q, "job-eeee2", "[]");
	assert_int_equal(jobs_cancel(&f->q, "job-eeee2", "no", &st, &e), 0);
	cJSON_Delete(st);
	assert_string_equal(state_of(f, "job-eeee2"), "canceled");
	assert_string_equal(lease_now(f, a, &l), "job-eeee1");
	assert_int_equal(jobs_cancel(&f->q, "job-eeee1", "stop", &st, &e), 0);
	cJSON_Delete(st);
	assert_int_equal(lease_heartbeat(&f->q, a, l->id, &hb, &e), 0);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(hb, "cancel")));
	cJSON_Delete(hb);
	/* An agent that never completes: the job ends canceled, not requeued. */
	run_for(f, 1300);
	assert_string_equal(state_of(f, "job-eeee1"), "canceled");
	assert_int_equal(jobs_cancel(&f->q, "job-eeee1", "", &st, &e), -1);
	assert_int_equal(e.status, 409);
	assert_int_equal(jobs_cancel(&f->q, "nojob123", "", &st, &e), -1);
	assert_int_equal(e.status, 404);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fifo_labels_capacity, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_held_request_woken_by_submit,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_request_times_out, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ack_window_then_ttl_then_lost,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_complete_and_restart, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
