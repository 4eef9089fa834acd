/*
 * Job caches (docs/agent.md, "Caches"; docs/protocol.md 4.9). Before the
 * first step each cache of the job is looked up through the network half
 * (its key, then its restore keys as prefixes) and downloaded into a
 * file of the job directory; a child checks its SHA-256 against the one
 * the queue gave and then runs skiff-unpack --no-links into a staging
 * directory beneath the job directory, whose top-level entries are then
 * moved into the workspace (never over what is there). After a job that
 * succeeded, each cache whose key was not restored exactly is packed by a
 * child (cachetar.c) and uploaded. Every failure is a line in the job's
 * log and the job goes on: a cache only saves time.
 */
#include "caches.h"

#include <dirent.h>
#include <grp.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "b64.h"
#include "cachetar.h"
#include "ev.h"
#include "fsx.h"
#include "inputs.h"
#include "job.h"
#include "log.h"
#include "oomlog.h"
#include "run_int.h"
#include "xalloc.h"

#define UNPACK_DIR_FD 3
#define NOTES_MAX 8192		/* of a child's notes, read at its end */

enum phase { CP_IDLE, CP_FETCH, CP_UNPACK, CP_PACK, CP_UPLOAD };

struct rcaches {
	struct rjob *j;
	size_t i;		/* the cache being restored or saved */
	enum phase phase;
	uint64_t id;		/* of the request out with the network half */
	int saving;
	int *exact;		/* per cache: restored by its own key */
	char archive[PATH_MAX];
	char stage[PATH_MAX];
	char sha[65];
	char found[256];
	pid_t child;
	int child_pidfd, child_err;
	struct ev_io *child_w;
	void (*done)(struct rjob *j);
	struct ev_timer *resume;	/* rcaches_stop: restore_next from the loop */
	char unpacker[PATH_MAX];
};

static void restore_next(struct rcaches *c);
static void save_next(struct rcaches *c);

static const struct job_cache *cur(const struct rcaches *c)
{
	return &c->j->job->caches[c->i];
}

static void child_stop(struct rcaches *c)
{
	if (c->child > 0) {
		kill(c->child, SIGKILL);
		(void)waitpid(c->child, NULL, 0);
		c->child = 0;
	}
	ev_io_stop(c->child_w);
	c->child_w = NULL;
	if (c->child_pidfd >= 0)
		close(c->child_pidfd);
	if (c->child_err >= 0)
		close(c->child_err);
	c->child_pidfd = c->child_err = -1;
}

static struct rcaches *get(struct rjob *j)
{
	struct rcaches *c = j->caches;

	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		c->j = j;
		c->child_pidfd = c->child_err = -1;
		c->exact = xcalloc(j->job->ncaches ? j->job->ncaches : 1,
		    sizeof(int));
		inputs_unpacker(c->unpacker, sizeof(c->unpacker));
		j->caches = c;
	}
	return c;
}

void rcaches_free(struct rjob *j)
{
	struct rcaches *c = j->caches;

	if (c == NULL)
		return;
	child_stop(c);
	ev_timer_free(c->resume);
	free(c->exact);
	free(c);
	j->caches = NULL;
}

static void on_resume(struct ev_timer *t, void *arg)
{
	(void)t;
	restore_next(arg);
}

void rcaches_stop(struct rjob *j)
{
	struct rcaches *c = j->caches;

	if (c == NULL || c->saving || c->done == NULL ||
	    (c->phase != CP_FETCH && c->phase != CP_UNPACK))
		return;
	rjob_note(j, "cache %s: not restored: the job is stopping",
	    cur(c)->key);
	/* The download's answer, when it comes, is not taken; the network
	 * half drops the transfer with the job. */
	child_stop(c);
	(void)unlink(c->archive);
	c->phase = CP_IDLE;
	if (c->resume == NULL)
		c->resume = ev_timer_new(j->rn->loop, on_resume, c);
	ev_timer_start(c->resume, 0);
}

/* Runs fn in a child with its standard error on a pipe; on_exit reads
 * the child's status and what it wrote. */
