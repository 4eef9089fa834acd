/*
 * Retention (--retain DUR): an ended job whose end is older than DUR is
 * deleted with everything that refers to it: its row, its leases and its
 * uploads in one transaction, then its files beside the database,
 * <data>/logs/<job>/ and <data>/artifacts/<job>/.
 *
 * Rows go first and files after: once the transaction commits, the job is
 * gone for every reader (404), and a crash before its files are removed
 * leaves only directories without a job, which the next start finds and
 * removes. Jobs that have not ended live in memory (queue.c); they are
 * never due, and a due job found there would be a bug that is logged and
 * left alone.
 *
 * The work is cut into rounds on a timer (see RETAIN_JOBS) so that the
 * one loop thread goes on answering leases and submits between them.
 *
 * This module also counts the bytes stored, for /metrics: once at start,
 * then it subtracts what it deletes; logs.c and artifacts.c add and
 * subtract what they write and truncate.
 */
#include "queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "ev.h"
#include "fsx.h"
#include "hmap.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"

/*
 * Why these sizes: a round holds the loop thread, and a lease or submit
 * that arrives meanwhile waits for it (issue 11 aims at 10 ms for a
 * pickup at p99). 64 jobs are 192 indexed DELETEs and one commit (one
 * fsync with --sync full, what every submit costs), under a millisecond
 * of CPU; 256 unlinks are a few milliseconds on a cold local disk. The
 * pause between rounds hands the loop back to requests and still clears
 * a backlog at up to about 6,000 jobs a second: a million ended jobs,
 * when retention is first turned on, in about three minutes.
 */
#define RETAIN_JOBS 64
#define RETAIN_FILES 256
#define RETAIN_YIELD_MS 10
/* With nothing due, the next look is a quarter of --retain away (1 s to
 * 60 s): a job goes at most that much later than due. */
#define RETAIN_IDLE_MIN_MS 1000
#define RETAIN_IDLE_MAX_MS 60000

enum { K_LOGS, K_ARTIFACTS, K_COUNT };
static const char *const kind_dir[K_COUNT] = { "logs", "artifacts" };

struct retain {
	struct queue *q;
	struct ev_timer *timer;
	char **pending;		/* deleted jobs whose files are left, FIFO */
	size_t head, n, cap;
	uint64_t swept;		/* deleted since the last log line */
};

static int64_t *bytes_of(struct queue *q, int kind)
{
	return kind == K_LOGS ? &q->log_bytes : &q->artifact_bytes;
}

static void sub_bytes(struct queue *q, int kind, int64_t n)
{
	int64_t *b = bytes_of(q, kind);

	*b = *b > n ? *b - n : 0;
}

static void push(struct retain *r, const char *id)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->pending = xreallocarray(r->pending, r->cap, sizeof(char *));
	}
	r->pending[r->n++] = xstrdup(id);
}

static int open_dir(int at, const char *name, DIR **out)
{
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if ((*out = fdopendir(fd)) == NULL) {
		int r = -errno;
		close(fd);
		return r;
	}
	return 0;
}

