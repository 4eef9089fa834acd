/*
 * skiff-agent prepull IMAGE...: pulls execution images ahead of time
 * (Packer bakes them into the VM image so that a first job does not wait
 * for a pull). Shows each layer's progress; exits non-zero naming every
 * image that failed. Needs only SKIFF_DOCKER_HOST.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "docker.h"
#include "ev.h"
#include "log.h"
#include "prepull.h"
#include "xalloc.h"

struct prepull {
	struct ev_loop *loop;
	const char *image;
	int done;
	int err;
	int tries;
	char msg[512];
};

static void on_progress(void *arg, const char *line)
{
	struct prepull *p = arg;

	printf("%s: %s\n", p->image, line);
	fflush(stdout);
}

static void on_pulled(void *arg, const struct docker_res *r)
{
	struct prepull *p = arg;

	p->done = 1;
	p->err = r->err;
	p->tries += r->transient;
	snprintf(p->msg, sizeof(p->msg), "%s", r->msg ? r->msg : "");
	ev_break(p->loop);
}

/* One image, retried on transient failures; 0 or -errno. */
static int pull_one(struct ev_loop *loop, struct docker *d, const char *image)
{
	struct prepull p = { loop, image, 0, 0, 0, "" };

	for (int attempt = 0; attempt < 3; attempt++) {
		p.done = 0;
		if (docker_image_pull(d, image, NULL, on_progress, on_pulled, &p,
		    NULL) < 0)
			return -EIO;
		while (!p.done)
			if (ev_run(loop) < 0)
				return -EIO;
		if (p.err == 0 || p.tries == attempt)
			break;
		fprintf(stderr, "skiff-agent: %s: %s; trying again\n", image, p.msg);
	}
	if (p.err < 0)
		fprintf(stderr, "skiff-agent: prepull %s failed: %s\n", image, p.msg);
	else
		printf("%s: pulled\n", image);
	return p.err;
}

int prepull_run(const struct agent_config *cfg, int n, char **images)
{
	struct ev_loop *loop = NULL;
	struct docker *d = NULL;
	char err[512];
	int failed = 0;

	if (n == 0) {
		fprintf(stderr, "usage: skiff-agent prepull IMAGE...\n");
		return 64;
	}
	if (ev_loop_new(&loop) < 0)
		return 1;
	if (docker_open(loop, cfg->docker_host, 10000, &d, err, sizeof(err)) < 0) {
		fprintf(stderr, "skiff-agent: prepull: no Docker engine at %s: %s\n",
		    cfg->docker_host, err);
		ev_loop_free(loop);
		return 1;
	}
	char **bad = xcalloc((size_t)n, sizeof(char *));

	for (int i = 0; i < n; i++)
		if (pull_one(loop, d, images[i]) < 0)
			bad[failed++] = images[i];
	if (failed) {
		fprintf(stderr, "skiff-agent: prepull: %d of %d image%s failed:",
		    failed, n, n == 1 ? "" : "s");
		for (int i = 0; i < failed; i++)
			fprintf(stderr, " %s", bad[i]);
		fputc('\n', stderr);
	}
	free(bad);
	docker_free(d);
	ev_loop_free(loop);
	return failed ? 1 : 0;
}
