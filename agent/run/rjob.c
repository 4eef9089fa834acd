/*
 * The bottom of the runner's one-way chain (runner.c -> jobprep.c,
 * stepart.c -> this): what every part may do to a job without calling up,
 * a line in its log and its outcome. Completions go up by the callbacks
 * rjob_prepare and rjob_after_step were given.
 */
#include <stdarg.h>
#include <stdio.h>

#include "logpipe.h"
#include "run_int.h"

void rjob_note(struct rjob *j, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (j->lp)
		logpipe_printf(j->lp, "%s", line);
}

/* Sets the job's outcome unless one is already set. */
static void voutcome(struct rjob *j, enum seam_result res, const char *code,
    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void voutcome(struct rjob *j, enum seam_result res, const char *code,
    const char *fmt, va_list ap)
{
	if (j->have_outcome)
		return;
	j->have_outcome = 1;
	j->result = res;
	j->reason_code = code;
	vsnprintf(j->reason, sizeof(j->reason), fmt, ap);
}

void rjob_outcome(struct rjob *j, enum seam_result res, const char *code,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	voutcome(j, res, code, fmt, ap);
	va_end(ap);
}

void rjob_fail(struct rjob *j, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	voutcome(j, SEAM_FAILED, code, fmt, ap);
	va_end(ap);
}

