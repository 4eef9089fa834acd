/*
 * The Docker Engine API client against the real engine: dockerd on its
 * standard socket (SKIFF_DOCKER_HOST to change it) and, when Podman's
 * service can run here, Podman's Docker-compatible socket, with the same
 * tests. Images are built locally and registries run on loopback by
 * tests/integration/dockerenv.py, which this test starts as a child and
 * which cleans up when the test ends or dies. Every container made here
 * carries a label of this run and is removed, also after a failed
 * assertion (group teardown); every wait is bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "docker.h"
#include "ev.h"
#include "fsx.h"
#include "jsonx.h"

#define RUN_LABEL "dev.skiff.test.run"
#define OP_MS 60000		/* any single engine call */
#define PULL_MS 120000

/* ---- the fixture process (dockerenv.py fixture) ---- */

static struct {
	pid_t pid;
	int in_fd;		/* its stdin: closing it tears everything down */
	cJSON *desc;
	char run_id[64];
} fx = { .pid = -1, .in_fd = -1 };

static const char *fx_str(const char *key)
{
	const char *s = NULL;

	if (jsonx_string(fx.desc, key, 4096, &s) < 0)
		return NULL;
	return s;
}

static const char *fx_image(const char *key)
{
	const char *s = NULL;

	jsonx_string(cJSON_GetObjectItemCaseSensitive(fx.desc, "images"), key,
	    4096, &s);
	return s;
}

static int read_line(int fd, struct buf *b, int timeout_ms)
{
	int64_t end = (int64_t)time(NULL) * 1000 + timeout_ms;
	char c;

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int left = (int)(end - (int64_t)time(NULL) * 1000);
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -ETIMEDOUT;
		ssize_t n = read(fd, &c, 1);
		if (n <= 0)
			return -EIO;
		if (c == '\n')
			return 0;
		if (buf_putc(b, c) < 0)
			return -E2BIG;
	}
}