static int dot(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* ---- at start ---- */

static int found_row(sqlite3_stmt *row, void *arg)
{
	(void)row;
	*(int *)arg = 1;
	return 1;
}

static int job_exists(struct queue *q, const char *id, int *exists)
{
	*exists = hmap_get(q->jobs, id) != NULL;
	if (*exists)
		return 0;
	return store_query(q->st, SQL_JOB_STATE, found_row, exists, "t", id);
}

static int64_t dir_bytes(DIR *d)
{
	struct dirent *de;
	struct stat st;
	int64_t sum = 0;

	while ((de = readdir(d)) != NULL)
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			sum += (int64_t)st.st_size;
	return sum;
}

/* One tree: its bytes, and with retention the directories of jobs the
 * store does not know onto the pending list. */
static int scan_kind(struct queue *q, int kind)
{
	char *path = xasprintf("%s/%s", q->dir, kind_dir[kind]);
	DIR *top = NULL, *d;
	struct dirent *de;
	int r = open_dir(AT_FDCWD, path, &top), exists;

	free(path);
	if (r == -ENOENT)
		return 0;
	while (r == 0 && (de = readdir(top)) != NULL) {
		if (dot(de->d_name) || strlen(de->d_name) > ID_MAX ||
		    open_dir(dirfd(top), de->d_name, &d) < 0)
			continue;
		*bytes_of(q, kind) += dir_bytes(d);
		closedir(d);
		if (q->retain && (r = job_exists(q, de->d_name, &exists)) == 0 &&
		    !exists)
			push(q->retain, de->d_name);
	}
	if (top)
		closedir(top);
	return r;
}

/* ---- files ---- */

/* Removes one entry of a job's directory; a directory there is none of
 * the queue's making, and goes whole. */
static void remove_entry(struct queue *q, int kind, DIR *d, const char *path,
    const char *name)
{
	struct stat st;
	char *sub;

	if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		sub = xasprintf("%s/%s", path, name);
		(void)fsx_remove_tree(sub);	/* what is left shows at rmdir */
		free(sub);
	} else if (unlinkat(dirfd(d), name, 0) == 0 && S_ISREG(st.st_mode)) {
		sub_bytes(q, kind, (int64_t)st.st_size);
	}
}

/*
 * Removes at most *budget entries of <kind>/<id>, then the directory once
 * empty. 1: the directory is gone (or could not be removed: logged, and
 * left to the next start); 0: the budget ran out first.
 */
static int remove_dir(struct queue *q, int kind, const char *id,
    size_t *budget)
{
	char *path = xasprintf("%s/%s/%s", q->dir, kind_dir[kind], id);
	struct dirent *de;
	DIR *d = NULL;
	int r = open_dir(AT_FDCWD, path, &d), done = 1;

	while (r == 0 && (de = readdir(d)) != NULL) {
		if (dot(de->d_name))
			continue;
		if (*budget == 0) {
			done = 0;
			break;
		}
		(*budget)--;
		remove_entry(q, kind, d, path, de->d_name);
	}
	if (d)
		closedir(d);
	if (r == 0 && done && rmdir(path) < 0)
		r = -errno;
	if (r < 0 && r != -ENOENT)
		log_warn("retention could not remove a job's files", "path=%s "
		    "error=%s", logq(path), logq(strerror(-r)));
	free(path);
	return done;
}

/* A job with this id exists again (the jti signed anew after the old job
 * was deleted): the files are its own now. */
static int reused(struct queue *q, const char *id)
{
	int exists = 1;

	if (job_exists(q, id, &exists) < 0)
		return 1;	/* unsure: keep them, the next start looks again */
	return exists;
}

static void remove_pending(struct queue *q, size_t *budget)
{
	struct retain *r = q->retain;

	while (r->head < r->n && *budget > 0) {
		const char *id = r->pending[r->head];
		int done = 1, keep = reused(q, id);

		for (int k = 0; k < K_COUNT && done && !keep; k++)
			done = remove_dir(q, k, id, budget);
		if (!done)
			break;
		free(r->pending[r->head++]);
	}
	if (r->head == r->n)
		r->head = r->n = 0;
}

/* ---- rows ---- */

struct due {
	char (*ids)[ID_MAX + 1];
	size_t n, max;
};

static int due_row(sqlite3_stmt *row, void *arg)
{
	struct due *d = arg;

	if (d->n == d->max)
		return 1;
	snprintf(d->ids[d->n++], ID_MAX + 1, "%s", store_text(row, 0));
	return 0;
}

static int delete_rows(struct queue *q, struct due *d)
{
	int r = store_begin(q->st);

	for (size_t i = 0; r == 0 && i < d->n; i++) {
		const char *id = d->ids[i];

		if (hmap_get(q->jobs, id)) {
			log_error("a job due for retention is active; kept",
			    "job=%s", id);
			d->ids[i][0] = '\0';
			continue;
		}
		r = store_exec(q->st, SQL_RETAIN_DEL_UPLOADS, "t", id);
		if (r == 0)
			r = store_exec(q->st, SQL_RETAIN_DEL_LEASES, "t", id);
		if (r == 0)
			r = store_exec(q->st, SQL_RETAIN_DEL_JOB, "t", id);
	}
	return r == 0 ? store_commit(q->st) : (store_rollback(q->st), r);
}

