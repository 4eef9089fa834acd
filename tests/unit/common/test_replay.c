/* The jti replay cache on disk: persistence, pruning, compaction, and a
 * file that a crash or a hand left in a bad state. */
#include "testkit.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "replay.h"

struct fx {
	char dir[PATH_MAX];
	char file[PATH_MAX + 16];
	struct replay *r;
};

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	tk_tmpdir(f->dir);
	snprintf(f->file, sizeof(f->file), "%s/replay", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	replay_close(f->r);
	tk_rmdir(f->dir);
	free(f);
	return 0;
}

static void reopen(struct fx *f, int64_t now, int64_t margin)
{
	replay_close(f->r);
	f->r = NULL;
	assert_int_equal(replay_open(f->dir, now, margin, &f->r), 0);
}

static size_t file_lines(const struct fx *f)
{
	size_t n, lines = 0;
	char *s = tk_slurp(f->file, &n);

	for (size_t i = 0; i < n; i++)
		lines += s[i] == '\n';
	free(s);
	return lines;
}

static void write_file(const struct fx *f, const char *text)
{
	assert_int_equal(fsx_write_file(f->file, text, strlen(text), 0600), 0);
}

static void test_add_and_seen(void **state)
{
	struct fx *f = *state;

	reopen(f, 1000, 60);
	assert_int_equal(replay_count(f->r), 0);
	assert_false(replay_seen(f->r, "jobid-0001"));
	assert_int_equal(replay_add(f->r, "jobid-0001", 2000), 0);
	assert_true(replay_seen(f->r, "jobid-0001"));
	assert_false(replay_seen(f->r, "jobid-0002"));
	assert_false(replay_seen(f->r, "JOBID-0001"));
	assert_int_equal(replay_add(f->r, "jobid-0001", 3000), -EEXIST);
	assert_int_equal(replay_count(f->r), 1);
	/* Only job ids of the protocol's form are stored. */
	assert_int_equal(replay_add(f->r, "short", 2000), -EINVAL);
	assert_int_equal(replay_add(f->r, "has space-x", 2000), -EINVAL);
	assert_int_equal(replay_add(f->r, "new\nline-x", 2000), -EINVAL);
	assert_int_equal(replay_count(f->r), 1);
}

static void test_file_is_private(void **state)
{
	struct fx *f = *state;
	struct stat st;
	mode_t old = umask(0);

	reopen(f, 1000, 60);
	umask(old);
	assert_int_equal(replay_add(f->r, "jobid-0001", 2000), 0);
	assert_int_equal(stat(f->file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* Close and reopen from the directory: every id is still there. */
static void test_persists_across_restart(void **state)
{
	struct fx *f = *state;
	char id[32];

	reopen(f, 1000, 60);
	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "job-%06d", i);
		assert_int_equal(replay_add(f->r, id, 5000 + i), 0);
	}
	reopen(f, 1001, 60);
	assert_int_equal(replay_count(f->r), 200);
	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "job-%06d", i);
		assert_true(replay_seen(f->r, id));
		assert_int_equal(replay_add(f->r, id, 9999), -EEXIST);
	}
	assert_false(replay_seen(f->r, "job-000200"));
}

static void test_pruned_at_open(void **state)
{
	struct fx *f = *state;

	reopen(f, 1000, 60);
	assert_int_equal(replay_add(f->r, "expires-early", 1100), 0);
	assert_int_equal(replay_add(f->r, "expires-later", 1500), 0);
	/* exp + margin >= now: kept. */
	reopen(f, 1160, 60);
	assert_int_equal(replay_count(f->r), 2);
	/* Past it: dropped, and the file is rewritten without it. */
	reopen(f, 1161, 60);
	assert_int_equal(replay_count(f->r), 1);
	assert_false(replay_seen(f->r, "expires-early"));
	assert_true(replay_seen(f->r, "expires-later"));
	assert_int_equal(file_lines(f), 1);
	reopen(f, 100000, 60);
	assert_int_equal(replay_count(f->r), 0);
	assert_int_equal(file_lines(f), 0);
}

/* A crash mid-write leaves a torn last line; a hand edit may leave
 * anything. Neither stops the agent, and good lines still count. */
