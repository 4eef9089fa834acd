/*
 * Host-step process tracking (proctrack.h): a cgroup v2 per job, or the
 * step's session recorded in the state directory.
 */
#include "proctrack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ev.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

/* SIGKILLed processes die within milliseconds unless stuck in the
 * kernel (D state on a dead NFS server): wait that long, not forever. */
#define POLL_MS 20
#define POLL_ROUNDS 250
/* A step can make cgroups below its own (as root); deeper is refused. */
#define MAX_DEPTH 16
#define STAT_MAX 1024
#define RECORDS "hoststeps"

struct rec {
	pid_t sid;		/* = the step process's pid: it leads its session */
	uint64_t start;
};

struct proctrack {
	enum proctrack_mode mode;
	char *top;		/* cgroup: <own cgroup>/skiff-<instance> */
	char *records;		/* session: <state_dir>/hoststeps */
	char boot[64];		/* session: records of another boot mean nothing */
};

struct proctrack_job {
	struct proctrack *pt;
	char *name;
	char *cg;		/* cgroup: its directory, made at the first step */
	int procs_fd;		/* cgroup: its cgroup.procs, for moving steps in */
	struct rec *recs;	/* session: one per step */
	size_t nrecs;
	struct ev_timer *poll;
	int rounds;
	void (*done)(void *arg);
	void *done_arg;
	int ended;
};

/* ---- small helpers ---- */

