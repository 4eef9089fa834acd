/*
 * Removing a job's directory in a child process. A job may leave millions
 * of files (or a tree 10,000 deep) behind; removing them takes seconds to
 * minutes, and the loop meanwhile serves the heartbeats and logs of the
 * other jobs. The child runs fsx_remove_tree (no link is ever followed)
 * and reports its result in its exit status.
 */
#ifndef SKIFF_AGENT_RMTREE_H
#define SKIFF_AGENT_RMTREE_H

struct ev_loop;
struct rmtree;

/* err: 0, or the negative errno the removal ended with. */
typedef void (*rmtree_done_fn)(void *arg, int err);

/* Starts removing path; done is called from the loop, once. */
int rmtree_start(struct ev_loop *loop, const char *path, rmtree_done_fn done,
    void *arg, struct rmtree **out);
/* Stops waiting (the child is killed if it still runs); NULL is fine. */
void rmtree_free(struct rmtree *t);

#endif
