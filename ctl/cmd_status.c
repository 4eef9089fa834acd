#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "ctl.h"
#include "http.h"

static const char status_usage[] =
    "usage: skiffctl status JOB [options]\n"
    "\n"
    "Shows a job: state, attempt, agent, times, result, exit codes, the\n"
    "length of its log and its outputs (NAME=value, one a line).\n"
    CTL_ID_HELP
    "\n"
    CTL_CONN_HELP;

static const char *str(const cJSON *o, const char *k)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
	return s ? s : "-";
}

static void print_list(const char *label, const cJSON *a)
{
	const cJSON *it;

	printf("%-11s", label);
	if (cJSON_GetArraySize(a) == 0)
		printf(" -");
	cJSON_ArrayForEach(it, a) {
		if (cJSON_IsString(it))
			printf(" %s", it->valuestring);
		else if (cJSON_IsNumber(it))
			printf(" %d", (int)it->valuedouble);
	}
	printf("\n");
}

/* A value as the agent sent it, but no byte that would steer the
 * terminal (a control character, DEL) is printed as itself. */
static void print_safe(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		putchar(c < 0x20 || c == 0x7f ? '?' : c);
	}
}

static void print_outputs(const cJSON *o)
{
	const cJSON *it;

	if (!cJSON_IsObject(o))
		return;
	if (cJSON_GetArraySize(o) == 0) {
		printf("%-11s -\n", "outputs");
		return;
	}
	cJSON_ArrayForEach(it, o) {
		if (!cJSON_IsString(it) || it->string == NULL)
			continue;
		printf("%-11s ", "output");
		print_safe(it->string);
		putchar('=');
		print_safe(it->valuestring);
		putchar('\n');
	}
}

static void print_human(const cJSON *st)
{
	char t[32];

	printf("%-11s %s\n", "job", str(st, "id"));
	printf("%-11s %s\n", "name", str(st, "name"));
	printf("%-11s %s\n", "pool", str(st, "pool"));
	print_list("labels", cJSON_GetObjectItem(st, "labels"));
	printf("%-11s %s (attempt %d of %d)%s\n", "state", str(st, "state"),
	    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "attempt")),
	    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "max_attempts")),
	    cJSON_IsTrue(cJSON_GetObjectItem(st, "cancel_requested")) ?
	    ", cancel requested" : "");
	printf("%-11s %s\n", "agent", str(st, "agent"));
	printf("%-11s %s\n", "created", ctl_fmt_time(cJSON_GetObjectItem(st,
	    "created"), t));
	printf("%-11s %s\n", "leased", ctl_fmt_time(cJSON_GetObjectItem(st,
	    "leased"), t));
	printf("%-11s %s\n", "completed", ctl_fmt_time(cJSON_GetObjectItem(st,
	    "completed"), t));
	printf("%-11s %s\n", "expires", ctl_fmt_time(cJSON_GetObjectItem(st,
	    "exp"), t));
	printf("%-11s %s\n", "result", str(st, "result"));
	print_list("exit codes", cJSON_GetObjectItem(st, "exit_codes"));
	if (cJSON_IsString(cJSON_GetObjectItem(st, "reason_code")))
		printf("%-11s %s: %s\n", "reason", str(st, "reason_code"),
		    str(st, "reason"));
	printf("%-11s %.0f bytes\n", "log", cJSON_GetNumberValue(
	    cJSON_GetObjectItem(st, "log_length")));
	print_outputs(cJSON_GetObjectItem(st, "outputs"));
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		CTL_CONN_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_conn conn = { 0 };
	int c, k, rc = CTL_EX_USAGE;
	cJSON *st;
	char *path;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(status_usage, stdout);
			rc = CTL_EX_OK;
			goto out;
		}
		if ((k = ctl_conn_option(&conn, c, optarg)) <= 0) {
			rc = k < 0 ? CTL_EX_FAIL : ctl_usage(status_usage);
			goto out;
		}
	}
	if (optind + 1 != argc) {
		rc = ctl_usage(status_usage);
		goto out;
	}
	if ((rc = ctl_conn_ready(&conn)) != CTL_EX_OK)
		goto out;
	path = ctl_path("/v1/jobs/", argv[optind], NULL);
	if ((st = ctl_get_json(&conn, path, &rc)) != NULL) {
		if (conn.json)
			ctl_print_json(st);
		else
			print_human(st);
		cJSON_Delete(st);
	}
	free(path);
out:
	ctl_conn_free(&conn);
	return rc;
}
