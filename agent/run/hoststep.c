/* Steps without an image: a process group on the host (hostproc.c),
 * under the job's tracking (proctrack.c). */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostproc.h"
#include "proctrack.h"
#include "stepx.h"
#include "strnum.h"
#include "xalloc.h"

struct hoststep {
	struct stepx x;
	struct hostproc *hp;
};

static void out_cb(void *arg, int stream, const char *d, size_t n)
{
	struct hoststep *h = arg;

	h->x.cbs.output(h->x.cbs.arg, stream, d, n);
}

static void exit_cb(void *arg, int status)
{
	struct hoststep *h = arg;
	struct stepx_result r = { -1, 0, NULL, NULL };

	if (WIFEXITED(status))
		r.code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		r.code = 128 + WTERMSIG(status);
	h->x.cbs.exited(h->x.cbs.arg, &r);
}

static void hs_stop(struct stepx *x, long grace_ms)
{
	hostproc_stop(((struct hoststep *)x)->hp, grace_ms);
}

static void hs_free(struct stepx *x)
{
	struct hoststep *h = (struct hoststep *)x;

	hostproc_free(h->hp);
	free(h);
}

static int placed(void *arg, pid_t pid)
{
	return proctrack_job_add(arg, pid);
}

static void kill_rest(void *arg)
{
	proctrack_job_kill(arg);
}

static const struct stepx_ops hoststep_ops = { hs_stop, hs_free };

/* "name", "uid" or "uid:gid" into ids; the agent must be root. */
static int resolve_user(const char *u, uid_t *uid, gid_t *gid, char *err,
    size_t errlen)
{
	int64_t v;
	char name[65];
	const char *colon = strchr(u, ':');

	if (geteuid() != 0) {
		snprintf(err, errlen, "step user '%s' needs an agent running as root",
		    u);
		return -EPERM;
	}
	snprintf(name, sizeof(name), "%.*s", colon ? (int)(colon - u) : 64, u);
	if (strnum_i64(name, 0, 0x7fffffff, &v, NULL) == 0) {
		struct passwd *pw = getpwuid((uid_t)v);
		*uid = (uid_t)v;
		*gid = pw ? pw->pw_gid : (gid_t)v;
	} else {
		struct passwd *pw = getpwnam(name);
		if (pw == NULL) {
			snprintf(err, errlen, "no user '%s' on this host", name);
			return -ENOENT;
		}
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}
	if (colon) {
		if (strnum_i64(colon + 1, 0, 0x7fffffff, &v, NULL) < 0) {
			snprintf(err, errlen, "step user '%s': group must be numeric", u);
			return -EINVAL;
		}
		*gid = (gid_t)v;
	}
	return 0;
}

int hoststep_start(struct ev_loop *loop, const struct stepx_spec *s,
    struct proctrack_job *pj, const struct stepx_cbs *cbs,
    struct stepx **out, char *err, size_t errlen)
{
	struct hoststep *h = xcalloc(1, sizeof(*h));
	struct hostproc_params p = { s->argv, s->envp, s->workdir, 0, 0, 0,
	    pj ? placed : NULL, pj ? kill_rest : NULL, pj, NULL };
	int r;

	h->x.ops = &hoststep_ops;
	h->x.cbs = *cbs;
	if (s->user && (r = resolve_user(s->user, &p.uid, &p.gid, err,
	    errlen)) < 0) {
		free(h);
		return r;
	}
	/* A job may choose another user, never root: the step user exists so
	 * that a job cannot be root on the host. */
	if (s->user && (p.uid == 0 || p.gid == 0) && s->step_user) {
		snprintf(err, errlen, "step user '%s': a host step never runs as "
		    "root (uid or gid 0)", s->user);
		free(h);
		return -EPERM;
	}
	p.set_user = s->user != NULL;
	if (!s->user && s->step_user) {
		p.set_user = 1;
		p.uid = s->uid;
		p.gid = s->gid;
	}
	p.iso = s->iso;
	if ((r = hostproc_start(loop, &p, out_cb, exit_cb, h, &h->hp)) < 0) {
		snprintf(err, errlen, "cannot start '%s': %s", s->argv[0],
		    strerror(-r));
		free(h);
		return r;
	}
	*out = &h->x;
	return 0;
}