static int spawn(struct rcaches *c, void (*fn)(struct rcaches *c),
    void (*on_exit)(struct ev_io *w, int fd, unsigned ev, void *arg))
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	c->child = fork();
	if (c->child < 0) {
		int r = -errno;
		close(p[0]);
		close(p[1]);
		c->child = 0;
		return r;
	}
	if (c->child == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(p[1], 2) < 0)
			_exit(127);
		/* It reads what a job left: not the kernel's log too. */
		oomlog_close();
		fn(c);
		_exit(0);
	}
	close(p[1]);
	c->child_err = p[0];
	c->child_pidfd = pidfd_open(c->child, 0);
	if (c->child_pidfd < 0) {
		int r = -errno;
		child_stop(c);
		return r;
	}
	c->child_w = ev_io_start(c->j->rn->loop, c->child_pidfd, EV_READ,
	    on_exit, c);
	return 0;
}

/* 1 when the child is gone (status and notes filled), 0 not yet. */
static int reap(struct rcaches *c, int *status, char *notes, size_t cap)
{
	size_t n = 0;
	ssize_t got;

	if (waitpid(c->child, status, WNOHANG) != c->child)
		return 0;
	c->child = 0;
	while (n + 1 < cap && (got = read(c->child_err, notes + n,
	    cap - 1 - n)) > 0)
		n += (size_t)got;
	notes[n] = '\0';
	child_stop(c);
	return 1;
}

static void note_lines(struct rjob *j, const char *key, char *notes)
{
	char *line = notes, *nl;

	while (line && *line) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		if (*line)
			rjob_note(j, "cache %s: %s", key, line);
		line = nl;
	}
}

/* ---- restore ---- */

static void restore_skip(struct rcaches *c, const char *why)
{
	if (why)
		rjob_note(c->j, "cache %s: not restored: %s", cur(c)->key, why);
	(void)unlink(c->archive);
	c->i++;
	restore_next(c);
}

