/*
 * skiffctl: the operator CLI. Keys, signing, sealing, and the queue's
 * admin API.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "ctl.h"
#include "fsx.h"

static const struct ctl_cmd commands[] = {
	{ "keygen", cmd_keygen, "make a signing key pair or a pool key pair" },
	{ "sign",   cmd_sign,   "sign a job description into a JWS" },
	{ "verify", cmd_verify, "check a signed job as an agent would" },
	{ "seal",   cmd_seal,   "seal a secret value to a pool key" },
	{ "submit", cmd_submit, "submit a signed job to the queue" },
	{ "status", cmd_status, "show a job's state and result" },
	{ "jobs",   cmd_jobs,   "list jobs" },
	{ "logs",   cmd_logs,   "print or follow a job's log" },
	{ "artifacts", cmd_artifacts, "list or download a job's artifacts" },
	{ "cancel", cmd_cancel, "cancel a job" },
	{ "agents", cmd_agents, "list agents, revoke one" },
	{ "token",  cmd_token,  "create, list, revoke registration tokens" },
	{ "cache",  cmd_cache,  "list a pool's caches, delete one" },
};

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: skiffctl <command> [options]\n"
	    "       skiffctl <command> --help\n"
	    "\n"
	    "skiffctl makes keys, signs jobs, seals secrets, and talks to a\n"
	    "skiff-queue's admin API.\n"
	    "\n"
	    "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
	    "\n"
	    "environment (for commands that talk to the queue):\n"
	    "  SKIFF_QUEUE_URL         queue base URL, e.g. https://127.0.0.1:8443\n"
	    "                          (plain http:// only to 127.0.0.0/8, [::1]\n"
	    "                          or localhost; no user@, query or fragment)\n"
	    "  SKIFF_ADMIN_TOKEN       admin token (or SKIFF_ADMIN_TOKEN_FILE)\n"
	    "  SKIFF_CA_FILE           CA bundle that signed the queue's certificate\n"
	    "\n"
	    "\n"
	    "Every command ends its options at '--': an id that starts with '-'\n"
	    "goes after it (skiffctl status -- -2v-JOqKa5U). Ids that skiffctl\n"
	    "sign makes never start with '-'.\n"
	    "\n"
	    "exit status:\n"
	    "  0  success\n"
	    "  1  the operation failed (verify: the job was rejected; submit\n"
	    "     --wait: it did not succeed; artifacts get: a digest did not\n"
	    "     match), or a file named on the command line or in the\n"
	    "     environment cannot be read (the message names it)\n"
	    "  2  usage error: unknown command or option, missing argument, no\n"
	    "     queue URL or admin token, a queue URL that is refused\n"
	    "  3  the queue could not be reached or answered with an error\n");
}

int ctl_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("skiffctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_EX_FAIL;
}

int ctl_usage(const char *text)
{
	fputs(text, stderr);
	return CTL_EX_USAGE;
}

int ctl_read_input(const char *path, size_t max, struct buf *out)
{
	if (strcmp(path, "-") != 0)
		return fsx_read_file(path, max, out);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (buf_append(out, chunk, n) < 0)
			return -E2BIG;
	return ferror(stdin) ? -EIO : 0;
}

int ctl_write_new(const char *path, const char *data, size_t len, int mode,
    int force)
{
	struct stat st;

	if (!force && lstat(path, &st) == 0)
		return -EEXIST;
	return fsx_write_file(path, data, len, (mode_t)mode);
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "skiffctl: libsodium failed to initialise\n");
		return CTL_EX_FAIL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "skiffctl: libcurl failed to initialise\n");
		return CTL_EX_FAIL;
	}
	atexit(curl_global_cleanup);
	if (argc < 2) {
		usage(stderr);
		return CTL_EX_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CTL_EX_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("skiffctl %s (protocol 1)\n", SKIFF_VERSION);
		return CTL_EX_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "skiffctl: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return CTL_EX_USAGE;
}
