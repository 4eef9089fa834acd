/*
 * Service containers (services.h). Per service: [its image, pulled with
 * the job's others; the job's network] create, start, watch its exit,
 * inspect (the published ports), then wait until it is ready: at once
 * without "wait"; for "tcp", a connection from here to its published
 * port on 127.0.0.1 that the engine's port proxy does not drop within
 * PROBE_HOLD_MS (docker-proxy accepts on the host port before anything
 * listens in the container, and closes the connection it cannot pass
 * on); for "health", inspect until State.Health.Status is "healthy".
 * Retries back off from PROBE_FIRST_MS to PROBE_MAX_MS, until the
 * service's deadline.
 */
#include "services.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "docker.h"
#include "ev.h"
#include "images.h"
#include "job.h"
#include "jsonx.h"
#include "log.h"
#include "run_int.h"
#include "xalloc.h"

/* The labels of step containers (jobprep.c), and one of our own. */
#define LABEL_INSTANCE "io.skiff.instance"
#define LABEL_JOB "io.skiff.job"
#define LABEL_AGENT "io.skiff.agent"
#define LABEL_SERVICE "io.skiff.service"

#define PROBE_FIRST_MS 100
#define PROBE_MAX_MS 1000
#define PROBE_HOLD_MS 300
#define LOG_TAIL 50
#define LOG_TAIL_SHORT 3	/* when 50 lines are over the answer's cap */
#define LOG_LINE_MAX 1000
#define SWEEP_TRIES 10
#define SWEEP_DELAY_MS 1000

enum sv_state {
	SV_IMAGE,	/* waiting for its image and the network */
	SV_CREATE,
	SV_START,
	SV_INSPECT,
	SV_PROBE,	/* waiting until it is ready */
	SV_READY,
	SV_FAILED,
};

enum probe_phase { PR_IDLE, PR_CONNECT, PR_HOLD };

struct svc_port {
	int cport, hport;
};

struct rsvc {
	struct rservices *set;
	const struct job_service *js;
	struct rimage *image;
	int image_ok;
	enum sv_state state;
	char cname[200];
	char *id;
	struct docker_op *op;		/* create, start, inspect, logs */
	struct docker_op *exitw;	/* waits for it to stop running */
	struct docker_op *rm;		/* its removal at the end */
	int removed;			/* removal sent (or not needed) */
	struct ev_timer *timer;		/* next probe, or the hold */
	struct ev_io *io;
	int fd;
	enum probe_phase phase;
	int64_t started_ms, deadline_ms, backoff_ms;
	struct svc_port *ports;
	size_t nports;
	/* a failure waiting for its log lines */
	int log_tail;
	const char *fail_code;
	char fail_why[512];
};

struct rservices {
	struct rjob *j;
	char net[160];
	int net_made;			/* the engine has it (or may) */
	struct docker_op *net_op;	/* create or remove */
	int net_ready;
	struct rsvc *v;
	size_t n, nready;
	int inflight;			/* creates (network, containers) out */
	void (*ready_fn)(struct rjob *j);
	struct ev_timer *kick;		/* calls ready_fn from the loop */
	int kicked;
	int stopped;			/* a stop came while preparing */
	int ending;
	void (*end_fn)(struct rjob *j);
};

/* ---- small helpers ---- */

static int64_t now_ms(const struct rservices *set)
{
	return ev_now_update(set->j->rn->loop);
}

static struct docker *dk(const struct rservices *set)
{
	return set->j->rn->docker;
}

static void probe_close(struct rsvc *sv)
{
	ev_io_stop(sv->io);
	sv->io = NULL;
	if (sv->fd >= 0)
		close(sv->fd);
	sv->fd = -1;
	sv->phase = PR_IDLE;
}

/* Everything of sv in flight but a create and its removal. */
static void quiet(struct rsvc *sv)
{
	probe_close(sv);
	ev_timer_stop(sv->timer);
	docker_op_cancel(sv->exitw);
	sv->exitw = NULL;
	if (sv->state != SV_CREATE) {
		docker_op_cancel(sv->op);
		sv->op = NULL;
	}
	if (sv->state == SV_IMAGE && sv->image && !sv->image_ok)
		rimage_unwait(sv->image, sv);
}