/* In the child: the digest first, then the unpacker in place of us. */
static void unpack_child(struct rcaches *c)
{
	crypto_hash_sha256_state st;
	unsigned char d[32], *buf = xmalloc(1 << 18);
	char hex[65], max_bytes[32], max_entries[32], fdarg[16];
	int fd = open(c->archive, O_RDONLY | O_CLOEXEC), dfd;
	ssize_t got;

	if (fd < 0) {
		dprintf(2, "cannot open the archive: %s", strerror(errno));
		_exit(1);
	}
	crypto_hash_sha256_init(&st);
	while ((got = read(fd, buf, 1 << 18)) > 0)
		crypto_hash_sha256_update(&st, buf, (size_t)got);
	close(fd);
	crypto_hash_sha256_final(&st, d);
	hex_encode(d, sizeof(d), hex);
	if (got < 0 || strcmp(hex, c->sha) != 0) {
		dprintf(2, "its SHA-256 is %s, not %s as the queue says", hex,
		    c->sha);
		_exit(1);
	}
	dfd = open(c->stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (dfd < 0 || (dfd != UNPACK_DIR_FD && dup2(dfd, UNPACK_DIR_FD) < 0)) {
		dprintf(2, "cannot open the staging directory: %s", strerror(errno));
		_exit(1);
	}
	/* With a step user, what is restored is that user's, as what its
	 * steps made was: the unpacker runs as it (and so holds nothing of
	 * root's while it parses the archive). */
	if (c->j->rn->step_user) {
		uid_t uid = c->j->rn->step_uid;
		gid_t gid = c->j->rn->step_gid;
		if (fchown(UNPACK_DIR_FD, uid, gid) < 0 ||
		    chown(c->archive, uid, gid) < 0 || setgroups(0, NULL) < 0 ||
		    setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
			dprintf(2, "cannot become the step user: %s", strerror(errno));
			_exit(1);
		}
	}
	snprintf(max_bytes, sizeof(max_bytes), "%llu",
	    (unsigned long long)RCACHES_MAX_UNPACKED);
	snprintf(fdarg, sizeof(fdarg), "%d", UNPACK_DIR_FD);
	snprintf(max_entries, sizeof(max_entries), "%llu",
	    (unsigned long long)RCACHES_MAX_ENTRIES);
	/* What the packer may put in, the unpacker takes. */
	char *argv[] = { c->unpacker, "--no-links", "--max-bytes", max_bytes,
	    "--max-entries", max_entries, "--dir-fd", fdarg, "--", c->archive,
	    NULL };
	char *envp[] = { NULL };
	execve(c->unpacker, argv, envp);
	dprintf(2, "cannot run %s: %s", c->unpacker, strerror(errno));
	_exit(127);
}

/* Moves what is in sfd into wfd, never over an entry: a directory that
 * is in both is merged (two caches under one .cache/), anything else
 * already there is kept. Names are read first, then moved. */
static int merge_into(int sfd, int wfd, int depth, size_t *moved,
    size_t *kept)
{
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;
	int fd, r = 0;

	if (depth > CACHETAR_MAX_DEPTH || (fd = dup(sfd)) < 0)
		return -ELOOP;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d)) != NULL && n < RCACHES_MAX_ENTRIES) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	for (size_t i = 0; i < n; i++) {
		struct stat ss, ws;
		int s2, w2;
		if (renameat2(sfd, names[i], wfd, names[i], RENAME_NOREPLACE) == 0) {
			(*moved)++;
			continue;
		}
		if (errno != EEXIST || fstatat(sfd, names[i], &ss,
		    AT_SYMLINK_NOFOLLOW) < 0 || fstatat(wfd, names[i], &ws,
		    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(ss.st_mode) ||
		    !S_ISDIR(ws.st_mode)) {
			(*kept)++;
			continue;
		}
		s2 = openat(sfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		w2 = openat(wfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (s2 >= 0 && w2 >= 0 && r == 0)
			r = merge_into(s2, w2, depth + 1, moved, kept);
		else
			(*kept)++;
		if (s2 >= 0)
			close(s2);
		if (w2 >= 0)
			close(w2);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

static int move_staged(struct rcaches *c, size_t *moved, size_t *kept)
{
	int sfd = open(c->stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int wfd = open(c->j->ws, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r = sfd < 0 || wfd < 0 ? -errno : merge_into(sfd, wfd, 0, moved,
	    kept);

	if (sfd >= 0)
		close(sfd);
	if (wfd >= 0)
		close(wfd);
	return r;
}

static void unpacked(struct ev_io *w, int fd, unsigned ev, void *arg)
{
	struct rcaches *c = arg;
	char notes[NOTES_MAX];
	size_t moved = 0, kept = 0;
	int status = 0;

	(void)w;
	(void)fd;
	(void)ev;
	if (!reap(c, &status, notes, sizeof(notes)))
		return;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		restore_skip(c, notes[0] ? notes :
		    "the unpacker was killed");
		return;
	}
	if (move_staged(c, &moved, &kept) < 0) {
		restore_skip(c, "cannot move it into the workspace");
		return;
	}
	if (strcmp(c->found, cur(c)->key) == 0)
		c->exact[c->i] = 1;
	if (kept)
		rjob_note(c->j, "cache %s: %zu entr%s already in the workspace "
		    "kept", cur(c)->key, kept, kept == 1 ? "y" : "ies");
	rjob_note(c->j, "cache %s: restored from '%s'", cur(c)->key, c->found);
	(void)unlink(c->archive);
	c->i++;
	restore_next(c);
}

void rcaches_fetched(struct rjob *j, uint64_t id, int ok, uint64_t bytes,
    const char *sha256, const char *text)
{
	struct rcaches *c = j->caches;
	int r;

	if (c == NULL || c->phase != CP_FETCH || id != c->id)
		return;
	c->phase = CP_IDLE;
	if (!ok) {
		restore_skip(c, text && text[0] ? text :
		    "the download failed");
		return;
	}
	if (sha256 == NULL) {
		rjob_note(j, "cache %s: no cache in the pool matches", cur(c)->key);
		restore_skip(c, NULL);
		return;
	}
	snprintf(c->sha, sizeof(c->sha), "%s", sha256);
	snprintf(c->found, sizeof(c->found), "%s", text ? text : "");
	if (!job_cache_key_valid(c->found)) {
		restore_skip(c, "the queue named a malformed key");
		return;
	}
	rjob_note(c->j, "cache %s: found '%s', %llu bytes", cur(c)->key,
	    c->found, (unsigned long long)bytes);
	if (snprintf(c->stage, sizeof(c->stage), "%s/cache-restore.%zu", j->dir,
	    c->i) >= (int)sizeof(c->stage) || mkdir(c->stage, 0700) < 0) {
		restore_skip(c, "cannot make the staging directory");
		return;
	}
	c->phase = CP_UNPACK;
	if ((r = spawn(c, unpack_child, unpacked)) < 0) {
		c->phase = CP_IDLE;
		restore_skip(c, strerror(-r));
	}
}

static char *keys_of(const struct job_cache *jc)
{
	size_t n = strlen(jc->key) + 1;
	char *s, *p;

	for (size_t i = 0; i < jc->nrestore; i++)
		n += strlen(jc->restore_keys[i]) + 1;
	s = p = xmalloc(n);
	p += snprintf(p, n, "%s", jc->key);
	for (size_t i = 0; i < jc->nrestore; i++)
		p += snprintf(p, n - (size_t)(p - s), "\n%s", jc->restore_keys[i]);
	return s;
}

static void restore_next(struct rcaches *c)
{
	struct rjob *j = c->j;
	const struct seam_to_net *net = j->rn->net;
	int fd;

	if (c->i >= j->job->ncaches || j->stop != RSTOP_NONE ||
	    net->cache_get == NULL) {
		void (*done)(struct rjob *) = c->done;
		c->done = NULL;
		c->i = 0;
		if (done)
			done(j);
		return;
	}
	if (snprintf(c->archive, sizeof(c->archive), "%s/cache.%zu.tar.gz",
	    j->dir, c->i) >= (int)sizeof(c->archive) ||
	    (fd = open(c->archive, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) < 0) {
		restore_skip(c, "cannot create the download file");
		return;
	}
	char *keys = keys_of(cur(c));
	rjob_note(j, "cache %s: looking for it", cur(c)->key);
	c->id = ++j->art_next_id;
	c->phase = CP_FETCH;
	net->cache_get(net->ctx, j->jh, c->id, keys, fd, RCACHES_MAX_ARCHIVE);
	free(keys);
}

void rcaches_restore(struct rjob *j, void (*done)(struct rjob *j))
{
	struct rcaches *c;

	if (j->job->ncaches == 0) {
		done(j);
		return;
	}
	c = get(j);
	c->done = done;
	c->i = 0;
	c->saving = 0;
	restore_next(c);
}

/* ---- save ---- */

/* In the child, whose notes the parent reads only once it has exited:
 * a few, each cut short, so that they never fill the pipe (the count of
 * what was skipped comes in the last line). */
#define PACK_NOTES 20
#define PACK_NOTE_LEN 240

static void pack_note(void *arg, const char *line)
{
	static unsigned n;

	(void)arg;
	if (n++ < PACK_NOTES)
		dprintf(2, "%.*s\n", PACK_NOTE_LEN, line);
	else if (n == PACK_NOTES + 1)
		dprintf(2, "(more skipped entries not listed)\n");
}

static void pack_child(struct rcaches *c)
{
	const struct job_cache *jc = cur(c);
	struct cachetar_stats st;
	int ws = open(c->j->ws, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int out = open(c->archive, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	int r;

	if (ws < 0 || out < 0) {
		dprintf(2, "cannot open the workspace or the archive: %s\n",
		    strerror(errno));
		_exit(1);
	}
	r = cachetar_pack(ws, jc->paths, jc->npaths, out, 1,
	    RCACHES_MAX_UNPACKED, RCACHES_MAX_ENTRIES, pack_note, NULL, &st);
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	if (r < 0) {
		dprintf(2, "not saved: %s\n", strerror(-r));
		_exit(1);
	}
	dprintf(2, "packed %llu files, %llu directories, %llu bytes; %llu "
	    "skipped\n", (unsigned long long)st.files,
	    (unsigned long long)st.dirs, (unsigned long long)st.bytes,
	    (unsigned long long)st.skipped);
	_exit(0);
}

static void save_skip(struct rcaches *c)
{
	(void)unlink(c->archive);
	c->i++;
	save_next(c);
}

static void packed(struct ev_io *w, int fd, unsigned ev, void *arg)
{
	struct rcaches *c = arg;
	struct rjob *j = c->j;
	const struct seam_to_net *net = j->rn->net;
	char notes[NOTES_MAX];
	struct stat st;
	int status = 0, afd;

	(void)w;
	(void)fd;
	(void)ev;
	if (!reap(c, &status, notes, sizeof(notes)))
		return;
	c->phase = CP_IDLE;
	note_lines(j, cur(c)->key, notes);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (!notes[0])
			rjob_note(j, "cache %s: not saved: the packer was killed",
			    cur(c)->key);
		save_skip(c);
		return;
	}
	afd = open(c->archive, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (afd < 0 || fstat(afd, &st) < 0) {
		if (afd >= 0)
			close(afd);
		rjob_note(j, "cache %s: not saved: cannot read the archive",
		    cur(c)->key);
		save_skip(c);
		return;
	}
	c->id = ++j->art_next_id;
	c->phase = CP_UPLOAD;
	net->cache_put(net->ctx, j->jh, c->id, afd, cur(c)->key,
	    (uint64_t)st.st_size);
}

void rcaches_put_done(struct rjob *j, uint64_t id, int ok, const char *text)
{
	struct rcaches *c = j->caches;

	if (c == NULL || c->phase != CP_UPLOAD || id != c->id)
		return;
	c->phase = CP_IDLE;
	if (ok && text && strcmp(text, "exists") == 0)
		rjob_note(j, "cache %s: the pool has it already; not saved again",
		    cur(c)->key);
	else if (ok)
		rjob_note(j, "cache %s: saved", cur(c)->key);
	else
		rjob_note(j, "cache %s: not saved: %s", cur(c)->key,
		    text && text[0] ? text : "the upload failed");
	save_skip(c);
}

static void save_next(struct rcaches *c)
{
	struct rjob *j = c->j;
	int r;

	while (c->i < j->job->ncaches && c->exact[c->i]) {
		rjob_note(j, "cache %s: restored by its own key; not saved again",
		    cur(c)->key);
		c->i++;
	}
	if (c->i >= j->job->ncaches || j->rn->net->cache_put == NULL) {
		void (*done)(struct rjob *) = c->done;
		c->done = NULL;
		if (done)
			done(j);
		return;
	}
	if (snprintf(c->archive, sizeof(c->archive), "%s/cache.%zu.tar.gz",
	    j->dir, c->i) >= (int)sizeof(c->archive)) {
		save_skip(c);
		return;
	}
	rjob_note(j, "cache %s: saving", cur(c)->key);
	c->phase = CP_PACK;
	if ((r = spawn(c, pack_child, packed)) < 0) {
		c->phase = CP_IDLE;
		rjob_note(j, "cache %s: not saved: %s", cur(c)->key, strerror(-r));
		save_skip(c);
	}
}

static void save(struct rjob *j)
{
	struct rcaches *c = get(j);

	c->i = 0;
	c->saving = 1;
	save_next(c);
}

/* The job's end: caches are saved only after success. */
void (*rcaches_before(struct rjob *j, void (*next)(struct rjob *j)))(
    struct rjob *j)
{
	if (j->job == NULL || j->job->ncaches == 0 ||
	    j->result != SEAM_SUCCEEDED || j->dir[0] == '\0')
		return next;
	get(j)->done = next;
	return save;
}