static void test_damaged_file(void **state)
{
	struct fx *f = *state;

	write_file(f, "good-line-1 5000\n"
	    "garbage\n"
	    "\n"
	    "no-exp-here\n"
	    "bad id!! 5000\n"
	    "short 5000\n"
	    "good-line-2 notanumber\n"
	    "good-line-3 5000 extra\n"
	    "good-line-4  5000\n"
	    "good-line-5 +5000\n"
	    "good-line-6 9223372036854775807\n"
	    "good-line-7 -9223372036854775808\n"
	    "good-line-8 99999999999999999999999\n"
	    "0123456789012345678901234567890123456789012345678901234567890123456789 5000\n"
	    "good-line-9 5000\n"
	    "torn-line-0 50");
	reopen(f, 1000, 60);
	assert_true(replay_seen(f->r, "good-line-1"));
	assert_true(replay_seen(f->r, "good-line-9"));
	assert_true(replay_seen(f->r, "good-line-5"));
	assert_true(replay_seen(f->r, "good-line-6"));
	assert_false(replay_seen(f->r, "good-line-2"));
	assert_false(replay_seen(f->r, "good-line-3"));
	assert_false(replay_seen(f->r, "good-line-4"));
	assert_false(replay_seen(f->r, "good-line-7"));	/* long expired */
	assert_false(replay_seen(f->r, "good-line-8"));
	assert_false(replay_seen(f->r, "torn-line-0"));
	assert_int_equal(replay_count(f->r), 4);
	/* Rewritten clean, and appending works after it. */
	assert_int_equal(file_lines(f), 4);
	assert_int_equal(replay_add(f->r, "after-damage", 5000), 0);
	reopen(f, 1000, 60);
	assert_int_equal(replay_count(f->r), 5);
}

/* Margins and times at the ends of int64 must not overflow. */
static void test_extreme_values(void **state)
{
	struct fx *f = *state;

	reopen(f, INT64_MAX, INT64_MAX);
	assert_int_equal(replay_add(f->r, "extreme-1", INT64_MAX), 0);
	assert_int_equal(replay_add(f->r, "extreme-2", INT64_MIN), 0);
	reopen(f, INT64_MIN, INT64_MAX);
	assert_int_equal(replay_count(f->r), 2);
	reopen(f, INT64_MAX, 0);
	assert_int_equal(replay_count(f->r), 1);
	assert_true(replay_seen(f->r, "extreme-1"));
	/* A negative margin keeps nothing, even then. */
	reopen(f, 0, INT64_MIN);
	assert_int_equal(replay_count(f->r), 0);
}

/*
 * Compaction runs from replay_add once the file has doubled; it drops what
 * has expired by the wall clock and keeps the rest, on disk and in memory.
 */
static void test_compaction(void **state)
{
	struct fx *f = *state;
	int64_t now = (int64_t)time(NULL);
	char id[32];

	reopen(f, now, 60);
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "job-%06d", i);
		/* Every other one has already expired by the wall clock. */
		assert_int_equal(replay_add(f->r, id, i % 2 ? now + 3600 :
		    now - 3600), 0);
	}
	/* Compacted at 256 lines: the 128 expired ones of those are gone. */
	assert_int_equal(replay_count(f->r), 300 - 128);
	assert_int_equal(file_lines(f), 300 - 128);
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "job-%06d", i);
		assert_int_equal(replay_seen(f->r, id), i % 2 || i >= 256);
	}
	reopen(f, now, 60);
	assert_int_equal(replay_count(f->r), 150);
	for (int i = 1; i < 300; i += 2) {
		snprintf(id, sizeof(id), "job-%06d", i);
		assert_true(replay_seen(f->r, id));
	}
}

static void test_many_entries(void **state)
{
	struct fx *f = *state;
	int64_t now = (int64_t)time(NULL);
	char id[32];

	reopen(f, now, 60);
	for (int i = 0; i < 1500; i++) {
		snprintf(id, sizeof(id), "many-%08d", i);
		assert_int_equal(replay_add(f->r, id, now + 3600), 0);
	}
	assert_int_equal(replay_count(f->r), 1500);
	reopen(f, now, 60);
	assert_int_equal(replay_count(f->r), 1500);
	assert_true(replay_seen(f->r, "many-00001499"));
	assert_true(replay_seen(f->r, "many-00000000"));
	assert_false(replay_seen(f->r, "many-00001500"));
}

static void test_open_errors(void **state)
{
	struct fx *f = *state;
	struct replay *r = NULL;
	char *missing = xasprintf("%s/no/such/dir", f->dir);
	char longpath[PATH_MAX + 10];

	assert_true(replay_open(missing, 0, 0, &r) < 0);
	assert_null(r);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(replay_open(longpath, 0, 0, &r), -ENAMETOOLONG);
	assert_null(r);
	/* "replay" is a directory: not readable as the cache. */
	char *d = xasprintf("%s/replay", f->dir);
	assert_int_equal(mkdir(d, 0700), 0);
	assert_true(replay_open(f->dir, 0, 0, &r) < 0);
	assert_null(r);
	free(d);
	free(missing);
	replay_close(NULL);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_add_and_seen),
		T(test_file_is_private),
		T(test_persists_across_restart),
		T(test_pruned_at_open),
		T(test_damaged_file),
		T(test_extreme_values),
		T(test_compaction),
		T(test_many_entries),
		T(test_open_errors),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
