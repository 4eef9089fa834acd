/* The SQLite store, on a real file: schema, statements, constraints,
 * transactions, and what survives closing and opening again. */
#include "qtest.h"

#include <errno.h>

#include "store.h"

struct got {
	int rows;
	char text[64];
	int64_t num;
};

static int row(sqlite3_stmt *st, void *arg)
{
	struct got *g = arg;

	g->rows++;
	snprintf(g->text, sizeof(g->text), "%s", store_text(st, 0));
	g->num = sqlite3_column_int64(st, 1);
	return 0;
}

static void insert_job(struct store *s, const char *id, int expect)
{
	assert_int_equal(store_exec(s, SQL_JOB_INSERT, "tttttiii", id, "pool",
	    "name", "[]", "a.b.c", (int64_t)2000000000, (int64_t)3,
	    (int64_t)1000), expect);
}

static void test_jobs_and_reopen(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	struct store *s;
	struct got g = { 0 };

	(void)state;
	qt_tmpdir(dir);
	snprintf(path, sizeof(path), "%s/queue.db", dir);
	assert_int_equal(store_open(path, 1, &s), 0);
	insert_job(s, "job-0001", 0);
	insert_job(s, "job-0001", -EEXIST);
	assert_int_equal(store_exec(s, SQL_JOB_SET_LEASED, "tit", "agt_1",
	    (int64_t)1001, "job-0001"), 0);
	assert_int_equal(store_changes(s), 1);
	/* A rolled-back change is gone. */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_exec(s, SQL_JOB_REQUEUE, "it", (int64_t)2,
	    "job-0001"), 0);
	store_rollback(s);
	store_close(s);
	assert_int_equal(store_open(path, 0, &s), 0);
	assert_int_equal(store_query(s, SQL_JOB_STATE, row, &g, "t", "job-0001"),
	    0);
	assert_int_equal(g.rows, 1);
	assert_string_equal(g.text, "leased");
	assert_int_equal(g.num, 1);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_query(s, SQL_JOB_STATE, row, &g, "t", "none"), 0);
	assert_int_equal(g.rows, 0);
	store_close(s);
	qt_rmdir(dir);
}

static void test_committed_transaction(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	struct store *s;
	struct got g = { 0 };

	(void)state;
	qt_tmpdir(dir);
	snprintf(path, sizeof(path), "%s/queue.db", dir);
	assert_int_equal(store_open(path, 1, &s), 0);
	insert_job(s, "job-0002", 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_exec(s, SQL_LEASE_INSERT, "ttiti", "lse_1",
	    "job-0002", (int64_t)1, "agt_1", (int64_t)5), 0);
	assert_int_equal(store_exec(s, SQL_JOB_SET_LEASED, "tit", "agt_1",
	    (int64_t)5, "job-0002"), 0);
	assert_int_equal(store_commit(s), 0);
	store_close(s);
	assert_int_equal(store_open(path, 1, &s), 0);
	assert_int_equal(store_query(s, SQL_LEASE_GET, row, &g, "t", "lse_1"), 0);
	assert_int_equal(g.rows, 1);
	assert_string_equal(g.text, "job-0002");
	store_close(s);
	qt_rmdir(dir);
}

static void test_blob_lookup(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	unsigned char h[32];
	struct store *s;
	struct got g = { 0 };

	(void)state;
	qt_tmpdir(dir);
	snprintf(path, sizeof(path), "%s/queue.db", dir);
	memset(h, 0xab, sizeof(h));
	assert_int_equal(store_open(path, 1, &s), 0);
	assert_int_equal(store_exec(s, SQL_TOKEN_INSERT, "ttbti", "tok_1", "p",
	    h, sizeof(h), "d", (int64_t)7), 0);
	assert_int_equal(store_exec(s, SQL_TOKEN_INSERT, "ttbti", "tok_2", "p",
	    h, sizeof(h), "d", (int64_t)7), -EEXIST);
	assert_int_equal(store_query(s, SQL_TOKEN_BY_HASH, row, &g, "b", h,
	    sizeof(h)), 0);
	assert_int_equal(g.rows, 1);
	assert_string_equal(g.text, "tok_1");
	store_close(s);
	qt_rmdir(dir);
}

static void test_bad_path(void **state)
{
	struct store *s = NULL;

	(void)state;
	assert_true(store_open("/nonexistent/dir/queue.db", 1, &s) < 0);
	assert_null(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jobs_and_reopen),
		cmocka_unit_test(test_committed_transaction),
		cmocka_unit_test(test_blob_lookup),
		cmocka_unit_test(test_bad_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
