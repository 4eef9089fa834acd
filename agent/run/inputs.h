/*
 * Job inputs (docs/protocol.md section 3.4): each is downloaded once, its
 * SHA-256 checked against the signed digest before anything uses it, and
 * kept in a cache by digest across jobs on this machine. It is then placed
 * read-only under the job's inputs directory (mounted read-only into
 * containers), or, with "extract", unpacked there from a .tar.gz by the
 * skiff-unpack helper (agent/unpack/) in a child process.
 */
#ifndef SKIFF_AGENT_INPUTS_H
#define SKIFF_AGENT_INPUTS_H

#include <stddef.h>
#include <stdint.h>

struct agent_config;
struct ev_loop;
struct job;
struct rinputs;

typedef void (*rinputs_note_fn)(void *arg, const char *line);
/* ok = 1 when every input is in place; error says which one failed. */
typedef void (*rinputs_done_fn)(void *arg, int ok, const char *error);

/* Downloads go through the network half (seam_to_net.fetch): the file
 * descriptor is written there; the answer comes to rinputs_fetched. */
struct rinputs_fetcher {
	void *ctx;
	void (*fetch)(void *ctx, uint64_t id, const char *url, int fd,
	    uint64_t max);
};

struct rinputs *rinputs_start(struct ev_loop *loop,
    const struct rinputs_fetcher *fetcher,
    const struct agent_config *cfg, const struct job *job,
    const char *inputs_dir, rinputs_note_fn note, rinputs_done_fn done,
    void *arg);
/* The answer to a fetch (ids not ours, or of an earlier try, are
 * ignored). */
void rinputs_fetched(struct rinputs *set, uint64_t id, int ok, long status,
    const char *error);
/* The job is stopping: downloads (and their retries) and extraction end
 * now, and done(arg, 0, why) comes from the loop. NULL, or a set that has
 * already told its outcome, is fine. */
void rinputs_stop(struct rinputs *set);
/* Stops downloads and extraction; no callback comes after. NULL is fine. */
void rinputs_free(struct rinputs *in);
/* Keeps the cache under its cap, removing the least recently used. */
void rinputs_trim_cache(const struct agent_config *cfg);
/* Where the skiff-unpack helper is. */
void inputs_unpacker(char *out, size_t n);

#endif
