#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "ctl.h"
#include "http.h"
#include "xalloc.h"

static const char agents_usage[] =
    "usage: skiffctl agents [--pool POOL] [options]\n"
    "       skiffctl agents revoke AGENT_ID [options]\n"
    "\n"
    "Lists the agents the queue knows: state (idle, busy, gone), the jobs\n"
    "they hold, when they registered and were last seen. revoke voids one\n"
    "agent's token: it gets 401 from then on, and the leases it held go\n"
    "back to the queue.\n"
    CTL_ID_HELP
    "\n"
    "  --pool POOL  only this pool's agents\n"
    CTL_CONN_HELP;

static void print_jobs(const cJSON *jobs)
{
	const cJSON *j;
	int n = 0;

	cJSON_ArrayForEach(j, jobs)
		printf("%s%s", n++ ? "," : "", cJSON_GetStringValue(j));
	if (n == 0)
		printf("-");
}

static void print_table(const cJSON *list)
{
	const cJSON *a;
	char t[32];

	printf("%-28s %-6s %-16s %-20s %-20s %s\n", "ID", "STATE", "POOL",
	    "NAME", "LAST SEEN", "JOBS");
	cJSON_ArrayForEach(a, list) {
		printf("%-28s %-6s %-16s %-20s %-20s ",
		    cJSON_GetStringValue(cJSON_GetObjectItem(a, "id")),
		    cJSON_GetStringValue(cJSON_GetObjectItem(a, "state")),
		    cJSON_GetStringValue(cJSON_GetObjectItem(a, "pool")),
		    cJSON_GetStringValue(cJSON_GetObjectItem(a, "name")),
		    ctl_fmt_time(cJSON_GetObjectItem(a, "last_seen"), t));
		print_jobs(cJSON_GetObjectItem(a, "jobs"));
		printf("\n");
	}
}

static int list(struct ctl_conn *c, const char *pool)
{
	char *e = pool ? ctl_escape(pool, 0) : NULL;
	char *path = e ? xasprintf("/v1/agents?pool=%s", e) :
	    xstrdup("/v1/agents");
	int rc;
	cJSON *res = ctl_get_json(c, path, &rc);

	if (res && c->json)
		ctl_print_json(res);
	else if (res)
		print_table(cJSON_GetObjectItem(res, "agents"));
	cJSON_Delete(res);
	free(path);
	free(e);
	return rc;
}

int cmd_agents(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pool", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		CTL_CONN_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_conn conn = { 0 };
	const char *pool = NULL;
	int c, k, rc = CTL_EX_USAGE;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'p') {
			pool = optarg;
		} else if (c == 'h') {
			fputs(agents_usage, stdout);
			rc = CTL_EX_OK;
			goto out;
		} else if ((k = ctl_conn_option(&conn, c, optarg)) <= 0) {
			rc = k < 0 ? CTL_EX_FAIL : ctl_usage(agents_usage);
			goto out;
		}
	}
	if (optind != argc && (optind + 2 != argc ||
	    strcmp(argv[optind], "revoke") != 0)) {
		rc = ctl_usage(agents_usage);
		goto out;
	}
	if ((rc = ctl_conn_ready(&conn)) != CTL_EX_OK)
		goto out;
	if (optind == argc)
		rc = list(&conn, pool);
	else
		rc = ctl_revoke(&conn, "/v1/agents/", argv[optind + 1], "agent");
out:
	ctl_conn_free(&conn);
	return rc;
}