/* The preparation is over (all ready, one failed, or a stop): tell the
 * runner from the loop, never from inside the caller's callback. */
static void prepared(struct rservices *set)
{
	if (set->ready_fn && !set->kicked) {
		set->kicked = 1;
		ev_timer_start(set->kick, 0);
	}
}

static void on_kick(struct ev_timer *t, void *arg)
{
	struct rservices *set = arg;
	void (*fn)(struct rjob *) = set->ready_fn;

	(void)t;
	set->ready_fn = NULL;
	if (fn)
		fn(set->j);
}

/* A log line of a service, printable and bounded, into the job's log. */
static void note_log_line(struct rsvc *sv, const char *s, size_t n)
{
	char line[LOG_LINE_MAX + 4];
	size_t o = 0, keep;

	if (n > 0 && s[n - 1] == '\r')
		n--;
	/* not inside a UTF-8 sequence */
	keep = n > LOG_LINE_MAX ? jsonx_utf8_cut(s, n, LOG_LINE_MAX) : n;
	for (size_t i = 0; i < keep; i++) {
		unsigned char c = (unsigned char)s[i];
		line[o++] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
	}
	if (keep < n) {
		memcpy(line + o, "...", 3);
		o += 3;
	}
	line[o] = '\0';
	rjob_note(sv->set->j, "service '%s' | %s", sv->js->name, line);
}

static void note_logs(struct rsvc *sv, const char *logs, size_t len)
{
	size_t at = len, lines = 0;

	if (len > 0 && logs[len - 1] == '\n')
		len--;
	if (len == 0) {
		rjob_note(sv->set->j, "service '%s' wrote nothing to its log",
		    sv->js->name);
		return;
	}
	/* the last LOG_TAIL lines, however the engine counted */
	at = len;
	while (at > 0 && lines < LOG_TAIL) {
		at--;
		if (logs[at] == '\n' && ++lines == LOG_TAIL) {
			at++;
			break;
		}
	}
	rjob_note(sv->set->j, "service '%s': its last log lines:", sv->js->name);
	while (at <= len) {
		const char *nl = memchr(logs + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - (logs + at)) : len - at;
		note_log_line(sv, logs + at, n);
		if (nl == NULL)
			break;
		at += n + 1;
	}
}

/* The failure's outcome and log lines are in: the job goes on to end.
 * Once the steps run, the running one is stopped (it would wait for a
 * service that is gone) and no later step starts. */
static void failed_settled(struct rsvc *sv)
{
	struct rservices *set = sv->set;
	int steps_ran = set->ready_fn == NULL;

	rjob_fail(set->j, sv->fail_code, "%s", sv->fail_why);
	prepared(set);
	if (steps_ran)
		rjob_stop(set->j, RSTOP_CANCEL);
}

static void on_fail_logs(void *arg, const struct docker_res *r)
{
	struct rsvc *sv = arg;

	sv->op = NULL;
	/* Long lines: fewer of them (each is cut to LOG_LINE_MAX anyway). */
	if (r->err == -E2BIG && sv->log_tail > LOG_TAIL_SHORT) {
		sv->log_tail = LOG_TAIL_SHORT;
		if (docker_container_logs(dk(sv->set), sv->id, sv->log_tail,
		    on_fail_logs, sv, &sv->op) == 0)
			return;
	}
	if (r->err == 0)
		note_logs(sv, r->logs, r->logs_len);
	else
		rjob_note(sv->set->j, "service '%s': cannot read its log: %s",
		    sv->js->name, r->msg);
	failed_settled(sv);
}

