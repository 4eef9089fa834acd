/*
 * Finding a step's artifacts in the workspace: glob patterns relative to
 * the workspace ('*', '?', '[...]' within a component, '**' across
 * directories; a leading dot is matched only explicitly), found by a walk
 * that never follows a symbolic link; and opening a path strictly beneath
 * the workspace (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or a walk
 * with O_NOFOLLOW per component on kernels without openat2), so neither a
 * "../" nor a link can make the agent upload a file from outside.
 */
#ifndef SKIFF_AGENT_ARTIFACTS_H
#define SKIFF_AGENT_ARTIFACTS_H

#include <stddef.h>
#include <stdint.h>

#define ARTIFACTS_MAX_VISIT 200000
#define ARTIFACTS_MAX_DEPTH 64

/* 1 when the relative path matches the glob. */
int artifacts_match(const char *glob, const char *path);
/*
 * Walks the tree below wsfd and calls hit() for each regular file or
 * symbolic link (never followed) whose relative path matches one of the
 * globs, in a stable (sorted) order.
 * Visits at most ARTIFACTS_MAX_VISIT entries; returns -E2BIG if it had to
 * stop there, 0 otherwise.
 */
int artifacts_glob(int wsfd, char *const *globs, size_t nglobs,
    void (*hit)(void *arg, const char *path), void *arg);
/* Opens a regular file strictly beneath wsfd; refuses links and escapes. */
int artifacts_open(int wsfd, const char *path, int *fd, uint64_t *size);

#endif
