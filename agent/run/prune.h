/*
 * Disk pressure: before a job, when the file system of the Docker root
 * has less free space than SKIFF_DISK_FLOOR, unused images are removed,
 * oldest first, sparing the keep-list (the images baked into the VM) and
 * the images of running jobs, until the floor is met or nothing is left
 * to remove. Never forced: an image a container uses stays. Nothing is
 * pruned while a job runs on it.
 */
#ifndef SKIFF_AGENT_PRUNE_H
#define SKIFF_AGENT_PRUNE_H

#include <stddef.h>
#include <stdint.h>

struct docker;

typedef void (*prune_note_fn)(void *arg, const char *line);
typedef void (*prune_done_fn)(void *arg);

struct prune_params {
	struct docker *d;
	int64_t floor_mb;
	char *const *keep;		/* image references never removed */
	size_t nkeep;
	char *const *in_use;		/* images of running jobs */
	size_t nin_use;
	prune_note_fn note;
	prune_done_fn done;		/* always called, once */
	void *arg;
};

/* Free MiB of the file system holding path (or its nearest readable
 * parent); -1 when unknown. */
int64_t prune_free_mb(const char *path);
/* Copies the lists: they may go once prune_start returns. */
void prune_start(const struct prune_params *p);

#endif