static void svc_fail(struct rsvc *sv, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The job fails for sv, after the service's last log lines. */
static void svc_fail(struct rsvc *sv, const char *code, const char *fmt, ...)
{
	struct rservices *set = sv->set;
	va_list ap;

	if (sv->state == SV_FAILED || set->ending)
		return;
	va_start(ap, fmt);
	vsnprintf(sv->fail_why, sizeof(sv->fail_why), fmt, ap);
	va_end(ap);
	quiet(sv);
	sv->state = SV_FAILED;
	sv->fail_code = code;
	rjob_note(set->j, "%s", sv->fail_why);
	sv->log_tail = LOG_TAIL;
	if (sv->id && docker_container_logs(dk(set), sv->id, sv->log_tail,
	    on_fail_logs, sv, &sv->op) == 0)
		return;
	failed_settled(sv);
}

/* ---- readiness ---- */

static void ready(struct rsvc *sv)
{
	struct rservices *set = sv->set;
	struct buf where = BUF_INIT(4096);

	probe_close(sv);
	ev_timer_stop(sv->timer);
	sv->state = SV_READY;
	for (size_t i = 0; i < sv->nports; i++)
		buf_printf(&where, "%s%s:%d, 127.0.0.1:%d on the host",
		    i ? "; " : ": ", sv->js->name, sv->ports[i].cport,
		    sv->ports[i].hport);
	rjob_note(set->j, "service '%s' is ready after %.3fs%s", sv->js->name,
	    (double)(now_ms(set) - sv->started_ms) / 1000.0, buf_cstr(&where));
	buf_free(&where);
	if (++set->nready == set->n)
		prepared(set);
}

static int host_port(const struct rsvc *sv, int cport)
{
	for (size_t i = 0; i < sv->nports; i++)
		if (sv->ports[i].cport == cport)
			return sv->ports[i].hport;
	return 0;
}

static void probe(struct rsvc *sv);

/* Not ready yet: again after the backoff, unless the deadline passed. */
static void again(struct rsvc *sv)
{
	int64_t left = sv->deadline_ms - now_ms(sv->set);

	probe_close(sv);
	/* The job failed meanwhile (an input, another service): no step will
	 * run, so there is nothing to wait for. */
	if (sv->set->j->have_outcome) {
		prepared(sv->set);
		return;
	}
	if (left <= 0) {
		svc_fail(sv, "service_failed", "service '%s' was not ready within "
		    "%llds (wait: %s)", sv->js->name,
		    (long long)sv->js->wait_timeout, sv->js->wait == JOB_WAIT_TCP ?
		    "tcp" : "health");
		return;
	}
	ev_timer_start(sv->timer, sv->backoff_ms < left ? sv->backoff_ms : left);
	sv->backoff_ms = sv->backoff_ms * 2 > PROBE_MAX_MS ? PROBE_MAX_MS :
	    sv->backoff_ms * 2;
}

static void on_probe_io(struct ev_io *w, int fd, unsigned events, void *arg)
{
	struct rsvc *sv = arg;
	int err = 0;
	socklen_t len = sizeof(err);
	char c;

	(void)w;
	(void)events;
	if (sv->phase == PR_CONNECT) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			again(sv);
			return;
		}
		/* Connected, perhaps only to the engine's proxy: held? */
		sv->phase = PR_HOLD;
		ev_io_set(sv->io, EV_READ);
		ev_timer_start(sv->timer, PROBE_HOLD_MS);
		return;
	}
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		ready(sv);	/* it spoke first */
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		again(sv);	/* dropped: nothing listens behind the port */
}

static void probe_tcp(struct rsvc *sv)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		again(sv);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)host_port(sv, sv->js->wait_port));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sv->fd = fd;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 &&
	    errno != EINPROGRESS) {
		again(sv);
		return;
	}
	sv->phase = PR_CONNECT;
	sv->io = ev_io_start(sv->set->j->rn->loop, fd, EV_WRITE, on_probe_io, sv);
	if (sv->io == NULL)
		again(sv);
}

