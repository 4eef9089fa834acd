/*
 * A container made ahead for a step (docs/docker.md "Containers made
 * ahead"): created and started as soon as its image is there, idling on
 * the step's shell reading a stdin that stays open and silent, so the
 * step itself is only an exec in it (dockerexec.c). Its labels and name
 * are a step container's, so the orphan sweep finds it after a crash.
 *
 * Life: warm_new starts it; warm_wait gets told when it is up or could
 * not be made; warm_end kills it and says whether anything in it was
 * killed for memory; warm_retire removes it in the background and frees
 * it, calling the spec's settled once nothing of it is left.
 */
#ifndef SKIFF_AGENT_WARM_H
#define SKIFF_AGENT_WARM_H

#include <stddef.h>
#include <stdint.h>

struct docker;
struct ev_loop;
struct docker_mount;
struct docker_label;
struct rimage;
struct warm;

struct warm_spec {
	struct ev_loop *loop;
	const char *image;
	const char *name;		/* container name */
	const char *idle;		/* what idles as its process: the shell */
	const struct docker_mount *mounts;
	size_t n_mounts;
	const struct docker_label *labels;
	size_t n_labels;
	int64_t memory;			/* bytes, 0: none */
	int64_t nano_cpus;
	int64_t pids;
	const char *network;		/* NULL: the engine's default */
	struct rimage *wait_for;	/* create once this image is ready */
	/* Told the container's id when it exists and when it is gone. */
	void (*track)(void *arg, const char *id, int live);
	/* Once, when the warm container is freed (after warm_retire). */
	void (*settled)(void *arg);
	void *arg;
};

/* Copies what it needs of spec. */
struct warm *warm_new(struct docker *d, const struct warm_spec *spec);
/* ready(arg) once it is up or has failed (at once if it is already);
 * a second call replaces the first. */
void warm_wait(struct warm *w, void (*ready)(void *arg), void *arg);
void warm_unwait(struct warm *w);
/* NULL when it is up; otherwise why it is not (and a reason code). */
const char *warm_error(const struct warm *w, const char **reason_code);
const char *warm_id(const struct warm *w);
/* A step has run in it and left it unfit for another (killed, failed). */
int warm_spent(const struct warm *w);
/* The steps it can serve: image, user and resources. */
int warm_fits(const struct warm *w, const char *image, int64_t memory,
    int64_t nano_cpus, int64_t pids);
/* Kills it (every process in it: it is a pid namespace), waits until it
 * is down, then done(arg, oom): oom is 1 when the engine saw a process of
 * it killed for memory, or the kernel's log has such a kill after
 * oom_mark (oomlog.h); suspect: a step ended by SIGKILL, worth asking the
 * engine again when it has not recorded one yet. Marks it spent. */
void warm_end(struct warm *w, int suspect, uint64_t oom_mark,
    void (*done)(void *arg, int oom), void *arg);
/* Removes it in the background and frees it; no callback but settled. */
void warm_retire(struct warm *w);
/* Leaving now (the agent is exiting): remove without waiting, free, no
 * callback at all. NULL is fine. */
void warm_abandon(struct warm *w);

#endif
