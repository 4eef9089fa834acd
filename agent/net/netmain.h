/*
 * The network half as a process: `skiff-agent` started by its runner with
 * the socketpair as descriptor 3 (agent/main.c). It waits for INIT, puts
 * itself in its sandbox, and runs the queue protocol until the runner
 * says to go or goes itself.
 */
#ifndef SKIFF_AGENT_NETMAIN_H
#define SKIFF_AGENT_NETMAIN_H

#define NETMAIN_FD 3

int netmain_run(void);

#endif