static void on_health(void *arg, const struct docker_res *r)
{
	struct rsvc *sv = arg;

	sv->op = NULL;
	if (r->err < 0) {
		svc_fail(sv, "service_failed", "service '%s': cannot inspect it: %s",
		    sv->js->name, r->msg);
	} else if (!r->running) {
		svc_fail(sv, "service_failed", "service '%s' exited with code %lld "
		    "before it was ready", sv->js->name, (long long)r->exit_code);
	} else if (strcmp(r->svc->health, "healthy") == 0) {
		ready(sv);
	} else if (strcmp(r->svc->health, "unhealthy") == 0) {
		svc_fail(sv, "service_failed", "service '%s' is unhealthy (its "
		    "image's HEALTHCHECK failed)", sv->js->name);
	} else {
		again(sv);
	}
}

static void probe(struct rsvc *sv)
{
	if (sv->js->wait == JOB_WAIT_TCP) {
		probe_tcp(sv);
		return;
	}
	if (docker_service_inspect(dk(sv->set), sv->id, on_health, sv,
	    &sv->op) < 0)
		svc_fail(sv, "service_failed", "service '%s': cannot inspect it",
		    sv->js->name);
}

static void on_timer(struct ev_timer *t, void *arg)
{
	struct rsvc *sv = arg;

	(void)t;
	if (sv->phase == PR_HOLD) {
		ready(sv);	/* the connection held: something listens */
		return;
	}
	probe(sv);
}

/* ---- the container ---- */

static void on_exit_seen(void *arg, const struct docker_res *r)
{
	struct rsvc *sv = arg;
	struct rservices *set = sv->set;

	sv->exitw = NULL;
	if (set->ending)
		return;
	if (r->err < 0) {
		log_warn("cannot watch a service container", "job=%s service=%s "
		    "error=%s", set->j->job_id, sv->js->name, logq(r->msg));
		return;
	}
	int steps_ran = sv->state == SV_READY && set->ready_fn == NULL;

	svc_fail(sv, "service_failed", "service '%s' exited with code %lld%s",
	    sv->js->name, (long long)r->exit_code, steps_ran ?
	    " while the steps ran" : " before it was ready");
}

static void on_inspected(void *arg, const struct docker_res *r)
{
	struct rsvc *sv = arg;
	const struct job_service *js = sv->js;

	sv->op = NULL;
	if (r->err < 0) {
		svc_fail(sv, "service_failed", "service '%s': cannot inspect it: %s",
		    js->name, r->msg);
		return;
	}
	sv->ports = xcalloc(js->nports ? js->nports : 1, sizeof(*sv->ports));
	for (size_t i = 0; i < js->nports; i++) {
		sv->ports[i].cport = js->ports[i];
		for (size_t k = 0; k < r->svc->n_ports; k++) {
			const struct docker_port *p = &r->svc->ports[k];
			if (p->container_port == js->ports[i] &&
			    strcmp(p->host_ip, "127.0.0.1") == 0)
				sv->ports[i].hport = p->host_port;
		}
		sv->nports++;
		if (sv->ports[i].hport == 0 && r->running) {
			svc_fail(sv, "service_failed", "service '%s': the engine did "
			    "not publish port %d on 127.0.0.1", js->name, js->ports[i]);
			return;
		}
	}
	if (!r->running) {
		svc_fail(sv, "service_failed", "service '%s' exited with code %lld "
		    "before it was ready", js->name, (long long)r->exit_code);
		return;
	}
	if (js->wait == JOB_WAIT_HEALTH && !r->svc->has_healthcheck) {
		svc_fail(sv, "service_failed", "service '%s': wait is health but "
		    "image %s has no HEALTHCHECK", js->name, js->image);
		return;
	}
	sv->state = SV_PROBE;
	if (js->wait == JOB_WAIT_NONE)
		ready(sv);
	else if (js->wait == JOB_WAIT_HEALTH && strcmp(r->svc->health,
	    "healthy") == 0)
		ready(sv);
	else
		probe(sv);
}

