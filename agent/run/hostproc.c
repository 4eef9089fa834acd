#include "hostproc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ev.h"
#include "log.h"
#include "xalloc.h"

#define PIPE_SIZE (1 << 20)
#define READ_CHUNK (64 * 1024)

struct hostproc {
	struct ev_loop *loop;
	pid_t pid;
	int pidfd;
	int out[3];		/* read ends for fds 1 and 2 */
	struct ev_io *w[3];
	struct ev_io *pidw;
	struct ev_timer *kill_timer;
	hostproc_output_fn on_out;
	hostproc_exit_fn on_exit;
	void *arg;
	void (*kill_rest)(void *track_arg);
	void *track_arg;
	int exited;
	int status;
	int reported;
};

#define OPEN_TREE_CLONE_ 1
#define AT_RECURSIVE_ 0x8000
#define MOVE_MOUNT_F_EMPTY_PATH_ 0x00000004

/* mkdir -p of an absolute path, root-owned: async-signal-safe. */
static int mkdirs(const char *path)
{
	char p[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(p) || path[0] != '/')
		return -1;
	memcpy(p, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -1;
		p[i] = i == n ? '\0' : '/';
	}
	return 0;
}

/* The mount namespace of hostproc_iso. Fails closed: a directory that
 * cannot be hidden stops the step. */
static int isolate(const struct hostproc_iso *iso)
{
	int keep = -1;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return -1;
	if (iso->keep && (keep = (int)syscall(SYS_open_tree, AT_FDCWD, iso->keep,
	    OPEN_TREE_CLONE_ | AT_RECURSIVE_ | O_CLOEXEC)) < 0)
		return -1;
	for (size_t i = 0; iso->hide_dirs && iso->hide_dirs[i]; i++)
		if (mount("tmpfs", iso->hide_dirs[i], "tmpfs", MS_NOSUID | MS_NODEV,
		    "mode=0755,size=64k") < 0)
			return -1;
	/* Files: a root-owned empty file of mode 0 in their place, so that
	 * opening one fails as a file the step may not read. */
	if (iso->hide_files && iso->hide_files[0]) {
		char empty[4200];
		size_t n = iso->hide_dirs && iso->hide_dirs[0] ?
		    strlen(iso->hide_dirs[0]) : 0;
		int fd;
		if (n == 0 || n + 16 > sizeof(empty))
			return -1;
		memcpy(empty, iso->hide_dirs[0], n);
		memcpy(empty + n, "/.hidden", 9);
		if ((fd = open(empty, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)) < 0)
			return -1;
		close(fd);
		for (size_t i = 0; iso->hide_files[i]; i++)
			if (mount(empty, iso->hide_files[i], NULL, MS_BIND, NULL) < 0 &&
			    errno != ENOENT)
				return -1;
	}
	if (keep >= 0 && (mkdirs(iso->keep) < 0 ||
	    syscall(SYS_move_mount, keep, "", AT_FDCWD, iso->keep,
	    MOVE_MOUNT_F_EMPTY_PATH_) < 0))
		return -1;
	if (keep >= 0)
		close(keep);
	return 0;
}

/* In the child, before exec: only async-signal-safe calls. gofd brings
 * a byte once the agent has put us under tracking (EOF: it could not, or
 * it died). */
static void __attribute__((noreturn)) child(const struct hostproc_params *p,
    int outw, int errw, int errpipe, int gofd, pid_t agent)
{
	sigset_t none;
	int fd, e;
	char go;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	setsid();
	if (read(gofd, &go, 1) != 1)
		_exit(127);
	if ((fd = open("/dev/null", O_RDONLY)) < 0 || dup2(fd, 0) < 0 ||
	    dup2(outw, 1) < 0 || dup2(errw, 2) < 0)
		goto fail;
	if (p->iso && isolate(p->iso) < 0)
		goto fail;
	if (p->cwd && chdir(p->cwd) < 0)
		goto fail;
	if (p->set_user && (setgroups(0, NULL) < 0 || setgid(p->gid) < 0 ||
	    setuid(p->uid) < 0))
		goto fail;
	/* After setuid, which clears it. The agent may have died before the
	 * prctl: then we are already orphaned and must not run. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		goto fail;
	if (getppid() != agent)
		_exit(127);
	/* Everything else stays behind, errpipe included (it is O_CLOEXEC,
	 * and exec closing it tells the parent the exec worked). */
	if (errpipe > 3)
		close_range(3, (unsigned)errpipe - 1, 0);
	close_range((unsigned)errpipe + 1, ~0U, 0);
	if (strchr(p->argv[0], '/'))
		execve(p->argv[0], p->argv, p->envp);
	else
		execvpe(p->argv[0], p->argv, p->envp);
fail:
	e = errno;
	(void)!write(errpipe, &e, sizeof(e));
	_exit(127);
}

