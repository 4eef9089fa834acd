/*
 * skiff-queue: start-up (data directory, lock, TLS, tokens, dev mode),
 * the event loop, and an orderly stop on SIGTERM/SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "devpki.h"
#include "err.h"
#include "ev.h"
#include "fsx.h"
#include "log.h"
#include "queue.h"
#include "server.h"
#include "token.h"
#include "xalloc.h"

/* How long a stop waits for requests in flight. */
#define DRAIN_MS 5000

struct app {
	struct qcfg cfg;
	struct ev_loop *loop;
	struct queue q;
	struct srv *srv;
	char *dir;
	int temp_dir;
	int lock_fd;
	char *cert_pem, *key_pem;
	struct devpki pki;
	char *admin_token;		/* dev mode: to print */
	char *reg_token;
	int stopping;
	int64_t stop_deadline;
	int sigfd;
	struct ev_io *sigw;
};

static int start_fail(const char *msg, const char *detail)
{
	log_error(msg, "detail=%s", logq(detail));
	return -1;
}

/* Every idle long-poll is a descriptor: take all the kernel allows. */
static void raise_nofile(const struct qcfg *c)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)c->max_connections + 64)
		log_warn("RLIMIT_NOFILE is below --max-connections; connections "
		    "past it will be refused", "nofile=%llu max_connections=%lld",
		    (unsigned long long)rl.rlim_cur, (long long)c->max_connections);
}

static int make_dir(struct app *a)
{
	int r;

	if (a->cfg.data_dir) {
		a->dir = xstrdup(a->cfg.data_dir);
	} else {
		const char *tmp = getenv("TMPDIR");
		a->dir = xasprintf("%s/skiff-queue-dev.XXXXXX", tmp && *tmp ? tmp :
		    "/tmp");
		if (mkdtemp(a->dir) == NULL)
			return start_fail("cannot make a temporary data dir",
			    strerror(errno));
		a->temp_dir = 1;
	}
	if ((r = fsx_mkdir_p(a->dir, 0700)) < 0)
		return start_fail("cannot create the data dir", strerror(-r));
	return 0;
}

