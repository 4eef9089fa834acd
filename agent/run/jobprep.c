/*
 * Before the steps (inputs, images), after each step (artifacts), and
 * container steps.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "job.h"
#include "run_int.h"
#include "stepx.h"

void rjob_prepare(struct rjob *j)
{
	rjob_prepared(j);
}

void rjob_stop_pending(struct rjob *j)
{
	(void)j;
}

int rjob_start_container(struct rjob *j, const struct job_step *s,
    const struct stepx_spec *spec, const struct stepx_cbs *cbs, char *err,
    size_t errlen)
{
	(void)j;
	(void)spec;
	(void)cbs;
	snprintf(err, errlen, "step image '%s': no Docker engine is configured",
	    s->image);
	return -ENOSYS;
}

void rjob_free_extras(struct rjob *j)
{
	(void)j;
}
