#include "rmtree.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ev.h"
#include "fsx.h"
#include "xalloc.h"

struct rmtree {
	pid_t pid;
	int pidfd;
	struct ev_io *w;
	rmtree_done_fn done;
	void *arg;
};

static void on_exit_(struct ev_io *w, int fd, unsigned ev, void *arg)
{
	struct rmtree *t = arg;
	rmtree_done_fn done = t->done;
	void *darg = t->arg;
	int status = 0, err;

	(void)w;
	(void)fd;
	(void)ev;
	if (waitpid(t->pid, &status, WNOHANG) != t->pid)
		return;
	ev_io_stop(t->w);
	t->w = NULL;
	close(t->pidfd);
	t->pidfd = -1;
	t->pid = 0;
	if (WIFEXITED(status))
		err = -WEXITSTATUS(status);
	else
		err = -EINTR;
	/* The caller may free t when it hears: nothing of t after this. */
	done(darg, err);
}

int rmtree_start(struct ev_loop *loop, const char *path, rmtree_done_fn done,
    void *arg, struct rmtree **out)
{
	struct rmtree *t = xcalloc(1, sizeof(*t));
	int r;

	t->done = done;
	t->arg = arg;
	pid_t parent = getpid();
	t->pid = fork();
	if (t->pid < 0) {
		r = -errno;
		free(t);
		return r;
	}
	if (t->pid == 0) {
		sigset_t none;
		/* Nothing of the agent's: not its lock on the state directory
		 * (a restarted agent would find it held), not its sockets; and
		 * it dies with the agent, whose restart sweeps the rest. */
		close_range(3, ~0U, 0);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(EINTR);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		r = fsx_remove_tree(path);
		/* errno values fit an exit status. */
		_exit(r < 0 ? (-r & 0xff) : 0);
	}
	t->pidfd = pidfd_open(t->pid, 0);
	if (t->pidfd < 0) {
		r = -errno;
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
		free(t);
		return r;
	}
	t->w = ev_io_start(loop, t->pidfd, EV_READ, on_exit_, t);
	*out = t;
	return 0;
}

void rmtree_free(struct rmtree *t)
{
	if (t == NULL)
		return;
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
	}
	ev_io_stop(t->w);
	if (t->pidfd >= 0)
		close(t->pidfd);
	free(t);
}
