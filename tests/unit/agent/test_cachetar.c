/* The cache archive writer (agent/run/cachetar.c): what goes in, what is
 * skipped, long names and the format, read back by a tar reader of the
 * test's own and by tar(1). */
#include "../common/testkit.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "cachetar.h"

struct fx {
	char dir[PATH_MAX];
	char ws[PATH_MAX + 8];
	char out[PATH_MAX + 16];
	int wsfd;
	char notes[8192];
};

struct entry {
	char name[1024];
	char type;
	uint64_t size;
	unsigned mode;
	char data[64];
};

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	tk_tmpdir(f->dir);
	snprintf(f->ws, sizeof(f->ws), "%s/ws", f->dir);
	snprintf(f->out, sizeof(f->out), "%s/out.tar.gz", f->dir);
	assert_int_equal(mkdir(f->ws, 0755), 0);
	f->wsfd = open(f->ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->wsfd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	close(f->wsfd);
	tk_rmdir(f->dir);
	free(f);
	return 0;
}

static void put_file(struct fx *f, const char *rel, const char *data,
    mode_t mode)
{
	char *p = xasprintf("%s/%s", f->ws, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static void put_dir(struct fx *f, const char *rel)
{
	char *p = xasprintf("%s/%s", f->ws, rel);

	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
}

static void note(void *arg, const char *line)
{
	struct fx *f = arg;
	size_t n = strlen(f->notes);

	snprintf(f->notes + n, sizeof(f->notes) - n, "%s\n", line);
}

static int pack(struct fx *f, char *const *paths, size_t n,
    struct cachetar_stats *st, uint64_t max_bytes)
{
	int fd = open(f->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r;

	assert_true(fd >= 0);
	f->notes[0] = '\0';
	r = cachetar_pack(f->wsfd, paths, n, fd, 6, max_bytes, 1000, note, f, st);
	close(fd);
	return r;
}

static uint64_t octal(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '7'; i++)
		v = v * 8 + (uint64_t)(p[i] - '0');
	return v;
}

/* Reads the archive back: every header's checksum checked, pax paths
 * applied. Returns the number of entries. */
static size_t read_back(struct fx *f, struct entry *v, size_t max)
{
	gzFile gz = gzopen(f->out, "rb");
	unsigned char h[512];
	char pax_path[1024] = "";
	size_t n = 0;
	int zeros = 0;

	assert_non_null(gz);
	while (gzread(gz, h, 512) == 512) {
		unsigned sum = 0;
		int empty = 1;
		for (int i = 0; i < 512; i++)
			empty &= h[i] == 0;
		if (empty) {
			zeros++;
			continue;
		}
		assert_int_equal(zeros, 0);
		for (int i = 0; i < 512; i++)
			sum += (i >= 148 && i < 156) ? ' ' : h[i];
		assert_int_equal(sum, octal(h + 148, 8));
		assert_memory_equal(h + 257, "ustar", 6);
		uint64_t size = octal(h + 124, 12);
		uint64_t padded = (size + 511) / 512 * 512;
		char *data = xmalloc(padded + 1);
		assert_int_equal(gzread(gz, data, (unsigned)padded), (int)padded);
		data[size] = '\0';
		if (h[156] == 'x') {
			char *p = strstr(data, " path=");
			assert_non_null(p);
			char *end = strchr(p, '\n');
			*end = '\0';
			snprintf(pax_path, sizeof(pax_path), "%s", p + 6);
			free(data);
			continue;
		}
		assert_true(n < max);
		struct entry *e = &v[n++];
		memset(e, 0, sizeof(*e));
		if (pax_path[0])
			snprintf(e->name, sizeof(e->name), "%s", pax_path);
		else
			snprintf(e->name, sizeof(e->name), "%.100s", (char *)h);
		pax_path[0] = '\0';
		e->type = (char)h[156];
		e->size = size;
		e->mode = (unsigned)octal(h + 100, 8);
		snprintf(e->data, sizeof(e->data), "%s", data);
		/* Owners are not kept. */
		assert_int_equal(octal(h + 108, 8), 0);
		assert_int_equal(octal(h + 116, 8), 0);
		free(data);
	}
	assert_int_equal(zeros, 2);
	gzclose(gz);
	return n;
}

static const struct entry *find(const struct entry *v, size_t n,
    const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

static void test_tree_links_and_specials(void **state)
{
	struct fx *f = *state;
	struct cachetar_stats st;
	struct entry v[64];
	char longname[300], *lp;
	char *paths[] = { "cache", "single.txt", "missing", "viaLink/x",
	    "cache" };

	put_dir(f, "cache");
	put_dir(f, "cache/sub");
	put_file(f, "cache/a.txt", "alpha", 0640);
	put_file(f, "cache/sub/exec", "#!/bin/sh\n", 04755);
	put_file(f, "single.txt", "one", 0644);
	memset(longname, 'n', 150);
	longname[150] = '\0';
	lp = xasprintf("cache/sub/%s", longname);
	put_file(f, lp, "long", 0600);
	assert_int_equal(symlinkat("/etc/passwd", f->wsfd, "cache/link"), 0);
	assert_int_equal(symlinkat("cache", f->wsfd, "viaLink"), 0);
	assert_int_equal(mkfifoat(f->wsfd, "cache/fifo", 0644), 0);

	assert_int_equal(pack(f, paths, 5, &st, UINT64_MAX), 0);
	size_t n = read_back(f, v, 64);
	assert_int_equal(st.files, 4);
	assert_int_equal(st.dirs, 2);
	assert_int_equal(st.skipped, 3);
	assert_int_equal(st.bytes, 5 + 10 + 3 + 4);
	/* The same path twice goes in once. */
	assert_int_equal(n, 6);
	const struct entry *e = find(v, n, "cache/a.txt");
	assert_non_null(e);
	assert_int_equal(e->type, '0');
	assert_int_equal(e->mode, 0640);
	assert_string_equal(e->data, "alpha");
	e = find(v, n, "cache/sub/exec");
	assert_non_null(e);
	assert_int_equal(e->mode, 04755 & 0777);
	assert_non_null(find(v, n, "cache"));
	assert_int_equal(find(v, n, "cache")->type, '5');
	assert_non_null(find(v, n, "single.txt"));
	e = find(v, n, lp);
	assert_non_null(e);
	assert_string_equal(e->data, "long");
	assert_null(find(v, n, "cache/link"));
	assert_null(find(v, n, "cache/fifo"));
	assert_null(find(v, n, "viaLink/x"));
	assert_non_null(strstr(f->notes, "cache/link: skipped: a symbolic link"));
	assert_non_null(strstr(f->notes, "cache/fifo: skipped: a FIFO"));
	assert_non_null(strstr(f->notes, "missing: not there, nothing to save"));
	assert_non_null(strstr(f->notes, "viaLink/x: skipped"));
	free(lp);

	/* tar(1) reads it too, where there is one. */
	if (access("/bin/tar", X_OK) == 0) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);
			dup2(null, 1);
			execl("/bin/tar", "tar", "-tzf", f->out, (char *)NULL);
			_exit(127);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

static void test_caps(void **state)
{
	struct fx *f = *state;
	struct cachetar_stats st;
	char *paths[] = { "big" };

	put_file(f, "big", "0123456789", 0644);
	assert_int_equal(pack(f, paths, 1, &st, 9), -E2BIG);
	assert_non_null(strstr(f->notes, "big: the cache would pass 9 bytes"));
	assert_int_equal(pack(f, paths, 1, &st, 10), 0);
}

static void test_empty_and_link_root(void **state)
{
	struct fx *f = *state;
	struct cachetar_stats st;
	struct entry v[4];
	char *paths[] = { "nothing", "root-link" };

	assert_int_equal(symlinkat("/", f->wsfd, "root-link"), 0);
	assert_int_equal(pack(f, paths, 2, &st, UINT64_MAX), 0);
	assert_int_equal(read_back(f, v, 4), 0);
	assert_int_equal(st.skipped, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tree_links_and_specials, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_and_link_root, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