static void on_started(void *arg, const struct docker_res *r)
{
	struct rsvc *sv = arg;
	struct rservices *set = sv->set;

	sv->op = NULL;
	if (r->err < 0) {
		svc_fail(sv, "service_failed", "service '%s' did not start: %s",
		    sv->js->name, r->msg);
		return;
	}
	sv->started_ms = now_ms(set);
	sv->deadline_ms = sv->started_ms + sv->js->wait_timeout * 1000;
	sv->state = SV_INSPECT;
	/* Its end, whenever it comes, fails the job. */
	if (docker_container_wait(dk(set), sv->id, NULL, on_exit_seen, sv,
	    &sv->exitw) < 0 ||
	    docker_service_inspect(dk(set), sv->id, on_inspected, sv,
	    &sv->op) < 0)
		svc_fail(sv, "service_failed", "service '%s': cannot watch it",
		    sv->js->name);
}

static void on_removed(void *arg, const struct docker_res *r)
{
	struct rsvc *sv = arg;
	char *id = sv->id;

	sv->rm = NULL;
	if (r->err < 0 && r->err != -ENOENT)
		log_warn("cannot remove a service container; the sweep will",
		    "container=%.12s error=%s", id, logq(r->msg));
	sv->id = NULL;
	rjob_track_container(sv->set->j, id, 0);
	free(id);
}

static void remove_svc(struct rsvc *sv)
{
	sv->removed = 1;
	if (sv->id == NULL)
		return;
	if (docker_container_remove(dk(sv->set), sv->id, on_removed, sv,
	    &sv->rm) < 0) {
		struct docker_res r = { .err = -EIO, .msg = "not sent" };
		on_removed(sv, &r);
	}
}

static void end_step(struct rservices *set);

static void on_created(void *arg, const struct docker_res *r)
{
	struct rsvc *sv = arg;
	struct rservices *set = sv->set;

	sv->op = NULL;
	set->inflight--;
	if (r->err == 0) {
		sv->id = xstrdup(r->id);
		rjob_track_container(set->j, sv->id, 1);
	}
	if (set->ending) {
		remove_svc(sv);
		end_step(set);
		return;
	}
	if (set->stopped) {
		sv->state = SV_START;	/* not started; removed at the end */
		return;
	}
	if (r->err < 0) {
		sv->state = SV_START;	/* past the create: quiet() cancels */
		svc_fail(sv, r->err == -ENOENT ? "pull_failed" : "service_failed",
		    "service '%s': cannot create its container: %s", sv->js->name,
		    r->msg);
		return;
	}
	sv->state = SV_START;
	if (docker_container_start(dk(set), sv->id, on_started, sv, &sv->op) < 0)
		svc_fail(sv, "service_failed", "service '%s': cannot start it",
		    sv->js->name);
}

static void create(struct rsvc *sv)
{
	struct rservices *set = sv->set;
	struct rjob *j = set->j;
	const struct agent_config *cfg = j->rn->cfg;
	const struct job_service *js = sv->js;
	struct docker_label labels[] = {
		{ LABEL_INSTANCE, j->rn->instance },
		{ LABEL_JOB, j->job_id },
		{ LABEL_AGENT, j->rn->agent_name },
		{ LABEL_SERVICE, js->name },
	};
	char **env = xcalloc(js->nenv + 1, sizeof(char *));
	struct docker_service ds = {
		sv->cname, js->image, js->command, env, labels, 4, set->net,
		js->name, js->ports, js->nports, cfg->step_memory_mb << 20,
		cfg->step_nano_cpus, cfg->step_pids,
	};
	char **cmd = NULL;

	if (!set->net_ready || !sv->image_ok || sv->state != SV_IMAGE ||
	    set->stopped)
		return;
	for (size_t i = 0; i < js->nenv; i++)
		env[i] = xasprintf("%s=%s", js->env[i].name, js->env[i].value);
	if (js->command) {
		cmd = xcalloc(js->ncommand + 1, sizeof(char *));
		memcpy(cmd, js->command, js->ncommand * sizeof(char *));
		ds.cmd = cmd;
	}
	sv->state = SV_CREATE;
	if (docker_service_create(dk(set), &ds, on_created, sv, &sv->op) == 0) {
		set->inflight++;
	} else {
		sv->state = SV_START;
		svc_fail(sv, "service_failed", "service '%s': cannot create its "
		    "container", js->name);
	}
	for (size_t i = 0; i < js->nenv; i++)
		free(env[i]);
	free(env);
	free(cmd);
}

