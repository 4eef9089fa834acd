#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "ctl.h"
#include "http.h"
#include "jsonx.h"

static const char cancel_usage[] =
    "usage: skiffctl cancel JOB [--reason TEXT] [options]\n"
    "\n"
    "Cancels a job. A queued job ends as canceled at once; a running one\n"
    "is told on its agent's next heartbeat, and the agent stops it and\n"
    "completes it as canceled. A job that has ended cannot be canceled.\n"
    CTL_ID_HELP
    "\n"
    "  --reason TEXT  why (shown to the agent and in the job's status)\n"
    CTL_CONN_HELP;

static int cancel(struct ctl_conn *c, const char *id, const char *reason)
{
	char *path = ctl_path("/v1/jobs/", id, "/cancel"), *body;
	cJSON *req = cJSON_CreateObject(), *st = NULL;
	struct ctl_resp resp;
	int rc = CTL_EX_SERVER;

	cJSON_AddStringToObject(req, "reason", reason);
	body = jsonx_print(req);
	ctl_resp_init(&resp);
	if (ctl_http(c, "POST", path, "application/json", body, strlen(body), 60,
	    &resp) == 0 && (st = ctl_http_json(&resp)) != NULL) {
		if (c->json)
			ctl_print_json(st);
		else
			printf("%s %s%s\n", id, cJSON_GetStringValue(
			    cJSON_GetObjectItem(st, "state")), cJSON_IsTrue(
			    cJSON_GetObjectItem(st, "cancel_requested")) ?
			    " (cancel requested; the agent stops it)" : "");
		rc = CTL_EX_OK;
	}
	cJSON_Delete(st);
	cJSON_Delete(req);
	cJSON_free(body);
	ctl_resp_free(&resp);
	free(path);
	return rc;
}

int cmd_cancel(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		CTL_CONN_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_conn conn = { 0 };
	const char *reason = "canceled with skiffctl";
	int c, k, rc = CTL_EX_USAGE;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'r') {
			reason = optarg;
		} else if (c == 'h') {
			fputs(cancel_usage, stdout);
			rc = CTL_EX_OK;
			goto out;
		} else if ((k = ctl_conn_option(&conn, c, optarg)) <= 0) {
			rc = k < 0 ? CTL_EX_FAIL : ctl_usage(cancel_usage);
			goto out;
		}
	}
	if (optind + 1 != argc) {
		rc = ctl_usage(cancel_usage);
		goto out;
	}
	if ((rc = ctl_conn_ready(&conn)) != CTL_EX_OK)
		goto out;
	if (strlen(reason) > 1024) {
		rc = ctl_fail("--reason is over 1024 bytes");
		goto out;
	}
	rc = cancel(&conn, argv[optind], reason);
out:
	ctl_conn_free(&conn);
	return rc;
}
