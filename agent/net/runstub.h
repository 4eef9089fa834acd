/*
 * The network half's end of the socketpair (net/runstub.c): the runner as
 * a seam_to_runner table, and the runner's messages handed to a
 * seam_net_in table. The first message must be INIT; anything the channel
 * refuses, or a message out of order, ends it.
 */
#ifndef SKIFF_AGENT_RUNSTUB_H
#define SKIFF_AGENT_RUNSTUB_H

#include "seam.h"

struct ev_loop;
struct runstub;

/* The runner is gone or broke the protocol (why: static text). */
typedef void (*runstub_end_fn)(void *arg, const char *why);

int runstub_new(struct ev_loop *loop, int fd, const struct seam_net_in *in,
    runstub_end_fn end, void *arg, struct runstub **out);
/* Where messages go from now on (after INIT: the network half itself). */
void runstub_set_in(struct runstub *s, const struct seam_net_in *in);
const struct seam_to_runner *runstub_table(struct runstub *s);
void runstub_free(struct runstub *s);

#endif
