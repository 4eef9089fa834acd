/* Unpacking .tar.gz inputs: what is refused, what is kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fsx.h"
#include "unpack.h"

static char root[] = "/tmp/skiff-test-inputs.XXXXXX";
static uint64_t max_bytes = UNPACK_MAX_BYTES, max_entries = UNPACK_MAX_ENTRIES;

struct ent {
	const char *path;
	mode_t type;
	const char *data;	/* file contents or link target */
	int hardlink;
};

static void make_tgz(const char *path, const struct ent *e, size_t n)
{
	struct archive *a = archive_write_new();
	archive_write_add_filter_gzip(a);
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *en = archive_entry_new();
		archive_entry_set_pathname(en, e[i].path);
		archive_entry_set_filetype(en, e[i].type);
		archive_entry_set_perm(en, 0644);
		if (e[i].hardlink) {
			archive_entry_set_hardlink(en, e[i].data);
		} else if (e[i].type == AE_IFLNK) {
			archive_entry_set_symlink(en, e[i].data);
		} else if (e[i].type == AE_IFREG) {
			archive_entry_set_size(en, (la_int64_t)strlen(e[i].data));
		} else if (e[i].type == AE_IFCHR) {
			archive_entry_set_rdevmajor(en, 1);
			archive_entry_set_rdevminor(en, 3);
		}
		assert_int_equal(archive_write_header(a, en), ARCHIVE_OK);
		if (e[i].type == AE_IFREG && !e[i].hardlink)
			archive_write_data(a, e[i].data, strlen(e[i].data));
		archive_entry_free(en);
	}
	archive_write_close(a);
	archive_write_free(a);
}

static int extract(const struct ent *e, size_t n, char *err)
{
	char tgz[4200], dir[4200];
	static int k;

	snprintf(tgz, sizeof(tgz), "%s/a%d.tar.gz", root, k);
	snprintf(dir, sizeof(dir), "%s/out%d", root, k++);
	make_tgz(tgz, e, n);
	assert_int_equal(mkdir(dir, 0755), 0);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	int r = unpack_targz(tgz, dfd, max_bytes, max_entries, err, 512);
	close(dfd);
	return r;
}

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fsx_remove_tree(root);
	return 0;
}

static void test_good_archive(void **state)
{
	char err[512] = "", p[4300];
	struct ent e[] = {
		{ "pkg/", AE_IFDIR, "", 0 },
		{ "./pkg/file.txt", AE_IFREG, "content\n", 0 },
		{ "pkg/sub/inner.txt", AE_IFREG, "inner\n", 0 },
		{ "pkg/link", AE_IFLNK, "sub/inner.txt", 0 },
		{ "pkg/up-but-inside", AE_IFLNK, "../pkg/file.txt", 0 },
		{ "pkg/hard", AE_IFREG, "pkg/file.txt", 1 },
	};
	(void)state;
	int rc = extract(e, 6, err);
	if (rc) fprintf(stderr, "err: %s\n", err);
	assert_int_equal(rc, 0);
	snprintf(p, sizeof(p), "%s/out0/pkg/sub/inner.txt", root);
	assert_int_equal(access(p, R_OK), 0);
	snprintf(p, sizeof(p), "%s/out0/pkg/hard", root);
	assert_int_equal(access(p, R_OK), 0);
}

static void expect_refused(const struct ent *e, size_t n, const char *why)
{
	char err[512] = "";
	assert_true(extract(e, n, err) < 0);
	if (!strstr(err, why))
		fprintf(stderr, "expected '%s', got '%s'\n", why, err);
	assert_non_null(strstr(err, why));
}

