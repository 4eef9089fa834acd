#include "inputs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "b64.h"
#include "beneath.h"
#include "config.h"
#include "ev.h"
#include "fsx.h"
#include "job.h"
#include "log.h"
#include "xalloc.h"

#define INPUT_TRIES 3
/* An archive may unpack to this many times SKIFF_MAX_INPUT. */
#define UNPACKED_FACTOR 16
/* Where the unpacker finds the directory to unpack into. */
#define UNPACK_DIR_FD 3

struct rinput {
	struct rinputs *set;
	const struct job_input *in;
	char cache[PATH_MAX];
	char part[PATH_MAX];
	int fetching;		/* a fetch is out with the network half */
	struct ev_timer *retry;
	int tries;
	int done;
};

struct rinputs {
	struct ev_loop *loop;
	struct rinputs_fetcher fetcher;
	const struct agent_config *cfg;
	const struct job *job;
	int rootfd;		/* the inputs directory, every path beneath it */
	rinputs_note_fn note;
	rinputs_done_fn done;
	void *arg;
	struct rinput *v;
	size_t n, left;
	int failed;
	/* extraction in a child running skiff-unpack */
	char unpacker[PATH_MAX];
	pid_t child;
	int child_pidfd, child_err, child_dirfd;
	struct ev_io *child_w;
	size_t extracting;	/* index + 1 of the input being unpacked */
	/* The outcome reaches the caller from the loop, never from inside
	 * our own callbacks: the caller may free us when it hears it. */
	struct ev_timer *report;
	int told;		/* done has been called */
	int ok;
	char why[1024];
};

static void next_place(struct rinputs *set);

static void note(struct rinputs *set, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(struct rinputs *set, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	set->note(set->arg, line);
}

static void finish(struct rinputs *set, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(struct rinputs *set, int ok, const char *fmt, ...)
{
	va_list ap;

	if (set->failed || ev_timer_active(set->report))
		return;
	set->ok = ok;
	if (!ok) {
		set->failed = 1;
		va_start(ap, fmt);
		vsnprintf(set->why, sizeof(set->why), fmt, ap);
		va_end(ap);
	}
	ev_timer_start(set->report, 0);
}

static void on_report(struct ev_timer *t, void *arg)
{
	struct rinputs *set = arg;

	(void)t;
	set->told = 1;
	set->done(set->arg, set->ok, set->ok ? NULL : set->why);
}

static void cache_dir(const struct agent_config *cfg, char *out, size_t n)
{
	snprintf(out, n, "%s/inputs", cfg->state_dir);
}

/* ---- download into the cache ---- */

static void download(struct rinput *ri);

static void downloaded(struct rinput *ri)
{
	ri->done = 1;
	if (--ri->set->left == 0)
		next_place(ri->set);
}

static void on_retry(struct ev_timer *t, void *arg)
{
	(void)t;
	download(arg);
}

/* The part file's digest and size, read back: what the network half says
 * it wrote counts for nothing. */
static int digest_of(const char *path, uint64_t max, unsigned char out[32],
    uint64_t *size)
{
	crypto_hash_sha256_state sha;
	char chunk[65536];
	uint64_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r = 0;

	if (fd < 0)
		return -errno;
	crypto_hash_sha256_init(&sha);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		if ((got += (uint64_t)n) > max) {
			r = -E2BIG;
			break;
		}
		crypto_hash_sha256_update(&sha, (unsigned char *)chunk, (size_t)n);
	}
	close(fd);
	crypto_hash_sha256_final(&sha, out);
	*size = got;
	return r;
}

void rinputs_fetched(struct rinputs *set, uint64_t id, int ok, long st,
    const char *error)
{
	size_t i = (size_t)(id & 0xffffffffu);
	struct rinput *ri;
	unsigned char digest[32];
	uint64_t got = 0, cap = (uint64_t)set->cfg->max_input_bytes << 20;
	char hex[65];
	int r;

	if (i == 0 || i > set->n || set->v[i - 1].tries != (int)(id >> 32) ||
	    !set->v[i - 1].fetching)
		return;		/* not ours, or an answer to an earlier try */
	ri = &set->v[i - 1];
	ri->fetching = 0;
	if (!ok) {
		unlink(ri->part);
		if ((st == 0 || st >= 500 || st == 429) && ri->tries + 1 < INPUT_TRIES) {
			ri->tries++;
			note(set, "input %s: %s, trying again", ri->in->path,
			    st ? "server error" : error ? error : "no answer");
			ev_timer_start(ri->retry, 1000LL << ri->tries);
			return;
		}
		if (st && st != 200)
			finish(set, 0, "input %s: download of %s failed: HTTP status %ld",
			    ri->in->path, ri->in->url, st);
		else
			finish(set, 0, "input %s: download of %s failed: %s",
			    ri->in->path, ri->in->url, error ? error : "no answer");
		return;
	}
	if ((r = digest_of(ri->part, cap, digest, &got)) < 0) {
		unlink(ri->part);
		finish(set, 0, "input %s: %s", ri->in->path, r == -E2BIG ?
		    "larger than SKIFF_MAX_INPUT" : strerror(-r));
		return;
	}
	hex_encode(digest, 32, hex);
	if (sodium_memcmp(digest, ri->in->sha256, 32) != 0) {
		unlink(ri->part);
		finish(set, 0, "input %s: SHA-256 mismatch: got %s, the job says %s",
		    ri->in->path, hex, ri->in->sha256_hex);
		return;
	}
	chmod(ri->part, 0444);
	if (rename(ri->part, ri->cache) < 0) {
		unlink(ri->part);
		finish(set, 0, "input %s: cannot keep it in the cache: %s",
		    ri->in->path, strerror(errno));
		return;
	}
	note(set, "input %s: %llu bytes downloaded, SHA-256 verified",
	    ri->in->path, (unsigned long long)got);
	downloaded(ri);
}

static void download(struct rinput *ri)
{
	struct rinputs *set = ri->set;
	uint64_t id = ((uint64_t)ri->tries << 32) | (uint64_t)(ri - set->v + 1);
	int fd = open(ri->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600);

	if (fd < 0) {
		finish(set, 0, "input %s: cannot write to the cache: %s",
		    ri->in->path, strerror(errno));
		return;
	}
	ri->fetching = 1;
	/* The descriptor is the network half's from here. */
	set->fetcher.fetch(set->fetcher.ctx, id, ri->in->url, fd,
	    (uint64_t)set->cfg->max_input_bytes << 20);
}

/* ---- placing it in the job ---- */

/* Across file systems: a copy, streamed, created where nothing was. */
static int copy_into(const char *from, int dfd, const char *name)
{
	int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), out = -1, r = 0;

	if (in < 0)
		return -errno;
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0444);
	if (out < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
	}
	if (r < 0)
		(void)unlinkat(dfd, name, 0);
