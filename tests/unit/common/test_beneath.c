/* Resolution beneath a directory fd: what leads out is refused, with
 * openat2 and with the walk kernels without it get. */
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

#include "beneath.h"
#include "fsx.h"

void beneath_test_without_openat2(int on);

static char top[] = "/tmp/skiff-test-beneath.XXXXXX";
static char rootp[4200];
static int rootfd = -1;

static void at(char *out, const char *rel)
{
	snprintf(out, 4300, "%s/%s", top, rel);
}

static int setup(void **state)
{
	char p[4300];
	(void)state;
	if (!mkdtemp(top))
		return -1;
	/* top/root is the root; top/outside is what an escape would reach. */
	snprintf(rootp, sizeof(rootp), "%s/root", top);
	at(p, "outside");
	if (mkdir(rootp, 0755) < 0 || mkdir(p, 0755) < 0)
		return -1;
	at(p, "outside/secret");
	if (fsx_write_file(p, "s", 1, 0644) < 0)
		return -1;
	at(p, "root/d");
	mkdir(p, 0755);
	at(p, "root/d/f");
	fsx_write_file(p, "f", 1, 0644);
	/* links: one inside, one absolute, one up, a chain */
	at(p, "root/in");
	if (symlink("d", p) < 0)
		return -1;
	at(p, "root/abs");
	symlink(top, p);
	at(p, "root/up");
	symlink("../outside", p);
	at(p, "root/d/l");
	symlink("..", p);
	at(p, "root/d/m1");
	symlink("l/..", p);
	at(p, "root/fifo");
	mkfifo(p, 0644);
	rootfd = open(rootp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return rootfd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	close(rootfd);
	fsx_remove_tree(top);
	return 0;
}

static int try_open(const char *path, unsigned how)
{
	int fd, r = beneath_open(rootfd, path, O_RDONLY, how, &fd);
	if (r == 0)
		close(fd);
	return r;
}

static void check_opens(int fallback)
{
	beneath_test_without_openat2(fallback);
	assert_int_equal(try_open("d/f", 0), 0);
	assert_int_equal(try_open("./d//f", 0), 0);
	assert_int_equal(try_open("/etc/passwd", 0), -EXDEV);
	assert_int_equal(try_open("../outside/secret", 0), -EXDEV);
	assert_int_equal(try_open("abs/outside/secret", 0),
	    fallback ? -ELOOP : -EXDEV);
	assert_int_equal(try_open("up/secret", 0), fallback ? -ELOOP : -EXDEV);
	assert_int_equal(try_open("d/m1/outside/secret", 0),
	    fallback ? -ELOOP : -EXDEV);
	/* a link inside: followed unless links are refused */
	assert_int_equal(try_open("in/f", 0), fallback ? -ELOOP : 0);
	assert_int_equal(try_open("in/f", BENEATH_NO_LINKS), -ELOOP);
	beneath_test_without_openat2(0);
}

static void test_open(void **state)
{
	(void)state;
	check_opens(0);
}

static void test_open_without_openat2(void **state)
{
	(void)state;
	check_opens(1);
}

static void test_mkdir_p(void **state)
{
	char p[4300];
	int fd;
	(void)state;
	assert_int_equal(beneath_mkdir_p(rootfd, "new/a/b", 0755, 0, &fd), 0);
	close(fd);
	at(p, "root/new/a/b");
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(beneath_mkdir_p(rootfd, "new/a/b", 0755, 0, NULL), 0);
	assert_int_equal(beneath_mkdir_p(rootfd, "in/x", 0755, 0, NULL), 0);
	at(p, "root/d/x");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(beneath_mkdir_p(rootfd, "in/y", 0755, BENEATH_NO_LINKS,
	    NULL), -ELOOP);
	/* nothing is made outside, whichever way it is asked */
	assert_int_equal(beneath_mkdir_p(rootfd, "abs/made", 0755, 0, NULL),
	    -EXDEV);
	assert_int_equal(beneath_mkdir_p(rootfd, "up/made", 0755, 0, NULL),
	    -EXDEV);
	assert_int_equal(beneath_mkdir_p(rootfd, "d/m1/made", 0755, 0, NULL),
	    -EXDEV);
	assert_int_equal(beneath_mkdir_p(rootfd, "d/../../made", 0755, 0, NULL),
	    -EXDEV);
	assert_int_equal(beneath_mkdir_p(rootfd, "/tmp/made", 0755, 0, NULL),
	    -EXDEV);
	at(p, "outside/made");
	assert_int_not_equal(stat(p, &st), 0);
	at(p, "made");
	assert_int_not_equal(stat(p, &st), 0);
	assert_int_equal(beneath_mkdir_p(rootfd, "d/f/x", 0755, 0, NULL),
	    -ENOTDIR);
	assert_int_equal(beneath_mkdir_p(rootfd, "fifo/x", 0755, 0, NULL),
	    -ENOTDIR);
}

static void test_parent(void **state)
{
	char name[256];
	int fd;
	(void)state;
	assert_int_equal(beneath_parent(rootfd, "p/q/file", 0755, 0, &fd, name,
	    sizeof(name)), 0);
	assert_string_equal(name, "file");
	close(fd);
	assert_int_equal(beneath_parent(rootfd, "top", 0, 0, &fd, name,
	    sizeof(name)), 0);
	assert_string_equal(name, "top");
	close(fd);
	assert_int_equal(beneath_parent(rootfd, "x/", 0755, 0, &fd, name,
	    sizeof(name)), -EISDIR);
	assert_int_equal(beneath_parent(rootfd, "x/..", 0755, 0, &fd, name,
	    sizeof(name)), -EISDIR);
	assert_int_equal(beneath_parent(rootfd, "up/file", 0755, 0, &fd, name,
	    sizeof(name)), -EXDEV);
	assert_int_equal(beneath_parent(rootfd, "nosuch/file", 0, 0, &fd, name,
	    sizeof(name)), -ENOENT);
}

static void test_open_regular(void **state)
{
	struct stat st;
	int fd;
	(void)state;
	assert_int_equal(beneath_open_regular(rootfd, "d/f", BENEATH_NO_LINKS,
	    &fd, &st), 0);
	char c;
	assert_int_equal(read(fd, &c, 1), 1);
	assert_int_equal(c, 'f');
	close(fd);
	/* A FIFO with no writer: refused at once, never opened to read. */
	assert_int_equal(beneath_open_regular(rootfd, "fifo", 0, &fd, &st),
	    -EINVAL);
	assert_int_equal(beneath_open_regular(rootfd, "d", 0, &fd, &st), -EINVAL);
	assert_int_equal(beneath_open_regular(rootfd, "in/f", BENEATH_NO_LINKS,
	    &fd, &st), -ELOOP);
	assert_int_equal(beneath_open_regular(rootfd, "up/secret", 0, &fd, &st),
	    -EXDEV);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(null >= 0);
	close(null);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_open_without_openat2),
		cmocka_unit_test(test_mkdir_p),
		cmocka_unit_test(test_parent),
		cmocka_unit_test(test_open_regular),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