static void test_refusals(void **state)
{
	(void)state;
	struct ent dotdot[] = { { "../evil.txt", AE_IFREG, "x", 0 } };
	expect_refused(dotdot, 1, "with '..'");
	struct ent inner[] = { { "a/../../evil.txt", AE_IFREG, "x", 0 } };
	expect_refused(inner, 1, "with '..'");
	struct ent abs[] = { { "/tmp/skiff-evil-abs", AE_IFREG, "x", 0 } };
	expect_refused(abs, 1, "absolute");
	assert_int_not_equal(access("/tmp/skiff-evil-abs", F_OK), 0);
	struct ent link_out[] = { { "l", AE_IFLNK, "/etc/passwd", 0 } };
	expect_refused(link_out, 1, "link pointing outside");
	struct ent link_up[] = { { "d/l", AE_IFLNK, "../../etc", 0 } };
	expect_refused(link_up, 1, "link pointing outside");
	struct ent dev[] = { { "null", AE_IFCHR, "", 0 } };
	expect_refused(dev, 1, "device");
	struct ent fifo[] = { { "fifo", AE_IFIFO, "", 0 } };
	expect_refused(fifo, 1, "device, FIFO");
	struct ent hard[] = { { "h", AE_IFREG, "../../etc/passwd", 1 } };
	expect_refused(hard, 1, "hard link outside");
	struct ent over_dir[] = {
		{ "d/", AE_IFDIR, "", 0 },
		{ "d", AE_IFREG, "a file over a directory", 0 },
	};
	expect_refused(over_dir, 2, "a directory has that name");
}

/* Links that each look inside on their own but climb out together. */
static void test_link_chain(void **state)
{
	char err[512] = "", p[4300];
	struct ent chain[] = {
		{ "x/", AE_IFDIR, "", 0 },
		{ "x/l", AE_IFLNK, "..", 0 },
		{ "x/m1", AE_IFLNK, "l/..", 0 },
		{ "x/m2", AE_IFLNK, "m1/..", 0 },
		{ "x/m2/escaped", AE_IFREG, "out", 0 },
	};
	(void)state;
	/* The directory the chain would climb to: the test's own root. */
	snprintf(p, sizeof(p), "%s/escaped", root);
	assert_true(extract(chain, 5, err) < 0);
	assert_non_null(strstr(err, "'x/m1'"));
	assert_non_null(strstr(err, "link pointing outside"));
	assert_int_not_equal(access(p, F_OK), 0);
	/* The same chain made dangling first, its links filled in later:
	 * each link passes when made, the walk through them does not. */
	struct ent late[] = {
		{ "y/", AE_IFDIR, "", 0 },
		{ "y/m1", AE_IFLNK, "l/..", 0 },
		{ "y/l", AE_IFLNK, "..", 0 },
		{ "y/m1/escaped2", AE_IFREG, "out", 0 },
	};
	assert_true(extract(late, 4, err) < 0);
	assert_non_null(strstr(err, "'y/m1/escaped2'"));
	assert_non_null(strstr(err, "leads outside"));
	snprintf(p, sizeof(p), "%s/escaped2", root);
	assert_int_not_equal(access(p, F_OK), 0);
	/* The same chain left alone: refused once the archive ends. */
	struct ent quiet[] = {
		{ "q/", AE_IFDIR, "", 0 },
		{ "q/m1", AE_IFLNK, "l/..", 0 },
		{ "q/l", AE_IFLNK, "..", 0 },
	};
	assert_true(extract(quiet, 3, err) < 0);
	assert_non_null(strstr(err, "'q/m1': a link pointing outside (through "
	    "links made after it)"));
	/* A hard link to a symlink moves its text where it was never
	 * checked: refused. */
	struct ent hardsym[] = {
		{ "a/b/", AE_IFDIR, "", 0 },
		{ "a/b/l", AE_IFLNK, "../../t", 0 },
		{ "l2", AE_IFREG, "a/b/l", 1 },
	};
	assert_true(extract(hardsym, 3, err) < 0);
	assert_non_null(strstr(err, "which is not a file of the archive"));
	/* A hard link through the chain names something outside. */
	struct ent hard[] = {
		{ "z/", AE_IFDIR, "", 0 },
		{ "z/m1", AE_IFLNK, "l/..", 0 },
		{ "z/l", AE_IFLNK, "..", 0 },
		{ "z/h", AE_IFREG, "z/m1/a0.tar.gz", 1 },
	};
	assert_true(extract(hard, 4, err) < 0);
	assert_non_null(strstr(err, "leads outside"));
}