/* Deletes the rows of at most max due jobs; *seen is how many were due. */
static int delete_due(struct queue *q, int64_t now, size_t max, size_t *seen)
{
	struct due d = { xcalloc(max, sizeof(*d.ids)), 0, max };
	int r = store_query(q->st, SQL_RETAIN_DUE, due_row, &d, "iii",
	    now - q->cfg->retain, now - q->cfg->clock_skew, (int64_t)max);

	if (r == 0 && d.n > 0)
		r = delete_rows(q, &d);
	if (r < 0) {
		if (store_corrupt(q->st))
			q->fatal = 1;
		goto out;
	}
	/* Memory after the commit: only uploads can be cached for an ended
	 * job (an agent asking after one); jobs and leases never are. */
	for (size_t i = 0; i < d.n; i++) {
		if (d.ids[i][0] == '\0')
			continue;
		art_forget_job(q, d.ids[i]);
		push(q->retain, d.ids[i]);
		q->jobs_deleted++;
		q->retain->swept++;
	}
	*seen = d.n;
out:
	free(d.ids);
	return r;
}

int retain_round(struct queue *q, int64_t now, size_t max_jobs,
    size_t max_files, int *more)
{
	struct retain *r = q->retain;
	size_t budget = max_files, seen = 0;
	int rc = 0;

	*more = 0;
	if (r == NULL)
		return 0;
	remove_pending(q, &budget);
	/* New rows only once the files of the last ones are gone: the
	 * pending list stays within one batch. */
	if (r->head == r->n && (rc = delete_due(q, now, max_jobs, &seen)) == 0)
		remove_pending(q, &budget);
	*more = r->head < r->n || (rc == 0 && seen == max_jobs);
	return rc;
}

/* ---- the timer ---- */

static int64_t idle_ms(const struct queue *q)
{
	int64_t ms = q->cfg->retain * 250;

	return ms < RETAIN_IDLE_MIN_MS ? RETAIN_IDLE_MIN_MS :
	    ms > RETAIN_IDLE_MAX_MS ? RETAIN_IDLE_MAX_MS : ms;
}

static void fired(struct ev_timer *t, void *arg)
{
	struct retain *r = arg;
	int more = 0, rc = retain_round(r->q, queue_now(), RETAIN_JOBS,
	    RETAIN_FILES, &more);

	if (rc < 0)
		log_error("retention round failed; trying again later", "error=%s",
		    logq(strerror(-rc)));
	if (!more && r->swept > 0) {
		log_info("retention deleted jobs", "jobs=%llu log_bytes=%lld "
		    "artifact_bytes=%lld", (unsigned long long)r->swept,
		    (long long)r->q->log_bytes, (long long)r->q->artifact_bytes);
		r->swept = 0;
	}
	ev_timer_start(t, rc == 0 && more ? RETAIN_YIELD_MS : idle_ms(r->q));
}

int retain_start(struct queue *q)
{
	int r;

	if (q->cfg->retain > 0) {
		q->retain = xcalloc(1, sizeof(*q->retain));
		q->retain->q = q;
	}
	for (int k = 0; k < K_COUNT; k++)
		if ((r = scan_kind(q, k)) < 0)
			return r;
	if (q->retain == NULL)
		return 0;
	q->retain->timer = ev_timer_new(q->loop, fired, q->retain);
	ev_timer_start(q->retain->timer, 0);
	log_info("retention on", "retain=%llds orphan_dirs=%zu",
	    (long long)q->cfg->retain, q->retain->n);
	return 0;
}

void retain_stop(struct queue *q)
{
	if (q->retain)
		ev_timer_stop(q->retain->timer);
}

void retain_free(struct queue *q)
{
	struct retain *r = q->retain;

	if (r == NULL)
		return;
	ev_timer_free(r->timer);
	for (size_t i = r->head; i < r->n; i++)
		free(r->pending[i]);
	free(r->pending);
	free(r);
	q->retain = NULL;
}
