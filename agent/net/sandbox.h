/*
 * The network half's sandbox (docs/agent.md, "The two halves"): no new
 * privileges, no capabilities, Landlock (where the kernel has it) with a
 * read-only view of what TLS and name resolution read plus its own state
 * directory, and a seccomp-bpf allow-list of system calls. A call outside
 * the list kills the half with SIGSYS after one log line naming it; the
 * runner reports the death.
 */
#ifndef SKIFF_AGENT_SANDBOX_H
#define SKIFF_AGENT_SANDBOX_H

struct sandbox_info {
	int landlock_abi;	/* 0: the kernel has no Landlock */
	int seccomp;		/* 1: the filter is loaded */
};

/* Applies all of it to the calling process (every thread it starts
 * later inherits it). state_fd: the directory the half may write. Returns
 * 0 or -errno; a kernel without Landlock is not an error. */
int sandbox_apply(int state_fd, struct sandbox_info *info);

#endif