static void fixture_start(void)
{
	const char *src = getenv("SKIFF_SOURCE_DIR");
	const char *py = getenv("SKIFF_PYTHON");
	char script[4096];
	int in[2], out[2];

	snprintf(script, sizeof(script), "%s/tests/integration/dockerenv.py",
	    src ? src : ".");
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	fx.pid = fork();
	assert_true(fx.pid >= 0);
	if (fx.pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl(py ? py : "/usr/bin/python3", "python3", script, "fixture",
		    "--podman", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	fx.in_fd = in[1];
	struct buf line = BUF_INIT(1 << 16);
	int rc = read_line(out[0], &line, 300000);
	close(out[0]);
	if (rc < 0)
		fail_msg("dockerenv.py fixture gave no description (%d)", rc);
	int jerr;
	fx.desc = jsonx_parse(line.data, line.len, 1 << 16, 8, &jerr);
	buf_free(&line);
	assert_non_null(fx.desc);
	snprintf(fx.run_id, sizeof(fx.run_id), "%ld-%ld", (long)getpid(),
	    (long)time(NULL));
}

static void fixture_stop(void)
{
	if (fx.in_fd >= 0)
		close(fx.in_fd);
	fx.in_fd = -1;
	for (int i = 0; fx.pid > 0 && i < 600; i++) {	/* 60 s */
		if (waitpid(fx.pid, NULL, WNOHANG) == fx.pid) {
			fx.pid = -1;
			break;
		}
		usleep(100000);
	}
	if (fx.pid > 0) {
		kill(fx.pid, SIGKILL);
		waitpid(fx.pid, NULL, 0);
	}
	cJSON_Delete(fx.desc);
	fx.desc = NULL;
}

/* ---- an engine under test ---- */

struct eng {
	const char *name;
	const char *host;
	struct ev_loop *loop;
	struct docker *d;
	char label[128];	/* RUN_LABEL=<run>-<engine> */
	char tmp[64];		/* host directories for mounts; removed */
};

static struct eng docker_eng = { .name = "docker" };
static struct eng podman_eng = { .name = "podman" };

static void wait_for(struct eng *e, const int *flag, int ms)
{
	int64_t end = ev_now_update(e->loop) + ms;

	while (!*flag && ev_now_update(e->loop) < end)
		ev_run_once(e->loop, 50);
	if (!*flag)
		fail_msg("%s: no answer within %d ms", e->name, ms);
}

/* What a callback saw, copied (results live only during the call). */
struct call {
	int done, err, transient, present, oom, running, pid;
	long status;
	int64_t exit_code;
	char msg[512], id[128], state[32], root[256];
	const char *want;	/* list: the id or tag looked for */
	size_t n;
	int found;
	char step[64];		/* list: label dev.skiff.test.step of want */
};

static void on_done(void *arg, const struct docker_res *r)
{
	struct call *c = arg;

	c->done = 1;
	c->err = r->err;
	c->transient = r->transient;
	c->status = r->status;
	c->present = r->present;
	c->oom = r->oom_killed;
	c->running = r->running;
	c->pid = r->pid;
	c->exit_code = r->exit_code;
	snprintf(c->msg, sizeof(c->msg), "%s", r->msg);
	snprintf(c->id, sizeof(c->id), "%s", r->id ? r->id : "");
	snprintf(c->state, sizeof(c->state), "%s", r->state ? r->state : "");
	snprintf(c->root, sizeof(c->root), "%s", r->root_dir ? r->root_dir : "");
	c->n = r->n_containers + r->n_images;
	for (size_t i = 0; c->want && i < r->n_containers; i++) {
		const struct docker_container *k = &r->containers[i];
		if (strcmp(k->id, c->want) != 0)
			continue;
		c->found = 1;
		for (size_t j = 0; j < k->n_labels; j++)
			if (strcmp(k->labels[j].key, "dev.skiff.test.step") == 0)
				snprintf(c->step, sizeof(c->step), "%s",
				    k->labels[j].value);
	}
	for (size_t i = 0; c->want && i < r->n_images; i++)
		for (size_t j = 0; j < r->images[i].n_tags; j++) {
			const char *t = r->images[i].tags[j];
			size_t tl = strlen(t), wl = strlen(c->want);
			/* Podman names local images docker.io/... */
			if (tl >= wl && strcmp(t + tl - wl, c->want) == 0)
				c->found = 1;
		}
}

#define CALL(e, c, ms, expr) do {					\
	memset(&(c), 0, sizeof(c));					\
	int rc_ = (expr);						\
	if (rc_ != 0)							\
		fail_msg("%s: %s -> %d", (e)->name, #expr, rc_);		\
	wait_for((e), &(c).done, (ms));					\
} while (0)

#define CALL_OK(e, c, ms, expr) do {					\
	CALL(e, c, ms, expr);						\
	if ((c).err != 0)						\
		fail_msg("%s: %s failed: %d %s", (e)->name, #expr,		\
		    (c).err, (c).msg);					\
} while (0)

/* ---- running a container as the step executor will ---- */

struct run {
	struct eng *e;
	struct buf out[3];
	char id[128];
	int ready, started, start_err, attach_done, attach_err;
	int cancel_on_output;	/* cancel the attach from its own callback */
	struct docker_op *attach;
	struct call wait, inspect;
	uint64_t calls;		/* create .. remove */
};

static void run_on_start(void *arg, const struct docker_res *r)
{
	struct run *x = arg;

	x->started = 1;
	x->start_err = r->err;
}

/* Attached: only now start, so no output is lost. */
static void run_on_ready(void *arg)
{
	struct run *x = arg;

	x->ready = 1;
	assert_int_equal(docker_container_start(x->e->d, x->id, run_on_start, x,
	    NULL), 0);
}

static void run_on_output(void *arg, int stream, const char *data, size_t n)
{
	struct run *x = arg;

	assert_true(stream == 1 || stream == 2);
	assert_int_equal(buf_append(&x->out[stream], data, n), 0);
	if (x->cancel_on_output && x->attach) {
		docker_op_cancel(x->attach);
		x->attach = NULL;
		x->attach_done = 1;
		x->attach_err = -ECANCELED;
	}
}

static void run_on_attach_done(void *arg, const struct docker_res *r)
{
	struct run *x = arg;

	x->attach = NULL;
	x->attach_done = 1;
	x->attach_err = r->err;
}

static void labels_for(struct eng *e, const char *step,
    struct docker_label l[2])
{
	l[0].key = RUN_LABEL;
	l[0].value = strchr(e->label, '=') + 1;
	l[1].key = "dev.skiff.test.step";
	l[1].value = step;
}

static void run_create(struct run *x, struct eng *e, struct docker_create *c,
    const char *step)
{
	struct docker_label l[2];
	struct call k;

	memset(x, 0, sizeof(*x));
	x->e = e;
	for (int i = 1; i < 3; i++)
		buf_init(&x->out[i], 16 << 20);
	labels_for(e, step, l);
	c->labels = l;
	c->n_labels = 2;
	x->calls = docker_calls(e->d);
	CALL_OK(e, k, OP_MS, docker_container_create(e->d, c, on_done, &k, NULL));
	snprintf(x->id, sizeof(x->id), "%s", k.id);
	assert_true(strlen(x->id) >= 12);
}

static void run_attach_start(struct run *x)
{
	struct eng *e = x->e;

	assert_int_equal(docker_container_attach(e->d, x->id, run_on_ready,
	    run_on_output, run_on_attach_done, x, &x->attach), 0);
	wait_for(e, &x->started, OP_MS);
	if (x->start_err)
		fail_msg("%s: start failed: %d", e->name, x->start_err);
}

static void run_finish(struct run *x, int wait_ms)
{
	struct eng *e = x->e;

	CALL_OK(e, x->wait, wait_ms, docker_container_wait(e->d, x->id, NULL,
	    on_done, &x->wait, NULL));
	wait_for(e, &x->attach_done, OP_MS);
	CALL_OK(e, x->inspect, OP_MS, docker_container_inspect(e->d, x->id,
	    on_done, &x->inspect, NULL));
}

static void run_remove(struct run *x)
{
	struct call k;

	CALL_OK(x->e, k, OP_MS, docker_container_remove(x->e->d, x->id, on_done,
	    &k, NULL));
	x->calls = docker_calls(x->e->d) - x->calls;
	for (int i = 1; i < 3; i++)
		buf_free(&x->out[i]);
}

/* The whole sequence of a step; output stays in x until run_remove. */
static void run_step(struct run *x, struct eng *e, struct docker_create *c,
    const char *step)
{
	run_create(x, e, c, step);
	run_attach_start(x);
	run_finish(x, OP_MS);
	assert_int_equal(x->attach_err, 0);
}

static char *sh_argv[4] = { "/bin/sh", "-c", NULL, NULL };

static struct docker_create spec(const char *image_key, const char *script)
{
	struct docker_create c = { 0 };

	c.image = fx_image(image_key);
	sh_argv[2] = (char *)script;
	c.argv = sh_argv;
	return c;
}

/* ---- group set-up: one engine ---- */

struct sweep {
	int done, err;
	char ids[64][256];
	size_t n;
};

static void on_sweep_list(void *arg, const struct docker_res *r)
{
	struct sweep *s = arg;

	s->done = 1;
	s->err = r->err;
	for (size_t i = 0; i < r->n_containers && s->n < 64; i++)
		snprintf(s->ids[s->n++], sizeof(s->ids[0]), "%s",
		    r->containers[i].id);
}

static int from_test_registry(const char *tag)
{
	const char *regs[2] = { fx_str("open_registry"), fx_str("auth_registry") };

	for (int i = 0; i < 2; i++)
		if (regs[i] && strncmp(tag, regs[i], strlen(regs[i])) == 0 &&
		    tag[strlen(regs[i])] == '/')
			return 1;
	return 0;
}

static void on_sweep_images(void *arg, const struct docker_res *r)
{
	struct sweep *s = arg;

	s->done = 1;
	s->err = r->err;
	for (size_t i = 0; i < r->n_images; i++)
		for (size_t j = 0; j < r->images[i].n_tags && s->n < 64; j++)
			if (from_test_registry(r->images[i].tags[j]))
				snprintf(s->ids[s->n++], sizeof(s->ids[0]), "%s",
				    r->images[i].tags[j]);
}

/* Images a failed test pulled from the test registries. */
static void sweep_images(struct eng *e)
{
	struct sweep s = { 0 };
	struct call k;

	if (docker_image_list(e->d, on_sweep_images, &s, NULL) < 0)
		return;
	wait_for(e, &s.done, OP_MS);
	for (size_t i = 0; i < s.n; i++) {
		fprintf(stderr, "%s: removing image %s, left by a failed test\n",
		    e->name, s.ids[i]);
		CALL(e, k, OP_MS, docker_image_remove(e->d, s.ids[i], on_done, &k,
		    NULL));
	}
}

/* Whatever a failed test left: every container of this run's label. */
static void sweep(struct eng *e)
{
	const char *labels[1] = { e->label };
	struct sweep s = { 0 };
	struct call k;

	if (docker_container_list(e->d, labels, 1, on_sweep_list, &s, NULL) < 0)
		return;
	wait_for(e, &s.done, OP_MS);
	for (size_t i = 0; i < s.n; i++) {
		fprintf(stderr, "%s: removing %.12s, left by a failed test\n",
		    e->name, s.ids[i]);
		CALL(e, k, OP_MS, docker_container_remove(e->d, s.ids[i], on_done,
		    &k, NULL));
	}
}

static int group_setup(void **state, struct eng *e, const char *host_key)
{
	char err[512];

	if (fx.desc == NULL)
		fixture_start();
	e->host = fx_str(host_key);
	if (e->host == NULL) {
		fprintf(stderr, "%s: not tested: %s\n", e->name,
		    fx_str("podman_why") ? fx_str("podman_why") : "?");
		*state = NULL;
		return 0;
	}
	assert_int_equal(ev_loop_new(&e->loop), 0);
	if (docker_open(e->loop, e->host, 10000, &e->d, err, sizeof(err)) < 0)
		fail_msg("%s: open: %s", e->name, err);
	snprintf(e->label, sizeof(e->label), RUN_LABEL "=%s-%s", fx.run_id,
	    e->name);
	snprintf(e->tmp, sizeof(e->tmp), "/tmp/skiff-dockertest.XXXXXX");
	assert_non_null(mkdtemp(e->tmp));
	*state = e;
	return 0;
}

static int setup_docker(void **state)
{
	return group_setup(state, &docker_eng, "docker");
}

static int setup_podman(void **state)
{
	return group_setup(state, &podman_eng, "podman");
}

static int group_teardown(void **state)
{
	struct eng *e = *state;

	if (e) {
		sweep(e);
		sweep_images(e);
		fsx_remove_tree(e->tmp);
		docker_free(e->d);
		ev_loop_free(e->loop);
		e->d = NULL;
		e->loop = NULL;
	}
	return 0;
}

static int teardown_last(void **state)
{
	group_teardown(state);
	fixture_stop();
	return 0;
}

static struct eng *engine(void **state)
{
	struct eng *e = *state;

	if (e == NULL)
		skip();
	return e;
}

/* ---- tests ---- */

static void test_open(void **state)
{
	struct eng *e = engine(state);
	struct docker *d;
	char err[256];

	assert_string_equal(docker_api_version(e->d), "1.41");
	assert_non_null(docker_server(e->d));
	assert_true(strncmp(docker_server(e->d),
	    strcmp(e->name, "docker") == 0 ? "Docker " : "Podman", 6) == 0);
	/* _ping and /version */
	assert_int_equal(docker_calls(e->d) >= 2, 1);
	/* only unix:// sockets with an absolute path */
	assert_int_equal(docker_new(e->loop, "tcp://127.0.0.1:2375", &d), -EINVAL);
	assert_int_equal(docker_new(e->loop, "unix://relative.sock", &d), -EINVAL);
	assert_int_equal(docker_open(e->loop, "unix:///nonexistent/docker.sock",
	    5000, &d, err, sizeof(err)), -ECONNREFUSED);
	assert_non_null(strstr(err, "/nonexistent/docker.sock"));
}

/* Nothing on the socket (dockerd restarting): transient, so the caller
 * retries; calls before negotiation are refused. */
static void test_engine_down_is_transient(void **state)
{
	struct eng *e = engine(state);
	struct docker *d;
	struct call k;
	char path[] = "/tmp/skiff-nodocker.XXXXXX", host[128];
	int fd = mkstemp(path);	/* a file, not a socket: connect fails */

	close(fd);
	snprintf(host, sizeof(host), "unix://%s", path);
	assert_int_equal(docker_new(e->loop, host, &d), 0);
	assert_int_equal(docker_info(d, on_done, &k, NULL), -ENOTCONN);
	CALL(e, k, OP_MS, docker_negotiate(d, on_done, &k, NULL));
	assert_int_equal(k.err, -ECONNREFUSED);
	assert_int_equal(k.transient, 1);
	assert_int_equal(k.status, 0);
	docker_free(d);
	unlink(path);
}

/* A busybox-only image with just /bin/sh: output demultiplexed per
 * stream in order, the exit code, and 6 calls for the whole step. */
static void test_output_and_exit_code(void **state)
{
	struct eng *e = engine(state);
	struct docker_create c = spec("busybox", "echo out; echo err >&2; "
	    "printf 'no newline'; exit 3");
	struct run x;

	run_step(&x, e, &c, "output");
	assert_string_equal(buf_cstr(&x.out[1]), "out\nno newline");
	assert_string_equal(buf_cstr(&x.out[2]), "err\n");
	assert_int_equal(x.wait.exit_code, 3);
	assert_int_equal(x.inspect.exit_code, 3);
	assert_int_equal(x.inspect.oom, 0);
	assert_int_equal(x.inspect.running, 0);
	assert_string_equal(x.inspect.state, "exited");
	run_remove(&x);
	/* create, attach, start, wait, inspect, remove */
	assert_int_equal(x.calls, 6);
	fprintf(stderr, "%s: API calls per step: %llu\n", e->name,
	    (unsigned long long)x.calls);
}

/* Env, working directory, user, read-only and read-write mounts. */
static void test_create_options(void **state)
{
	struct eng *e = engine(state);
	char ro[600], rw[600], want[1400];
	char *env[] = { "GREETING=hello world", "EMPTY=", NULL };
	struct docker_create c;
	struct run x;

	snprintf(ro, sizeof(ro), "%s/ro", e->tmp);
	snprintf(rw, sizeof(rw), "%s/rw", e->tmp);
	assert_int_equal(mkdir(ro, 0755), 0);
	assert_int_equal(mkdir(rw, 0777), 0);
	chmod(rw, 0777);
	struct docker_mount m[2] = { { ro, "/in", 1 }, { rw, rw, 0 } };
	c = spec("busybox", "echo \"$GREETING\"; pwd; id -u; "
	    "touch /in/x 2>/dev/null && echo ro-broken || echo ro-ok; "
	    "echo data > out.txt");
	c.env = env;
	c.workdir = rw;		/* the workspace: same path as on the host */
	c.user = "4242:4242";
	c.mounts = m;
	c.n_mounts = 2;
	c.memory = 64 << 20;
	c.nano_cpus = 500000000;
	c.pids_limit = 64;
	run_step(&x, e, &c, "options");
	snprintf(want, sizeof(want), "hello world\n%s\n4242\nro-ok\n", rw);
	assert_string_equal(buf_cstr(&x.out[1]), want);
	assert_int_equal(x.wait.exit_code, 0);
	run_remove(&x);
	snprintf(want, sizeof(want), "%s/out.txt", rw);
	struct stat st;
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_uid, 4242);
}

