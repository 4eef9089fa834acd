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
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "b64.h"
#include "buf.h"
#include "err.h"
#include "ev.h"
#include "fsx.h"
#include "jwk.h"
#include "log.h"
#include "net/net.h"
#include "replay.h"
#include "run/docker.h"
#include "run/prepull.h"
#include "run/proctrack.h"
#include "run/runner.h"
#include "xalloc.h"

struct agent {
	struct agent_config cfg;
	struct ev_loop *loop;
	struct net *net;
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
	ev_break(a->loop);
}

static void on_signal(struct ev_io *w, int fd, unsigned ev, void *arg)
{
	struct agent *a = arg;
	struct signalfd_siginfo si;

	(void)w;
	(void)ev;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGQUIT) {
			net_quit(a->net);
		} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("signal received", "signal=%s",
			    si.ssi_signo == SIGTERM ? "TERM" : "INT");
			net_drain(a->net);
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
	struct runner_params rp = { &a->cfg, a->loop, NULL, &a->trusted,
	    a->have_pool_key ? &a->pool_key : NULL, a->replay, a->docker,
	    a->name, a->instance, a->ptrack };
	struct net_params np = { &a->cfg, a->loop, NULL, on_exit_code, a };
	/* The seam: each half gets the other's message table, nothing else. */
	runner_new(&rp, &a->runner);
	np.runner = runner_seam(a->runner);
	if (net_new(&np, &a->net) < 0) {
		log_error("cannot set up HTTP", NULL);
		return AGENT_EX_FAILURE;
	}
	rp.net = net_seam(a->net);
	runner_set_net(a->runner, rp.net);
	log_info("skiff-agent starting", "version=%s name=%s pool=%s queue=%s "
	    "capacity=%lld", SKIFF_VERSION, logq(a->name), logq(a->cfg.pool),
	    logq(a->cfg.queue_url), (long long)a->cfg.capacity);
	runner_docker_start(a->runner);
	net_start(a->net);
	ev_run(a->loop);
	if (runner_active(a->runner))
		runner_kill_all(a->runner);
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
	net_free(a->net);
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

	memset(&a, 0, sizeof(a));
	a.lock_fd = -1;
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
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
	    (strcmp(argv[argi], "run") != 0 || argi + 1 < argc))) {
		if (strcmp(argv[argi], "run") == 0)
			fprintf(stderr, "skiff-agent: run takes no arguments\n");
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
	r = run(&a);
	agent_free(&a);
	curl_global_cleanup();
	return r;
}