out:
	if (out >= 0)
		close(out);
	close(in);
	return r;
}

/*
 * The input's path is the job's: resolved beneath the inputs directory,
 * so a link an archive made there (or a chain of them) cannot lead the
 * placement out.
 */
static int place_file(struct rinputs *set, const struct rinput *ri,
    char *err, size_t errlen)
{
	char name[NAME_MAX + 1];
	int dfd, r;

	if ((r = beneath_parent(set->rootfd, ri->in->path, 0755, 0, &dfd, name,
	    sizeof(name))) < 0) {
		snprintf(err, errlen, "refused: %s", beneath_strerror(r));
		return r;
	}
	/* A hard link costs nothing; across file systems, a copy. */
	if (linkat(AT_FDCWD, ri->cache, dfd, name, 0) == 0) {
		close(dfd);
		return 0;
	}
	r = -errno;
	if (r == -EXDEV || r == -EPERM)
		r = copy_into(ri->cache, dfd, name);
	close(dfd);
	if (r < 0)
		snprintf(err, errlen, "cannot place it: %s", strerror(-r));
	return r;
}

/* Read-only for everyone, so steps (host or container) cannot change
 * what the job was given. */
static void make_read_only(int dfd, int depth)
{
	DIR *d;
	struct dirent *e;
	struct stat st;

	if (depth > 64 || (d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				(void)fchmod(sub, 0555);
				make_read_only(sub, depth + 1);
			}
		} else if (S_ISREG(st.st_mode)) {
			/* Never through a link, whatever was swapped in. */
			(void)fchmodat(dirfd(d), e->d_name,
			    st.st_mode & 0111 ? 0555 : 0444, AT_SYMLINK_NOFOLLOW);
		}
	}
	closedir(d);
}

static void on_child(struct ev_io *w, int fd, unsigned ev, void *arg)
{
	struct rinputs *set = arg;
	char msg[600] = "";
	int status = 0;
	const struct rinput *ri = &set->v[set->extracting - 1];

	(void)w;
	(void)fd;
	(void)ev;
	if (waitpid(set->child, &status, WNOHANG) != set->child)
		return;
	ev_io_stop(set->child_w);
	set->child_w = NULL;
	close(set->child_pidfd);
	set->child = 0;
	ssize_t n = read(set->child_err, msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(set->child_err);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		finish(set, 0, "input %s: extraction failed: %s", ri->in->path,
		    msg[0] ? msg : "the unpacker was killed");
		return;
	}
	int dfd = set->child_dirfd;
	set->child_dirfd = -1;
	(void)fchmod(dfd, 0555);
	make_read_only(dfd, 0);	/* closes dfd */
	note(set, "input %s: unpacked", ri->in->path);
	next_place(set);
}