/* One queue per data directory. */
static int lock_dir(struct app *a)
{
	char *p = xasprintf("%s/lock", a->dir);

	a->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(p);
	if (a->lock_fd < 0)
		return start_fail("cannot open the data dir lock", strerror(errno));
	if (flock(a->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return start_fail("another skiff-queue uses this data dir", a->dir);
	return 0;
}

static int read_text(const char *path, size_t max, char **out)
{
	struct buf b = BUF_INIT(max);
	int r = fsx_read_file(path, max, &b);

	if (r < 0) {
		buf_free(&b);
		return r;
	}
	*out = buf_steal(&b, NULL);
	return 0;
}

static int load_tls(struct app *a)
{
	const char *cert = a->cfg.tls_cert, *key = a->cfg.tls_key;
	char *tlsdir;
	int r;

	if (a->cfg.insecure_http || a->cert_pem)
		return 0;
	/* Dev certificates live in the data dir: the second pass. */
	if (a->cfg.dev && a->dir == NULL)
		return 0;
	if (a->cfg.dev) {
		tlsdir = xasprintf("%s/tls", a->dir);
		r = devpki_ensure(tlsdir, &a->pki);
		free(tlsdir);
		if (r < 0)
			return start_fail("cannot make the dev certificates", "");
		cert = a->pki.cert;
		key = a->pki.key;
	}
	if ((r = read_text(cert, 1 << 20, &a->cert_pem)) < 0)
		return start_fail("cannot read --tls-cert", strerror(-r));
	if ((r = read_text(key, 1 << 20, &a->key_pem)) < 0)
		return start_fail("cannot read --tls-key", strerror(-r));
	return 0;
}

/* The first line of a file, or NULL. */
static char *first_line(const char *path, int *err)
{
	char *text = NULL;

	*err = read_text(path, 4096, &text);
	if (*err < 0)
		return NULL;
	text[strcspn(text, "\r\n")] = '\0';
	return text;
}

/* A value from a KEY=value file written by an earlier dev run. */
static char *env_file_value(const char *path, const char *key)
{
	char *text = NULL, *v = NULL;
	size_t kl = strlen(key);

	if (read_text(path, 65536, &text) < 0)
		return NULL;
	for (char *line = text; *line; ) {
		size_t len = strcspn(line, "\n");
		if (len > kl && strncmp(line, key, kl) == 0 && line[kl] == '=') {
			free(v);
			v = xstrndup(line + kl + 1, len - kl - 1);
		}
		line += len + (line[len] == '\n');
	}
	free(text);
	return v;
}

static int set_token_hash(const char *tok, unsigned char *hash,
    const char *what)
{
	if (tok == NULL || !token_valid(tok, strlen(tok)))
		return start_fail("a token must be 1 to 128 characters of "
		    "[A-Za-z0-9_.-]", what);
	token_hash(tok, strlen(tok), hash);
	return 0;
}

static int admin_token(struct app *a)
{
	const char *env = getenv("SKIFF_ADMIN_TOKEN");
	char *devenv, *tok = NULL;
	int err = 0, r;

	if (a->admin_token)
		return 0;
	if (a->cfg.admin_token_file) {
		if ((tok = first_line(a->cfg.admin_token_file, &err)) == NULL)
			return start_fail("cannot read --admin-token-file",
			    strerror(-err));
	} else if (env && *env) {
		tok = xstrdup(env);
	} else if (a->cfg.dev && a->dir == NULL) {
		return 0;	/* from dev.env in the data dir: the second pass */
	} else if (a->cfg.dev) {
		devenv = xasprintf("%s/dev.env", a->dir);
		tok = env_file_value(devenv, "SKIFF_ADMIN_TOKEN");
		free(devenv);
		if (tok == NULL)
			tok = token_new("sadm_");
	} else {
		return start_fail("an admin token is required: "
		    "--admin-token-file or SKIFF_ADMIN_TOKEN", "");
	}
	r = set_token_hash(tok, a->q.admin_hash, "admin token");
	a->admin_token = tok;
	return r;
}

static int other_keys(struct app *a)
{
	struct err e;
	char *tok;
	int err = 0, r;

	if (a->cfg.metrics_token_file) {
		if ((tok = first_line(a->cfg.metrics_token_file, &err)) == NULL)
			return start_fail("cannot read --metrics-token-file",
			    strerror(-err));
		r = set_token_hash(tok, a->q.metrics_hash, "metrics token");
		sodium_memzero(tok, strlen(tok));
		free(tok);
		if (r < 0)
			return r;
		a->q.have_metrics_token = 1;
	}
	if (a->cfg.trusted_keys) {
		if (jwks_load(a->cfg.trusted_keys, &a->q.trusted, &e) < 0)
			return start_fail("cannot load --trusted-keys", e.msg);
		a->q.have_trusted = 1;
	}
	return 0;
}

/* ---- dev mode ---- */

/* The URL clients use: a wildcard listen address means loopback. */
static char *base_url(const struct app *a)
{
	struct sockaddr_storage ss;
	char host[INET6_ADDRSTRLEN] = "127.0.0.1";
	unsigned len;
	const char *scheme = a->cfg.insecure_http ? "http" : "https";
	int port = srv_port(a->srv);

	if (srv_parse_listen(a->cfg.listen, &ss, &len) == 0 &&
	    ss.ss_family == AF_INET6) {
		struct in6_addr *v6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		if (IN6_IS_ADDR_UNSPECIFIED(v6))
			return xasprintf("%s://[::1]:%d", scheme, port);
		inet_ntop(AF_INET6, v6, host, sizeof(host));
		return xasprintf("%s://[%s]:%d", scheme, host, port);
	}
	if (ss.ss_family == AF_INET &&
	    ((struct sockaddr_in *)&ss)->sin_addr.s_addr != htonl(INADDR_ANY))
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host,
		    sizeof(host));
	return xasprintf("%s://%s:%d", scheme, host, port);
}

static int dev_env(struct app *a)
{
	char *path = xasprintf("%s/dev.env", a->dir), *url = base_url(a);
	struct buf b = BUF_INIT(8192);
	int r;

	buf_printf(&b, "SKIFF_QUEUE_URL=%s\nSKIFF_CA_FILE=%s\n"
	    "SKIFF_ADMIN_TOKEN=%s\nSKIFF_REGISTRATION_TOKEN=%s\nSKIFF_POOL=dev\n"
	    "SKIFF_DATA_DIR=%s\n", url, a->pki.ca_cert, a->admin_token,
	    a->reg_token, a->dir);
	r = fsx_write_file(path, b.data, b.len, 0600);
	if (r == 0) {
		printf("skiff-queue dev mode; these are also in %s:\n%s", path,
		    b.data);
		fflush(stdout);
	}
	sodium_memzero(b.data, b.len);
	buf_free(&b);
	free(path);
	free(url);
	return r < 0 ? start_fail("cannot write dev.env", strerror(-r)) : 0;
}

static int dev_setup(struct app *a)
{
	char *path;

	if (!a->cfg.dev)
		return 0;
	path = xasprintf("%s/dev.env", a->dir);
	a->reg_token = env_file_value(path, "SKIFF_REGISTRATION_TOKEN");
	free(path);
	if (a->reg_token == NULL || !token_valid(a->reg_token,
	    strlen(a->reg_token))) {
		free(a->reg_token);
		a->reg_token = token_new("srt_");
	}
	if (agents_token_add(&a->q, "dev", a->reg_token, "dev mode") < 0)
		return start_fail("cannot store the dev registration token", "");
	return dev_env(a);
}

static int write_port(struct app *a)
{
	char text[16];
	int n = snprintf(text, sizeof(text), "%d\n", srv_port(a->srv)), r;

	if (a->cfg.port_file == NULL)
		return 0;
	r = fsx_write_file(a->cfg.port_file, text, (size_t)n, 0644);
	return r < 0 ? start_fail("cannot write --port-file", strerror(-r)) : 0;
}

/* ---- stopping ---- */

static void begin_stop(struct app *a, const char *why)
{
	if (a->stopping)
		return;
	a->stopping = 1;
	a->stop_deadline = ev_now_update(a->loop) + DRAIN_MS;
	log_info("stopping", "reason=%s", why);
	srv_quiesce(a->srv);
	queue_stop(&a->q);
}

static void on_signal(struct ev_io *w, int fd, unsigned events, void *arg)
{
	struct signalfd_siginfo si;

	(void)w;
	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		begin_stop(arg, si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
}

static int watch_signals(struct app *a)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	a->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a->sigfd < 0)
		return -errno;
	a->sigw = ev_io_start(a->loop, a->sigfd, EV_READ, on_signal, a);
	return a->sigw ? 0 : -errno;
}