/* ENTRYPOINT ["/bin/false"] and CMD ["nope"]: the given argv runs, and
 * the image's CMD is not appended to it ($0 would be "nope"). */
static void test_entrypoint_and_cmd_overridden(void **state)
{
	struct eng *e = engine(state);
	struct docker_create c = spec("entrypoint", "echo \"args:$0:$#\"");
	struct run x;

	run_step(&x, e, &c, "entrypoint");
	assert_string_equal(buf_cstr(&x.out[1]), "args:/bin/sh:0\n");
	assert_int_equal(x.wait.exit_code, 0);
	run_remove(&x);
}

/* USER 1000:1000 in the image: kept without an override, replaced
 * with one. */
static void test_nonroot_image(void **state)
{
	struct eng *e = engine(state);
	struct docker_create c = spec("nonroot", "id -u");
	struct run x;

	run_step(&x, e, &c, "nonroot");
	assert_string_equal(buf_cstr(&x.out[1]), "1000\n");
	run_remove(&x);
	c = spec("nonroot", "id -u");
	c.user = "0";
	run_step(&x, e, &c, "nonroot-root");
	assert_string_equal(buf_cstr(&x.out[1]), "0\n");
	run_remove(&x);
}

/* Over its memory limit: OOMKilled in inspect. On cgroup v1 Docker sets
 * the flag for any OOM kill in the container, also of a child the shell
 * survives; so it is read from inspect, whatever the exit code. Podman
 * 4.3 here never sets it (docs/docker.md): only the 137 is seen. */
