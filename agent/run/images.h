/*
 * The images of a job: each distinct image is fetched once per job,
 * according to its pull policy, starting as soon as the job starts (in
 * parallel with the steps that need no image); a container step waits
 * for its image only when it gets there. Registry credentials come from
 * the job's sealed secrets and are never logged.
 */
#ifndef SKIFF_AGENT_IMAGES_H
#define SKIFF_AGENT_IMAGES_H

#include <stddef.h>

struct docker;
struct ev_loop;
struct job;
struct rimage;
struct rimages;

enum rimage_state { RIMG_PENDING, RIMG_READY, RIMG_FAILED };

typedef void (*rimage_fn)(void *arg, struct rimage *im);
/* A line for the job log (pull progress and outcome). */
typedef void (*rimages_note_fn)(void *arg, const char *line);

/* Starts fetching every image of job; NULL when the job has none. */
struct rimages *rimages_start(struct ev_loop *loop, struct docker *d,
    const struct job *job, rimages_note_fn note, void *arg);
struct rimage *rimages_find(struct rimages *set, const char *ref);
enum rimage_state rimage_state(const struct rimage *im);
const char *rimage_error(const struct rimage *im);
/* Calls fn once the image is ready or failed (at once if it is). */
void rimage_wait(struct rimage *im, rimage_fn fn, void *arg);
void rimage_unwait(struct rimage *im, void *arg);
/* A ready image of the job, for the workspace clean-up; or NULL. */
const char *rimages_any_ready(const struct rimages *set);
/* Cancels what is in flight; no callback comes after. NULL is fine. */
void rimages_free(struct rimages *set);

#endif