static int run(struct app *a)
{
	for (;;) {
		int64_t left = a->stop_deadline - ev_now_update(a->loop);
		if (ev_run_once(a->loop, a->stopping ? (int)(left > 0 ? left : 0) :
		    -1) < 0)
			return QEX_FAIL;
		if (a->q.fatal)
			begin_stop(a, "the database is damaged");
		if (a->stopping && (srv_requests(a->srv) == 0 ||
		    ev_now_update(a->loop) >= a->stop_deadline))
			return a->q.fatal ? QEX_FAIL : QEX_OK;
	}
}

/* --postgres: no data directory, no lock (replicas share the database);
 * the schema is made or migrated before anything is served. */
static int start_postgres(struct app *a)
{
	char *password = NULL;
	int err = 0, r;

	if (a->cfg.pg_password_file &&
	    (password = first_line(a->cfg.pg_password_file, &err)) == NULL)
		return start_fail("cannot read --postgres-password-file",
		    strerror(-err));
	if ((r = ev_loop_new(&a->loop)) < 0)
		return start_fail("cannot make the event loop", strerror(-r));
	r = queue_open_pg(&a->q, &a->cfg, a->loop, a->cfg.postgres, password);
	if (password) {
		sodium_memzero(password, strlen(password));
		free(password);
	}
	if (r < 0)
		return start_fail("cannot open the queue's state in PostgreSQL",
		    strerror(-r));
	if (srv_start(&a->q, &a->cfg, a->loop, a->cert_pem, a->key_pem,
	    &a->srv) < 0)
		return -1;
	/* Signals first: the port file tells a supervisor we are up, and a
	 * SIGTERM right after it must stop us cleanly, not by its default. */
	if (watch_signals(a) < 0 || write_port(a) < 0)
		return -1;
	log_info("serving", "listen=%s port=%d tls=%d store=postgres "
	    "reuse_port=%d", logq(a->cfg.listen), srv_port(a->srv),
	    !a->cfg.insecure_http, a->cfg.reuse_port);
	return 0;
}