static void test_links_inside_are_followed_beneath(void **state)
{
	char err[512] = "", p[4300];
	struct ent via[] = {
		{ "dir", AE_IFLNK, "sub", 0 },
		{ "sub/", AE_IFDIR, "", 0 },
		{ "dir/x", AE_IFREG, "through a link", 0 },
	};
	(void)state;
	int k = extract(via, 3, err);
	if (k) fprintf(stderr, "err: %s\n", err);
	assert_int_equal(k, 0);
	struct stat st;
	int found = 0;
	for (int i = 0; i < 64 && !found; i++) {
		snprintf(p, sizeof(p), "%s/out%d/sub/x", root, i);
		found = lstat(p, &st) == 0 && S_ISREG(st.st_mode);
	}
	assert_true(found);
}

static void test_caps_and_modes(void **state)
{
	char err[512] = "";
	struct ent two[] = {
		{ "a", AE_IFREG, "0123456789", 0 },
		{ "b", AE_IFREG, "0123456789", 0 },
	};
	(void)state;
	max_bytes = 15;
	expect_refused(two, 2, "unpacks to more than 15 bytes");
	max_bytes = UNPACK_MAX_BYTES;
	max_entries = 1;
	expect_refused(two, 2, "more than 1 entries");
	max_entries = UNPACK_MAX_ENTRIES;
	struct ent dup[] = {
		{ "a", AE_IFREG, "first", 0 },
		{ "a", AE_IFREG, "second", 0 },
	};
	assert_int_equal(extract(dup, 2, err), 0);
}

static void test_not_an_archive(void **state)
{
	char tgz[4200], dir[4200], err[512] = "";
	(void)state;
	snprintf(tgz, sizeof(tgz), "%s/garbage.tar.gz", root);
	snprintf(dir, sizeof(dir), "%s/garbage", root);
	assert_int_equal(fsx_write_file(tgz, "not gzip at all", 15, 0644), 0);
	assert_int_equal(mkdir(dir, 0755), 0);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(unpack_targz(tgz, dfd, max_bytes, max_entries, err,
	    sizeof(err)) < 0);
	close(dfd);
	assert_true(err[0] != '\0');
}

/* A cache (UNPACK_NO_LINKS): links that would be fine in an input are
 * refused, symbolic and hard, whatever they point at. */
static void test_no_links(void **state)
{
	static const struct ent sym[] = {
		{ "c/a", AE_IFREG, "a", 0 },
		{ "c/l", AE_IFLNK, "a", 0 },
	};
	static const struct ent hard[] = {
		{ "c/a", AE_IFREG, "a", 0 },
		{ "c/h", AE_IFREG, "c/a", 1 },
	};
	static const struct ent plain[] = {
		{ "c/", AE_IFDIR, "", 0 },
		{ "c/a", AE_IFREG, "a", 0 },
	};
	const struct ent *sets[] = { sym, hard, plain };
	char tgz[4200], dir[4200], err[512];
	(void)state;
	for (int i = 0; i < 3; i++) {
		snprintf(tgz, sizeof(tgz), "%s/nolinks%d.tar.gz", root, i);
		snprintf(dir, sizeof(dir), "%s/nolinks%d", root, i);
		make_tgz(tgz, sets[i], 2);
		assert_int_equal(mkdir(dir, 0755), 0);
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(dfd >= 0);
		err[0] = '\0';
		int r = unpack_targz_flags(tgz, dfd, max_bytes, max_entries,
		    UNPACK_NO_LINKS, err, sizeof(err));
		close(dfd);
		if (i < 2) {
			assert_true(r < 0);
			assert_non_null(strstr(err, "a link, where none may be"));
		} else {
			assert_int_equal(r, 0);
		}
		/* Without the flag the same links are kept. */
		snprintf(dir, sizeof(dir), "%s/links%d", root, i);
		assert_int_equal(mkdir(dir, 0755), 0);
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_int_equal(unpack_targz(tgz, dfd, max_bytes, max_entries, err,
		    sizeof(err)), 0);
		close(dfd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_archive),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_link_chain),
		cmocka_unit_test(test_links_inside_are_followed_beneath),
		cmocka_unit_test(test_caps_and_modes),
		cmocka_unit_test(test_not_an_archive),
		cmocka_unit_test(test_no_links),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
