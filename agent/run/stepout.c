/*
 * Output variables of a job (docs/agent.md, "Outputs"): each step gets a
 * fresh empty file, <job dir>/outputs/step-<i>, named by $SKIFF_OUTPUT;
 * after the step the agent reads what it appended there, and takes the
 * ##skiff[set-output] messages of its output as they come (the job's
 * masker hands them over before masking). Later steps see
 * SKIFF_OUTPUT_<NAME>; complete carries them, masked.
 *
 * The outputs directory belongs to the agent (0711): a host step running
 * as the step user can write its file but not replace it; a container
 * step running as root, which has the directory bind-mounted, can replace
 * the file with anything (a link, a FIFO, a directory, a device, a huge
 * file). So the file is read beneath the directory, with no link on the
 * way, only if it is a regular file, and only up to a cap.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "buf.h"
#include "jsonx.h"
#include "mask.h"
#include "outputs.h"
#include "run_int.h"
#include "svcmsg.h"
#include "xalloc.h"

struct rjob_out {
	struct outputs *set;
	int dirfd;		/* <job dir>/outputs, or -1 */
	char dir[PATH_MAX];
	char file[PATH_MAX];	/* the running step's file ("" none) */
	char name[32];
};

static struct rjob_out *out_of(struct rjob *j)
{
	if (j->out == NULL) {
		j->out = xcalloc(1, sizeof(*j->out));
		j->out->set = outputs_new();
		j->out->dirfd = -1;
	}
	return j->out;
}