static void test_oom_killed(void **state)
{
	struct eng *e = engine(state);
	struct docker_create c = spec("busybox",
	    "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived");
	struct run x;

	c.memory = 32 << 20;
	run_step(&x, e, &c, "oom");
	assert_int_equal(x.inspect.oom, strcmp(e->name, "docker") == 0);
	assert_int_equal(x.wait.exit_code, 137);
	assert_null(strstr(buf_cstr(&x.out[1]), "survived"));
	run_remove(&x);
	/* the same step with room for it is not reported */
	c = spec("busybox", "x=$(head -c 1000000 /dev/zero | tr '\\0' a); "
	    "echo survived");
	c.memory = 32 << 20;
	run_step(&x, e, &c, "no-oom");
	assert_int_equal(x.inspect.oom, 0);
	assert_string_equal(buf_cstr(&x.out[1]), "survived\n");
	run_remove(&x);
}

static int64_t now_ms(struct eng *e)
{
	return ev_now_update(e->loop);
}

/* stop: SIGTERM reaches the shell through the init, which exits on its
 * own; a shell ignoring it is killed after the grace period; kill is at
 * once. Both are fine on a container that already stopped. */
static void test_stop_and_kill(void **state)
{
	struct eng *e = engine(state);
	struct docker_create c = spec("busybox", "trap 'echo got-term; exit 7' "
	    "TERM; echo up; while :; do sleep 0.2; done");
	struct run x;
	struct call k;

	run_create(&x, e, &c, "stop");
	run_attach_start(&x);
	/* the trap is set once "up" is out; a SIGTERM before would end it */
	for (int i = 0; i < 500 && x.out[1].len == 0; i++)
		ev_run_once(e->loop, 20);
	int64_t t0 = now_ms(e);
	CALL_OK(e, k, OP_MS, docker_container_stop(e->d, x.id, 20, on_done, &k,
	    NULL));
	assert_true(now_ms(e) - t0 < 15000);
	run_finish(&x, OP_MS);
	assert_int_equal(x.wait.exit_code, 7);
	assert_string_equal(buf_cstr(&x.out[1]), "up\ngot-term\n");
	CALL_OK(e, k, OP_MS, docker_container_stop(e->d, x.id, 1, on_done, &k,
	    NULL));
	CALL_OK(e, k, OP_MS, docker_container_kill(e->d, x.id, on_done, &k,
	    NULL));
	run_remove(&x);

	c = spec("busybox", "trap '' TERM; echo up; while :; do sleep 0.2; done");
	run_create(&x, e, &c, "stop-ignored");
	run_attach_start(&x);
	/* the trap is set once "up" is out; a SIGTERM before would end it */
	for (int i = 0; i < 500 && x.out[1].len == 0; i++)
		ev_run_once(e->loop, 20);
	assert_string_equal(buf_cstr(&x.out[1]), "up\n");
	t0 = now_ms(e);
	CALL_OK(e, k, OP_MS, docker_container_stop(e->d, x.id, 1, on_done, &k,
	    NULL));
	assert_true(now_ms(e) - t0 >= 900);
	run_finish(&x, OP_MS);
	assert_int_equal(x.wait.exit_code, 137);
	run_remove(&x);

	c = spec("busybox", "echo up; sleep 300");
	run_create(&x, e, &c, "kill");
	run_attach_start(&x);
	CALL_OK(e, k, OP_MS, docker_container_kill(e->d, x.id, on_done, &k,
	    NULL));
	run_finish(&x, 10000);
	assert_int_equal(x.wait.exit_code, 137);
	run_remove(&x);
}

