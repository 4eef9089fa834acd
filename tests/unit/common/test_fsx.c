/* File-system helpers on real temporary directories. */
#include "testkit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct fx {
	char dir[PATH_MAX];
};

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	tk_tmpdir(f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	tk_rmdir(f->dir);
	free(f);
	return 0;
}

static char *path(const struct fx *f, const char *name)
{
	return xasprintf("%s/%s", f->dir, name);
}

static void touch(const char *p, const char *text)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(fsx_write_all(fd, text, strlen(text)), 0);
	close(fd);
}

static mode_t mode_of(const char *p)
{
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	return st.st_mode & 07777;
}

static int exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

/* The mode is what the caller asked for, whatever the umask says. */
static void test_write_file_mode(void **state)
{
	struct fx *f = *state;
	char *p = path(f, "secret.jwk");
	mode_t old = umask(0);

	assert_int_equal(fsx_write_file(p, "key", 3, 0600), 0);
	assert_int_equal(mode_of(p), 0600);
	umask(077);
	char *q = path(f, "public.jwks");
	assert_int_equal(fsx_write_file(q, "pub", 3, 0644), 0);
	assert_int_equal(mode_of(q), 0644);
	umask(old);
	/* Replacing a world-readable file with a private one narrows it. */
	assert_int_equal(fsx_write_file(q, "key2", 4, 0600), 0);
	assert_int_equal(mode_of(q), 0600);
	free(p);
	free(q);
}

/* Replacement is atomic: the new contents in full, no temporary left. */
static void test_write_file_replaces(void **state)
{
	struct fx *f = *state;
	char *p = path(f, "state");
	size_t n;

	assert_int_equal(fsx_write_file(p, "first version", 13, 0600), 0);
	assert_int_equal(fsx_write_file(p, "v2", 2, 0600), 0);
	char *s = tk_slurp(p, &n);
	assert_int_equal(n, 2);
	assert_string_equal(s, "v2");
	free(s);
	/* An empty file is a valid value too. */
	assert_int_equal(fsx_write_file(p, "", 0, 0600), 0);
	s = tk_slurp(p, &n);
	assert_int_equal(n, 0);
	free(s);
	/* Only the file itself is in the directory. */
	DIR *d = opendir(f->dir);
	struct dirent *e;
	int count = 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			count++;
	closedir(d);
	assert_int_equal(count, 1);
	free(p);
}

/* A link where the file goes is replaced, never written through. */
static void test_write_file_does_not_follow_link(void **state)
{
	struct fx *f = *state;
	char *target = path(f, "target");
	char *link = path(f, "link");
	size_t n;

	touch(target, "keep");
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(fsx_write_file(link, "new", 3, 0600), 0);
	char *s = tk_slurp(target, &n);
	assert_string_equal(s, "keep");
	free(s);
	struct stat st;
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	free(target);
	free(link);
}

static void test_write_file_errors(void **state)
{
	struct fx *f = *state;
	char *p = path(f, "no/such/dir/file");

	assert_int_equal(fsx_write_file(p, "x", 1, 0600), -ENOENT);
	free(p);
}

static void test_read_file_cap(void **state)
{
	struct fx *f = *state;
	char *p = path(f, "data");
	struct buf b = BUF_INIT(1 << 20);
	char big[20000];

	memset(big, 'q', sizeof(big));
	assert_int_equal(fsx_write_file(p, big, sizeof(big), 0600), 0);
	assert_int_equal(fsx_read_file(p, sizeof(big), &b), 0);
	assert_int_equal(b.len, sizeof(big));
	buf_reset(&b);
	/* Past the cap: -E2BIG and the buffer as it was before. */
	buf_puts(&b, "prefix");
	assert_int_equal(fsx_read_file(p, sizeof(big) - 1, &b), -E2BIG);
	assert_int_equal(b.len, 6);
	assert_string_equal(buf_cstr(&b), "prefix");
	/* The buffer's own cap counts too. */
	struct buf small = BUF_INIT(100);
	assert_int_equal(fsx_read_file(p, 1 << 20, &small), -E2BIG);
	assert_int_equal(small.len, 0);
	assert_int_equal(fsx_read_file("/nonexistent/skiff", 10, &small),
	    -ENOENT);
	buf_free(&small);
	buf_free(&b);
	free(p);
}

