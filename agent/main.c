/*
 * skiff-agent: wires the network half (agent/net) and the runner half
 * (agent/run) through the seam, runs the event loop, turns signals into
 * drain/cancel/quit, and exits with a code the systemd unit acts on.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run/config.h"
#include "b64.h"
#include "buf.h"
#include "err.h"
#include "ev.h"
#include "fsx.h"
#include "jwk.h"
#include "log.h"
#include "jsonx.h"
#include "net/net.h"
#include "net/netmain.h"
#include "replay.h"
#include "docker/docker.h"
#include "run/netstub.h"
#include "run/prepull.h"
#include "run/proctrack.h"
#include "run/runner.h"
#include "xalloc.h"

extern char **environ;

struct agent {
	struct agent_config cfg;
	struct ev_loop *loop;
	struct netstub *net;
	pid_t net_pid;
	int net_gone;
	int net_said_exit;
	struct ev_timer *gone_wait;
	uid_t net_uid;
	gid_t net_gid;
	const char *selftest;	/* check-sandbox */
	struct runner *runner;
	struct jwks trusted;
	struct jwk pool_key;
	int have_pool_key;
	struct replay *replay;
	struct docker *docker;
	int exit_code;
	int lock_fd;
	struct ev_io *sigw;
	char name[129];
	char instance[33];
	struct proctrack *ptrack;
};

static void on_exit_code(void *ctx, int code)
{
	struct agent *a = ctx;

	a->exit_code = code;
	a->net_said_exit = 1;
	ev_break(a->loop);
}

/* How the network half ended, for the log; reaps it (bounded). */
/* Waits up to ms for the network half to exit, then kills it. *st is its
 * wait status either way; 1 when it had to be killed, -1 when there was
 * nothing to wait for. */
static int wait_net(struct agent *a, int ms, int *st)
{
	pid_t r = 0;

	if (a->net_pid <= 0)
		return -1;
	for (int i = 0; i <= ms / 10; i++) {
		if ((r = waitpid(a->net_pid, st, WNOHANG)) != 0)
			break;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	int killed = r == 0;
	if (killed) {
		kill(a->net_pid, SIGKILL);
		r = waitpid(a->net_pid, st, 0);
	}
	a->net_pid = 0;
	return r < 0 ? -1 : killed;
}

static void reap_net(struct agent *a, int wait_ms)
{
	int st = 0;

	if (wait_net(a, wait_ms, &st) < 0)
		return;
	if (WIFSIGNALED(st))
		log_error("the network half was killed", "signal=%d%s", WTERMSIG(st),
		    WTERMSIG(st) == SIGSYS ? " (seccomp)" : "");
	else if (WEXITSTATUS(st) == 128 + SIGSYS)
		log_error("the network half was killed by its seccomp filter: a "
		    "system call outside its allow-list", "status=%d",
		    WEXITSTATUS(st));
	else if (WEXITSTATUS(st) != 0)
		log_warn("the network half exited", "status=%d", WEXITSTATUS(st));
}

static void on_gone_wait(struct ev_timer *t, void *arg)
{
	struct agent *a = arg;

	(void)t;
	if (runner_active(a->runner) == 0 || ++a->net_gone > 300)
		ev_break(a->loop);
	else
		ev_timer_start(a->gone_wait, 100);
}

/* The network half died (or broke the protocol): no lease can be kept,
 * no log uploaded. The steps stop now; their logs stay in the spool. */
static void on_net_gone(void *ctx, const char *why)
{
	struct agent *a = ctx;

	if (a->net_gone || a->net_said_exit)
		return;	/* it told us it leaves: the end of the channel follows */
	a->net_gone = 1;
	log_error("lost the network half; stopping every job and leaving",
	    "why=%s jobs=%zu", logq(why), runner_active(a->runner));
	reap_net(a, 1000);
	a->exit_code = AGENT_EX_HALF;
	runner_kill_all(a->runner);
	ev_timer_start(a->gone_wait, 0);
}

static void on_signal(struct ev_io *w, int fd, unsigned ev, void *arg)
{
	struct agent *a = arg;
	struct signalfd_siginfo si;

	(void)w;
	(void)ev;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGQUIT) {
			netstub_quit(a->net);
		} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("signal received", "signal=%s",
			    si.ssi_signo == SIGTERM ? "TERM" : "INT");
			netstub_drain(a->net);
		}
	}
}

