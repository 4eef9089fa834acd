#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "buf.h"
#include "ctl.h"
#include "http.h"
#include "strnum.h"

static const char jobs_usage[] =
    "usage: skiffctl jobs [--pool POOL] [--state STATE] [--limit N] [options]\n"
    "\n"
    "Lists jobs, newest first.\n"
    "\n"
    "  --pool POOL    only this pool's jobs\n"
    "  --state STATE  only jobs in this state (queued, leased, running,\n"
    "                 succeeded, failed, canceled, timed_out, rejected,\n"
    "                 expired, lost)\n"
    "  --limit N      at most N jobs, 1 to 1000 (default 100)\n"
    CTL_CONN_HELP;

static void print_table(const cJSON *list)
{
	const cJSON *j;
	char t[32];

	printf("%-24s %-10s %-16s %-7s %-20s %s\n", "ID", "STATE", "POOL",
	    "ATTEMPT", "CREATED", "NAME");
	cJSON_ArrayForEach(j, list) {
		printf("%-24s %-10s %-16s %-7d %-20s %s\n",
		    cJSON_GetStringValue(cJSON_GetObjectItem(j, "id")),
		    cJSON_GetStringValue(cJSON_GetObjectItem(j, "state")),
		    cJSON_GetStringValue(cJSON_GetObjectItem(j, "pool")),
		    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "attempt")),
		    ctl_fmt_time(cJSON_GetObjectItem(j, "created"), t),
		    cJSON_GetStringValue(cJSON_GetObjectItem(j, "name")));
	}
}

static char *query(const char *pool, const char *state, int64_t limit)
{
	struct buf b = BUF_INIT(4096);
	char *e;

	buf_printf(&b, "/v1/jobs?limit=%lld", (long long)limit);
	if (pool) {
		e = ctl_escape(pool, 0);
		buf_printf(&b, "&pool=%s", e);
		free(e);
	}
	if (state) {
		e = ctl_escape(state, 0);
		buf_printf(&b, "&state=%s", e);
		free(e);
	}
	return buf_steal(&b, NULL);
}

int cmd_jobs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pool", required_argument, NULL, 'p' },
		{ "state", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		CTL_CONN_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_conn conn = { 0 };
	const char *pool = NULL, *state = NULL, *why;
	int64_t limit = 100;
	int c, k, rc = CTL_EX_USAGE;
	char *path;
	cJSON *res;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': pool = optarg; break;
		case 's': state = optarg; break;
		case 'l':
			if (strnum_i64(optarg, 1, 1000, &limit, &why) < 0) {
				rc = ctl_fail("--limit %s: %s (1 to 1000)", optarg, why);
				goto out;
			}
			break;
		case 'h':
			fputs(jobs_usage, stdout);
			rc = CTL_EX_OK;
			goto out;
		default:
			if ((k = ctl_conn_option(&conn, c, optarg)) <= 0) {
				rc = k < 0 ? CTL_EX_FAIL : ctl_usage(jobs_usage);
				goto out;
			}
		}
	}
	if (optind != argc) {
		rc = ctl_usage(jobs_usage);
		goto out;
	}
	if ((rc = ctl_conn_ready(&conn)) != CTL_EX_OK)
		goto out;
	path = query(pool, state, limit);
	if ((res = ctl_get_json(&conn, path, &rc)) != NULL) {
		if (conn.json)
			ctl_print_json(res);
		else
			print_table(cJSON_GetObjectItem(res, "jobs"));
		cJSON_Delete(res);
	}
	free(path);
out:
	ctl_conn_free(&conn);
	return rc;
}