/* ---- exec in a container made ahead (warm.c, dockerexec.c) ---- */

struct xout {
	struct buf out[3];
	int done, err;
};

static void x_output(void *arg, int stream, const char *data, size_t n)
{
	struct xout *o = arg;

	buf_append(&o->out[stream], data, n);
}

static void x_done(void *arg, const struct docker_res *r)
{
	struct xout *o = arg;

	o->done = 1;
	o->err = r->err;
}

/* One exec: its output, then its exit code and pid by inspect. */
static void exec_one(struct eng *e, const char *id, struct docker_exec *ex,
    struct xout *o, struct call *ins)
{
	struct call k;

	memset(o, 0, sizeof(*o));
	for (int i = 1; i < 3; i++)
		buf_init(&o->out[i], 1 << 20);
	CALL_OK(e, k, OP_MS, docker_exec_create(e->d, id, ex, on_done, &k, NULL));
	assert_true(strlen(k.id) >= 12);
	char exec_id[128];
	snprintf(exec_id, sizeof(exec_id), "%s", k.id);
	assert_int_equal(docker_exec_start(e->d, exec_id, x_output, x_done, o,
	    NULL), 0);
	wait_for(e, &o->done, OP_MS);
	assert_int_equal(o->err, 0);
	/* the engine records the exit a moment after the stream ends */
	for (int i = 0; i < 100; i++) {
		CALL_OK(e, *ins, OP_MS, docker_exec_inspect(e->d, exec_id, on_done,
		    ins, NULL));
		if (!ins->running)
			break;
		usleep(20000);
	}
	assert_int_equal(ins->running, 0);
}

/* A container idling on its shell with stdin open, and steps as execs in
 * it: env, user and working directory per exec, output per stream, exact
 * exit codes, the host pid; an exec into a stopped container is -EBUSY;
 * bad ids are refused before any request. */