static int setup_signals(struct agent *a, int *sfd)
{
	sigset_t set;

	/* Writes to a peer that went away fail with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	*sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (*sfd < 0)
		return -errno;
	a->sigw = ev_io_start(a->loop, *sfd, EV_READ, on_signal, a);
	return a->sigw ? 0 : -EIO;
}

/* Removes every entry of dir: what a run of this agent that crashed or
 * was killed left behind (workspaces, log spools). */
static void sweep_dir(const char *dir, const char *what)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];
	int r;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >=
		    (int)sizeof(path))
			continue;
		if ((r = fsx_remove_tree(path)) < 0)
			log_warn("cannot remove a leftover", "what=%s path=%s error=%s",
			    what, logq(path), logq(strerror(-r)));
		else
			log_info("removed a leftover of an earlier run", "what=%s "
			    "path=%s", what, logq(path));
	}
	closedir(d);
}

/* One agent per state directory: a second one would share its token and
 * replay cache. */
static int lock_state(struct agent *a)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/agent.lock", a->cfg.state_dir);
	a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (a->lock_fd < 0)
		return -errno;
	if (flock(a->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	return 0;
}

static int make_dirs(struct agent *a)
{
	char spool[4096];
	int r;

	snprintf(spool, sizeof(spool), "%s/spool", a->cfg.state_dir);
	if ((r = fsx_mkdir_p(a->cfg.state_dir, 0700)) < 0) {
		log_error("cannot create the state directory", "path=%s error=%s",
		    logq(a->cfg.state_dir), logq(strerror(-r)));
		return r;
	}
	if ((r = fsx_mkdir_p(a->cfg.spool_dir ? a->cfg.spool_dir : spool,
	    0700)) < 0 || (r = fsx_mkdir_p(a->cfg.work_dir, 0711)) < 0) {
		log_error("cannot create the spool or work directory", "error=%s",
		    logq(strerror(-r)));
		return r;
	}
	return 0;
}

/* Trusted keys and the pool key; a failure is a configuration error. */
static int load_trust_keys(struct agent *a)
{
	struct err e;

	if (jwks_load(a->cfg.trusted_keys, &a->trusted, &e) < 0) {
		log_error("cannot load the trusted keys (SKIFF_TRUSTED_KEYS)",
		    "error=%s", logq(e.msg));
		return -EINVAL;
	}
	if (a->cfg.pool_key) {
		if (jwk_load(a->cfg.pool_key, &a->pool_key, &e) < 0) {
			log_error("cannot load the pool key (SKIFF_POOL_KEY)", "error=%s",
			    logq(e.msg));
			return -EINVAL;
		}
		if (a->pool_key.type != JWK_X25519 || !a->pool_key.has_priv) {
			log_error("SKIFF_POOL_KEY is not a private X25519 key", "path=%s",
			    logq(a->cfg.pool_key));
			return -EINVAL;
		}
		a->have_pool_key = 1;
	}
	return 0;
}

static int load_trust(struct agent *a)
{
	int r;

	if (load_trust_keys(a) < 0)
		return -EINVAL;
	if (a->cfg.pool == NULL) {
		log_error("SKIFF_POOL is required: jobs are checked to be for this "
		    "pool", NULL);
		return -EINVAL;
	}
	r = replay_open(a->cfg.state_dir, (int64_t)time(NULL), a->cfg.clock_skew,
	    &a->replay);
	if (r < 0) {
		log_error("cannot open the replay cache", "dir=%s error=%s",
		    logq(a->cfg.state_dir), logq(strerror(-r)));
		return r;
	}
	return 0;
}

/* SKIFF_ON_EXIT, after an idle or max-jobs exit; bounded in time. */
static void run_exit_hook(const struct agent *a)
{
	const char *hook = a->cfg.on_exit;
	int status = 0;

	if (hook == NULL)
		return;
	log_info("running the on-exit hook", "hook=%s", logq(hook));
	pid_t pid = fork();
	if (pid == 0) {
		char *argv[] = { (char *)hook, (char *)"idle", NULL };
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setenv("SKIFF_EXIT_REASON", "idle", 1);
		execv(hook, argv);
		_exit(127);
	}
	if (pid < 0)
		return;
	for (int i = 0; i < 1200; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			log_info("on-exit hook finished", "status=%d",
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			return;
		}
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	log_warn("on-exit hook still running after 120 s; killing it", "hook=%s",
	    logq(hook));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/*
 * The label value of this agent's containers: random, kept in the state
 * directory, so that the same agent restarted after a crash (same state)
 * finds and sweeps what it left, and two agents on one host never sweep
 * each other's.
 */
static int load_instance(struct agent *a)
{
	char path[4096];
	struct buf b = BUF_INIT(64);
	unsigned char rnd[16];
	int r;

	snprintf(path, sizeof(path), "%s/instance", a->cfg.state_dir);
	if (fsx_read_file(path, 64, &b) == 0 && b.len >= 32) {
		snprintf(a->instance, sizeof(a->instance), "%.32s", b.data);
		buf_free(&b);
		if (strspn(a->instance, "0123456789abcdef") == 32)
			return 0;
	}
	buf_free(&b);
	randombytes_buf(rnd, sizeof(rnd));
	hex_encode(rnd, sizeof(rnd), a->instance);
	if ((r = fsx_write_file(path, a->instance, 32, 0600)) < 0)
		log_error("cannot write the instance id", "path=%s error=%s",
		    logq(path), logq(strerror(-r)));
	return r;
}

static void agent_name(struct agent *a)
{
	if (a->cfg.name)
		snprintf(a->name, sizeof(a->name), "%s", a->cfg.name);
	else if (gethostname(a->name, sizeof(a->name)) < 0 || !a->name[0])
		snprintf(a->name, sizeof(a->name), "skiff-agent");
}

#define NET_HALF_ARG "--net-half"

/* The network half's user, when we can switch: root starts it as
 * SKIFF_NET_USER; anyone else runs both halves as themselves. */
static int net_identity(struct agent *a)
{
	struct passwd *pw;

	a->net_uid = getuid();
	a->net_gid = getgid();
	if (geteuid() != 0) {
		log_warn("not started as root: the network half runs as this "
		    "agent's own user, and host steps too (docs/agent.md, "
		    "\"Without root\")", "uid=%ld", (long)geteuid());
		return 0;
	}
	if ((pw = getpwnam(a->cfg.net_user)) == NULL || pw->pw_uid == 0) {
		log_error(pw ? "SKIFF_NET_USER must not be root" :
		    "SKIFF_NET_USER names no user (the package creates skiff-net)",
		    "user=%s", logq(a->cfg.net_user));
		return -EINVAL;
	}
	a->net_uid = pw->pw_uid;
	a->net_gid = pw->pw_gid;
	return 0;
}

/* <state>/net: the only directory the network half may write (its
 * agent token); an agent.json of a run before the halves moves there. */
static int net_state_dir(struct agent *a)
{
	char dir[4096], old[4200], new[4200];
	int fd;

	snprintf(dir, sizeof(dir), "%s/net", a->cfg.state_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fchown(fd, a->net_uid, a->net_gid) < 0 || fchmod(fd, 0700) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	snprintf(old, sizeof(old), "%s/agent.json", a->cfg.state_dir);
	snprintf(new, sizeof(new), "%s/agent.json", dir);
	if (access(new, F_OK) < 0 && rename(old, new) == 0) {
		if (chown(new, a->net_uid, a->net_gid) < 0)
			log_warn("cannot hand the agent token to the network half",
			    "path=%s", logq(new));
		else
			log_info("moved the agent token to the network half's "
			    "directory", "path=%s", logq(new));
	}
	return fd;
}

static int add_pem(cJSON *o, const char *key, const char *path)
{
	struct buf b = BUF_INIT(480 * 1024);
	int r = 0;

	if (path == NULL)
		return 0;
	if ((r = fsx_read_file(path, 480 * 1024, &b)) == 0)
		cJSON_AddStringToObject(o, key, buf_cstr(&b));
	else
		log_error(r == -E2BIG ? "a CA file is over 480 KiB (the network "
		    "half is sent its contents)" : "cannot read a CA file",
		    "path=%s error=%s", logq(path), logq(strerror(-r)));
	buf_free(&b);
	return r;
}

/* What the network half needs to know, and nothing it does not. */
static char *net_settings(struct agent *a)
{
	cJSON *o = cJSON_CreateObject(), *l;
	char *tok = NULL, *s;

	l = cJSON_AddArrayToObject(o, "queue_urls");
	for (size_t i = 0; i < a->cfg.queue_urls.n; i++)
		cJSON_AddItemToArray(l, cJSON_CreateString(a->cfg.queue_urls.v[i]));
	cJSON_AddStringToObject(o, "pool", a->cfg.pool);
	if (config_registration_token(&a->cfg, &tok) == 0) {
		cJSON_AddStringToObject(o, "registration_token", tok);
		memset(tok, 0, strlen(tok));
		free(tok);
	}
	cJSON_AddStringToObject(o, "name", a->name);
	l = cJSON_AddArrayToObject(o, "labels");
	for (size_t i = 0; i < a->cfg.labels.n; i++)
		cJSON_AddItemToArray(l, cJSON_CreateString(a->cfg.labels.v[i]));
	cJSON_AddNumberToObject(o, "capacity", (double)a->cfg.capacity);
	cJSON_AddNumberToObject(o, "lease_wait", (double)a->cfg.lease_wait);
	cJSON_AddNumberToObject(o, "idle_timeout", (double)a->cfg.idle_timeout);
	cJSON_AddNumberToObject(o, "max_jobs", (double)a->cfg.max_jobs);
	cJSON_AddNumberToObject(o, "drain_grace", (double)a->cfg.drain_grace);
	if (add_pem(o, "ca_pem", a->cfg.ca_file) < 0 ||
	    add_pem(o, "inputs_ca_pem", a->cfg.inputs_ca_file) < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	if (a->cfg.pinned_pubkey)
		cJSON_AddStringToObject(o, "pinned_pubkey", a->cfg.pinned_pubkey);
	cJSON_AddStringToObject(o, "log_level", log_level_name(a->cfg.log_level));
	cJSON_AddStringToObject(o, "log_format",
	    a->cfg.log_format == LOGF_JSON ? "json" : "logfmt");
	if (a->selftest)
		cJSON_AddStringToObject(o, "selftest", a->selftest);
	s = jsonx_print(o);
	cJSON_Delete(o);
	return s;
}

/* In the child, before exec: fd 3 is the channel, nothing else is open,
 * the user is the network half's, and it dies with us. The environment
 * is emptied but for the sanitizers' settings: the half is told what it
 * needs over the channel. */
static void exec_net(struct agent *a, int sock)
{
	char *argv[] = { (char *)"skiff-agent", (char *)NET_HALF_ARG, NULL };
	char *envp[8];
	size_t ne = 0;
	sigset_t none;

	if (dup2(sock, NETMAIN_FD) < 0)
		_exit(127);
	for (int fd = NETMAIN_FD + 1; fd < 65536; fd++)
		if (fd != 2)
			close(fd);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		_exit(127);
	if (geteuid() == 0 && (setgroups(0, NULL) < 0 ||
	    setgid(a->net_gid) < 0 || setuid(a->net_uid) < 0))
		_exit(127);
	for (char **e = environ; *e && ne < 7; e++)
		if (!strncmp(*e, "ASAN_", 5) || !strncmp(*e, "UBSAN_", 6) ||
		    !strncmp(*e, "LSAN_", 5) || !strncmp(*e, "TZ=", 3))
			envp[ne++] = *e;
	envp[ne] = NULL;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve("/proc/self/exe", argv, envp);
	_exit(127);
}

static int start_net(struct agent *a)
{
	int sv[2], dirfd, r;
	char *init;

	if (net_identity(a) < 0)
		return -EINVAL;
	if ((dirfd = net_state_dir(a)) < 0) {
		log_error("cannot make the network half's state directory",
		    "error=%s", logq(strerror(-dirfd)));
		return dirfd;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		close(dirfd);
		return -errno;
	}
	a->net_pid = fork();
	if (a->net_pid == 0) {
		close(sv[0]);
		exec_net(a, sv[1]);
	}
	close(sv[1]);
	if (a->net_pid < 0) {
		close(sv[0]);
		close(dirfd);
		return -errno;
	}
	if (a->gone_wait == NULL)
		a->gone_wait = ev_timer_new(a->loop, on_gone_wait, a);
	struct netstub_params np = { a->loop, sv[0], NULL,
	    (uint64_t)a->cfg.max_spool_bytes << 20, on_exit_code, on_net_gone, a };
	char spool[4096];
	snprintf(spool, sizeof(spool), "%s/spool", a->cfg.state_dir);
	np.spool_dir = a->cfg.spool_dir ? a->cfg.spool_dir : spool;
	if ((r = netstub_new(&np, &a->net)) < 0) {
		close(sv[0]);
		close(dirfd);
		return r;
	}
	if ((init = net_settings(a)) == NULL) {
		close(dirfd);
		return -EINVAL;
	}
	r = netstub_init(a->net, init, dirfd);
	memset(init, 0, strlen(init));
	cJSON_free(init);
	return r;
}

/* The exit status of the network half, waited for up to ms; -1: none. */
/*
 * skiff-agent check-sandbox: starts the network half as a run would
 * (same user, same filters) and has it try what its sandbox forbids: an
 * execve (the seccomp filter must kill it) and opening a file outside its
 * view (Landlock must refuse). Exit 0 when both were stopped.
 */
static int check_sandbox(struct agent *a)
{
	static const char *const tests[] = { "execve", "read" };
	int bad = 0;

	if (make_dirs(a) < 0)
		return AGENT_EX_CONFIG;
	if (ev_loop_new(&a->loop) < 0)
		return AGENT_EX_FAILURE;
	agent_name(a);
	for (size_t i = 0; i < 2; i++) {
		a->selftest = tests[i];
		if (start_net(a) < 0)
			return AGENT_EX_FAILURE;
		int st = 0;
		if (wait_net(a, 10000, &st) != 0)
			st = -1;
		netstub_free(a->net);
		a->net = NULL;
		int code = st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		if (i == 0 && code == 128 + SIGSYS) {
			printf("execve: killed by the seccomp filter, as it must be\n");
		} else if (i == 0) {
			printf("execve: NOT stopped (status %d)\n", st);
			bad = 1;
		} else if (code == 0) {
			printf("open outside the sandbox: refused by Landlock, as it "
			    "must be\n");
		} else if (code == 2) {
			printf("open outside the sandbox: this kernel has no Landlock "
			    "(the seccomp filter and the user still apply)\n");
		} else {
			printf("open outside the sandbox: NOT refused (status %d)\n", st);
			bad = 1;
		}
	}
	return bad ? AGENT_EX_FAILURE : 0;
}

static int run(struct agent *a)
{
	int sfd = -1, r;

	if (make_dirs(a) < 0)
		return AGENT_EX_CONFIG;
	if ((r = lock_state(a)) < 0) {
		log_error(r == -EBUSY ? "another agent uses this state directory" :
		    "cannot lock the state directory", "dir=%s",
		    logq(a->cfg.state_dir));
		return AGENT_EX_CONFIG;
	}
	/* Holding the lock, nothing else of ours runs: what is in the work
	 * and spool directories belongs to a dead run. Its host steps' processes
	 * go first, so that none writes into a workspace being removed. */
	if (load_instance(a) < 0)
		return AGENT_EX_FAILURE;
	if (proctrack_open(a->cfg.host_tracking, a->cfg.state_dir, a->instance,
	    &a->ptrack) < 0)
		return AGENT_EX_CONFIG;
	sweep_dir(a->cfg.work_dir, "workspace");
	{
		char spool[4096];
		snprintf(spool, sizeof(spool), "%s/spool", a->cfg.state_dir);
		sweep_dir(a->cfg.spool_dir ? a->cfg.spool_dir : spool, "log spool");
	}
	if (load_trust(a) < 0)
		return AGENT_EX_CONFIG;
	agent_name(a);
	if (ev_loop_new(&a->loop) < 0 || setup_signals(a, &sfd) < 0) {
		log_error("cannot set up the event loop", "error=%s",
		    logq(strerror(errno)));
		return AGENT_EX_FAILURE;
	}
	/* No I/O yet: the engine is asked when the loop runs, and again when
	 * a job needs it if it was not there. */
	if (docker_new(a->loop, a->cfg.docker_host, &a->docker) < 0) {
		log_error("SKIFF_DOCKER_HOST is not unix:///path", "host=%s",
		    logq(a->cfg.docker_host));
		return AGENT_EX_CONFIG;
	}
	if ((r = start_net(a)) < 0)
		return r == -EINVAL ? AGENT_EX_CONFIG : AGENT_EX_FAILURE;
	struct runner_params rp = { &a->cfg, a->loop, netstub_table(a->net),
	    &a->trusted, a->have_pool_key ? &a->pool_key : NULL, a->replay,
	    a->docker, a->name, a->instance, a->ptrack };
	/* The seam: the runner gets the network half's stub, the stub the
	 * runner's table. */
	if (runner_new(&rp, &a->runner) < 0)
		return AGENT_EX_CONFIG;
	netstub_set_runner(a->net, runner_seam(a->runner));
	log_info("skiff-agent starting", "version=%s name=%s pool=%s queue=%s "
	    "capacity=%lld net_pid=%ld", SKIFF_VERSION, logq(a->name),
	    logq(a->cfg.pool), logq(a->cfg.queue_url),
	    (long long)a->cfg.capacity, (long)a->net_pid);
	runner_docker_start(a->runner);
	ev_run(a->loop);
	if (runner_active(a->runner))
		runner_kill_all(a->runner);
	/* The network half leaves when its end of the channel closes. */
	netstub_free(a->net);
	a->net = NULL;
	reap_net(a, 5000);
	if (a->exit_code == AGENT_EX_DONE)
		run_exit_hook(a);
	log_info("skiff-agent exiting", "code=%d", a->exit_code);
	ev_io_stop(a->sigw);
	if (sfd >= 0)
		close(sfd);
	return a->exit_code;
}

static void agent_free(struct agent *a);

/* --check-config: everything run() would refuse, without running. */
static int check_config(struct agent *a)
{
	struct stat st;
	int bad = 0;

	/* main checked the files named (config_check_files); what is left is
	 * what only a run would find missing. */
	if (!a->cfg.registration_token && !a->cfg.registration_token_file) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/agent.json", a->cfg.state_dir);
		if (stat(path, &st) < 0) {
			fprintf(stderr, "skiff-agent: no registration token "
			    "(SKIFF_REGISTRATION_TOKEN or _FILE) and no stored agent "
			    "token in %s\n", path);
			bad = 1;
		}
	}
	if (a->cfg.pool == NULL) {
		fprintf(stderr, "skiff-agent: SKIFF_POOL is required: jobs are "
		    "checked to be for this pool\n");
		bad = 1;
	}
	if (load_trust_keys(a) < 0)
		bad = 1;
	config_print(&a->cfg, stdout);
	if (bad)
		return AGENT_EX_CONFIG;
	fprintf(stderr, "skiff-agent: configuration is valid (%zu trusted "
	    "key%s%s)\n", a->trusted.n, a->trusted.n == 1 ? "" : "s",
	    a->have_pool_key ? ", pool key loaded" : "");
	return 0;
}

static void agent_free(struct agent *a)
{
	netstub_free(a->net);
	ev_timer_free(a->gone_wait);
	runner_free(a->runner);
	proctrack_free(a->ptrack);
	docker_free(a->docker);
	replay_close(a->replay);
	jwks_free(&a->trusted);
	jwk_wipe(&a->pool_key);
	ev_loop_free(a->loop);
	if (a->lock_fd > 0)
		close(a->lock_fd);
	config_free(&a->cfg);
}

int main(int argc, char **argv)
{
	struct agent a;
	int argi, check, r;

	/* The network half: started by the runner with the socketpair as fd
	 * 3 (run_net_half). Not an operator's command. */
	if (argc == 2 && strcmp(argv[1], NET_HALF_ARG) == 0) {
		struct stat st;
		if (fstat(NETMAIN_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "skiff-agent: %s is started by the agent "
			    "itself\n", NET_HALF_ARG);
			return AGENT_EX_USAGE;
		}
		return netmain_run();
	}
	memset(&a, 0, sizeof(a));
	a.lock_fd = -1;
	/* The runner speaks HTTP to dockerd only, over its unix socket: no
	 * TLS library to initialise (the network half does its own). */
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_NOTHING) != 0) {
		fprintf(stderr, "skiff-agent: cannot initialise libsodium/libcurl\n");
		return AGENT_EX_FAILURE;
	}
	r = config_load(&a.cfg, argc, argv, &argi, &check);
	if (r == CONFIG_HELP) {
		config_usage(stdout);
		config_free(&a.cfg);
		return 0;
	}
	if (r == CONFIG_VERSION) {
		printf("skiff-agent %s (protocol 1)\n", SKIFF_VERSION);
		config_free(&a.cfg);
		return 0;
	}
	/* docs/agent.md: the command line's shape is a usage error (64), a
	 * bad setting from wherever it came a configuration error (78). */
	if (r == 0 && argi < argc && (strcmp(argv[argi], "prepull") != 0 &&
	    ((strcmp(argv[argi], "run") != 0 &&
	    strcmp(argv[argi], "check-sandbox") != 0) || argi + 1 < argc))) {
		if (strcmp(argv[argi], "run") == 0 ||
		    strcmp(argv[argi], "check-sandbox") == 0)
			fprintf(stderr, "skiff-agent: %s takes no arguments\n",
			    argv[argi]);
		else
			fprintf(stderr, "skiff-agent: unknown command '%s'\n",
			    argv[argi]);
		r = CONFIG_USAGE;
	}
	if (r != 0) {
		fprintf(stderr, "skiff-agent: see skiff-agent --help\n");
		config_free(&a.cfg);
		return r == CONFIG_USAGE ? AGENT_EX_USAGE : AGENT_EX_CONFIG;
	}
	log_setup("skiff-agent", a.cfg.log_level, a.cfg.log_format);
	if (argi < argc && strcmp(argv[argi], "prepull") == 0) {
		/* Needs nothing but the Docker socket: runs at image build time,
		 * before the VM has a queue or keys. */
		r = prepull_run(&a.cfg, argc - argi - 1, argv + argi + 1);
		config_free(&a.cfg);
		return r;
	}
	/* Both, so that one run names every bad setting and file. */
	r = config_validate(&a.cfg);
	if (config_check_files(&a.cfg) < 0 || r < 0) {
		config_free(&a.cfg);
		return AGENT_EX_CONFIG;
	}
	if (check) {
		r = check_config(&a);
		agent_free(&a);
		return r;
	}
	if (argi < argc && strcmp(argv[argi], "check-sandbox") == 0)
		r = check_sandbox(&a);
	else
		r = run(&a);
	agent_free(&a);
	curl_global_cleanup();
	return r;
}
