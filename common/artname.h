/*
 * Artifact names (docs/protocol.md section 4.5): 1 to 255 bytes of
 * '/'-separated components, none empty, "." or "..", no leading '/', no
 * NUL, control character, DEL or backslash. A valid name can be joined
 * below a directory without escaping it. Shared by the queue (which never
 * uses names as paths anyway: files are stored under generated ids) and
 * skiffctl (which restores artifacts under their names).
 */
#ifndef SKIFF_ARTNAME_H
#define SKIFF_ARTNAME_H

#include <stddef.h>

#define ARTNAME_MAX 255

/* 1 when the n bytes at s form a valid name. */
int artname_valid(const char *s, size_t n);

#endif
