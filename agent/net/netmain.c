#include "netmain.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ev.h"
#include "log.h"
#include "net.h"
#include "netconf.h"
#include "runstub.h"
#include "sandbox.h"

struct netmain {
	struct ev_loop *loop;
	struct runstub *stub;
	struct net *net;
	struct net_config cfg;
	int have_cfg;
	int code;
	struct seam_net_in first;
};

static void on_exit_code(void *ctx, int code)
{
	struct netmain *m = ctx;

	/* The runner leaves with it; we leave when it closes the channel, or
	 * now if it has gone. */
	runstub_table(m->stub)->exit(runstub_table(m->stub)->ctx, code);
	m->code = 0;
	ev_break(m->loop);
}

static void on_end(void *arg, const char *why)
{
	struct netmain *m = arg;

	log_error("the runner half is gone; leaving", "why=%s", logq(why));
	m->code = AGENT_EX_HALF;
	ev_break(m->loop);
}

/* skiff-agent check-sandbox: what the sandbox forbids must fail. Exit 0
 * when it did (for execve: the filter kills us first, and the runner
 * sees that), 1 when it did not. */
static void __attribute__((noreturn)) selftest(const struct net_config *c,
    const struct sandbox_info *sb)
{
	if (strcmp(c->selftest, "read") == 0) {
		/* Landlock: nothing outside the list opens, even world-readable */
		int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
		if (sb->landlock_abi == 0) {
			fprintf(stderr, "skiff-agent: check-sandbox: this kernel has "
			    "no Landlock\n");
			_exit(2);
		}
		fprintf(stderr, "skiff-agent: check-sandbox: open(/etc/passwd): %s\n",
		    fd < 0 ? strerror(errno) : "allowed");
		_exit(fd < 0 ? 0 : 1);
	}
	char *argv[] = { (char *)"/bin/true", NULL }, *envp[] = { NULL };
	execve(argv[0], argv, envp);
	fprintf(stderr, "skiff-agent: check-sandbox: execve was not stopped: %s\n",
	    strerror(errno));
	_exit(1);
}

static int on_init(void *ctx, const char *json, int state_fd)
{
	struct netmain *m = ctx;
	const char *why;
	struct sandbox_info sb;
	int r;

	if (netconf_parse(json, strlen(json), &m->cfg, &why) < 0) {
		log_error("the runner sent bad settings", "why=%s", logq(why));
		return -EINVAL;
	}
	m->have_cfg = 1;
	m->cfg.state_fd = state_fd;
	log_setup("skiff-agent", m->cfg.log_level, m->cfg.log_format);
	if ((r = sandbox_apply(state_fd, &sb)) < 0) {
		log_error("cannot enter the sandbox", "error=%s", logq(strerror(-r)));
		return r;
	}
	log_debug("network half sandboxed", "uid=%ld landlock_abi=%d seccomp=%d",
	    (long)getuid(), sb.landlock_abi, sb.seccomp);
	if (m->cfg.selftest)
		selftest(&m->cfg, &sb);
	struct net_params np = { &m->cfg, m->loop, runstub_table(m->stub),
	    on_exit_code, m };
	if (net_new(&np, &m->net) < 0) {
		log_error("cannot set up HTTP", NULL);
		return -EIO;
	}
	runstub_set_in(m->stub, net_seam(m->net));
	net_start(m->net);
	return 0;
}

int netmain_run(void)
{
	struct netmain m;
	sigset_t set;

	memset(&m, 0, sizeof(m));
	m.code = AGENT_EX_FAILURE;
	/* Signals are the runner's to act on; it tells us. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	log_setup("skiff-agent", LOGL_INFO, LOGF_LOGFMT);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
	    ev_loop_new(&m.loop) < 0)
		return AGENT_EX_FAILURE;
	m.first.ctx = &m;
	m.first.init = on_init;
	if (runstub_new(m.loop, NETMAIN_FD, &m.first, on_end, &m, &m.stub) < 0)
		return AGENT_EX_FAILURE;
	ev_run(m.loop);
	net_free(m.net);
	runstub_free(m.stub);
	if (m.have_cfg) {
		if (m.cfg.state_fd >= 0)
			close(m.cfg.state_fd);
		netconf_free(&m.cfg);
	}
	ev_loop_free(m.loop);
	curl_global_cleanup();
	return m.code;
}
