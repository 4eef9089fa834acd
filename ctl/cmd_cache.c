#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "ctl.h"
#include "http.h"
#include "xalloc.h"

static const char cache_usage[] =
    "usage: skiffctl cache list POOL [options]\n"
    "       skiffctl cache delete POOL CACHE_ID [options]\n"
    "\n"
    "Lists a pool's caches (the caches jobs saved with job.caches, most\n"
    "recently used first: id, size, last use, key) and the bytes they hold\n"
    "against the pool's cap; delete removes one, so that the next job that\n"
    "names its key saves it afresh.\n"
    CTL_ID_HELP
    CTL_CONN_HELP;

static void print_table(const cJSON *res)
{
	const cJSON *c;
	char t[32];

	printf("%-26s %12s %-20s %s\n", "ID", "SIZE", "LAST USED", "KEY");
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(res, "caches")) {
		printf("%-26s %12.0f %-20s %s\n",
		    cJSON_GetStringValue(cJSON_GetObjectItem(c, "id")),
		    cJSON_GetNumberValue(cJSON_GetObjectItem(c, "size")),
		    ctl_fmt_time(cJSON_GetObjectItem(c, "last_used"), t),
		    cJSON_GetStringValue(cJSON_GetObjectItem(c, "key")));
	}
	printf("%.0f of %.0f bytes\n",
	    cJSON_GetNumberValue(cJSON_GetObjectItem(res, "bytes")),
	    cJSON_GetNumberValue(cJSON_GetObjectItem(res, "limit")));
}

static int list(struct ctl_conn *c, const char *pool)
{
	char *path = ctl_path("/v1/pools/", pool, "/caches");
	int rc;
	cJSON *res = ctl_get_json(c, path, &rc);

	if (res && c->json)
		ctl_print_json(res);
	else if (res)
		print_table(res);
	cJSON_Delete(res);
	free(path);
	return rc;
}

static int delete(struct ctl_conn *c, const char *pool, const char *id)
{
	char *e = ctl_escape(pool, 0);
	char *prefix = xasprintf("/v1/pools/%s/caches/", e);
	int rc = ctl_revoke(c, prefix, id, "cache");

	free(prefix);
	free(e);
	return rc;
}

int cmd_cache(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		CTL_CONN_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_conn conn = { 0 };
	int c, k, rc = CTL_EX_USAGE, del;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(cache_usage, stdout);
			rc = CTL_EX_OK;
			goto out;
		} else if ((k = ctl_conn_option(&conn, c, optarg)) <= 0) {
			rc = k < 0 ? CTL_EX_FAIL : ctl_usage(cache_usage);
			goto out;
		}
	}
	if (optind >= argc) {
		rc = ctl_usage(cache_usage);
		goto out;
	}
	del = strcmp(argv[optind], "delete") == 0;
	if ((!del && strcmp(argv[optind], "list") != 0) ||
	    argc - optind != (del ? 3 : 2)) {
		rc = ctl_usage(cache_usage);
		goto out;
	}
	if ((rc = ctl_conn_ready(&conn)) != CTL_EX_OK)
		goto out;
	rc = del ? delete(&conn, argv[optind + 1], argv[optind + 2]) :
	    list(&conn, argv[optind + 1]);
out:
	ctl_conn_free(&conn);
	return rc;
}
