/*
 * Retention on the queue's core without HTTP: a real store and real files
 * in a temporary directory, driven through the calls the endpoints make,
 * and retain_round called with the time it is asked to act at. Which jobs
 * are due (ended, old enough, exp passed) and which never are (queued,
 * running), the batch and file budgets, the bytes counted, directories
 * left by a crash, and a restart after a deletion.
 */
#include "qfix.h"

#include <errno.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>

#include "apierr.h"
#include "config.h"
#include "ev.h"
#include "hmap.h"
#include "queue.h"
#include "reqjson.h"
#include "log.h"

#define RETAIN 60
/* Far enough ahead that jobs ended now, signed for an hour, are due. */
#define LATER (2 * 3600)

struct fixture {
	char dir[PATH_MAX];
	struct qcfg cfg;
	struct ev_loop *loop;
	struct queue q;
	struct qagent *a;
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
	log_setup("test_retain", LOGL_ERROR, LOGF_LOGFMT);
	qt_tmpdir(f->dir);
	cfg_defaults(&f->cfg);
	f->cfg.sync_full = 0;
	f->cfg.retain = RETAIN;
	open_queue(f);
	f->a = qf_agent(&f->q, "[]", 100);
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

/* Submitted and leased; n bytes of log; an artifact of art bytes (not
 * committed: its bytes are on disk all the same) when art > 0. */
static struct qlease *running(struct fixture *f, const char *jti, size_t n,
    size_t art)
{
	struct qwaiter w;
	struct qlease *l = NULL;
	struct apierr e;
	int64_t len;
	char log[64];

	qf_submit(&f->q, jti, "[]");
	memset(&w, 0, sizeof(w));
	assert_int_equal(lease_request(&f->q, f->a, 0, &w, &l, &e), 0);
	assert_non_null(l);
	assert_string_equal(l->job->id, jti);
	memset(log, 'x', sizeof(log));
	if (n > 0 && logs_append(&f->q, f->a, l->id, 0, log, n, 0, &len,
	    &e) < 0)
		fail_msg("log: %s", e.msg);
	if (art > 0) {
		struct reqj_artifact req = { "out.bin", (int64_t)art };
		struct art_put *p;
		cJSON *out;
		int status;
		char id[ID_MAX + 1];

		assert_int_equal(art_create(&f->q, f->a, l->id, &req, &status,
		    &out, &e), 0);
		snprintf(id, sizeof(id), "%s", cJSON_GetStringValue(
		    cJSON_GetObjectItem(out, "upload")));
		cJSON_Delete(out);
		assert_int_equal(art_put_begin(&f->q, f->a, id, 0, 0,
		    (int64_t)art, &p, &e), 0);
		assert_int_equal(art_put_data(p, log, art, &e), 0);
		assert_int_equal(art_put_end(p, &len, &e), 0);
		art_put_free(p);
	}
	return l;
}

static void ended(struct fixture *f, const char *jti, size_t n, size_t art)
{
	struct qlease *l = running(f, jti, n, art);
	struct reqj_complete c;
	struct apierr e;
	cJSON *out;

	memset(&c, 0, sizeof(c));
	c.result = JS_FAILED;
	c.log_length = (int64_t)n;
	if (lease_complete(&f->q, f->a, l->id, &c, &out, &e) < 0)
		fail_msg("complete: %s", e.msg);
	cJSON_Delete(out);
}

static int known(struct fixture *f, const char *jti)
{
	struct apierr e;
	cJSON *st = NULL;

	if (jobs_status(&f->q, jti, &st, &e) == 0) {
		cJSON_Delete(st);
		return 1;
	}
	assert_int_equal(e.status, 404);
	return 0;
}

static int exists(struct fixture *f, const char *kind, const char *jti)
{
	char path[PATH_MAX + 128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s/%s", f->dir, kind, jti);
	return stat(path, &st) == 0;
}

static int round_at(struct fixture *f, int64_t now, size_t jobs,
    size_t files)
{
	int more = -1;

	assert_int_equal(retain_round(&f->q, now, jobs, files, &more), 0);
	return more;
}

static void test_due_jobs_only(void **state)
{
	struct fixture *f = *state;
	struct apierr e;
	cJSON *st;
	int64_t now = queue_now();

	ended(f, "job-old-done", 5, 4);
	running(f, "job-running1", 3, 2);
	qf_submit(&f->q, "job-canceled", "[]");
	assert_int_equal(jobs_cancel(&f->q, "job-canceled", "", &st, &e), 0);
	cJSON_Delete(st);
	qf_submit(&f->q, "job-queued01", "[]");
	assert_int_equal(f->q.log_bytes, 8);
	assert_int_equal(f->q.artifact_bytes, 6);

	/* Ended just now: not due yet, nor while exp has not passed. */
	assert_int_equal(round_at(f, now, 64, 256), 0);
	assert_int_equal(round_at(f, now + RETAIN + 5, 64, 256), 0);
	assert_int_equal(f->q.jobs_deleted, 0);
	assert_true(known(f, "job-old-done"));

	assert_int_equal(round_at(f, now + LATER, 64, 256), 0);
	assert_int_equal(f->q.jobs_deleted, 2);
	assert_false(known(f, "job-old-done"));
	assert_false(known(f, "job-canceled"));
	assert_false(exists(f, "logs", "job-old-done"));
	assert_false(exists(f, "artifacts", "job-old-done"));
	/* What has not ended is untouched, in the store and in memory. */
	assert_true(known(f, "job-running1"));
	assert_true(known(f, "job-queued01"));
	assert_true(exists(f, "logs", "job-running1"));
	assert_true(exists(f, "artifacts", "job-running1"));
	assert_int_equal(f->q.log_bytes, 3);
	assert_int_equal(f->q.artifact_bytes, 2);
	assert_int_equal(f->a->pool->nqueued, 1);
	assert_int_equal(f->a->pool->nleased, 1);
	/* Logs and artifacts of a deleted job are 404, whatever attempt. */
	assert_int_equal(art_list(&f->q, "job-old-done", 1, &st, &e), -1);
	assert_int_equal(e.status, 404);

	/* A restart loads cleanly and counts the same bytes. */
	close_queue(f);
	open_queue(f);
	assert_int_equal(hmap_count(f->q.jobs), 2);
	assert_int_equal(hmap_count(f->q.leases), 1);
	assert_int_equal(f->q.log_bytes, 3);
	assert_int_equal(f->q.artifact_bytes, 2);
	assert_false(known(f, "job-old-done"));
	assert_int_equal(round_at(f, now + LATER, 64, 256), 0);
	assert_true(known(f, "job-running1"));
}

static void test_batches_and_file_budget(void **state)
{
	struct fixture *f = *state;
	int64_t now = queue_now();
	char id[16];

	for (int i = 0; i < 7; i++) {
		snprintf(id, sizeof(id), "job-batch%02d", i);
		ended(f, id, 1, 0);
	}
	/* At most 3 rows a round; at most 2 files, and no new rows while
	 * files of earlier ones are left. */
	assert_int_equal(round_at(f, now + LATER, 3, 2), 1);
	assert_int_equal(f->q.jobs_deleted, 3);
	assert_false(exists(f, "logs", "job-batch00"));
	assert_false(exists(f, "logs", "job-batch01"));
	assert_true(exists(f, "logs", "job-batch02"));
	assert_false(known(f, "job-batch02"));
	assert_true(known(f, "job-batch03"));
	assert_int_equal(round_at(f, now + LATER, 3, 2), 1);
	assert_int_equal(f->q.jobs_deleted, 6);
	assert_false(exists(f, "logs", "job-batch02"));
	assert_false(exists(f, "logs", "job-batch03"));
	assert_true(exists(f, "logs", "job-batch04"));
	assert_int_equal(round_at(f, now + LATER, 3, 2), 1);
	assert_int_equal(f->q.jobs_deleted, 7);
	assert_true(exists(f, "logs", "job-batch06"));
	assert_int_equal(round_at(f, now + LATER, 3, 2), 0);
	assert_false(exists(f, "logs", "job-batch06"));
	assert_int_equal(f->q.log_bytes, 0);
	assert_int_equal(round_at(f, now + LATER, 3, 2), 0);
	assert_int_equal(f->q.jobs_deleted, 7);
}

static void put_file(struct fixture *f, const char *rel, const char *data)
{
	char path[PATH_MAX + 128];
	char *dir;

	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	assert_int_equal(fsx_mkdir_p(dir, 0700), 0);
	assert_int_equal(fsx_write_file(path, data, strlen(data), 0600), 0);
	free(dir);
}

/* A crash between the commit and the files leaves directories without a
 * job: the next start counts them and removes them. */
static void test_orphans_after_a_crash(void **state)
{
	struct fixture *f = *state;
	int64_t now = queue_now();

	ended(f, "job-kept-one", 2, 0);
	close_queue(f);
	put_file(f, "logs/job-orphan01/1.log", "abcd");
	put_file(f, "logs/job-orphan01/2.log", "ef");
	put_file(f, "artifacts/job-orphan01/upl_x", "ghi");
	open_queue(f);
	assert_int_equal(f->q.log_bytes, 8);
	assert_int_equal(f->q.artifact_bytes, 3);
	assert_int_equal(round_at(f, now, 64, 256), 0);
	assert_false(exists(f, "logs", "job-orphan01"));
	assert_false(exists(f, "artifacts", "job-orphan01"));
	assert_true(exists(f, "logs", "job-kept-one"));
	assert_int_equal(f->q.log_bytes, 2);
	assert_int_equal(f->q.artifact_bytes, 0);
	assert_int_equal(f->q.jobs_deleted, 0);
}

/* Without --retain nothing is deleted, but the bytes are counted. */
static void test_off_by_default(void **state)
{
	struct fixture *f = *state;
	int64_t now = queue_now();

	ended(f, "job-forever1", 4, 1);
	close_queue(f);
	f->cfg.retain = 0;
	open_queue(f);
	assert_int_equal(f->q.log_bytes, 4);
	assert_int_equal(f->q.artifact_bytes, 1);
	assert_int_equal(round_at(f, now + LATER, 64, 256), 0);
	assert_true(known(f, "job-forever1"));
	assert_true(exists(f, "logs", "job-forever1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_due_jobs_only, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_batches_and_file_budget,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_orphans_after_a_crash, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_off_by_default, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
