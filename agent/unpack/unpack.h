/*
 * Unpacking a job input's .tar.gz beneath a directory fd: libarchive
 * reads the archive (a well-kept parser for a format attackers like), and
 * every entry is made by extract.c, beneath the root, never by a path the
 * kernel walks from /.
 */
#ifndef SKIFF_UNPACK_H
#define SKIFF_UNPACK_H

#include <stddef.h>
#include <stdint.h>

/* Caps when the caller names none. */
#define UNPACK_MAX_BYTES (16ULL << 30)
#define UNPACK_MAX_ENTRIES 100000ULL

/* 0, or -errno with err saying why. */
int unpack_targz(const char *archive, int dirfd, uint64_t max_bytes,
    uint64_t max_entries, char *err, size_t errlen);
/* UNPACK_NO_LINKS: symbolic and hard links are refused too (a cache,
 * which the agent packs without links). */
#define UNPACK_NO_LINKS 1u
int unpack_targz_flags(const char *archive, int dirfd, uint64_t max_bytes,
    uint64_t max_entries, unsigned flags, char *err, size_t errlen);

#endif