static void test_exec(void **state)
{
	struct eng *e = engine(state);
	char *idle[] = { "/bin/sh", NULL };
	struct docker_create c = spec("busybox", "unused");
	struct run x;
	struct call k, ins;
	struct xout o;

	c.argv = idle;
	c.open_stdin = 1;
	run_create(&x, e, &c, "exec");
	CALL_OK(e, k, OP_MS, docker_container_start(e->d, x.id, on_done, &k,
	    NULL));

	char *argv[] = { "/bin/sh", "-c", "echo \"$A $(id -u) $(pwd)\"; "
	    "echo err >&2; exit 3", NULL };
	char *env[] = { "A=from-exec", NULL };
	struct docker_exec ex = { argv, env, "/tmp", "4321:4321" };
	exec_one(e, x.id, &ex, &o, &ins);
	assert_string_equal(buf_cstr(&o.out[1]), "from-exec 4321 /tmp\n");
	assert_string_equal(buf_cstr(&o.out[2]), "err\n");
	assert_int_equal(ins.exit_code, 3);
	for (int i = 1; i < 3; i++)
		buf_free(&o.out[i]);

	/* while it runs: its pid on the host, in the container's cgroup (what
	 * a stop signals) */
	char *argv3[] = { "/bin/sh", "-c", "echo up; exec sleep 300", NULL };
	struct docker_exec ex3 = { argv3, NULL, NULL, NULL };
	memset(&o, 0, sizeof(o));
	for (int i = 1; i < 3; i++)
		buf_init(&o.out[i], 1 << 20);
	CALL_OK(e, k, OP_MS, docker_exec_create(e->d, x.id, &ex3, on_done, &k,
	    NULL));
	char sleeper[128];
	snprintf(sleeper, sizeof(sleeper), "%s", k.id);
	assert_int_equal(docker_exec_start(e->d, sleeper, x_output, x_done, &o,
	    NULL), 0);
	for (int i = 0; i < 500 && o.out[1].len == 0 && !o.done; i++)
		ev_run_once(e->loop, 20);
	assert_string_equal(buf_cstr(&o.out[1]), "up\n");
	/* the engine records the pid a moment after the first output */
	for (int i = 0; i < 100; i++) {
		CALL_OK(e, ins, OP_MS, docker_exec_inspect(e->d, sleeper, on_done,
		    &ins, NULL));
		if (ins.pid > 0)
			break;
		usleep(20000);
	}
	assert_int_equal(ins.running, 1);
	assert_int_equal(ins.exit_code, -1);
	assert_true(ins.pid > 0);
	char cg[64], data[4096] = "";
	snprintf(cg, sizeof(cg), "/proc/%d/cgroup", ins.pid);
	FILE *f = fopen(cg, "re");
	assert_non_null(f);
	size_t got = fread(data, 1, sizeof(data) - 1, f);
	fclose(f);
	data[got] = '\0';
	assert_non_null(strstr(data, x.id));
	/* the container's kill ends it: 137 */
	CALL_OK(e, k, OP_MS, docker_container_kill(e->d, x.id, on_done, &k,
	    NULL));
	wait_for(e, &o.done, OP_MS);
	for (int i = 0; i < 100; i++) {
		CALL_OK(e, ins, OP_MS, docker_exec_inspect(e->d, sleeper, on_done,
		    &ins, NULL));
		if (!ins.running)
			break;
		usleep(20000);
	}
	assert_int_equal(ins.exit_code, 137);
	for (int i = 1; i < 3; i++)
		buf_free(&o.out[i]);
	CALL_OK(e, k, OP_MS, docker_container_start(e->d, x.id, on_done, &k,
	    NULL));

	/* the idle shell is still there: a second exec, killed */
	char *argv2[] = { "/bin/sh", "-c", "kill -9 $$", NULL };
	struct docker_exec ex2 = { argv2, NULL, NULL, NULL };
	exec_one(e, x.id, &ex2, &o, &ins);
	assert_int_equal(ins.exit_code, 137);
	for (int i = 1; i < 3; i++)
		buf_free(&o.out[i]);

	assert_int_equal(docker_exec_inspect(e->d, "-x", on_done, &k, NULL),
	    -EINVAL);
	assert_int_equal(docker_exec_start(e->d, "../x", x_output, x_done, &o,
	    NULL), -EINVAL);
	CALL(e, k, OP_MS, docker_exec_inspect(e->d, "0123456789abcdef", on_done,
	    &k, NULL));
	assert_int_equal(k.err, -ENOENT);

	CALL_OK(e, k, OP_MS, docker_container_kill(e->d, x.id, on_done, &k,
	    NULL));
	CALL_OK(e, k, OP_MS, docker_container_wait(e->d, x.id, NULL, on_done, &k,
	    NULL));
	CALL(e, k, OP_MS, docker_exec_create(e->d, x.id, &ex2, on_done, &k, NULL));
	assert_int_equal(k.err, -EBUSY);
	run_remove(&x);
}

/* Labels on the container, listing by label, and removal that leaves
 * nothing: a second removal and an inspect find no such container. */
