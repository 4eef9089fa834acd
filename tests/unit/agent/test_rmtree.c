/* Removing a job's directory in a child while the loop goes on. */
#include "../common/testkit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ev.h"
#include "rmtree.h"

struct fx {
	char dir[PATH_MAX];
	struct ev_loop *loop;
	int done, err, ticks;
	struct ev_timer *tick;
};

static void on_done(void *arg, int err)
{
	struct fx *f = arg;

	f->done++;
	f->err = err;
}

static void on_tick(struct ev_timer *t, void *arg)
{
	struct fx *f = arg;

	f->ticks++;
	ev_timer_start(t, 1);
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	tk_tmpdir(f->dir);
	assert_int_equal(ev_loop_new(&f->loop), 0);
	f->tick = ev_timer_new(f->loop, on_tick, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	ev_timer_free(f->tick);
	ev_loop_free(f->loop);
	fsx_remove_tree(f->dir);
	free(f);
	return 0;
}

/* n directories of m files each under dir/name. */
static char *make_tree(struct fx *f, const char *name, int n, int m)
{
	char *top = xasprintf("%s/%s", f->dir, name);

	assert_int_equal(mkdir(top, 0755), 0);
	int tfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (int i = 0; i < n; i++) {
		char d[32];
		snprintf(d, sizeof(d), "d%d", i);
		assert_int_equal(mkdirat(tfd, d, 0755), 0);
		int dfd = openat(tfd, d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		for (int k = 0; k < m; k++) {
			char fn[32];
			snprintf(fn, sizeof(fn), "f%d", k);
			close(openat(dfd, fn, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
		}
		close(dfd);
	}
	close(tfd);
	return top;
}

static void run_until_done(struct fx *f)
{
	for (int i = 0; i < 6000 && !f->done; i++)
		ev_run_once(f->loop, 10);
}

static void test_removes_while_the_loop_runs(void **state)
{
	struct fx *f = *state;
	char *top = make_tree(f, "big", 200, 100);
	struct rmtree *t = NULL;
	struct stat st;

	ev_timer_start(f->tick, 1);
	assert_int_equal(rmtree_start(f->loop, top, on_done, f, &t), 0);
	run_until_done(f);
	assert_int_equal(f->done, 1);
	assert_int_equal(f->err, 0);
	assert_int_not_equal(lstat(top, &st), 0);
	/* The loop was never held: the timer went on while the child
	 * removed 20,000 files. */
	assert_true(f->ticks > 0);
	rmtree_free(t);
	free(top);
}

static void test_links_are_not_followed(void **state)
{
	struct fx *f = *state;
	char *top = make_tree(f, "t", 1, 1);
	char *keep = make_tree(f, "keep", 1, 3);
	char *link = xasprintf("%s/out", top);
	struct rmtree *t = NULL;
	struct stat st;

	assert_int_equal(symlink(keep, link), 0);
	assert_int_equal(rmtree_start(f->loop, top, on_done, f, &t), 0);
	run_until_done(f);
	assert_int_equal(f->err, 0);
	char *kept = xasprintf("%s/d0/f2", keep);
	assert_int_equal(lstat(kept, &st), 0);
	rmtree_free(t);
	free(top);
	free(keep);
	free(link);
	free(kept);
}

static void test_free_while_running(void **state)
{
	struct fx *f = *state;
	char *top = make_tree(f, "busy", 50, 100);
	struct rmtree *t = NULL;

	assert_int_equal(rmtree_start(f->loop, top, on_done, f, &t), 0);
	rmtree_free(t);		/* kills and reaps the child; no callback */
	for (int i = 0; i < 10; i++)
		ev_run_once(f->loop, 1);
	assert_int_equal(f->done, 0);
	free(top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_removes_while_the_loop_runs,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_are_not_followed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_while_running, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
