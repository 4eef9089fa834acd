/*
 * The archive of a cache (docs/agent.md, "Caches"): a POSIX tar (ustar,
 * with a pax header for a name or size ustar cannot hold) of the paths a
 * job names, gzip-compressed, written from directory fds opened beneath
 * the workspace. Only directories and regular files go in: a symbolic
 * link, a FIFO, a device or a socket is skipped with a note (a link is
 * never followed, on the way to a path or inside it), so a restore may
 * refuse every link it meets. Owners are not kept (uid and gid 0), nor
 * set-id bits.
 */
#ifndef SKIFF_AGENT_CACHETAR_H
#define SKIFF_AGENT_CACHETAR_H

#include <stddef.h>
#include <stdint.h>

#define CACHETAR_MAX_DEPTH 128

struct cachetar_stats {
	uint64_t files, dirs, skipped;
	uint64_t bytes;		/* file bytes before compression */
};

typedef void (*cachetar_note_fn)(void *arg, const char *line);

/*
 * Writes the archive of paths (relative to wsfd, job_relpath_valid) to
 * outfd (not closed), at most max_bytes of file content and max_entries
 * entries (then -E2BIG). A path that does not exist is noted and left
 * out. 0, or a negative errno (an I/O error, a cap).
 */
int cachetar_pack(int wsfd, char *const *paths, size_t npaths, int outfd,
    int level, uint64_t max_bytes, uint64_t max_entries,
    cachetar_note_fn note, void *arg, struct cachetar_stats *st);

#endif
