/*
 * Archive entries -> file-system operations (agent/unpack/extract.c), in
 * any order and any mix. The input is text, one entry a line:
 *
 *   D path              a directory
 *   F path contents     a regular file
 *   S path target       a symbolic link
 *   H path source       a hard link to an earlier entry
 *   O path              a device, FIFO or socket
 *
 * The oracle: whatever is accepted or refused, nothing exists outside the
 * root afterwards. The root is <base>/outer/root; <base>/outer holds only
 * root and sentinel/keep, <base> only outer, and all three are checked
 * after every input (a chain of links climbs to whichever of them it can
 * reach by "..").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "extract.h"
#include "fsx.h"
#include "fuzz.h"

#define MAX_ENTRIES 64
#define MAX_LINE 512

static char base[64], outer[128], rootp[192], sentinel[192];

static void cleanup(void)
{
	if (base[0])
		fsx_remove_tree(base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char keep[256];

	(void)argc;
	(void)argv;
	snprintf(base, sizeof(base), "/tmp/skiff-fuzz-extract.XXXXXX");
	if (!mkdtemp(base))
		abort();
	snprintf(outer, sizeof(outer), "%s/outer", base);
	snprintf(rootp, sizeof(rootp), "%s/root", outer);
	snprintf(sentinel, sizeof(sentinel), "%s/sentinel", outer);
	snprintf(keep, sizeof(keep), "%s/keep", sentinel);
	if (mkdir(outer, 0755) < 0 || mkdir(sentinel, 0755) < 0 ||
	    fsx_write_file(keep, "keep", 4, 0644) < 0)
		abort();
	atexit(cleanup);
	return 0;
}

/* The names in dir are exactly the NULL-terminated list want. */
static void expect_only(const char *dir, const char *const *want)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		__builtin_trap();
	while ((e = readdir(d)) != NULL) {
		int ok = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
		for (const char *const *w = want; *w && !ok; w++)
			ok = !strcmp(e->d_name, *w);
		if (!ok) {
			fprintf(stderr, "fuzz_extract: '%s' appeared in %s\n",
			    e->d_name, dir);
			__builtin_trap();
		}
	}
	closedir(d);
}

static void oracle(void)
{
	static const char *const in_base[] = { "outer", NULL };
	static const char *const in_outer[] = { "root", "sentinel", NULL };
	static const char *const in_sentinel[] = { "keep", NULL };
	char keep[256];
	struct stat st;

	expect_only(base, in_base);
	expect_only(outer, in_outer);
	expect_only(sentinel, in_sentinel);
	snprintf(keep, sizeof(keep), "%s/keep", sentinel);
	if (lstat(keep, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != 4 ||
	    st.st_nlink != 1)
		__builtin_trap();
}

struct data {
	const char *p;
	size_t n;
	int sent;
};

static int read_data(void *arg, const void **buf, size_t *n, int64_t *off)
{
	struct data *d = arg;

	if (d->sent || d->n == 0)
		return 0;
	d->sent = 1;
	*buf = d->p;
	*n = d->n;
	*off = 0;
	return 1;
}

static enum extract_type type_of(char c)
{
	switch (c) {
	case 'D': return EXTRACT_DIR;
	case 'F': return EXTRACT_FILE;
	case 'S': return EXTRACT_SYMLINK;
	case 'H': return EXTRACT_HARDLINK;
	default: return EXTRACT_OTHER;
	}
}

static void apply_line(struct extract *x, char *line)
{
	char *path = line + 2, *rest = strchr(path, ' ');
	struct extract_entry e = { type_of(line[0]), path, NULL, 0644, 0, -1 };
	struct data d = { "", 0, 0 };

	if (rest) {
		*rest++ = '\0';
		e.link = rest;
		d.p = rest;
		d.n = strlen(rest);
	}
	if (e.type == EXTRACT_FILE) {
		e.size = (int64_t)d.n;
		e.link = NULL;
	}
	(void)extract_entry(x, &e, read_data, &d);
}

/* With no_links (a cache, "!" as the first byte): no link made at all. */
static void no_link_under(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[4096];
	struct stat st;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode) || (S_ISREG(st.st_mode) && st.st_nlink > 1))
			__builtin_trap();
		if (S_ISDIR(st.st_mode) && depth < 64)
			no_link_under(p, depth + 1);
	}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct extract x;
	char line[MAX_LINE + 1];
	size_t i = 0, count = 0;
	int rootfd;

	fsx_remove_tree(rootp);
	if (mkdir(rootp, 0755) < 0)
		abort();
	rootfd = open(rootp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		abort();
	extract_init(&x, rootfd, 1 << 20, MAX_ENTRIES);
	x.no_links = size > 0 && data[0] == '!';
	while (i < size && count < MAX_ENTRIES) {
		size_t n = 0;
		while (i < size && data[i] != '\n' && n < MAX_LINE)
			line[n++] = (char)data[i++];
		while (i < size && data[i] != '\n')
			i++;
		i++;
		line[n] = '\0';
		/* NUL bytes end the line's text, as a tar header's would. */
		if (strlen(line) < 3 || line[1] != ' ')
			continue;
		apply_line(&x, line);
		count++;
	}
	(void)extract_finish(&x);
	extract_free(&x);
	close(rootfd);
	oracle();
	if (size > 0 && data[0] == '!')
		no_link_under(rootp, 0);
	return 0;
}
