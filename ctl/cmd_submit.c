#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "buf.h"
#include "ctl.h"
#include "http.h"
#include "jws.h"
#include "strnum.h"

static const char submit_usage[] =
    "usage: skiffctl submit JOB.jws [--wait [--timeout DUR]] [options]\n"
    "\n"
    "Submits a signed job (a compact JWS from `skiffctl sign`; \"-\" reads\n"
    "standard input) to the queue and prints its id and state. The queue\n"
    "refuses a job id it has seen (409) and, when it was started with\n"
    "--trusted-keys, a job that fails verification (422, with the reason).\n"
    "\n"
    "  --wait          wait for the job to end; exit 0 when it succeeded,\n"
    "                  1 when it ended otherwise\n"
    "  --timeout DUR   with --wait, give up after DUR (default 24h)\n"
    CTL_CONN_HELP;

static int print_status(const struct ctl_conn *c, cJSON *st)
{
	if (c->json) {
		ctl_print_json(st);
		return CTL_EX_OK;
	}
	printf("%s %s (pool %s, attempt %d)\n",
	    cJSON_GetStringValue(cJSON_GetObjectItem(st, "id")),
	    cJSON_GetStringValue(cJSON_GetObjectItem(st, "state")),
	    cJSON_GetStringValue(cJSON_GetObjectItem(st, "pool")),
	    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "attempt")));
	return CTL_EX_OK;
}

static int ended(const cJSON *st)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(st, "state"));

	return s && strcmp(s, "queued") != 0 && strcmp(s, "leased") != 0 &&
	    strcmp(s, "running") != 0;
}

/* Polls the status once a second: a CLI waiting for one job. */
static int wait_end(struct ctl_conn *c, const char *id, int64_t timeout)
{
	char *path = ctl_path("/v1/jobs/", id, NULL);
	int rc = CTL_EX_FAIL;
	cJSON *st = NULL;

	for (int64_t t = 0; t <= timeout; t++) {
		cJSON_Delete(st);
		if ((st = ctl_get_json(c, path, &rc)) == NULL)
			break;
		if (ended(st)) {
			print_status(c, st);
			rc = strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(st,
			    "state")), "succeeded") == 0 ? CTL_EX_OK : CTL_EX_FAIL;
			break;
		}
		sleep(1);
	}
	if (st && !ended(st))
		rc = ctl_fail("job %s did not end within the timeout", id);
	cJSON_Delete(st);
	free(path);
	return rc;
}

static int submit(struct ctl_conn *c, const struct buf *jws, int wait,
    int64_t timeout)
{
	struct ctl_resp resp;
	cJSON *st = NULL;
	int rc = CTL_EX_SERVER;
	size_t n = jws->len;

	while (n && (jws->data[n - 1] == '\n' || jws->data[n - 1] == '\r'))
		n--;
	ctl_resp_init(&resp);
	if (ctl_http(c, "POST", "/v1/jobs", "application/jose", jws->data, n, 60,
	    &resp) == 0 && (st = ctl_http_json(&resp)) != NULL) {
		rc = wait ? wait_end(c, cJSON_GetStringValue(cJSON_GetObjectItem(st,
		    "id")), timeout) : print_status(c, st);
	}
	cJSON_Delete(st);
	ctl_resp_free(&resp);
	return rc;
}

int cmd_submit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		CTL_CONN_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_conn conn = { 0 };
	struct buf jws = BUF_INIT(JWS_MAX_COMPACT + 2);
	int64_t timeout = 86400;
	int c, k, wait = 0, rc = CTL_EX_USAGE;
	const char *why;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(submit_usage, stdout);
			rc = CTL_EX_OK;
			goto out;
		} else if (c == 'w') {
			wait = 1;
		} else if (c == 't') {
			if (strnum_duration(optarg, 1, 30 * 86400, &timeout, &why) < 0) {
				rc = ctl_fail("--timeout %s: %s", optarg, why);
				goto out;
			}
		} else if ((k = ctl_conn_option(&conn, c, optarg)) <= 0) {
			rc = k < 0 ? CTL_EX_FAIL : ctl_usage(submit_usage);
			goto out;
		}
	}
	if (optind + 1 != argc) {
		rc = ctl_usage(submit_usage);
		goto out;
	}
	if ((k = ctl_read_input(argv[optind], JWS_MAX_COMPACT + 2, &jws)) < 0) {
		rc = ctl_fail("%s: %s", argv[optind], k == -E2BIG ?
		    "over the 256 KiB a job may have" : strerror(-k));
		goto out;
	}
	if ((rc = ctl_conn_ready(&conn)) == CTL_EX_OK)
		rc = submit(&conn, &jws, wait, timeout);
out:
	buf_free(&jws);
	ctl_conn_free(&conn);
	return rc;
}
