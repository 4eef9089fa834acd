#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "ctl.h"
#include "http.h"
#include "jsonx.h"
#include "xalloc.h"

static const char token_usage[] =
    "usage: skiffctl token create POOL [--description TEXT] [options]\n"
    "       skiffctl token create --viewer [--description TEXT] [options]\n"
    "       skiffctl token list POOL [options]\n"
    "       skiffctl token list --viewer [options]\n"
    "       skiffctl token revoke TOKEN_ID [options]\n"
    "\n"
    "Registration tokens let agents join a pool. create prints the new\n"
    "token once (the queue keeps only its hash); put it in the pool's\n"
    "agent configuration. revoke voids a token and every agent token\n"
    "issued through it.\n"
    "\n"
    "Viewer tokens (--viewer) read what the web view at /ui/ shows (pools,\n"
    "agents, jobs, logs, artifacts) and nothing else: they cannot submit,\n"
    "cancel, revoke or register. Give one to the view once; it keeps it in\n"
    "a session cookie.\n"
    CTL_ID_HELP
    "\n"
    "  --viewer            a viewer token instead of a pool's registration token\n"
    "  --description TEXT  what the token is for (shown by list)\n"
    CTL_CONN_HELP;

/* pool NULL: a viewer token. */
static int create(struct ctl_conn *c, const char *pool, const char *desc)
{
	char *path = pool ? ctl_path("/v1/pools/", pool, "/tokens") :
	    xstrdup("/v1/viewer-tokens"), *body;
	cJSON *req = cJSON_CreateObject(), *res = NULL;
	struct ctl_resp resp;
	int rc = CTL_EX_SERVER;

	cJSON_AddStringToObject(req, "description", desc);
	body = jsonx_print(req);
	ctl_resp_init(&resp);
	if (ctl_http(c, "POST", path, "application/json", body, strlen(body), 60,
	    &resp) == 0 && (res = ctl_http_json(&resp)) != NULL) {
		if (c->json)
			ctl_print_json(res);
		else
			printf("%s\n", cJSON_GetStringValue(cJSON_GetObjectItem(res,
			    "token")));
		if (!c->json)
			fprintf(stderr, "skiffctl: token %s %s %s; it is shown only this "
			    "once\n", cJSON_GetStringValue(cJSON_GetObjectItem(res,
			    "id")), pool ? "for pool" : "for", pool ? pool :
			    "the web view (read-only)");
		rc = CTL_EX_OK;
	}
	cJSON_Delete(res);
	cJSON_Delete(req);
	cJSON_free(body);
	ctl_resp_free(&resp);
	free(path);
	return rc;
}

static int list(struct ctl_conn *c, const char *pool)
{
	char *path = pool ? ctl_path("/v1/pools/", pool, "/tokens") :
	    xstrdup("/v1/viewer-tokens");
	const cJSON *t;
	char a[32], b[32];
	int rc;
	cJSON *res = ctl_get_json(c, path, &rc);

	if (res && c->json)
		ctl_print_json(res);
	if (res && !c->json) {
		printf("%-28s %-20s %-20s %s\n", "ID", "CREATED", "REVOKED",
		    "DESCRIPTION");
		cJSON_ArrayForEach(t, cJSON_GetObjectItem(res, "tokens"))
			printf("%-28s %-20s %-20s %s\n",
			    cJSON_GetStringValue(cJSON_GetObjectItem(t, "id")),
			    ctl_fmt_time(cJSON_GetObjectItem(t, "created"), a),
			    ctl_fmt_time(cJSON_GetObjectItem(t, "revoked"), b),
			    cJSON_GetStringValue(cJSON_GetObjectItem(t, "description")));
	}
	cJSON_Delete(res);
	free(path);
	return rc;
}

int cmd_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "description", required_argument, NULL, 'd' },
		{ "viewer", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		CTL_CONN_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_conn conn = { 0 };
	const char *desc = "", *verb, *arg;
	int c, k, viewer = 0, rc = CTL_EX_USAGE;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'd') {
			desc = optarg;
		} else if (c == 'V') {
			viewer = 1;
		} else if (c == 'h') {
			fputs(token_usage, stdout);
			rc = CTL_EX_OK;
			goto out;
		} else if ((k = ctl_conn_option(&conn, c, optarg)) <= 0) {
			rc = k < 0 ? CTL_EX_FAIL : ctl_usage(token_usage);
			goto out;
		}
	}
	/* A viewer token names no pool: create and list take none then. */
	verb = optind + 2 - viewer == argc ? argv[optind] : "";
	arg = viewer ? NULL : argv[optind + 1];
	if ((strcmp(verb, "create") != 0 && strcmp(verb, "list") != 0 &&
	    strcmp(verb, "revoke") != 0) || (viewer && strcmp(verb, "revoke") ==
	    0)) {
		rc = ctl_usage(token_usage);
		goto out;
	}
	if ((rc = ctl_conn_ready(&conn)) != CTL_EX_OK)
		goto out;
	if (strcmp(verb, "create") == 0)
		rc = create(&conn, arg, desc);
	else if (strcmp(verb, "list") == 0)
		rc = list(&conn, arg);
	else
		rc = ctl_revoke(&conn, "/v1/tokens/", argv[optind + 1], "token");
out:
	ctl_conn_free(&conn);
	return rc;
}