static void test_labels_list_remove(void **state)
{
	struct eng *e = engine(state);
	struct docker_create c = spec("busybox", "true");
	const char *labels[2] = { e->label, "dev.skiff.test.step=listed" };
	struct run a, b;
	struct call k;

	run_create(&a, e, &c, "listed");
	c = spec("busybox", "true");
	run_create(&b, e, &c, "other");
	memset(&k, 0, sizeof(k));
	k.want = a.id;
	assert_int_equal(docker_container_list(e->d, labels, 2, on_done, &k,
	    NULL), 0);
	wait_for(e, &k.done, OP_MS);
	assert_int_equal(k.err, 0);
	assert_int_equal(k.n, 1);		/* b has another step label */
	assert_int_equal(k.found, 1);
	assert_string_equal(k.step, "listed");
	memset(&k, 0, sizeof(k));
	k.want = b.id;
	labels[1] = "dev.skiff.test.step";	/* any value */
	assert_int_equal(docker_container_list(e->d, labels, 2, on_done, &k,
	    NULL), 0);
	wait_for(e, &k.done, OP_MS);
	assert_true(k.n >= 2);		/* created, never started */
	assert_int_equal(k.found, 1);
	assert_string_equal(k.step, "other");
	run_remove(&a);
	run_remove(&b);
	memset(&k, 0, sizeof(k));
	k.want = b.id;
	assert_int_equal(docker_container_list(e->d, labels, 2, on_done, &k,
	    NULL), 0);
	wait_for(e, &k.done, OP_MS);
	assert_int_equal(k.err, 0);
	assert_int_equal(k.found, 0);
	CALL(e, k, OP_MS, docker_container_remove(e->d, a.id, on_done, &k, NULL));
	assert_int_equal(k.err, -ENOENT);
	assert_int_equal(k.transient, 0);
	CALL(e, k, OP_MS, docker_container_inspect(e->d, a.id, on_done, &k, NULL));
	assert_int_equal(k.err, -ENOENT);
	/* a name is taken once */
	c = spec("busybox", "true");
	char name[96];
	snprintf(name, sizeof(name), "skiff-test-%s-%s", fx.run_id, e->name);
	c.name = name;
	run_create(&a, e, &c, "named");
	c = spec("busybox", "true");
	c.name = name;
	struct docker_label l[2];
	labels_for(e, "named", l);
	c.labels = l;
	c.n_labels = 2;
	CALL(e, k, OP_MS, docker_container_create(e->d, &c, on_done, &k, NULL));
	assert_int_equal(k.err, -EBUSY);	/* Podman says so with a 500 */
	run_remove(&a);
	c.name = "../escape";
	assert_int_equal(docker_container_create(e->d, &c, on_done, &k, NULL),
	    -EINVAL);
}

static void test_images_and_info(void **state)
{
	struct eng *e = engine(state);
	struct call k;

	CALL_OK(e, k, OP_MS, docker_image_inspect(e->d, fx_image("busybox"),
	    on_done, &k, NULL));
	assert_int_equal(k.present, 1);
	assert_true(strncmp(k.id, "sha256:", 7) == 0 || strlen(k.id) == 64);
	CALL_OK(e, k, OP_MS, docker_image_inspect(e->d,
	    "skiff-test/never-built:1", on_done, &k, NULL));
	assert_int_equal(k.present, 0);
	memset(&k, 0, sizeof(k));
	k.want = fx_image("entrypoint");
	assert_int_equal(docker_image_list(e->d, on_done, &k, NULL), 0);
	wait_for(e, &k.done, OP_MS);
	assert_int_equal(k.err, 0);
	assert_true(k.n >= 3);
	assert_int_equal(k.found, 1);
	CALL_OK(e, k, OP_MS, docker_info(e->d, on_done, &k, NULL));
	assert_true(k.root[0] == '/');
	CALL(e, k, OP_MS, docker_image_remove(e->d, "skiff-test/never-built:1",
	    on_done, &k, NULL));
	assert_int_equal(k.err, -ENOENT);
}

/* One argument for both callbacks of a pull: k first, so on_done can
 * take it as a struct call. */
struct progress {
	struct call k;
	struct buf lines;
	int n;
};

static void on_progress(void *arg, const char *line)
{
	struct progress *p = arg;

	p->n++;
	buf_printf(&p->lines, "%s\n", line);
}

static void pull(struct eng *e, const char *ref, const struct docker_auth *a,
    struct progress *p, struct call *k)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->lines, 1 << 20);
	assert_int_equal(docker_image_pull(e->d, ref, a, on_progress, on_done, p,
	    NULL), 0);
	wait_for(e, &p->k.done, PULL_MS);
	*k = p->k;
}

static void present(struct eng *e, const char *ref, int want)
{
	struct call k;

	CALL_OK(e, k, OP_MS, docker_image_inspect(e->d, ref, on_done, &k, NULL));
	assert_int_equal(k.present, want);
}

static void remove_image(struct eng *e, const char *ref)
{
	struct call k;

	CALL_OK(e, k, OP_MS, docker_image_remove(e->d, ref, on_done, &k, NULL));
	present(e, ref, 0);
}

/* An open registry: the layer is new to the engine, so the progress is
 * there, summarised (far fewer lines than Docker's messages). */
static void test_pull_open_registry(void **state)
{
	struct eng *e = engine(state);
	const char *ref = fx_str("open_image");
	struct progress p;
	struct call k;

	present(e, ref, 0);
	pull(e, ref, NULL, &p, &k);
	if (k.err)
		fail_msg("pull %s: %d %s", ref, k.err, k.msg);
	fprintf(stderr, "%s: pull progress:\n%s", e->name, buf_cstr(&p.lines));
	assert_true(p.n >= 2 && p.n < 40);
	if (strcmp(e->name, "docker") == 0)
		assert_non_null(strstr(buf_cstr(&p.lines), ": Pull complete\n"));
	present(e, ref, 1);
	buf_free(&p.lines);
	/* pulled again: up to date */
	pull(e, ref, NULL, &p, &k);
	assert_int_equal(k.err, 0);
	buf_free(&p.lines);
	remove_image(e, ref);
	/* a layer the registry lost: the answer is 200 and the error comes
	 * inside the stream, after the layer's first lines */
	pull(e, fx_str("broken_image"), NULL, &p, &k);
	assert_int_equal(k.err, -EAGAIN);
	assert_non_null(strstr(k.msg, "blob"));
	if (strcmp(e->name, "docker") == 0) {	/* Podman fails before */
		assert_int_equal(k.status, 200);
		assert_non_null(strstr(buf_cstr(&p.lines), ": Pulling fs layer\n"));
	}
	buf_free(&p.lines);
	present(e, fx_str("broken_image"), 0);
	/* a registry that is down: the engine's 500, worth retrying */
	pull(e, "127.0.0.1:1/skiff/nothing:1", NULL, &p, &k);
	assert_int_equal(k.err, -EAGAIN);
	assert_int_equal(k.transient, 1);
	assert_non_null(strstr(k.msg, "refused"));
	buf_free(&p.lines);
}

