/*
 * OOM kills from the kernel's log (oomlog.h says why).
 *
 * /dev/kmsg hands out one record per read(2), EAGAIN when there is no
 * more (the fd is non-blocking) and EPIPE once for records the ring
 * overwrote before they were read. Records are read only when asked
 * (a mark, or a question about a container), never on a timer: between
 * questions they wait in the kernel's ring. The summaries of recent kills
 * are kept here, so that a question about one container does not consume
 * the answer to another's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "oomlog.h"

#define KEEP 32
/* Bounds the work of one question when the log is flooded. */
#define MAX_READS 16384
#define RECORD_MAX 8192

static struct {
	int fd;
	uint64_t last_seq;		/* of the newest record read */
	/* Records may have gone unread or unprinted up to this one: the
	 * ring overwrote some, or the kernel said it held back OOM reports
	 * (its rate limit). */
	uint64_t lost_after;
	int lost;
	size_t next;			/* slot the next kill goes to */
	struct {
		uint64_t seq;		/* 0: empty */
		char memcg[OOMLOG_MEMCG_MAX];
	} kill[KEEP];
} lg = { .fd = -1 };

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Digits up to a comma: the number, and p past the comma. */
static int number(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;

	if (s >= end || *s < '0' || *s > '9')
		return -EINVAL;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (s >= end || *s != ',')
		return -EINVAL;
	*p = s + 1;
	*v = n;
	return 0;
}

int oomlog_parse(const char *rec, size_t n, uint64_t *seq, char *memcg,
    size_t cap)
{
	static const char kill[] = "oom-kill:";
	static const char key[] = ",task_memcg=";
	const char *p = rec, *end = rec + n, *msg, *eol, *v, *ve;
	uint64_t prio, s;
	size_t len;

	if (cap == 0 || number(&p, end, &prio) < 0 || number(&p, end, &s) < 0)
		return -EINVAL;
	if ((msg = memchr(p, ';', (size_t)(end - p))) == NULL ||
	    memchr(p, '\n', (size_t)(msg - p)) != NULL)
		return -EINVAL;
	msg++;
	if ((eol = memchr(msg, '\n', (size_t)(end - msg))) == NULL)
		eol = end;
	*seq = s;
	/* Facility 0 is the kernel's; a write to /dev/kmsg from user space
	 * is given facility 1 (user) unless it names one, and any it names
	 * other than 0 is kept. */
	if (prio >> 3 != 0)
		return 0;
	if ((size_t)(eol - msg) < sizeof(kill) - 1 ||
	    memcmp(msg, kill, sizeof(kill) - 1) != 0)
		return 0;
	/* The fields before task_memcg= (constraint, nodemask, cpuset,
	 * mems_allowed, oom_memcg) are the kernel's and the engine's; the
	 * task's name, which a job sets, comes after it. */
	for (v = msg; (size_t)(eol - v) >= sizeof(key) - 1; v++)
		if (memcmp(v, key, sizeof(key) - 1) == 0)
			break;
	if ((size_t)(eol - v) < sizeof(key) - 1)
		return 0;
	v += sizeof(key) - 1;
	for (ve = v; ve < eol && *ve != ','; ve++)
		;
	len = (size_t)(ve - v);
	if (len >= cap)
		len = cap - 1;
	memcpy(memcg, v, len);
	memcg[len] = '\0';
	return 1;
}

int oomlog_names(const char *memcg, const char *id)
{
	size_t n = strlen(id);

	if (n < 12 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_hex(id[i]))
			return 0;
	/* A component of its own (/docker/ID) or the engine's unit of it
	 * (docker-ID.scope, libpod-ID.scope), maybe with groups below. */
	for (const char *p = memcg; (p = strstr(p, id)) != NULL; p++) {
		const char *q = p + n;
		if (p == memcg || (p[-1] != '/' && p[-1] != '-'))
			continue;
		if (p[-1] == '-' && strncmp(q, ".scope", 6) == 0)
			q += 6;
		else if (p[-1] == '-' && *q != '\0' && *q != '/')
			continue;
		if (*q == '\0' || *q == '/')
			return 1;
	}
	return 0;
}

