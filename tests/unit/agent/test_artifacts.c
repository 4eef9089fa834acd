/* Artifact globs and opening beneath the workspace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "artifacts.h"
#include "buf.h"
#include "fsx.h"

static char root[] = "/tmp/skiff-test-art.XXXXXX";
static int wsfd = -1;

static void put(const char *rel, const char *content)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	char *slash = strrchr(p, '/');
	*slash = '\0';
	assert_int_equal(fsx_mkdir_p(p, 0755), 0);
	*slash = '/';
	assert_int_equal(fsx_write_file(p, content, strlen(content), 0644), 0);
}

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(root));
	put("dist/app.tar.gz", "app");
	put("dist/sub/lib.so", "lib");
	put("build/a.log", "a");
	put("build/deep/er/b.log", "b");
	put("build/.hidden.log", "h");
	put(".git/x.log", "git");
	put("top.txt", "top");
	char p[4096], q[4096];
	snprintf(p, sizeof(p), "%s/link-out", root);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	snprintf(p, sizeof(p), "%s/dist/linkdir", root);
	assert_int_equal(symlink("/etc", p), 0);
	snprintf(q, sizeof(q), "%s/dist/inner-link", root);
	assert_int_equal(symlink("app.tar.gz", q), 0);
	wsfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(wsfd >= 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(wsfd);
	fsx_remove_tree(root);
	return 0;
}

static void collect(void *arg, const char *path)
{
	buf_printf(arg, "%s;", path);
}

static char *glob_all(const char **globs, size_t n)
{
	struct buf b = BUF_INIT(1 << 16);
	assert_int_equal(artifacts_glob(wsfd, (char *const *)globs, n, collect,
	    &b), 0);
	return buf_steal(&b, NULL);
}

static void test_match(void **state)
{
	(void)state;
	assert_true(artifacts_match("dist/**", "dist/app.tar.gz"));
	assert_true(artifacts_match("dist/**", "dist/sub/lib.so"));
	assert_true(artifacts_match("**/*.log", "build/deep/er/b.log"));
	assert_true(artifacts_match("**/*.log", "a.log"));
	assert_false(artifacts_match("*.log", "build/a.log"));
	assert_false(artifacts_match("**/*.log", "build/.hidden.log"));
	assert_true(artifacts_match("build/.*.log", "build/.hidden.log"));
	assert_false(artifacts_match("**/*.log", ".git/x.log"));
	assert_true(artifacts_match("build/[ab].log", "build/a.log"));
}

static void test_glob_walk(void **state)
{
	(void)state;
	const char *g1[] = { "dist/**" };
	char *r = glob_all(g1, 1);
	/* Links are matched (to be refused when opened), never followed. */
	assert_string_equal(r, "dist/app.tar.gz;dist/inner-link;dist/linkdir;"
	    "dist/sub/lib.so;");
	free(r);
	const char *g2[] = { "**/*.log", "top.txt" };
	r = glob_all(g2, 2);
	assert_string_equal(r, "build/a.log;build/deep/er/b.log;top.txt;");
	free(r);
	const char *g3[] = { "nothing/**" };
	r = glob_all(g3, 1);
	assert_string_equal(r, "");
	free(r);
}

static void test_open_beneath(void **state)
{
	int fd;
	uint64_t size;
	(void)state;
	assert_int_equal(artifacts_open(wsfd, "dist/app.tar.gz", &fd, &size), 0);
	assert_int_equal(size, 3);
	close(fd);
	assert_int_equal(artifacts_open(wsfd, "../etc/passwd", &fd, &size), -EXDEV);
	assert_int_equal(artifacts_open(wsfd, "/etc/passwd", &fd, &size), -EXDEV);
	assert_int_equal(artifacts_open(wsfd, "link-out", &fd, &size), -EXDEV);
	assert_int_equal(artifacts_open(wsfd, "dist/linkdir/passwd", &fd, &size),
	    -EXDEV);
	assert_int_equal(artifacts_open(wsfd, "dist/inner-link", &fd, &size),
	    -EXDEV);
	assert_int_equal(artifacts_open(wsfd, "dist/../top.txt", &fd, &size), 0);
	close(fd);
	assert_int_equal(artifacts_open(wsfd, "dist", &fd, &size), -EINVAL);
	assert_int_equal(artifacts_open(wsfd, "missing", &fd, &size), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_glob_walk),
		cmocka_unit_test(test_open_beneath),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