static ssize_t read_at(int dirfd, const char *path, char *buf, size_t cap)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n, got = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)got < cap - 1 &&
	    (n = read(fd, buf + got, cap - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	return got;
}

static int write_at(int dirfd, const char *path, const char *s)
{
	int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* A DIR on a copy of fd, which stays the caller's. */
static DIR *dir_of(int fd)
{
	int c = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	DIR *d = c >= 0 ? fdopendir(c) : NULL;

	if (d == NULL && c >= 0)
		close(c);
	return d;
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int proctrack_parse_stat(const char *s, size_t n, struct proctrack_stat *st)
{
	char tmp[STAT_MAX], *f[20], *save = NULL;
	const char *open = memchr(s, '(', n), *close = NULL;
	struct proctrack_stat v;
	int64_t x;
	size_t nf = 0;

	/* comm is whatever the process named itself, ')' and ' ' included:
	 * the fields after it start at the last ')'. */
	for (size_t i = n; i > 0; i--) {
		if (s[i - 1] == ')') {
			close = s + i - 1;
			break;
		}
	}
	if (open == NULL || close == NULL || close < open ||
	    (size_t)(s + n - close) >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, close + 1, (size_t)(s + n - close - 1));
	tmp[s + n - close - 1] = '\0';
	/* Fields 3..22 are the first 20 after comm. */
	for (char *t = strtok_r(tmp, " \n", &save); t && nf < 20;
	    t = strtok_r(NULL, " \n", &save))
		f[nf++] = t;
	if (nf < 20 || strlen(f[0]) != 1)
		return -EINVAL;
	char pidtxt[24];
	if ((size_t)(open - s) >= sizeof(pidtxt) || open == s ||
	    open[-1] != ' ')
		return -EINVAL;
	memcpy(pidtxt, s, (size_t)(open - s - 1));
	pidtxt[open - s - 1] = '\0';
	if (strnum_i64(pidtxt, 1, INT_MAX, &x, NULL) < 0)
		return -EINVAL;
	v.pid = (pid_t)x;
	v.state = f[0][0];
	if (strnum_i64(f[1], 0, INT_MAX, &x, NULL) < 0)
		return -EINVAL;
	v.ppid = (pid_t)x;
	if (strnum_i64(f[2], 0, INT_MAX, &x, NULL) < 0)
		return -EINVAL;
	v.pgrp = (pid_t)x;
	if (strnum_i64(f[3], 0, INT_MAX, &x, NULL) < 0)
		return -EINVAL;
	v.session = (pid_t)x;
	if (strnum_i64(f[19], 0, INT64_MAX, &x, NULL) < 0)
		return -EINVAL;
	v.start = (uint64_t)x;
	*st = v;
	return 0;
}

static int stat_of(int procfd, pid_t pid, struct proctrack_stat *st)
{
	char path[32], buf[STAT_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "%d/stat", (int)pid);
	if ((n = read_at(procfd, path, buf, sizeof(buf))) < 0)
		return (int)n;
	return proctrack_parse_stat(buf, (size_t)n, st);
}

/* ---- session tracking ---- */

/*
 * A session id is not reused while any process is in that session (the
 * kernel keeps the pid number), so a process of session sid that started
 * no earlier than its leader is one of ours, unless the leader's pid now
 * belongs to another process (then our session is gone, and so is every
 * process of it).
 */
static int rec_valid(int procfd, const struct rec *r)
{
	struct proctrack_stat st;

	if (stat_of(procfd, r->sid, &st) == 0 && st.start != r->start)
		return 0;
	return 1;
}

/* Processes of the sessions in recs still alive; SIGKILLed if kill_them.
 * counts, when not NULL, gets the number found for each record. */
static size_t scan_sessions_counting(const struct rec *recs, size_t n,
    int kill_them, size_t *counts)
{
	int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	unsigned char *valid = NULL;
	size_t alive = 0;
	DIR *d;
	struct dirent *e;

	if (procfd < 0 || n == 0)
		goto out;
	valid = xcalloc(n, 1);
	for (size_t i = 0; i < n; i++)
		valid[i] = (unsigned char)rec_valid(procfd, &recs[i]);
	if ((d = dir_of(procfd)) == NULL)
		goto out;
	while ((e = readdir(d)) != NULL) {
		struct proctrack_stat st;
		int64_t pid;
		if (strnum_i64(e->d_name, 1, INT_MAX, &pid, NULL) < 0 ||
		    pid == getpid() || stat_of(procfd, (pid_t)pid, &st) < 0 ||
		    st.state == 'Z')
			continue;
		for (size_t i = 0; i < n; i++) {
			if (valid[i] && st.session == recs[i].sid &&
			    st.start >= recs[i].start) {
				alive++;
				if (counts)
					counts[i]++;
				if (kill_them)
					kill(st.pid, SIGKILL);
				break;
			}
		}
	}
	closedir(d);
out:
	free(valid);
	if (procfd >= 0)
		close(procfd);
	return alive;
}

static size_t scan_sessions(const struct rec *recs, size_t n, int kill_them)
{
	return scan_sessions_counting(recs, n, kill_them, NULL);
}

static int parse_rec(const char *text, const char *boot, struct rec *r)
{
	char b[64];
	long long sid;
	unsigned long long start;

	/* Written by session_add(): "<sid> <start> <boot id>\n". */
	if (sscanf(text, "%lld %llu %63s", &sid, &start, b) != 3 ||
	    sid <= 0 || sid > INT_MAX)
		return -EINVAL;
	if (strcmp(b, boot) != 0)
		return -ESRCH;	/* another boot: its processes are gone */
	r->sid = (pid_t)sid;
	r->start = start;
	return 0;
}

/* Kills the sessions in recs, waiting a bounded time for them to go. */
static size_t kill_sessions_blocking(const struct rec *recs, size_t n)
{
	size_t left = n ? 1 : 0;

	for (int i = 0; i < POLL_ROUNDS && left; i++) {
		left = scan_sessions(recs, n, 1);
		if (left)
			pause_ms(POLL_MS / 2);
	}
	return left;
}

/* Records of an earlier run: every one names a session to kill. */
static void session_sweep(struct proctrack *pt)
{
	int dfd = open(pt->records, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *e;
	char text[128];

	if (d == NULL) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		struct rec r;
		if (e->d_name[0] == '.')
			continue;
		if (read_at(dirfd(d), e->d_name, text, sizeof(text)) >= 0 &&
		    parse_rec(text, pt->boot, &r) == 0) {
			size_t n = scan_sessions(&r, 1, 0);
			if (n)
				log_info("killing what a host step of an earlier run left",
				    "tracking=session record=%s session=%d processes=%zu",
				    logq(e->d_name), (int)r.sid, n);
			if (kill_sessions_blocking(&r, 1))
				log_warn("processes of an earlier run's host step survive "
				    "SIGKILL", "session=%d", (int)r.sid);
		}
		unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

static int session_add(struct proctrack_job *pj, pid_t pid)
{
	struct proctrack *pt = pj->pt;
	struct proctrack_stat st;
	char path[PATH_MAX], line[96];
	int procfd, fd, r;

	if ((procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	r = stat_of(procfd, pid, &st);
	close(procfd);
	if (r < 0)
		return r;
	if (snprintf(path, sizeof(path), "%s/%s.%d", pt->records, pj->name,
	    (int)pid) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	/* No fsync: the record must outlive the agent, not the machine (a
	 * reboot ends the processes too). */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0)
		return -errno;
	snprintf(line, sizeof(line), "%d %llu %s\n", (int)pid,
	    (unsigned long long)st.start, pt->boot);
	r = write(fd, line, strlen(line)) == (ssize_t)strlen(line) ? 0 : -EIO;
	close(fd);
	if (r < 0)
		return r;
	pj->recs = xreallocarray(pj->recs, pj->nrecs + 1, sizeof(*pj->recs));
	pj->recs[pj->nrecs].sid = pid;
	pj->recs[pj->nrecs++].start = st.start;
	return 0;
}

static void session_remove(struct proctrack_job *pj)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < pj->nrecs; i++) {
		snprintf(path, sizeof(path), "%s/%s.%d", pj->pt->records, pj->name,
		    (int)pj->recs[i].sid);
		unlink(path);
	}
	pj->nrecs = 0;
}

/* ---- cgroup tracking ---- */

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + s[3] - '0');
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The cgroup2 mount point and the cgroup path its root shows. */
static int find_mount(char **mnt, char **root)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int r = -ENOENT;

	if (f == NULL)
		return -errno;
	while (r < 0 && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - "), *save = NULL, *fld[5];
		size_t n = 0;
		if (sep == NULL || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		*sep = '\0';
		for (char *t = strtok_r(line, " ", &save); t && n < 5;
		    t = strtok_r(NULL, " ", &save))
			fld[n++] = t;
		if (n < 5)
			continue;
		unescape(fld[3]);
		unescape(fld[4]);
		*root = xstrdup(fld[3]);
		*mnt = xstrdup(fld[4]);
		r = 0;
	}
	fclose(f);
	return r;
}

/* Our cgroup v2 path: the "0::" line of /proc/self/cgroup. */
static int own_cgroup(char *out, size_t cap)
{
	char buf[8192], *p;

	if (read_at(AT_FDCWD, "/proc/self/cgroup", buf, sizeof(buf)) < 0)
		return -ENOENT;
	p = strncmp(buf, "0::", 3) == 0 ? buf : strstr(buf, "\n0::");
	if (p == NULL)
		return -ENOENT;
	p += p == buf ? 3 : 4;
	p[strcspn(p, "\n")] = '\0';
	if (*p != '/' || snprintf(out, cap, "%s", p) >= (int)cap)
		return -EINVAL;
	return 0;
}

/* <mount>/<own cgroup relative to the mount's root>, or -ENOENT when our
 * cgroup is not beneath what is mounted (another cgroup namespace). */
static int own_dir(char **dir)
{
	char own[PATH_MAX], *mnt = NULL, *root = NULL;
	const char *rel;
	size_t rl;
	int r;

	if ((r = own_cgroup(own, sizeof(own))) < 0 ||
	    (r = find_mount(&mnt, &root)) < 0)
		goto out;
	rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
	if (strncmp(own, root, rl) != 0 || (own[rl] != '/' && own[rl] != '\0')) {
		r = -ENOENT;
		goto out;
	}
	rel = own + rl;
	*dir = xasprintf("%s%s", mnt, strcmp(rel, "/") == 0 ? "" : rel);
	r = 0;
out:
	free(mnt);
	free(root);
	return r;
}

static int is_populated(int dfd)
{
	char buf[256], *p;

	if (read_at(dfd, "cgroup.events", buf, sizeof(buf)) < 0)
		return 0;
	p = strstr(buf, "populated ");
	return p != NULL && p[10] == '1';
}

/* SIGKILL to every process in the cgroup dfd and below it, for kernels
 * before 5.14 (no cgroup.kill). Frozen first, so that a fork loop cannot
 * outrun us; frozen processes still die of SIGKILL. */
static void kill_procs_tree(int dfd, int depth)
{
	char buf[65536];
	DIR *d;
	struct dirent *e;

	(void)write_at(dfd, "cgroup.freeze", "1");
	if (read_at(dfd, "cgroup.procs", buf, sizeof(buf)) >= 0) {
		char *save = NULL;
		int64_t pid;
		for (char *t = strtok_r(buf, "\n", &save); t;
		    t = strtok_r(NULL, "\n", &save))
			if (strnum_i64(t, 1, INT_MAX, &pid, NULL) == 0 &&
			    pid != getpid())
				kill((pid_t)pid, SIGKILL);
	}
	/* The signals are queued: thawed, the processes die, and the next
	 * step moved in is not born frozen. */
	(void)write_at(dfd, "cgroup.freeze", "0");
	if (depth >= MAX_DEPTH || (d = dir_of(dfd)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		int c = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
		    O_NOFOLLOW);
		if (c >= 0) {
			kill_procs_tree(c, depth + 1);
			close(c);
		}
	}
	closedir(d);
}

/* Kills everything in the cgroup at path and below (one pass). */
static void cg_kill(const char *path)
{
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return;
	/* cgroup.kill takes the whole subtree at once, forks in flight too. */
	if (write_at(dfd, "cgroup.kill", "1") < 0)
		kill_procs_tree(dfd, 0);
	close(dfd);
}

static int cg_populated(const char *path)
{
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (dfd < 0)
		return 0;
	r = is_populated(dfd);
	close(dfd);
	return r;
}

/* rmdir of the cgroup parent/name and every cgroup below it (a step that
 * is root may have made some). */
static int cg_remove_at(int parent, const char *name, int depth)
{
	int dfd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);
	DIR *d;
	struct dirent *e;

	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (depth < MAX_DEPTH && (d = dir_of(dfd)) != NULL) {
		while ((e = readdir(d)) != NULL)
			if (e->d_type == DT_DIR && e->d_name[0] != '.')
				(void)cg_remove_at(dfd, e->d_name, depth + 1);
		closedir(d);
	}
	close(dfd);
	return unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT ?
	    -errno : 0;
}

static int cg_remove(const char *path)
{
	return cg_remove_at(AT_FDCWD, path, 0);
}

/* Kills, waits a bounded time, removes; 0 or -EBUSY if something lives. */
static int cg_end_blocking(const char *path)
{
	for (int i = 0; i < POLL_ROUNDS && cg_populated(path); i++) {
		cg_kill(path);
		pause_ms(POLL_MS / 2);
	}
	if (cg_populated(path))
		return -EBUSY;
	return cg_remove(path);
}

/* Job cgroups an earlier run with our instance left, with whatever still
 * runs in them. */
static void cg_sweep(struct proctrack *pt)
{
	int dfd = open(pt->top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *e;
	char path[PATH_MAX];

	if (d == NULL) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.' ||
		    snprintf(path, sizeof(path), "%s/%s", pt->top, e->d_name) >=
		    (int)sizeof(path))
			continue;
		int pop = cg_populated(path);
		if (cg_end_blocking(path) < 0)
			log_warn("cannot empty a leftover host-step cgroup", "path=%s",
			    logq(path));
		else
			log_info(pop ? "killing what a host step of an earlier run left" :
			    "removed a leftover host-step cgroup", "tracking=cgroup "
			    "cgroup=%s", logq(path));
	}
	closedir(d);
}

/*
 * cgroup v2's inner-node rule: a cgroup other than the root that holds
 * processes cannot hand controllers to its children. Under systemd with
 * Delegate=yes our cgroup is delegated to us and the agent sits in it:
 * it moves into a leaf of its own, <top>/agent, so that the cgroups it
 * makes never contend with it (the root cgroup is exempt).
 */
static void cg_leave_inner_node(struct proctrack *pt, const char *own)
{
	char leaf[PATH_MAX], procs[PATH_MAX + 16], pid[24];
	int r = 0;

	if (strcmp(own, "/") == 0)
		return;
	snprintf(leaf, sizeof(leaf), "%s/agent", pt->top);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", leaf);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
		r = -errno;
	if (r < 0 || (r = write_at(AT_FDCWD, procs, pid)) < 0)
		log_warn("cannot move the agent into a leaf cgroup", "path=%s "
		    "error=%s", logq(leaf), logq(strerror(-r)));
}

/* 0 when cgroup v2 is there and ours to write; the reason otherwise. */
static int cg_open(struct proctrack *pt, const char *instance,
    const char **why)
{
	char *dir = NULL, own[PATH_MAX];
	int r;

	*why = "no cgroup v2 mount, or the agent is outside it";
	if ((r = own_dir(&dir)) < 0 || (r = own_cgroup(own, sizeof(own))) < 0)
		goto out;
	pt->top = xasprintf("%s/skiff-%s", dir, instance);
	*why = "cannot create a cgroup beneath the agent's own (not delegated?)";
	if (mkdir(pt->top, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		goto out;
	}
	cg_sweep(pt);
	cg_leave_inner_node(pt, own);
	/* Made again by the next job: an agent killed while idle leaves no
	 * empty cgroup behind (unless it sits in its leaf there). */
	rmdir(pt->top);
	r = 0;
out:
	free(dir);
	if (r < 0) {
		free(pt->top);
		pt->top = NULL;
	}
	return r;
}

/* Session tracking forced: an earlier run may still have tracked by
 * cgroup, and what it left goes all the same. */
static void cg_sweep_only(struct proctrack *pt, const char *instance)
{
	char *dir = NULL;

	if (own_dir(&dir) < 0)
		return;
	pt->top = xasprintf("%s/skiff-%s", dir, instance);
	cg_sweep(pt);
	rmdir(pt->top);
	free(pt->top);
	pt->top = NULL;
	free(dir);
}

static int session_open(struct proctrack *pt, const char *state_dir)
{
	char buf[64];

	if (read_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", buf,
	    sizeof(buf)) < 0)
		snprintf(buf, sizeof(buf), "unknown");
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(pt->boot, sizeof(pt->boot), "%s", buf);
	pt->records = xasprintf("%s/%s", state_dir, RECORDS);
	if (mkdir(pt->records, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int proctrack_open(const char *setting, const char *state_dir,
    const char *instance, struct proctrack **out)
{
	struct proctrack *pt = xcalloc(1, sizeof(*pt));
	const char *why = "SKIFF_HOST_TRACKING=session";
	int r;

	if (strcmp(setting, "auto") != 0 && strcmp(setting, "cgroup") != 0 &&
	    strcmp(setting, "session") != 0) {
		log_error("SKIFF_HOST_TRACKING must be auto, cgroup or session",
		    "value=%s", logq(setting));
		r = -EINVAL;
		goto fail;
	}
	/* Records of an earlier run go whichever way this run tracks. */
	if ((r = session_open(pt, state_dir)) < 0) {
		log_error("cannot create the host-step records directory",
		    "path=%s error=%s", logq(pt->records), logq(strerror(-r)));
		goto fail;
	}
	session_sweep(pt);
	pt->mode = PROCTRACK_SESSION;
	if (strcmp(setting, "session") == 0)
		cg_sweep_only(pt, instance);
	else if (cg_open(pt, instance, &why) == 0)
		pt->mode = PROCTRACK_CGROUP;
	if (pt->mode != PROCTRACK_CGROUP && strcmp(setting, "cgroup") == 0) {
		log_error("SKIFF_HOST_TRACKING=cgroup, but cgroup v2 is not usable",
		    "reason=%s", logq(why));
		r = -EPERM;
		goto fail;
	}
	if (pt->mode == PROCTRACK_CGROUP)
		log_info("host steps tracked in a cgroup per job", "tracking=cgroup "
		    "cgroup=%s", logq(pt->top));
	else
		log_info("host steps tracked by session (a process that calls "
		    "setsid again escapes)", "tracking=session reason=%s "
		    "records=%s", logq(why), logq(pt->records));
	*out = pt;
	return 0;
fail:
	proctrack_free(pt);
	return r;
}

enum proctrack_mode proctrack_mode(const struct proctrack *pt)
{
	return pt->mode;
}

void proctrack_free(struct proctrack *pt)
{
	if (pt == NULL)
		return;
	/* Empty unless a job is left (then the next start sweeps it); the
	 * agent's own leaf is busy while it lives. */
	if (pt->top)
		rmdir(pt->top);
	free(pt->top);
	free(pt->records);
	free(pt);
}

/* ---- per job ---- */

int proctrack_job_new(struct proctrack *pt, const char *name,
    struct proctrack_job **out)
{
	struct proctrack_job *pj;

	if (strchr(name, '/') || name[0] == '.' || strlen(name) > 200)
		return -EINVAL;
	pj = xcalloc(1, sizeof(*pj));
	pj->pt = pt;
	pj->name = xstrdup(name);
	pj->procs_fd = -1;
	*out = pj;
	return 0;
}

/* The job's cgroup, made at its first host step. */
static int cg_job_dir(struct proctrack_job *pj)
{
	char procs[PATH_MAX + 16];

	if (pj->procs_fd >= 0)
		return 0;
	/* top goes when the agent's last job ends; make it again. */
	if (mkdir(pj->pt->top, 0755) < 0 && errno != EEXIST)
		return -errno;
	free(pj->cg);
	pj->cg = xasprintf("%s/%s", pj->pt->top, pj->name);
	if (mkdir(pj->cg, 0755) < 0 && errno != EEXIST)
		return -errno;
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", pj->cg);
	pj->procs_fd = open(procs, O_WRONLY | O_CLOEXEC);
	return pj->procs_fd < 0 ? -errno : 0;
}

int proctrack_job_add(struct proctrack_job *pj, pid_t pid)
{
	char txt[24];
	int r;

	if (pj->pt->mode == PROCTRACK_SESSION)
		return session_add(pj, pid);
	if ((r = cg_job_dir(pj)) < 0)
		return r;
	snprintf(txt, sizeof(txt), "%d", (int)pid);
	if (write(pj->procs_fd, txt, strlen(txt)) < 0)
		return -errno;
	return 0;
}

/*
 * Scans the job's sessions, and forgets those found empty: nothing can
 * join a session, so an empty one is over for good, and its number may
 * now be reused by a session of someone else's, which a later scan
 * must not take for ours.
 */
static size_t session_scan(struct proctrack_job *pj, int kill_them)
{
	size_t *counts = xcalloc(pj->nrecs ? pj->nrecs : 1, sizeof(size_t));
	size_t alive = scan_sessions_counting(pj->recs, pj->nrecs, kill_them,
	    counts), k = 0;
	char path[PATH_MAX];

	for (size_t i = 0; i < pj->nrecs; i++) {
		if (counts[i]) {
			pj->recs[k++] = pj->recs[i];
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s.%d", pj->pt->records, pj->name,
		    (int)pj->recs[i].sid);
		unlink(path);
	}
	pj->nrecs = k;
	free(counts);
	return alive;
}

void proctrack_job_kill(struct proctrack_job *pj)
{
	if (pj == NULL)
		return;
	if (pj->pt->mode == PROCTRACK_SESSION)
		(void)session_scan(pj, 1);
	else if (pj->cg)
		cg_kill(pj->cg);
}

static int job_alive(struct proctrack_job *pj)
{
	if (pj->pt->mode == PROCTRACK_SESSION)
		return session_scan(pj, 0) > 0;
	return pj->cg && cg_populated(pj->cg);
}

/* Nothing is left (or the wait ran out): cgroup or records go. */
static void job_cleanup(struct proctrack_job *pj)
{
	int r;

	if (pj->procs_fd >= 0) {
		close(pj->procs_fd);
		pj->procs_fd = -1;
	}
	if (pj->cg) {
		if ((r = cg_remove(pj->cg)) < 0)
			log_warn("cannot remove a host-step cgroup; the next start "
			    "sweeps it", "cgroup=%s error=%s", logq(pj->cg),
			    logq(strerror(-r)));
		/* The agent's cgroup stays tidy while it has no host job. */
		rmdir(pj->pt->top);
		free(pj->cg);
		pj->cg = NULL;
	}
	if (pj->nrecs && scan_sessions(pj->recs, pj->nrecs, 0) == 0)
		session_remove(pj);
}

static void on_poll(struct ev_timer *t, void *arg)
{
	struct proctrack_job *pj = arg;
	void (*done)(void *);

	if (job_alive(pj) && ++pj->rounds < POLL_ROUNDS) {
		proctrack_job_kill(pj);
		ev_timer_start(t, POLL_MS);
		return;
	}
	if (job_alive(pj))
		log_warn("host-step processes survive SIGKILL; the next start "
		    "kills them", "job=%s", logq(pj->name));
	job_cleanup(pj);
	done = pj->done;
	pj->done = NULL;
	if (done)
		done(pj->done_arg);
}

void proctrack_job_end(struct proctrack_job *pj, struct ev_loop *loop,
    void (*done)(void *arg), void *arg)
{
	if (pj->ended) {
		done(arg);
		return;
	}
	pj->ended = 1;
	pj->done = done;
	pj->done_arg = arg;
	pj->rounds = 0;
	proctrack_job_kill(pj);
	if (pj->poll == NULL)
		pj->poll = ev_timer_new(loop, on_poll, pj);
	/* Not from inside the caller: done may free what called us. */
	ev_timer_start(pj->poll, 0);
}

void proctrack_job_free(struct proctrack_job *pj)
{
	if (pj == NULL)
		return;
	/* On the loop, proctrack_job_end did the waiting; never again here.
	 * Leaving without it (the agent exits): wait here, bounded. */
	if (pj->ended) {
		proctrack_job_kill(pj);
	} else if (pj->pt->mode == PROCTRACK_SESSION) {
		if (kill_sessions_blocking(pj->recs, pj->nrecs) == 0)
			session_remove(pj);
	} else if (pj->cg) {
		for (int i = 0; i < POLL_ROUNDS && cg_populated(pj->cg); i++) {
			cg_kill(pj->cg);
			pause_ms(POLL_MS / 2);
		}
	}
	job_cleanup(pj);
	ev_timer_free(pj->poll);
	free(pj->recs);
	free(pj->name);
	free(pj);
}
