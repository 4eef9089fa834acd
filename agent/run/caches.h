/*
 * Job caches in the runner (caches.c): restored before the first step,
 * saved after a job that succeeded, through the network half.
 */
#ifndef SKIFF_AGENT_CACHES_H
#define SKIFF_AGENT_CACHES_H

#include <stdint.h>

struct rjob;

/* The agent's own caps on a cache: its archive, what it unpacks to, and
 * its entries. */
#define RCACHES_MAX_ARCHIVE (8ULL << 30)
#define RCACHES_MAX_UNPACKED (16ULL << 30)
#define RCACHES_MAX_ENTRIES 1000000ULL

/* Restores every cache of the job (each failure a line in its log), then
 * done(j). */
void rcaches_restore(struct rjob *j, void (*done)(struct rjob *j));
/* The network half's answers (ids not ours are ignored). */
void rcaches_fetched(struct rjob *j, uint64_t id, int ok, uint64_t bytes,
    const char *sha256, const char *text);
void rcaches_put_done(struct rjob *j, uint64_t id, int ok, const char *text);
/* What finish() runs before next: next itself, or the saving of the
 * job's caches (after success) that calls next at its end. */
void (*rcaches_before(struct rjob *j, void (*next)(struct rjob *j)))(
    struct rjob *j);
/* The job is stopping: a restore under way ends now (its download
 * abandoned, its unpacker killed) and calls its done from the loop. A
 * save goes on: the job succeeded, and it is bounded by its caps. */
void rcaches_stop(struct rjob *j);
void rcaches_free(struct rjob *j);

#endif