static void on_image(void *arg, struct rimage *im)
{
	struct rsvc *sv = arg;

	if (rimage_state(im) == RIMG_FAILED) {
		sv->image_ok = 1;	/* no longer waited for */
		svc_fail(sv, "pull_failed", "service '%s': image %s: %s",
		    sv->js->name, sv->js->image, rimage_error(im));
		return;
	}
	sv->image_ok = 1;
	create(sv);
}

/* ---- the network ---- */

static void on_net_created(void *arg, const struct docker_res *r)
{
	struct rservices *set = arg;

	set->net_op = NULL;
	set->inflight--;
	if (r->err < 0) {
		set->net_made = 0;
		if (!set->ending) {
			for (size_t i = 0; i < set->n; i++)
				quiet(&set->v[i]);
			rjob_note(set->j, "services: cannot make network %s: %s",
			    set->net, r->msg);
			rjob_fail(set->j, "service_failed", "cannot make the job's "
			    "network for its services: %s", r->msg);
			prepared(set);
			return;
		}
	}
	if (set->ending) {
		end_step(set);
		return;
	}
	set->net_ready = 1;
	for (size_t i = 0; i < set->n; i++)
		create(&set->v[i]);
}

void rservices_start(struct rjob *j, void (*done)(struct rjob *j))
{
	const struct job *job = j->job;
	struct runner *rn = j->rn;
	struct rservices *set;

	if (job->nservices == 0) {
		done(j);
		return;
	}
	set = xcalloc(1, sizeof(*set));
	j->services = set;
	set->j = j;
	set->ready_fn = done;
	set->kick = ev_timer_new(rn->loop, on_kick, set);
	snprintf(set->net, sizeof(set->net), "skiff-%s-%d", j->job_id,
	    j->attempt);
	set->v = xcalloc(job->nservices, sizeof(*set->v));
	set->n = job->nservices;
	for (size_t i = 0; i < set->n; i++) {
		struct rsvc *sv = &set->v[i];
		sv->set = set;
		sv->js = &job->services[i];
		sv->fd = -1;
		sv->backoff_ms = PROBE_FIRST_MS;
		sv->timer = ev_timer_new(rn->loop, on_timer, sv);
		snprintf(sv->cname, sizeof(sv->cname), "skiff-%s-%d-svc-%s",
		    j->job_id, j->attempt, sv->js->name);
	}
	if (rn->docker == NULL || !rn->docker_ready) {
		rjob_note(j, "services: no Docker engine is available on this agent");
		rjob_fail(j, "service_failed", "the job has services and this agent "
		    "has no Docker engine");
		prepared(set);
		return;
	}
	rjob_note(j, "services: starting %zu on network %s", set->n, set->net);
	struct docker_label labels[] = {
		{ LABEL_INSTANCE, rn->instance },
		{ LABEL_JOB, j->job_id },
		{ LABEL_AGENT, rn->agent_name },
	};
	set->net_made = 1;
	if (docker_network_create(rn->docker, set->net, labels, 3,
	    on_net_created, set, &set->net_op) == 0) {
		set->inflight++;
	} else {
		set->net_made = 0;
		rjob_fail(j, "service_failed", "cannot make the job's network");
		prepared(set);
		return;
	}
	for (size_t i = 0; i < set->n; i++) {
		struct rsvc *sv = &set->v[i];
		sv->image = rimages_find(j->images, sv->js->image);
		if (sv->image == NULL) {
			svc_fail(sv, "internal", "service '%s': its image was not "
			    "fetched", sv->js->name);
			return;
		}
		rimage_wait(sv->image, on_image, sv);
		if (j->services == NULL)
			return;
	}
}

void rservices_stop(struct rjob *j)
{
	struct rservices *set = j->services;

	if (set == NULL || set->ready_fn == NULL)
		return;
	set->stopped = 1;
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i].state != SV_READY && set->v[i].state != SV_FAILED)
			quiet(&set->v[i]);
	prepared(set);
}