/* An htpasswd registry: no credentials and a wrong password are both
 * "bad credentials" (-EACCES, not worth retrying), a missing tag is
 * -ENOENT, the right password pulls. */
static void test_pull_private_registry(void **state)
{
	struct eng *e = engine(state);
	const char *ref = fx_str("auth_image");
	struct docker_auth good = { fx_str("user"), fx_str("password"),
	    fx_str("auth_registry") };
	struct docker_auth bad = { fx_str("user"), "wrong-password",
	    fx_str("auth_registry") };
	struct progress p;
	struct call k;
	char missing[600];

	present(e, ref, 0);
	pull(e, ref, NULL, &p, &k);
	assert_int_equal(k.err, -EACCES);
	assert_int_equal(k.transient, 0);
	buf_free(&p.lines);
	pull(e, ref, &bad, &p, &k);
	assert_int_equal(k.err, -EACCES);
	assert_null(strstr(k.msg, "wrong-password"));
	buf_free(&p.lines);
	present(e, ref, 0);
	snprintf(missing, sizeof(missing), "%s/skiff/private:no-such-tag",
	    fx_str("auth_registry"));
	pull(e, missing, &good, &p, &k);
	assert_int_equal(k.err, -ENOENT);
	buf_free(&p.lines);
	/* Three lengths of the credentials' JSON, one per remainder mod 3:
	 * each needs its own base64 padding, and dockerd silently drops an
	 * unpadded header (then: "no basic auth credentials"). */
	for (int pad = 0; pad < 3; pad++) {
		char server[300];
		snprintf(server, sizeof(server), "%s%.*s",
		    fx_str("auth_registry"), pad, "//");
		good.server = server;
		pull(e, ref, &good, &p, &k);
		if (k.err)
			fail_msg("pull %s (server %s): %d %s", ref, server, k.err,
			    k.msg);
		buf_free(&p.lines);
		present(e, ref, 1);
		remove_image(e, ref);
	}
}

/* 4 MiB of output, more than the client holds back at once: all of it,
 * in order, through pause and resume. */
static void test_large_output(void **state)
{
	struct eng *e = engine(state);
	struct docker_create c = spec("busybox",
	    "head -c 4194304 /dev/zero | tr '\\0' x; echo; echo end >&2");
	struct run x;

	run_step(&x, e, &c, "large");
	assert_int_equal(x.out[1].len, 4194305);
	assert_int_equal(strspn(buf_cstr(&x.out[1]), "x"), 4194304);
	assert_string_equal(buf_cstr(&x.out[2]), "end\n");
	run_remove(&x);
}

/* Cancelling an attach from its own output callback, and freeing the
 * client with a wait still in flight: no callback after that, no leak
 * (ASan), and the container is still there to remove. */
static void test_cancel(void **state)
{
	struct eng *e = engine(state);
	struct docker_create c = spec("busybox",
	    "while :; do echo tick; sleep 0.1; done");
	struct run x;
	struct call k, never;
	char err[256];
	struct docker *d2;

	run_create(&x, e, &c, "cancel");
	x.cancel_on_output = 1;
	run_attach_start(&x);
	wait_for(e, &x.attach_done, OP_MS);
	assert_int_equal(x.attach_err, -ECANCELED);
	assert_int_equal(docker_open(e->loop, e->host, 10000, &d2, err,
	    sizeof(err)), 0);
	memset(&never, 0, sizeof(never));
	assert_int_equal(docker_container_wait(d2, x.id, NULL, on_done, &never,
	    NULL), 0);
	for (int i = 0; i < 5; i++)
		ev_run_once(e->loop, 20);
	docker_free(d2);
	CALL_OK(e, k, OP_MS, docker_container_kill(e->d, x.id, on_done, &k,
	    NULL));
	for (int i = 0; i < 10; i++)
		ev_run_once(e->loop, 20);
	assert_int_equal(never.done, 0);
	run_remove(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_engine_down_is_transient),
		cmocka_unit_test(test_output_and_exit_code),
		cmocka_unit_test(test_create_options),
		cmocka_unit_test(test_entrypoint_and_cmd_overridden),
		cmocka_unit_test(test_nonroot_image),
		cmocka_unit_test(test_oom_killed),
		cmocka_unit_test(test_stop_and_kill),
		cmocka_unit_test(test_exec),
		cmocka_unit_test(test_labels_list_remove),
		cmocka_unit_test(test_images_and_info),
		cmocka_unit_test(test_pull_open_registry),
		cmocka_unit_test(test_pull_private_registry),
		cmocka_unit_test(test_large_output),
		cmocka_unit_test(test_cancel),
	};
	signal(SIGPIPE, SIG_IGN);
	int failed = cmocka_run_group_tests_name("docker", tests, setup_docker,
	    group_teardown);
	failed += cmocka_run_group_tests_name("podman", tests, setup_podman,
	    teardown_last);
	if (fx.desc)
		fixture_stop();
	return failed;
}