static void test_mkdir_p(void **state)
{
	struct fx *f = *state;
	char *p = path(f, "a/b//c/d/");
	char *file = path(f, "plain");

	assert_int_equal(fsx_mkdir_p(p, 0700), 0);
	assert_true(exists(p));
	assert_int_equal(fsx_mkdir_p(p, 0700), 0);	/* again: fine */
	touch(file, "x");
	assert_int_equal(fsx_mkdir_p(file, 0700), -ENOTDIR);
	char *under = path(f, "plain/sub");
	assert_true(fsx_mkdir_p(under, 0700) < 0);
	assert_int_equal(fsx_mkdir_p("", 0700), -ENAMETOOLONG);
	free(under);
	free(p);
	free(file);
}

/*
 * A step controls what is in its workspace. Links in it that point out of
 * the tree, to a directory or a file, are removed as links: what they
 * point at stays.
 */
static void test_remove_tree_does_not_follow_links(void **state)
{
	struct fx *f = *state;
	char *outside = path(f, "outside");
	char *outfile = path(f, "outside/precious");
	char *outsub = path(f, "outside/sub");
	char *tree = path(f, "tree");
	char *deep = path(f, "tree/a/b/c");
	char *l1 = path(f, "tree/to-dir");
	char *l2 = path(f, "tree/a/to-file");
	char *l3 = path(f, "tree/a/b/c/to-root");
	char *l4 = path(f, "tree/dangling");
	char *l5 = path(f, "tree/a/b/to-sub");

	assert_int_equal(fsx_mkdir_p(outsub, 0755), 0);
	touch(outfile, "do not delete");
	assert_int_equal(fsx_mkdir_p(deep, 0755), 0);
	char *infile = path(f, "tree/a/b/c/file");
	touch(infile, "x");
	assert_int_equal(symlink(outside, l1), 0);
	assert_int_equal(symlink(outfile, l2), 0);
	assert_int_equal(symlink("/", l3), 0);
	assert_int_equal(symlink("/nonexistent/skiff", l4), 0);
	assert_int_equal(symlink("../../../outside/sub", l5), 0);

	assert_int_equal(fsx_remove_tree(tree), 0);
	assert_false(exists(tree));
	assert_true(exists(outfile));
	assert_true(exists(outsub));
	size_t n;
	char *s = tk_slurp(outfile, &n);
	assert_string_equal(s, "do not delete");
	free(s);
	assert_true(exists("/"));

	free(outside); free(outfile); free(outsub); free(tree); free(deep);
	free(l1); free(l2); free(l3); free(l4); free(l5); free(infile);
}

/* The tree itself given as a link: the link goes, not its target. */
static void test_remove_tree_top_is_link(void **state)
{
	struct fx *f = *state;
	char *target = path(f, "real");
	char *file = path(f, "real/file");
	char *link = path(f, "ws");

	assert_int_equal(fsx_mkdir_p(target, 0755), 0);
	touch(file, "x");
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(fsx_remove_tree(link), 0);
	assert_false(exists(link));
	assert_true(exists(file));
	free(target);
	free(file);
	free(link);
}

static void test_remove_tree_odd_modes(void **state)
{
	struct fx *f = *state;
	char *tree = path(f, "t");
	char *ro = path(f, "t/readonly");
	char *rofile = path(f, "t/readonly/f");
	char *none = path(f, "t/none");
	char *nonefile = path(f, "t/none/g");

	assert_int_equal(fsx_mkdir_p(ro, 0755), 0);
	assert_int_equal(fsx_mkdir_p(none, 0755), 0);
	touch(rofile, "x");
	touch(nonefile, "y");
	assert_int_equal(chmod(rofile, 0), 0);
	assert_int_equal(chmod(ro, 0500), 0);
	assert_int_equal(chmod(none, 0), 0);
	assert_int_equal(fsx_remove_tree(tree), 0);
	assert_false(exists(tree));
	/* Missing is fine; a plain file is removed. */
	assert_int_equal(fsx_remove_tree(tree), 0);
	touch(tree, "file");
	assert_int_equal(fsx_remove_tree(tree), 0);
	assert_false(exists(tree));
	free(tree); free(ro); free(rofile); free(none); free(nonefile);
}

