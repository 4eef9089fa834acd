/*
 * Job directories: <work_dir>/<job>.<attempt>/ holding workspace/ (the
 * steps' working directory, the same path on the host and in containers)
 * and inputs/ (read-only job inputs). Fresh for every job; removed after
 * it (jobprep.c) unless SKIFF_KEEP_WORKSPACE is set.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "fsx.h"
#include "log.h"
#include "run_int.h"

int rjob_prepare_workspace(struct rjob *j, char *err, size_t errlen)
{
	const char *work = j->rn->cfg->work_dir;
	int r;

	if (snprintf(j->dir, sizeof(j->dir), "%s/%s.%d", work, j->job_id,
	    j->attempt) >= (int)sizeof(j->dir) ||
	    snprintf(j->ws, sizeof(j->ws), "%s/workspace", j->dir) >=
	    (int)sizeof(j->ws) ||
	    snprintf(j->inputs, sizeof(j->inputs), "%s/inputs", j->dir) >=
	    (int)sizeof(j->inputs)) {
		snprintf(err, errlen, "work directory path too long");
		return -ENAMETOOLONG;
	}
	/* A leftover of a crashed run of the same attempt goes first. */
	fsx_remove_tree(j->dir);
	if ((r = fsx_mkdir_p(work, 0711)) < 0 || mkdir(j->dir, 0711) < 0 ||
	    mkdir(j->ws, 0777) < 0 || mkdir(j->inputs, 0755) < 0) {
		r = r < 0 ? r : -errno;
		snprintf(err, errlen, "cannot create the workspace under %s: %s",
		    work, strerror(-r));
		return r;
	}
	/* Steps in containers may run as any user: the workspace is theirs
	 * whatever the umask says. */
	chmod(j->ws, 0777);
	return 0;
}
