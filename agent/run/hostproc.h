/*
 * A step process on the host: the step's shell and script in a process
 * group of its own (so every descendant is signalled together), with
 * exactly the environment it is given, stdin from /dev/null, stdout and
 * stderr on pipes, no other fd inherited. Exit is noticed through a pidfd
 * on the event loop. Stopping sends SIGTERM to the group, then SIGKILL
 * after the grace period; when the main process ends, whatever it left in
 * its group is killed, so nothing of a step outlives it. What leaves the
 * group (setsid, a new process group) is the tracker's (proctrack.h):
 * placed() puts the process under tracking before it may exec, and
 * kill_rest() is called wherever the group is SIGKILLed. The process dies
 * with the agent (PR_SET_PDEATHSIG).
 */
#ifndef SKIFF_AGENT_HOSTPROC_H
#define SKIFF_AGENT_HOSTPROC_H

#include <stddef.h>
#include <sys/types.h>

struct ev_loop;
struct hostproc;

/*
 * What a host step may not see (docs/agent.md, "Host steps under their
 * own user"): in a mount namespace of its own, each of hide_dirs is an
 * empty tmpfs and each of hide_files (that exists) is /dev/null, but keep
 * (the job's directory, beneath one of hide_dirs) is there as it is.
 */
struct hostproc_iso {
	const char *const *hide_dirs;
	const char *const *hide_files;
	const char *keep;
};

struct hostproc_params {
	char *const *argv;	/* argv[0] is run as is if it has a '/', else
				 * looked up in the PATH of envp */
	char *const *envp;
	const char *cwd;
	int set_user;		/* switch to uid/gid (agent must be root) */
	uid_t uid;
	gid_t gid;
	/* In the agent between fork and exec; < 0: the process never runs. */
	int (*placed)(void *track_arg, pid_t pid);
	void (*kill_rest)(void *track_arg);
	void *track_arg;
	const struct hostproc_iso *iso;	/* NULL: sees what the agent sees */
};

/* stream 1 or 2; n == 0 means that stream reached its end. */
typedef void (*hostproc_output_fn)(void *arg, int stream, const char *data,
    size_t n);
/* status is a wait(2) status; -errno when it could not start. */
typedef void (*hostproc_exit_fn)(void *arg, int status);

int hostproc_start(struct ev_loop *loop, const struct hostproc_params *p,
    hostproc_output_fn out, hostproc_exit_fn exited, void *arg,
    struct hostproc **hp);
/* SIGTERM to the group, SIGKILL after grace_ms (0: SIGKILL now). */
void hostproc_stop(struct hostproc *hp, long grace_ms);
pid_t hostproc_pid(const struct hostproc *hp);
/* Kills the group if it still runs, reaps, frees. NULL is fine. */
void hostproc_free(struct hostproc *hp);

#endif