/* Deeper than any recursion or fd budget: 3,000 levels, a file in each,
 * and a wide directory near the bottom. */
static void test_remove_tree_deep(void **state)
{
	struct fx *f = *state;
	char *tree = path(f, "deep");
	int fd, next;

	assert_int_equal(mkdir(tree, 0755), 0);
	fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (int i = 0; i < 3000; i++) {
		int g = openat(fd, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		assert_true(g >= 0);
		close(g);
		assert_int_equal(mkdirat(fd, "a", 0755), 0);
		if (i == 2990)
			for (int k = 0; k < 200; k++) {
				char n[16];
				snprintf(n, sizeof(n), "w%d", k);
				assert_int_equal(mkdirat(fd, n, 0755), 0);
			}
		next = openat(fd, "a", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(next >= 0);
		close(fd);
		fd = next;
	}
	close(fd);
	assert_int_equal(fsx_remove_tree(tree), 0);
	assert_false(exists(tree));
	free(tree);
}

/*
 * The same as an unprivileged user, for whom permissions hold: a step can
 * leave directories of mode 0 or 0500 behind in its workspace. Runs in a
 * child that drops to nobody when the test runs as root.
 */
static void test_remove_tree_unprivileged(void **state)
{
	struct fx *f = *state;
	char *home = path(f, "home");
	char *tree = path(f, "home/u");

	/* home is the unprivileged user's own, so it may remove u in it. */
	assert_int_equal(mkdir(home, 0755), 0);
	assert_int_equal(mkdir(tree, 0755), 0);
	if (geteuid() == 0) {
		/* mkdtemp made the parent 0700; nobody must reach home. */
		assert_int_equal(chmod(f->dir, 0711), 0);
		assert_int_equal(chown(home, 65534, 65534), 0);
		assert_int_equal(chown(tree, 65534, 65534), 0);
	}
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(10);
		char *a = xasprintf("%s/a/b", tree), *af = xasprintf("%s/a/b/f", tree);
		char *z = xasprintf("%s/zero", tree), *zf = xasprintf("%s/zero/f", tree);
		char *zd = xasprintf("%s/zero/d", tree);
		if (fsx_mkdir_p(a, 0755) < 0 || mkdir(z, 0755) < 0 ||
		    mkdir(zd, 0755) < 0)
			_exit(11);
		int fd = open(af, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		int fd2 = open(zf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0 || fd2 < 0)
			_exit(12);
		close(fd);
		close(fd2);
		char *ab = xasprintf("%s/a", tree);
		if (chmod(a, 0500) < 0 || chmod(ab, 0) < 0 || chmod(zd, 0) < 0 ||
		    chmod(z, 0) < 0)
			_exit(13);
		int rr = fsx_remove_tree(tree);
		if (rr < 0)
			fprintf(stderr, "remove_tree: %s\n", strerror(-rr));
		_exit(rr == 0 ? 0 : 14);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(exists(tree));
	free(tree);
	free(home);
}

static void test_write_all_pipe(void **state)
{
	int p[2];
	char out[5];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fsx_write_all(p[1], "hello", 5), 0);
	assert_int_equal(read(p[0], out, 5), 5);
	assert_memory_equal(out, "hello", 5);
	close(p[0]);
	assert_int_equal(fsx_write_all(p[1], "x", 1), -EPIPE);
	close(p[1]);
	assert_int_equal(fsx_write_all(-1, "x", 1), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_file_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_file_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_file_does_not_follow_link,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_file_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree_does_not_follow_links,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree_top_is_link,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree_odd_modes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree_deep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree_unprivileged,
		    setup, teardown),
		cmocka_unit_test(test_write_all_pipe),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