static int start(struct app *a)
{
	int r;

	/* Every file named on the command line is read before the data
	 * directory is made, so that a typo leaves nothing behind; what
	 * --dev keeps in the data directory is read after. */
	if (load_tls(a) < 0 || admin_token(a) < 0 || other_keys(a) < 0)
		return -1;
	if (a->cfg.postgres)
		return start_postgres(a);
	if (make_dir(a) < 0 || lock_dir(a) < 0 || load_tls(a) < 0 ||
	    admin_token(a) < 0)
		return -1;
	if ((r = ev_loop_new(&a->loop)) < 0)
		return start_fail("cannot make the event loop", strerror(-r));
	if (queue_open(&a->q, &a->cfg, a->loop, a->dir) < 0)
		return start_fail("cannot open the queue's state", a->dir);
	if (srv_start(&a->q, &a->cfg, a->loop, a->cert_pem, a->key_pem,
	    &a->srv) < 0)
		return -1;
	if (dev_setup(a) < 0 || watch_signals(a) < 0 || write_port(a) < 0)
		return -1;
	log_info("serving", "listen=%s port=%d tls=%d data_dir=%s sync=%s",
	    logq(a->cfg.listen), srv_port(a->srv), !a->cfg.insecure_http,
	    logq(a->dir), a->cfg.sync_full ? "full" : "normal");
	return 0;
}

static void cleanup(struct app *a)
{
	srv_free(a->srv);
	queue_close(&a->q);
	ev_io_stop(a->sigw);
	if (a->sigfd >= 0)
		close(a->sigfd);
	ev_loop_free(a->loop);
	if (a->temp_dir)
		fsx_remove_tree(a->dir);
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	if (a->key_pem)
		sodium_memzero(a->key_pem, strlen(a->key_pem));
	if (a->admin_token)
		sodium_memzero(a->admin_token, strlen(a->admin_token));
	free(a->cert_pem);
	free(a->key_pem);
	free(a->admin_token);
	free(a->reg_token);
	free(a->dir);
	devpki_free(&a->pki);
	cfg_free(&a->cfg);
}

int main(int argc, char **argv)
{
	static struct app a;
	int r;

	if (sodium_init() < 0) {
		fputs("skiff-queue: libsodium failed to initialise\n", stderr);
		return QEX_START;
	}
	signal(SIGPIPE, SIG_IGN);
	cfg_defaults(&a.cfg);
	r = cfg_parse(&a.cfg, argc, argv, stdout, stderr);
	if (r != 0) {
		cfg_free(&a.cfg);
		return r > 0 ? QEX_OK : QEX_USAGE;
	}
	log_setup("skiff-queue", (enum log_level)a.cfg.log_level,
	    (enum log_format)a.cfg.log_format);
	raise_nofile(&a.cfg);
	a.lock_fd = a.sigfd = -1;
	r = start(&a) < 0 ? QEX_START : run(&a);
	cleanup(&a);
	log_info("stopped", "exit=%d", r);
	return r;
}
