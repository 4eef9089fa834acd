/*
 * Tracking the processes of host steps, so that nothing a host step
 * starts (a background job, a double-forked daemon, a process that calls
 * setsid) outlives its job, or the agent: a restarted agent finds and
 * kills what a killed one left.
 *
 * Two ways, chosen once at start (docs/agent.md, "How host steps are
 * tracked"):
 *  - cgroup: when cgroup v2 is writable, a cgroup per job beneath
 *    <the agent's own cgroup>/skiff-<instance>; each step's process is
 *    moved into it by the agent before the step's program is exec'd, the
 *    whole cgroup is killed at each step's end and at the job's end, and
 *    the agent's leftover cgroups are killed at start. Nothing a step's
 *    processes do without root escapes it.
 *  - session: otherwise (or SKIFF_HOST_TRACKING=session). The step's
 *    process leads a session of its own and dies with the agent
 *    (PR_SET_PDEATHSIG); (pid, start time, session, boot) of each is
 *    recorded in the state directory before it execs, and the job's end
 *    or a restarted agent kills every process of that session. A process
 *    that calls setsid() again leaves the session and is not caught.
 */
#ifndef SKIFF_AGENT_PROCTRACK_H
#define SKIFF_AGENT_PROCTRACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ev_loop;
struct proctrack;
struct proctrack_job;

enum proctrack_mode { PROCTRACK_CGROUP, PROCTRACK_SESSION };

/* The fields of /proc/PID/stat that tracking needs. */
struct proctrack_stat {
	pid_t pid;
	char state;
	pid_t ppid;
	pid_t pgrp;
	pid_t session;
	uint64_t start;		/* field 22: clock ticks after boot */
};

/* Parses the text of /proc/PID/stat (n bytes, not NUL-terminated); the
 * command name may hold spaces and parentheses. -EINVAL if malformed. */
int proctrack_parse_stat(const char *s, size_t n, struct proctrack_stat *st)
    __attribute__((warn_unused_result));

/*
 * setting is SKIFF_HOST_TRACKING: "auto" (cgroup if it can, else
 * session), "cgroup" (fail without it) or "session". Kills what an
 * earlier run with the same instance left (in either way), logs the way
 * it uses. Blocks for a bounded time: call it before the loop runs.
 */
int proctrack_open(const char *setting, const char *state_dir,
    const char *instance, struct proctrack **out)
    __attribute__((warn_unused_result));
enum proctrack_mode proctrack_mode(const struct proctrack *pt);
void proctrack_free(struct proctrack *pt);

/* name identifies the job (<job id>.<attempt>); no '/'. */
int proctrack_job_new(struct proctrack *pt, const char *name,
    struct proctrack_job **out) __attribute__((warn_unused_result));
/* In the agent, after fork and before the child may exec: puts pid under
 * tracking. A failure means the child must not run. */
int proctrack_job_add(struct proctrack_job *pj, pid_t pid)
    __attribute__((warn_unused_result));
/* SIGKILL to every process of the job now (one pass; does not wait). */
void proctrack_job_kill(struct proctrack_job *pj);
/* Kills until nothing of the job is left (polled on the loop, bounded),
 * removes its cgroup or records, then calls done(arg). Once. */
void proctrack_job_end(struct proctrack_job *pj, struct ev_loop *loop,
    void (*done)(void *arg), void *arg);
/* Kills, waits a bounded time, cleans up, frees. NULL is fine. */
void proctrack_job_free(struct proctrack_job *pj);

#endif
