/*
 * Unpacking a job input's .tar.gz into a directory, refusing absolute
 * paths, "..", symbolic links that point outside, hard links that name
 * something outside, and device files, FIFOs and sockets; with
 * libarchive's secure extraction flags on top.
 */
#ifndef SKIFF_UNPACK_H
#define SKIFF_UNPACK_H

#include <stddef.h>

/* Changes the working directory to dir. 0, or -errno with err set. */
int unpack_targz(const char *archive, const char *dir, char *err,
    size_t errlen);

#endif