const char *rservices_network(const struct rjob *j)
{
	return j->services && j->services->net_ready ? j->services->net : NULL;
}

void rservices_env(const struct rjob *j, int host,
    void (*set_fn)(char ***env, size_t *n, const char *k, const char *v),
    char ***env, size_t *n)
{
	const struct rservices *set = j->services;
	char k[JOB_MAX_SERVICE_NAME + 64], v[16];

	for (size_t i = 0; set && i < set->n; i++) {
		const struct rsvc *sv = &set->v[i];
		const char *name = sv->js->env_name;
		snprintf(k, sizeof(k), "SKIFF_SERVICE_%s_HOST", name);
		set_fn(env, n, k, host ? "127.0.0.1" : sv->js->name);
		for (size_t p = 0; p < sv->nports; p++) {
			snprintf(v, sizeof(v), "%d", host ? sv->ports[p].hport :
			    sv->ports[p].cport);
			if (p == 0) {
				snprintf(k, sizeof(k), "SKIFF_SERVICE_%s_PORT", name);
				set_fn(env, n, k, v);
			}
			snprintf(k, sizeof(k), "SKIFF_SERVICE_%s_PORT_%d", name,
			    sv->ports[p].cport);
			set_fn(env, n, k, v);
		}
	}
}

/* ---- the end ---- */

static void on_net_removed(void *arg, const struct docker_res *r)
{
	struct rservices *set = arg;
	void (*fn)(struct rjob *) = set->end_fn;

	set->net_op = NULL;
	if (r->err < 0 && r->err != -ENOENT)
		log_warn("cannot remove a job's network; the sweep will",
		    "network=%s error=%s", set->net, logq(r->msg));
	set->net_made = 0;
	set->end_fn = NULL;
	fn(set->j);
}

/* No container of the job is left: the network can go. */
static void containers_gone(struct rjob *j)
{
	struct rservices *set = j->services;
	void (*fn)(struct rjob *) = set->end_fn;

	if (set->net_made && docker_network_remove(dk(set), set->net,
	    on_net_removed, set, &set->net_op) == 0)
		return;
	set->end_fn = NULL;
	fn(j);
}

/* Once nothing is being created any more. */
static void end_step(struct rservices *set)
{
	if (set->inflight > 0 || set->end_fn == NULL)
		return;
	rjob_when_containers_gone(set->j, containers_gone);
}

void rservices_end(struct rjob *j, void (*done)(struct rjob *j))
{
	struct rservices *set = j->services;

	if (set == NULL) {
		rjob_when_containers_gone(j, done);
		return;
	}
	set->ending = 1;
	set->end_fn = done;
	set->ready_fn = NULL;
	ev_timer_stop(set->kick);
	for (size_t i = 0; i < set->n; i++) {
		struct rsvc *sv = &set->v[i];
		quiet(sv);
		if (sv->state != SV_CREATE && !sv->removed)
			remove_svc(sv);
	}
	end_step(set);
}

void rservices_free(struct rjob *j)
{
	struct rservices *set = j->services;

	if (set == NULL)
		return;
	/* Nothing of the job may be called back from here on. */
	j->when_gone = NULL;
	for (size_t i = 0; i < set->n; i++) {
		struct rsvc *sv = &set->v[i];
		quiet(sv);
		docker_op_cancel(sv->op);
		docker_op_cancel(sv->rm);
		if (sv->id) {
			docker_container_remove(dk(set), sv->id, NULL, NULL, NULL);
			rjob_track_container(j, sv->id, 0);
			free(sv->id);
		}
		ev_timer_free(sv->timer);
		free(sv->ports);
	}
	docker_op_cancel(set->net_op);
	if (set->net_made)
		docker_network_remove(dk(set), set->net, NULL, NULL, NULL);
	ev_timer_free(set->kick);
	free(set->v);
	free(set);
	j->services = NULL;
}

/* ---- the sweep ---- */

struct netrm {
	struct svc_sweep *sw;
	struct netrm *next;
	char *id;
	char *name;
	int tries;
	struct docker_op *op;
	struct ev_timer *timer;
};

