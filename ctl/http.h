/*
 * skiffctl's client of the queue's admin API (docs/protocol.md section 5):
 * where the queue is and how to reach it (flags, else SKIFF_QUEUE_URL,
 * SKIFF_ADMIN_TOKEN or SKIFF_ADMIN_TOKEN_FILE, SKIFF_CA_FILE), and
 * libcurl requests whose answers are capped in memory or streamed to a
 * file. TLS is always verified: against the system store, or the CA file.
 */
#ifndef SKIFF_CTL_HTTP_H
#define SKIFF_CTL_HTTP_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct cJSON;

struct ctl_conn {
	char *url;		/* base, without a trailing '/' */
	char *token;		/* admin token */
	char *ca_file;
	const char *url_src;	/* "--url" or "SKIFF_QUEUE_URL", for messages */
	const char *ca_src;
	int json;		/* --json: machine-readable output */
};

/* The long options every queue command takes; put CTL_CONN_OPTIONS in the
 * command's option table and pass unknown option codes to
 * ctl_conn_option. */
#define CTL_OPT_URL        0x1001
#define CTL_OPT_TOKEN_FILE 0x1002
#define CTL_OPT_CA         0x1003
#define CTL_OPT_JSON       0x1004
#define CTL_CONN_OPTIONS \
	{ "url", required_argument, NULL, CTL_OPT_URL }, \
	{ "token-file", required_argument, NULL, CTL_OPT_TOKEN_FILE }, \
	{ "ca", required_argument, NULL, CTL_OPT_CA }, \
	{ "json", no_argument, NULL, CTL_OPT_JSON }
#define CTL_CONN_HELP \
	"  --url URL          queue URL (default: $SKIFF_QUEUE_URL)\n" \
	"  --token-file FILE  admin token file (default: $SKIFF_ADMIN_TOKEN,\n" \
	"                     then $SKIFF_ADMIN_TOKEN_FILE)\n" \
	"  --ca FILE          CA certificates for the queue (default:\n" \
	"                     $SKIFF_CA_FILE, else the system store)\n" \
	"  --json             print the queue's JSON answer\n"

/* 1 when opt was one of CTL_CONN_OPTIONS (and was applied), 0 if not,
 * -1 after printing an error. */
int ctl_conn_option(struct ctl_conn *c, int opt, const char *arg);
/*
 * Fills what the flags left from the environment (an empty variable is
 * unset) and checks it: the URL as libcurl reads it (common/urlpolicy.h:
 * no userinfo, query or fragment; plain http:// only to loopback), the CA
 * file readable. Prints why and returns a CTL_EX_* code: CTL_EX_USAGE
 * for a missing or refused URL or a missing token, CTL_EX_FAIL for a
 * named file that cannot be read, CTL_EX_OK when ready.
 */
int ctl_conn_ready(struct ctl_conn *c);
void ctl_conn_free(struct ctl_conn *c);

struct ctl_resp {
	long status;
	struct buf body;		/* capped */
	int64_t log_length;		/* Skiff-Log-Length, -1 when absent */
	int log_complete;		/* Skiff-Log-Complete: 1 */
	int log_attempt;		/* Skiff-Log-Attempt, 0 when absent */
	char sha256[65];		/* Skiff-Sha256 */
	int retry_after;
};

#define CTL_RESP_MAX ((size_t)64 << 20)

void ctl_resp_init(struct ctl_resp *r);
void ctl_resp_free(struct ctl_resp *r);

/*
 * One request: path (already escaped) below the base URL; body with its
 * content type, or NULL. timeout in seconds. 0 when an HTTP answer came
 * (whatever its status), -1 after printing a transport error.
 */
int ctl_http(struct ctl_conn *c, const char *method, const char *path,
    const char *ctype, const void *body, size_t n, long timeout,
    struct ctl_resp *out);
/* A GET whose body goes to fd (not into out->body) as it arrives, with
 * its SHA-256 in hex into sha256 when the status is 200. */
int ctl_http_download(struct ctl_conn *c, const char *path, int fd,
    long timeout, struct ctl_resp *out, char sha256[65]);
/* The JSON body of a 2xx answer; otherwise prints the queue's error and
 * returns NULL. */
struct cJSON *ctl_http_json(const struct ctl_resp *r);
/* Prints "skiffctl: queue answered <status> <error>: <message>". */
int ctl_http_fail(const struct ctl_resp *r);
/* DELETE prefix+id expecting 204; prints "<what> <id> revoked". Returns a
 * CTL_EX_* code. */
int ctl_revoke(struct ctl_conn *c, const char *prefix, const char *id,
    const char *what);
/* Percent-encodes s for a URL path; '/' kept when keep_slash. Heap. */
char *ctl_escape(const char *s, int keep_slash);
/* prefix + the escaped id + suffix, e.g. ("/v1/jobs/", id, "/log"). */
char *ctl_path(const char *prefix, const char *id, const char *suffix);
/* Prints a JSON value indented, for --json. */
void ctl_print_json(const struct cJSON *j);
/* Unix seconds as "2026-11-25 04:13:39Z" into out; "-" for a JSON null. */
const char *ctl_fmt_time(const struct cJSON *t, char out[32]);
/* GET path and parse: the JSON of a 2xx answer, or NULL after printing
 * why (*rc then holds the exit code). */
struct cJSON *ctl_get_json(struct ctl_conn *c, const char *path, int *rc);

#endif
