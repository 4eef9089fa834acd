/*
 * One archive entry -> file-system operations beneath a root directory fd
 * (common/beneath.h). Kept apart from the archive reader so that a fuzz
 * target can drive it with any sequence of entries and check that nothing
 * appears outside the root.
 *
 * Refused: absolute names and names with a ".." component; device files,
 * FIFOs and sockets; links whose text points outside the entry's
 * directory tree; links, hard links and entries that resolve outside the
 * root whatever links earlier entries (or earlier inputs) made; more
 * entries or bytes than the limits. Kept: directories, regular files
 * (set-id and sticky bits dropped, owners not restored), symbolic links
 * and hard links that stay inside.
 */
#ifndef SKIFF_EXTRACT_H
#define SKIFF_EXTRACT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum extract_type {
	EXTRACT_DIR,
	EXTRACT_FILE,
	EXTRACT_SYMLINK,
	EXTRACT_HARDLINK,
	EXTRACT_OTHER,	/* a device, a FIFO, a socket: always refused */
};

struct extract_entry {
	enum extract_type type;
	const char *path;
	const char *link;	/* a symlink's target, a hard link's source */
	mode_t mode;		/* permission bits from the archive */
	int64_t size;		/* a file's size */
	int64_t mtime;		/* seconds since the epoch; < 0: not set */
};

/* A file's bytes: 1 with a block at *off, 0 at the end, < 0 on error. */
typedef int (*extract_read_fn)(void *arg, const void **buf, size_t *n,
    int64_t *off);

struct extract {
	int rootfd;
	uint64_t max_bytes, max_entries;
	uint64_t bytes, entries;
	int no_links;		/* refuse symbolic and hard links too */
	char **links;		/* symlinks made, checked again at the end */
	size_t nlinks;
	char err[512];
};

void extract_init(struct extract *x, int rootfd, uint64_t max_bytes,
    uint64_t max_entries);
/* 0, or a negative errno with x->err saying which entry and why. */
int extract_entry(struct extract *x, const struct extract_entry *e,
    extract_read_fn rd, void *arg);
/*
 * After the last entry: every symlink made is resolved again, so that a
 * link made dangling (fine then) that later entries turned into a way out
 * is refused too. 0, or -EPERM with x->err naming the link.
 */
int extract_finish(struct extract *x);
void extract_free(struct extract *x);

#endif
