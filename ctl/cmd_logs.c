#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "buf.h"
#include "ctl.h"
#include "http.h"
#include "logstream.h"
#include "strnum.h"

static const char logs_usage[] =
    "usage: skiffctl logs JOB [--follow] [--stream out|err] [--step N]\n"
    "                         [--attempt A] [options]\n"
    "\n"
    "Prints a job's log: its records (docs/protocol.md section 10) as they\n"
    "are, or with --stream one stream of the steps' output put back\n"
    "together byte for byte.\n"
    CTL_ID_HELP
    "\n"
    "  --follow, -f      keep printing as the log grows, until the job ends\n"
    "                    (on to the next attempt when the job is requeued)\n"
    "  --stream out|err  only standard output (or standard error), as the\n"
    "                    steps wrote it\n"
    "  --step N          only step N (1-based, as the log's \"skf step N/M\"\n"
    "                    records count)\n"
    "  --attempt A       the log of attempt A (default: the latest)\n"
    CTL_CONN_HELP;

/* How long the queue may hold a follow request. */
#define FOLLOW_WAIT 30
/* Transient failures tolerated in a row while following. */
#define FOLLOW_RETRIES 10

struct logs {
	struct ctl_conn *c;
	const char *id;
	int attempt;		/* 0 until the first answer names it */
	int64_t offset;
	int follow;
	int pinned;		/* --attempt: do not move on */
	struct logstream ls;
	int out_failed;
};

static void emit(void *arg, const char *p, size_t n)
{
	struct logs *l = arg;

	if (fwrite(p, 1, n, stdout) != n)
		l->out_failed = 1;
}

static char *log_path(const struct logs *l)
{
	struct buf b = BUF_INIT(1024);
	char *id = ctl_path("/v1/jobs/", l->id, "/log");

	buf_printf(&b, "%s?offset=%lld", id, (long long)l->offset);
	if (l->attempt)
		buf_printf(&b, "&attempt=%d", l->attempt);
	if (l->follow)
		buf_printf(&b, "&wait=%d", FOLLOW_WAIT);
	free(id);
	return buf_steal(&b, NULL);
}

/* The job has an attempt after ours: follow it from its start. */
static int next_attempt(struct logs *l)
{
	char *path = ctl_path("/v1/jobs/", l->id, NULL);
	int rc, cur;
	cJSON *st = ctl_get_json(l->c, path, &rc);

	free(path);
	if (st == NULL)
		return -1;
	cur = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "attempt"));
	cJSON_Delete(st);
	if (cur <= l->attempt)
		return 0;
	fflush(stdout);
	fprintf(stderr, "skiffctl: attempt %d ended; following attempt %d\n",
	    l->attempt, l->attempt + 1);
	l->attempt++;
	l->offset = 0;
	return 1;
}

/* One request: 1 more to read, 0 done, -1 failed, -2 retry later. */
static int step(struct logs *l)
{
	struct ctl_resp resp;
	char *path = log_path(l);
	int r;

	ctl_resp_init(&resp);
	r = ctl_http(l->c, "GET", path, NULL, NULL, 0, FOLLOW_WAIT + 15, &resp);
	free(path);
	if (r < 0 || resp.status >= 500 || resp.status == 429) {
		r = l->follow ? -2 : (r < 0 ? -1 : (ctl_http_fail(&resp), -1));
	} else if (resp.status != 200) {
		ctl_http_fail(&resp);
		r = -1;
	} else {
		l->attempt = resp.log_attempt ? resp.log_attempt : l->attempt;
		logstream_feed(&l->ls, buf_cstr(&resp.body), resp.body.len);
		l->offset += (int64_t)resp.body.len;
		r = resp.body.len > 0 ? 1 : 0;
		if (r == 0 && l->follow)
			r = !resp.log_complete ? 1 : l->pinned ? 0 : next_attempt(l);
	}
	ctl_resp_free(&resp);
	return r;
}

static int run(struct logs *l)
{
	int r, fails = 0;

	while ((r = step(l)) != 0) {
		if (r == -1 || l->out_failed)
			return l->out_failed ? ctl_fail("cannot write the output") :
			    CTL_EX_SERVER;
		if (r == -2 && ++fails > FOLLOW_RETRIES)
			return ctl_fail("the queue stayed unavailable; giving up");
		if (r == -2)
			sleep((unsigned)(fails < 5 ? fails : 5));
		else
			fails = 0;
		fflush(stdout);
	}
	logstream_finish(&l->ls);
	fflush(stdout);
	return CTL_EX_OK;
}

static int parse_mode(const char *s, enum logstream_mode *m)
{
	if (strcmp(s, "out") == 0)
		*m = LS_OUT;
	else if (strcmp(s, "err") == 0)
		*m = LS_ERR;
	else
		return ctl_fail("--stream %s: want out or err", s);
	return 0;
}

int cmd_logs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "stream", required_argument, NULL, 's' },
		{ "step", required_argument, NULL, 'S' },
		{ "attempt", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		CTL_CONN_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_conn conn = { 0 };
	struct logs l = { 0 };
	enum logstream_mode mode = LS_RECORDS;
	int c, k, stepn = 0, rc = CTL_EX_USAGE;
	const char *why;

	l.c = &conn;
	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': l.follow = 1; break;
		case 's':
			if (parse_mode(optarg, &mode) != 0)
				goto out;
			break;
		case 'S':
			if (strnum_int(optarg, 1, 64, &stepn, &why) < 0) {
				rc = ctl_fail("--step %s: %s (1 to 64)", optarg, why);
				goto out;
			}
			break;
		case 'a':
			if (strnum_int(optarg, 1, 1000, &l.attempt, &why) < 0) {
				rc = ctl_fail("--attempt %s: %s", optarg, why);
				goto out;
			}
			l.pinned = 1;
			break;
		case 'h':
			fputs(logs_usage, stdout);
			rc = CTL_EX_OK;
			goto out;
		default:
			if ((k = ctl_conn_option(&conn, c, optarg)) <= 0) {
				rc = k < 0 ? CTL_EX_FAIL : ctl_usage(logs_usage);
				goto out;
			}
		}
	}
	if (optind + 1 != argc) {
		rc = ctl_usage(logs_usage);
		goto out;
	}
	if ((rc = ctl_conn_ready(&conn)) != CTL_EX_OK)
		goto out;
	l.id = argv[optind];
	logstream_init(&l.ls, mode, stepn, emit, &l);
	rc = run(&l);
	logstream_free(&l.ls);
out:
	ctl_conn_free(&conn);
	return rc;
}