struct svc_sweep {
	struct runner *rn;
	struct docker_op *list;
	int again;
	struct netrm *rm;
};

static int network_in_use(struct runner *rn, const char *name)
{
	for (struct rjob *j = rn->jobs; j; j = j->next)
		if (j->services && strcmp(j->services->net, name) == 0)
			return 1;
	return 0;
}

static void netrm_free(struct netrm *m)
{
	struct netrm **pp;

	for (pp = &m->sw->rm; *pp && *pp != m; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = m->next;
	docker_op_cancel(m->op);
	ev_timer_free(m->timer);
	free(m->id);
	free(m->name);
	free(m);
}

static void netrm_send(struct netrm *m);

static void on_netrm(void *arg, const struct docker_res *r)
{
	struct netrm *m = arg;

	m->op = NULL;
	if (r->err == 0 || r->err == -ENOENT) {
		if (r->err == 0)
			log_info("orphan sweep: removed a leftover network",
			    "network=%s", logq(m->name));
		netrm_free(m);
		return;
	}
	/* Its containers are still going (the container sweep removes
	 * them): try again a little later, a few times. */
	if (++m->tries >= SWEEP_TRIES) {
		log_warn("orphan sweep: cannot remove a leftover network",
		    "network=%s error=%s", logq(m->name), logq(r->msg));
		netrm_free(m);
		return;
	}
	ev_timer_start(m->timer, SWEEP_DELAY_MS);
}

static void on_netrm_timer(struct ev_timer *t, void *arg)
{
	struct netrm *m = arg;

	(void)t;
	if (network_in_use(m->sw->rn, m->name)) {
		netrm_free(m);
		return;
	}
	netrm_send(m);
}

static void netrm_send(struct netrm *m)
{
	if (docker_network_remove(m->sw->rn->docker, m->id, on_netrm, m,
	    &m->op) < 0)
		netrm_free(m);
}

static void on_nets_listed(void *arg, const struct docker_res *r)
{
	struct svc_sweep *sw = arg;
	struct runner *rn = sw->rn;

	sw->list = NULL;
	if (r->err < 0) {
		log_warn("orphan sweep: cannot list networks", "error=%s",
		    logq(r->msg));
		return;
	}
	for (size_t i = 0; i < r->n_networks; i++) {
		const struct docker_network *n = &r->networks[i];
		struct netrm *m;
		if (network_in_use(rn, n->name))
			continue;
		for (m = sw->rm; m && strcmp(m->id, n->id) != 0; m = m->next)
			;
		if (m)
			continue;	/* already going */
		log_info("orphan sweep: removing a leftover network",
		    "network=%s", logq(n->name));
		m = xcalloc(1, sizeof(*m));
		m->sw = sw;
		m->id = xstrdup(n->id);
		m->name = xstrdup(n->name);
		m->timer = ev_timer_new(rn->loop, on_netrm_timer, m);
		m->next = sw->rm;
		sw->rm = m;
		netrm_send(m);
	}
	if (sw->again) {
		sw->again = 0;
		rservices_sweep(rn);
	}
}

void rservices_sweep(struct runner *rn)
{
	char label[160];
	const char *labels[1] = { label };
	struct svc_sweep *sw = rn->svc_sweep;

	if (rn->docker == NULL || !rn->docker_ready)
		return;
	if (sw == NULL) {
		sw = rn->svc_sweep = xcalloc(1, sizeof(*sw));
		sw->rn = rn;
	}
	if (sw->list) {
		sw->again = 1;
		return;
	}
	snprintf(label, sizeof(label), "%s=%s", LABEL_INSTANCE, rn->instance);
	docker_network_list(rn->docker, labels, 1, on_nets_listed, sw,
	    &sw->list);
}

void rservices_sweep_free(struct runner *rn)
{
	struct svc_sweep *sw = rn->svc_sweep;

	if (sw == NULL)
		return;
	docker_op_cancel(sw->list);
	while (sw->rm)
		netrm_free(sw->rm);
	free(sw);
	rn->svc_sweep = NULL;
}