int oomlog_open(void)
{
	int fd, e;

	if (lg.fd >= 0)
		return 0;
	if ((fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		e = errno;
		log_info("kernel log not readable: OOM kills are known only "
		    "from the container engine", "error=%s", strerror(e));
		return -e;
	}
	/* Records from before the agent started are not its business. */
	if (lseek(fd, 0, SEEK_END) < 0) {
		e = errno;
		close(fd);
		log_debug("kernel log not seekable: OOM kills are known only "
		    "from the container engine", "error=%s", strerror(e));
		return -e;
	}
	lg.fd = fd;
	log_info("OOM kills of container steps read from the kernel log",
	    NULL);
	return 0;
}

void oomlog_close(void)
{
	if (lg.fd >= 0)
		close(lg.fd);
	memset(&lg, 0, sizeof(lg));
	lg.fd = -1;
}

int oomlog_available(void)
{
	return lg.fd >= 0;
}

static void lose(void)
{
	lg.lost = 1;
	lg.lost_after = lg.last_seq;
}

/* The kernel's word that it held back OOM reports (its rate limit):
 * "oom_kill_process: 3 callbacks suppressed". */
static int suppressed(const char *rec, size_t n)
{
	static const char tail[] = "callbacks suppressed";
	const char *msg = memchr(rec, ';', n);

	if (msg == NULL || n < 2 || rec[0] < '0' || rec[0] > '7' ||
	    rec[1] != ',')
		return 0;		/* not the kernel's (facility 0) */
	msg++;
	n -= (size_t)(msg - rec);
	return n > 16 && memcmp(msg, "oom_kill_process", 16) == 0 &&
	    memmem(msg, n, tail, sizeof(tail) - 1) != NULL;
}

static void drain(void)
{
	static char rec[RECORD_MAX];
	char memcg[OOMLOG_MEMCG_MAX];
	uint64_t seq;
	int r;

	for (int i = 0; lg.fd >= 0 && i < MAX_READS; i++) {
		ssize_t n = read(lg.fd, rec, sizeof(rec));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EPIPE) {
			log_debug("kernel log records overwritten before they "
			    "were read", NULL);
			lose();
			continue;
		}
		if (n < 0 && errno == EINVAL) {
			/* A record larger than rec (the kernel's are not): it
			 * would be answered again and again; skip to the end. */
			log_debug("kernel log record too large: skipped to the "
			    "end", NULL);
			(void)lseek(lg.fd, 0, SEEK_END);
			lose();
			return;
		}
		if (n <= 0)
			return;		/* EAGAIN: read up to now */
		if ((r = oomlog_parse(rec, (size_t)n, &seq, memcg,
		    sizeof(memcg))) < 0)
			continue;
		if (seq > lg.last_seq)
			lg.last_seq = seq;
		if (r == 0 && suppressed(rec, (size_t)n))
			lose();
		if (r == 1) {
			lg.kill[lg.next].seq = seq;
			snprintf(lg.kill[lg.next].memcg, OOMLOG_MEMCG_MAX, "%s",
			    memcg);
			lg.next = (lg.next + 1) % KEEP;
		}
	}
	/* Cut at MAX_READS: the rest is read next time, nothing is lost. */
}

uint64_t oomlog_mark(void)
{
	drain();
	return lg.last_seq;
}

int oomlog_complete_since(uint64_t mark)
{
	if (lg.fd < 0)
		return 0;
	drain();
	return !lg.lost || lg.lost_after < mark;
}

int oomlog_killed(const char *container_id, uint64_t mark)
{
	if (lg.fd < 0 || container_id == NULL)
		return 0;
	drain();
	for (size_t i = 0; i < KEEP; i++)
		if (lg.kill[i].seq > mark &&
		    oomlog_names(lg.kill[i].memcg, container_id))
			return 1;
	return 0;
}

int oomlog_killed_unrecorded(const char *container_id, uint64_t mark)
{
	if (!oomlog_killed(container_id, mark))
		return 0;
	log_info("OOM kill known from the kernel's log, not (yet) from the "
	    "engine", "container=%.12s", container_id);
	return 1;
}