/* Unpacks in a child: the archive is untrusted input (its digest proves
 * only that the job's author chose it). */
static int extract_async(struct rinputs *set, const struct rinput *ri,
    char *err, size_t errlen)
{
	char max_bytes[32], fdarg[16];
	int p[2], r, dfd;

	/* The directory is made and opened beneath the inputs directory and
	 * handed to the unpacker as an fd: no path of the job's is walked
	 * from / on the way. */
	if ((r = beneath_mkdir_p(set->rootfd, ri->in->path, 0755, 0, &dfd)) < 0) {
		snprintf(err, errlen, "refused: %s", beneath_strerror(r));
		return r;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		r = -errno;
		close(dfd);
		return r;
	}
	snprintf(max_bytes, sizeof(max_bytes), "%lld",
	    (long long)(set->cfg->max_input_bytes << 20) * UNPACKED_FACTOR);
	snprintf(fdarg, sizeof(fdarg), "%d", UNPACK_DIR_FD);
	set->child = fork();
	if (set->child < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		close(dfd);
		return r;
	}
	if (set->child == 0) {
		/* The unpacker is a program of its own: libarchive and what it
		 * links stay out of the agent, and the untrusted archive is
		 * parsed in a process that holds nothing of the agent's. */
		char *argv[] = { (char *)set->unpacker, "--max-bytes", max_bytes,
		    "--dir-fd", fdarg, "--", (char *)ri->cache, NULL };
		char *envp[] = { NULL };
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(p[1], 2) < 0 || (dfd == UNPACK_DIR_FD ?
		    fcntl(dfd, F_SETFD, 0) : dup2(dfd, UNPACK_DIR_FD)) < 0)
			_exit(127);
		execve(set->unpacker, argv, envp);
		dprintf(2, "cannot run %s: %s", set->unpacker, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	set->child_dirfd = dfd;
	set->child_err = p[0];
	set->child_pidfd = pidfd_open(set->child, 0);
	set->child_w = ev_io_start(set->loop, set->child_pidfd, EV_READ, on_child,
	    set);
	return 0;
}

static void next_place(struct rinputs *set)
{
	char err[512];

	while (set->extracting < set->n) {
		const struct rinput *ri = &set->v[set->extracting++];
		if (ri->in->extract) {
			if (extract_async(set, ri, err, sizeof(err)) < 0)
				finish(set, 0, "input %s: %s", ri->in->path, err);
			return;
		}
		if (place_file(set, ri, err, sizeof(err)) < 0) {
			finish(set, 0, "input %s: %s", ri->in->path, err);
			return;
		}
	}
	(void)fchmod(set->rootfd, 0555);
	finish(set, 1, "%s", "");
}

/*
 * skiff-unpack lives beside the agent (a build tree, a tarball) or in the
 * package's libexec directory.
 */
void inputs_unpacker(char *out, size_t n)
{
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (len > 0) {
		self[len] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if (snprintf(out, n, "%s/skiff-unpack", self) < (int)n &&
			    access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, n, "%s", SKIFF_LIBEXECDIR "/skiff-unpack");
}

struct rinputs *rinputs_start(struct ev_loop *loop,
    const struct rinputs_fetcher *fetcher,
    const struct agent_config *cfg, const struct job *job,
    const char *inputs_dir, rinputs_note_fn note_fn, rinputs_done_fn done,
    void *arg)
{
	struct rinputs *set = xcalloc(1, sizeof(*set));
	char cdir[PATH_MAX];
	int r;

	set->loop = loop;
	set->fetcher = *fetcher;
	set->cfg = cfg;
	set->job = job;
	set->note = note_fn;
	set->done = done;
	set->arg = arg;
	set->report = ev_timer_new(loop, on_report, set);
	inputs_unpacker(set->unpacker, sizeof(set->unpacker));
	set->child_dirfd = -1;
	set->rootfd = open(inputs_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	set->v = xcalloc(job->ninputs ? job->ninputs : 1, sizeof(*set->v));
	set->n = set->left = job->ninputs;
	cache_dir(cfg, cdir, sizeof(cdir));
	if (set->rootfd < 0) {
		finish(set, 0, "cannot open the inputs directory %s: %s", inputs_dir,
		    strerror(errno));
		return set;
	}
	if ((r = fsx_mkdir_p(cdir, 0700)) < 0) {
		finish(set, 0, "cannot create the input cache %s: %s", cdir,
		    strerror(-r));
		return set;
	}
	for (size_t i = 0; i < set->n; i++) {
		struct rinput *ri = &set->v[i];
		ri->set = set;
		ri->in = &job->inputs[i];
		if (snprintf(ri->cache, sizeof(ri->cache), "%s/%s", cdir,
		    ri->in->sha256_hex) >= (int)sizeof(ri->cache)) {
			finish(set, 0, "the input cache path is too long");
			return set;
		}
		/* Two jobs may fetch the same digest at once: parts of their
		 * own, the last rename wins with the same bytes. */
		if (snprintf(ri->part, sizeof(ri->part), "%s/.%s.%08x.part", cdir,
		    ri->in->sha256_hex, randombytes_random()) >= (int)sizeof(ri->part)) {
			finish(set, 0, "the input cache path is too long");
			return set;
		}
		ri->retry = ev_timer_new(loop, on_retry, ri);
	}
	for (size_t i = 0; i < set->n && !set->failed; i++) {
		struct rinput *ri = &set->v[i];
		if (access(ri->cache, R_OK) == 0) {
			/* Used now: the trim keeps the recently used. */
			utimensat(AT_FDCWD, ri->cache, NULL, 0);
			note(set, "input %s: in the cache (sha256 %.12s...)",
			    ri->in->path, ri->in->sha256_hex);
			downloaded(ri);
		} else {
			note(set, "input %s: downloading %s", ri->in->path, ri->in->url);
			download(ri);
		}
	}
	return set;
}

/* Nothing more happens: no retry, no answer taken, no unpacker. */
static void halt(struct rinputs *set)
{
	for (size_t i = 0; i < set->n; i++) {
		struct rinput *ri = &set->v[i];
		ev_timer_stop(ri->retry);
		/* A fetch still out writes into a file nobody will look at. */
		if (ri->fetching)
			unlink(ri->part);
		ri->fetching = 0;
	}
	if (set->child > 0) {
		kill(set->child, SIGKILL);
		waitpid(set->child, NULL, 0);
		ev_io_stop(set->child_w);
		set->child_w = NULL;
		close(set->child_pidfd);
		close(set->child_err);
		set->child = 0;
	}
}

void rinputs_stop(struct rinputs *set)
{
	if (set == NULL || set->told || set->failed ||
	    ev_timer_active(set->report))
		return;
	halt(set);
	finish(set, 0, "stopped before the inputs were in place");
}

void rinputs_free(struct rinputs *set)
{
	if (set == NULL)
		return;
	halt(set);
	for (size_t i = 0; i < set->n; i++)
		ev_timer_free(set->v[i].retry);
	if (set->child_dirfd >= 0)
		close(set->child_dirfd);
	if (set->rootfd >= 0)
		close(set->rootfd);
	ev_timer_free(set->report);
	free(set->v);
	free(set);
}

struct centry {
	char name[80];
	struct timespec mtime;
	off_t size;
};

static int cmp_mtime(const void *a, const void *b)
{
	const struct centry *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	return (x->mtime.tv_nsec > y->mtime.tv_nsec) -
	    (x->mtime.tv_nsec < y->mtime.tv_nsec);
}

void rinputs_trim_cache(const struct agent_config *cfg)
{
	char cdir[PATH_MAX];
	struct centry *v = NULL;
	size_t n = 0;
	uint64_t total = 0, cap = (uint64_t)cfg->inputs_cache_mb << 20;
	struct dirent *e;
	struct stat st;
	DIR *d;

	cache_dir(cfg, cdir, sizeof(cdir));
	if ((d = opendir(cdir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strlen(e->d_name) != 64 ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		v = xreallocarray(v, n + 1, sizeof(*v));
		memcpy(v[n].name, e->d_name, 65);	/* 64 hex digits and NUL */
		v[n].mtime = st.st_mtim;
		v[n].size = st.st_size;
		total += (uint64_t)st.st_size;
		n++;
	}
	if (total > cap && n) {
		qsort(v, n, sizeof(*v), cmp_mtime);
		for (size_t i = 0; i < n && total > cap; i++) {
			if (unlinkat(dirfd(d), v[i].name, 0) == 0) {
				total -= (uint64_t)v[i].size;
				log_info("input cache: removed the least recently used",
				    "sha256=%.12s bytes=%lld", v[i].name,
				    (long long)v[i].size);
			}
		}
	}
	closedir(d);
	free(v);
}
