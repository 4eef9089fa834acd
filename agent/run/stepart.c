/*
 * After each step: the files its artifact globs match and the files it
 * named with service messages are opened beneath the workspace and handed
 * to the network half for upload; the next step starts once every one of
 * them is done, so a later step cannot change a file while it uploads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifacts.h"
#include "config.h"
#include "job.h"
#include "log.h"
#include "mask.h"
#include "run_int.h"
#include "svcmsg.h"
#include "xalloc.h"

static int name_taken(struct rjob *j, const char *name)
{
	for (size_t i = 0; i < j->nart_names; i++)
		if (strcmp(j->art_names[i], name) == 0)
			return 1;
	return 0;
}

/* Hands one file over, within the job's caps. */
static void offer(struct rjob *j, const char *path, const char *name)
{
	const struct agent_config *cfg = j->rn->cfg;
	uint64_t size;
	int fd, r;

	if (!job_relpath_valid(path, 0)) {
		rjob_note(j, "artifact '%s' refused: it lies outside the workspace",
		    path);
		return;
	}
	if (!job_relpath_valid(name, 0)) {
		rjob_note(j, "artifact '%s': not a valid name (relative, no '..')",
		    name);
		return;
	}
	if (name_taken(j, name))
		return;
	if ((r = artifacts_open(j->wsfd, path, &fd, &size)) < 0) {
		rjob_note(j, "artifact '%s' refused: %s", path, r == -EXDEV ?
		    "it is a link or lies outside the workspace" : r == -EINVAL ?
		    "not a regular file" : strerror(-r));
		return;
	}
	if (j->art_count + 1 > (size_t)cfg->max_artifacts ||
	    j->art_bytes + size > (uint64_t)cfg->max_artifact_bytes << 20) {
		rjob_note(j, "artifact '%s' skipped: over the job's cap of %lld files "
		    "or %lld MiB", name, (long long)cfg->max_artifacts,
		    (long long)cfg->max_artifact_bytes);
		close(fd);
		return;
	}
	j->art_count++;
	j->art_bytes += size;
	j->art_names = xreallocarray(j->art_names, j->nart_names + 1,
	    sizeof(char *));
	j->art_names[j->nart_names++] = xstrdup(name);
	j->art_pending++;
	rjob_note(j, "artifact '%s' (%llu bytes) uploading", name,
	    (unsigned long long)size);
	/* The network half owns fd from here on. */
	j->rn->net->artifact(j->rn->net->ctx, j->jh, ++j->art_next_id, fd, name,
	    size);
}

static void glob_hit(void *arg, const char *path)
{
	offer(arg, path, path);
}

static void open_workspace(struct rjob *j)
{
	if (j->wsfd < 0)
		j->wsfd = open(j->ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

void rjob_after_step(struct rjob *j, void (*done)(struct rjob *j))
{
	const struct job_step *s = &j->job->steps[j->step];

	j->settled = done;
	if (j->stop == RSTOP_LOST || j->stop == RSTOP_QUIT ||
	    (s->nartifacts == 0 && j->ndecl == 0)) {
		rjob_free_artifacts(j);
		j->settled(j);
		return;
	}
	open_workspace(j);
	if (j->wsfd < 0) {
		rjob_note(j, "cannot open the workspace to collect artifacts");
	} else {
		if (artifacts_glob(j->wsfd, s->artifacts, s->nartifacts, glob_hit,
		    j) == -E2BIG)
			rjob_note(j, "artifact search stopped after %d entries",
			    ARTIFACTS_MAX_VISIT);
		for (size_t i = 0; i < j->ndecl; i++)
			offer(j, j->decl[i].path, j->decl[i].name);
	}
	rjob_free_artifacts(j);
	if (j->art_pending == 0)
		j->settled(j);
}

void rjob_artifact_done(struct rjob *j, uint64_t id, int ok, const char *error)
{
	(void)id;
	if (!ok) {
		rjob_note(j, "an artifact was not uploaded: %s", error);
		if (j->stop == RSTOP_NONE)
			rjob_fail(j, "artifact_failed", "artifact upload failed: %s",
			    error);
	}
	if (j->art_pending && --j->art_pending == 0 && j->exiting_step)
		j->settled(j);
}

/* A line of step output starting with '#': maybe a service message. */
void rjob_service_line(void *arg, const char *line, size_t n)
{
	struct rjob *j = arg;
	struct svcmsg m;
	int r = svcmsg_parse(line, n, &m);

	if (r == 0)
		return;
	/* The masker took the add-mask (set-secret) line before it got here
	 * (this is what it shows instead); rjob_add_mask did the rest. */
	if (r > 0 && (strcmp(m.type, "add-mask") == 0 ||
	    strcmp(m.type, "set-secret") == 0 ||
	    strcmp(m.type, "set-output") == 0))
		return;
	/* Every set-output line went to rjob_output_msg before masking, a
	 * malformed one too (and one too long to show, MASK_OUTPUT_OVER). */
	if (n >= sizeof(MASK_OUTPUT_PREFIX) - 1 &&
	    memcmp(line, MASK_OUTPUT_PREFIX, sizeof(MASK_OUTPUT_PREFIX) - 1) == 0)
		return;
	if (r < 0 || strcmp(m.type, "artifact") != 0 ||
	    svcmsg_get(&m, "path") == NULL) {
		rjob_note(j, "ignored a malformed or unknown ##skiff service message");
		return;
	}
	if (j->ndecl >= 1000) {
		rjob_note(j, "too many ##skiff[artifact] messages in one step");
		return;
	}
	const char *path = svcmsg_get(&m, "path"), *name = svcmsg_get(&m, "name");
	j->decl = xreallocarray(j->decl, j->ndecl + 1, sizeof(*j->decl));
	j->decl[j->ndecl].path = xstrdup(path);
	j->decl[j->ndecl].name = xstrdup(name && *name ? name : path);
	j->ndecl++;
}

/* A ##skiff[add-mask value='...'] line, held back by the job's masker:
 * the value is masked from here on, in every stream and later step. */
void rjob_add_mask(void *arg, const char *value, size_t n)
{
	struct rjob *j = arg;
	int r = value ? mask_add_runtime(j->mask, value, n) : -EBADMSG;

	if (r == -EBADMSG)
		rjob_note(j, "ignored a malformed ##skiff[set-secret] (add-mask) "
		    "message (expected: ##skiff[set-secret value='...'], at most "
		    "%d bytes)", MASK_LINE_MAX);
	else if (r == -EINVAL)
		rjob_note(j, "refused a ##skiff[set-secret] (add-mask) value: it "
		    "must be %d to %d bytes long", MASK_MIN_RUNTIME,
		    SVCMSG_MAX_VALUE);
	else if (r == -E2BIG)
		rjob_note(j, "refused a ##skiff[set-secret] (add-mask) value: the "
		    "job has %d masks already", MASK_MAX_RUNTIME);
	else if (r < 0)
		rjob_note(j, "refused a ##skiff[set-secret] (add-mask) value: the "
		    "job's masks are at their size cap");
}

/* Drops the declarations of the step that just ended. */
void rjob_free_artifacts(struct rjob *j)
{
	for (size_t i = 0; i < j->ndecl; i++) {
		free(j->decl[i].path);
		free(j->decl[i].name);
	}
	free(j->decl);
	j->decl = NULL;
	j->ndecl = 0;
}