/* The outputs directory, made once per job. */
static int open_dir(struct rjob *j, struct rjob_out *o)
{
	int dfd, r = 0;

	if (o->dirfd >= 0)
		return 0;
	if (snprintf(o->dir, sizeof(o->dir), "%s/outputs", j->dir) >=
	    (int)sizeof(o->dir))
		return -ENAMETOOLONG;
	dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (mkdirat(dfd, "outputs", 0711) < 0 && errno != EEXIST)
		r = -errno;
	if (r == 0 && (o->dirfd = openat(dfd, "outputs", O_RDONLY |
	    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		r = -errno;
	close(dfd);
	/* The steps may write their files, not replace them (the umask may
	 * have said otherwise). */
	if (r == 0 && fchmod(o->dirfd, 0711) < 0)
		r = -errno;
	if (r < 0 && o->dirfd >= 0) {
		close(o->dirfd);
		o->dirfd = -1;
	}
	return r;
}

/* Made here too, so that a container created before its step (ahead of
 * it, or before the first) has the mount. */
const char *rjob_outputs_dir(struct rjob *j)
{
	struct rjob_out *o = out_of(j);

	return open_dir(j, o) == 0 ? o->dir : NULL;
}

void rjob_outputs_begin_step(struct rjob *j)
{
	struct rjob_out *o = out_of(j);
	int fd, r;

	o->file[0] = '\0';
	snprintf(o->name, sizeof(o->name), "step-%zu", j->step);
	if ((r = open_dir(j, o)) < 0) {
		rjob_note(j, "cannot make the outputs directory: %s; the step "
		    "has no $SKIFF_OUTPUT", strerror(-r));
		return;
	}
	/* Whatever an earlier step (root in a container) put there. */
	if (unlinkat(o->dirfd, o->name, 0) < 0 && errno == EISDIR)
		(void)unlinkat(o->dirfd, o->name, AT_REMOVEDIR);
	fd = openat(o->dirfd, o->name, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0666);
	if (fd < 0 || fchmod(fd, 0666) < 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		rjob_note(j, "cannot create the step's output file: %s; the step "
		    "has no $SKIFF_OUTPUT", strerror(-r));
		return;
	}
	close(fd);
	if (snprintf(o->file, sizeof(o->file), "%s/%s", o->dir, o->name) >=
	    (int)sizeof(o->file))
		o->file[0] = '\0';
}

void rjob_outputs_env(struct rjob *j, rjob_env_fn set, char ***env,
    size_t *n)
{
	struct rjob_out *o = j->out;
	char key[sizeof(OUTPUTS_ENV_PREFIX) + OUTPUTS_MAX_NAME];

	if (o == NULL)
		return;
	if (o->file[0])
		set(env, n, "SKIFF_OUTPUT", o->file);
	for (size_t i = 0; i < outputs_count(o->set); i++) {
		snprintf(key, sizeof(key), "%s%s", OUTPUTS_ENV_PREFIX,
		    outputs_name(o->set, i));
		set(env, n, key, outputs_value(o->set, i));
	}
}

static void file_note(void *arg, size_t line, const char *why)
{
	rjob_note(arg, "$SKIFF_OUTPUT line %zu refused: %s", line, why);
}

/* Reads at most OUTPUTS_MAX_FILE + 1 bytes of fd into b. */
static int read_capped(int fd, struct buf *b)
{
	char chunk[8192];

	for (;;) {
		ssize_t got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return 0;
		if (buf_append(b, chunk, (size_t)got) < 0)
			return -EFBIG;
	}
}

void rjob_outputs_end_step(struct rjob *j)
{
	struct rjob_out *o = j->out;
	struct buf b = BUF_INIT(OUTPUTS_MAX_FILE);
	struct stat st;
	size_t set;
	int fd, r;

	if (o == NULL || o->dirfd < 0 || o->file[0] == '\0')
		return;
	o->file[0] = '\0';
	r = beneath_open_regular(o->dirfd, o->name, BENEATH_NO_LINKS, &fd, &st);
	if (r == 0) {
		r = st.st_size > OUTPUTS_MAX_FILE ? -EFBIG : read_capped(fd, &b);
		close(fd);
	}
	if (r == 0) {
		set = outputs_parse(o->set, b.data ? b.data : "", b.len, file_note,
		    j);
		if (set)
			rjob_note(j, "%zu output%s set through $SKIFF_OUTPUT (%zu in "
			    "all)", set, set == 1 ? "" : "s", outputs_count(o->set));
	} else if (r == -EFBIG) {
		rjob_note(j, "$SKIFF_OUTPUT ignored: over %d bytes",
		    OUTPUTS_MAX_FILE);
	} else if (r == -ENOENT) {
		rjob_note(j, "$SKIFF_OUTPUT ignored: the step removed it");
	} else if (r == -ELOOP || r == -EXDEV) {
		rjob_note(j, "$SKIFF_OUTPUT ignored: the step replaced it with a "
		    "symbolic link");
	} else if (r == -EINVAL) {
		rjob_note(j, "$SKIFF_OUTPUT ignored: not a regular file");
	} else {
		rjob_note(j, "$SKIFF_OUTPUT ignored: %s", beneath_strerror(r));
	}
	if (b.data)
		memset(b.data, 0, b.len);
	buf_free(&b);
	if (unlinkat(o->dirfd, o->name, 0) < 0 && errno == EISDIR)
		(void)unlinkat(o->dirfd, o->name, AT_REMOVEDIR);
}

/* The job masker's mask_msg_fn: a ##skiff[set-output] line, unmasked. */
void rjob_output_msg(void *arg, const struct svcmsg *m)
{
	struct rjob *j = arg;
	struct rjob_out *o = out_of(j);
	const char *name = m ? svcmsg_get(m, "name") : NULL;
	const char *value = m ? svcmsg_get(m, "value") : NULL;
	int r;

	if (name == NULL || value == NULL) {
		rjob_note(j, "ignored a malformed ##skiff[set-output] message "
		    "(expected: ##skiff[set-output name='NAME' value='VALUE'], at "
		    "most %d bytes)", MASK_LINE_MAX);
		return;
	}
	if ((r = outputs_set(o->set, name, strlen(name), value,
	    strlen(value))) < 0)
		rjob_note(j, "refused a ##skiff[set-output] message: %s",
		    outputs_strerror(r));
	else
		rjob_note(j, "output '%s' set", name);
}

int rjob_outputs_final(struct rjob *j, struct seam_output **out, size_t *n)
{
	const struct outputs *set = j->out ? j->out->set : NULL;
	size_t c = outputs_count(set), k = 0, total = 0;
	struct seam_output *v;

	*out = NULL;
	*n = 0;
	if (c == 0)
		return 0;
	v = xcalloc(c, sizeof(*v));
	for (size_t i = 0; i < c; i++) {
		char *m = mask_string(j->mask, outputs_value(set, i));
		size_t ml = strlen(m), nl = strlen(outputs_name(set, i));
		if (ml > OUTPUTS_MAX_VALUE || total + nl + ml > OUTPUTS_MAX_TOTAL ||
		    !jsonx_utf8_valid(m, ml, NULL)) {
			/* Masking changed it (a short sealed secret, or one
			 * that is part of a character): the queue's caps are
			 * the agent's. */
			rjob_note(j, "output '%s' not sent: over its caps or not "
			    "UTF-8 once masked", outputs_name(set, i));
			free(m);
			continue;
		}
		total += nl + ml;
		v[k].name = xstrdup(outputs_name(set, i));
		v[k].value = m;
		k++;
	}
	*out = v;
	*n = k;
	return 0;
}

void rjob_outputs_final_free(struct seam_output *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)v[i].name);
		free((char *)v[i].value);
	}
	free(v);
}

void rjob_outputs_free(struct rjob *j)
{
	if (j->out == NULL)
		return;
	if (j->out->dirfd >= 0)
		close(j->out->dirfd);
	outputs_free(j->out->set);
	free(j->out);
	j->out = NULL;
}