/* The group, and whatever left it that the tracker knows of. */
static void kill_all(struct hostproc *hp)
{
	kill(-hp->pid, SIGKILL);
	if (hp->kill_rest)
		hp->kill_rest(hp->track_arg);
}

static void report(struct hostproc *hp)
{
	if (hp->reported || !hp->exited || hp->w[1] || hp->w[2])
		return;
	hp->reported = 1;
	ev_timer_stop(hp->kill_timer);
	hp->on_exit(hp->arg, hp->status);
}

static void close_stream(struct hostproc *hp, int s)
{
	if (hp->w[s] == NULL)
		return;
	ev_io_stop(hp->w[s]);
	hp->w[s] = NULL;
	close(hp->out[s]);
	hp->out[s] = -1;
	hp->on_out(hp->arg, s, "", 0);
}

/* Reads what is there now (at most rounds reads); returns 0 at the end of
 * the stream. */
static int drain(struct hostproc *hp, int s, int rounds)
{
	char buf[READ_CHUNK];

	while (rounds-- > 0) {
		ssize_t n = read(hp->out[s], buf, sizeof(buf));
		if (n > 0) {
			hp->on_out(hp->arg, s, buf, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 1;
		return 0;
	}
	return 1;
}

static void on_readable(struct ev_io *w, int fd, unsigned ev, void *arg)
{
	struct hostproc *hp = arg;
	int s = fd == hp->out[1] ? 1 : 2;

	(void)w;
	(void)ev;
	/* A bounded number of reads per wakeup keeps one chatty step from
	 * starving the rest of the loop. */
	if (!drain(hp, s, 16)) {
		close_stream(hp, s);
		report(hp);
	}
}

static void on_pidfd(struct ev_io *w, int fd, unsigned ev, void *arg)
{
	struct hostproc *hp = arg;
	int status;

	(void)w;
	(void)fd;
	(void)ev;
	if (waitpid(hp->pid, &status, WNOHANG) != hp->pid)
		return;
	hp->exited = 1;
	hp->status = status;
	ev_io_stop(hp->pidw);
	hp->pidw = NULL;
	/* Output the step wrote before exiting is still in the pipes; take
	 * it, then end whatever the step left running in its group so that
	 * nothing holds the pipes open or outlives the step. */
	for (int s = 1; s <= 2; s++)
		if (hp->w[s])
			drain(hp, s, 64);
	kill_all(hp);
	for (int s = 1; s <= 2; s++) {
		if (hp->w[s]) {
			/* The writers are dead now: this ends at EOF, or at EAGAIN
			 * if something that left the group still holds the pipe. */
			drain(hp, s, 1024);
			close_stream(hp, s);
		}
	}
	report(hp);
}

static void on_kill_timer(struct ev_timer *t, void *arg)
{
	struct hostproc *hp = arg;

	(void)t;
	if (!hp->exited) {
		log_debug("grace period over; killing the step", "pid=%d",
		    (int)hp->pid);
		kill_all(hp);
	}
}

static int make_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	/* A bigger pipe means fewer wakeups when a step writes fast. */
	fcntl(fds[0], F_SETPIPE_SZ, PIPE_SIZE);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	return 0;
}

/* Lets the child go once the tracker has it; kills it otherwise. */
static int release(struct hostproc *hp, const struct hostproc_params *p,
    int gofd)
{
	int r = p->placed ? p->placed(p->track_arg, hp->pid) : 0;

	if (r == 0 && write(gofd, "g", 1) != 1)
		r = -errno;
	close(gofd);
	if (r < 0) {
		kill(hp->pid, SIGKILL);
		waitpid(hp->pid, NULL, 0);
		hp->pid = -1;
	}
	return r;
}

static int spawn(struct hostproc *hp, const struct hostproc_params *p,
    int po[2], int pe[2])
{
	int ep[2], go[2], e = 0;
	pid_t agent = getpid();

	if (pipe2(ep, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(go, O_CLOEXEC) < 0) {
		e = errno;
		close(ep[0]);
		close(ep[1]);
		return -e;
	}
	hp->pid = fork();
	if (hp->pid < 0) {
		e = errno;
		close(ep[0]);
		close(ep[1]);
		close(go[0]);
		close(go[1]);
		return -e;
	}
	if (hp->pid == 0)
		child(p, po[1], pe[1], ep[1], go[0], agent);
	close(ep[1]);
	close(go[0]);
	if ((e = release(hp, p, go[1])) < 0) {
		close(ep[0]);
		return e;
	}
	ssize_t n;
	do
		n = read(ep[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(ep[0]);
	if (n == (ssize_t)sizeof(e)) {
		waitpid(hp->pid, NULL, 0);
		hp->pid = -1;
		return -e;
	}
	return 0;
}

int hostproc_start(struct ev_loop *loop, const struct hostproc_params *p,
    hostproc_output_fn out, hostproc_exit_fn exited, void *arg,
    struct hostproc **hpp)
{
	struct hostproc *hp = xcalloc(1, sizeof(*hp));
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, r;

	hp->loop = loop;
	hp->on_out = out;
	hp->on_exit = exited;
	hp->arg = arg;
	hp->kill_rest = p->kill_rest;
	hp->track_arg = p->track_arg;
	hp->pidfd = -1;
	hp->out[0] = hp->out[1] = hp->out[2] = -1;
	if ((r = make_pipe(po)) < 0 || (r = make_pipe(pe)) < 0 ||
	    (r = spawn(hp, p, po, pe)) < 0)
		goto fail;
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	hp->out[1] = po[0];
	hp->out[2] = pe[0];
	hp->pidfd = pidfd_open(hp->pid, 0);
	if (hp->pidfd < 0) {
		r = -errno;
		kill_all(hp);
		waitpid(hp->pid, NULL, 0);
		goto fail;
	}
	hp->pidw = ev_io_start(loop, hp->pidfd, EV_READ, on_pidfd, hp);
	hp->w[1] = ev_io_start(loop, hp->out[1], EV_READ, on_readable, hp);
	hp->w[2] = ev_io_start(loop, hp->out[2], EV_READ, on_readable, hp);
	hp->kill_timer = ev_timer_new(loop, on_kill_timer, hp);
	*hpp = hp;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	free(hp);
	return r;
}

void hostproc_stop(struct hostproc *hp, long grace_ms)
{
	if (hp == NULL || hp->exited)
		return;
	if (grace_ms <= 0) {
		kill_all(hp);
		return;
	}
	kill(-hp->pid, SIGTERM);
	if (!ev_timer_active(hp->kill_timer))
		ev_timer_start(hp->kill_timer, grace_ms);
}

pid_t hostproc_pid(const struct hostproc *hp)
{
	return hp->pid;
}

void hostproc_free(struct hostproc *hp)
{
	if (hp == NULL)
		return;
	if (!hp->exited && hp->pid > 0) {
		kill_all(hp);
		waitpid(hp->pid, NULL, 0);
	}
	for (int s = 1; s <= 2; s++) {
		ev_io_stop(hp->w[s]);
		if (hp->out[s] >= 0)
			close(hp->out[s]);
	}
	ev_io_stop(hp->pidw);
	if (hp->pidfd >= 0)
		close(hp->pidfd);
	ev_timer_free(hp->kill_timer);
	free(hp);
}
