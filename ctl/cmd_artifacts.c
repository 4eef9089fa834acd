#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "artname.h"
#include "b64.h"
#include "buf.h"
#include "ctl.h"
#include "http.h"
#include "strnum.h"
#include "xalloc.h"

static const char artifacts_usage[] =
    "usage: skiffctl artifacts list JOB [--attempt A] [options]\n"
    "       skiffctl artifacts get JOB [NAME...] [--out DIR] [--attempt A]\n"
    "                              [options]\n"
    "\n"
    "list: a job's committed artifacts with their sizes and SHA-256.\n"
    "get: downloads them (all, or the NAMEs given) into DIR (default: the\n"
    "current directory) under their names, creating directories, and\n"
    "checks each file's SHA-256 against the queue's list before it is\n"
    "put in place. A name that could escape DIR is refused. Exit status\n"
    "1 when a digest does not match.\n"
    CTL_ID_HELP
    "\n"
    "  --out DIR      where get puts the files\n"
    "  --attempt A    the artifacts of attempt A (default: the latest)\n"
    CTL_CONN_HELP;

struct opts {
	const char *out;
	int attempt;
};

static cJSON *fetch_list(struct ctl_conn *c, const char *job, int attempt,
    int *rc)
{
	char *base = ctl_path("/v1/jobs/", job, "/artifacts"), *path;
	cJSON *res;

	path = attempt ? xasprintf("%s?attempt=%d", base, attempt) :
	    xstrdup(base);
	res = ctl_get_json(c, path, rc);
	free(base);
	free(path);
	return res;
}

static void print_list(const cJSON *list)
{
	const cJSON *a;

	cJSON_ArrayForEach(a, list)
		printf("%12.0f  %s  %s\n",
		    cJSON_GetNumberValue(cJSON_GetObjectItem(a, "size")),
		    cJSON_GetStringValue(cJSON_GetObjectItem(a, "sha256")),
		    cJSON_GetStringValue(cJSON_GetObjectItem(a, "name")));
}

/* Opens (making) each directory of name below dirfd without following
 * symbolic links; returns the fd of the last one, *base its file name. */
static int open_parent(int dirfd, const char *name, const char **base)
{
	char comp[ARTNAME_MAX + 1];
	const char *p = name, *slash;
	int fd = dup(dirfd), next;

	while (fd >= 0 && (slash = strchr(p, '/')) != NULL) {
		snprintf(comp, sizeof(comp), "%.*s", (int)(slash - p), p);
		if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
			close(fd);
			return -1;
		}
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		close(fd);
		fd = next;
		p = slash + 1;
	}
	*base = p;
	return fd;
}

static int check_file(const struct ctl_resp *resp, const char *got,
    const char *want, int64_t size, int fd, const char *name)
{
	struct stat st;

	if (resp->status != 200)
		return ctl_http_fail(resp);
	if (fstat(fd, &st) < 0 || st.st_size != size)
		return ctl_fail("%s: got %lld bytes, the list says %lld", name,
		    (long long)st.st_size, (long long)size);
	if (strcmp(got, want) != 0 || strcmp(resp->sha256, want) != 0)
		return ctl_fail("%s: SHA-256 %s does not match %s; not kept", name,
		    got, want);
	if (fsync(fd) < 0)
		return ctl_fail("%s: %s", name, strerror(errno));
	return CTL_EX_OK;
}

static char *download_path(const char *job, const char *name, int attempt)
{
	char *base = ctl_path("/v1/jobs/", job, "/artifacts/"), *en, *p;

	en = ctl_escape(name, 1);
	p = xasprintf("%s%s?attempt=%d", base, en, attempt);
	free(base);
	free(en);
	return p;
}

/* Downloads into a temporary file beside the target, checks it, then
 * renames it into place: a file that is there is a verified one. */
static int get_one(struct ctl_conn *c, int dirfd, const char *job,
    int attempt, const cJSON *a)
{
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(a, "name"));
	const char *want = cJSON_GetStringValue(cJSON_GetObjectItem(a, "sha256"));
	int64_t size = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "size"));
	const char *base;
	char tmp[64], got[65];
	struct ctl_resp resp;
	int pfd, fd, rc = CTL_EX_FAIL;
	char *path;

	if (!name || !want || !artname_valid(name, strlen(name)))
		return ctl_fail("refusing artifact name %s: it could escape the "
		    "output directory", name ? name : "(none)");
	if ((pfd = open_parent(dirfd, name, &base)) < 0)
		return ctl_fail("%s: cannot make its directory: %s", name,
		    strerror(errno));
	snprintf(tmp, sizeof(tmp), ".skiffctl-%08x.tmp", randombytes_random());
	fd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644);
	if (fd < 0) {
		close(pfd);
		return ctl_fail("%s: %s", name, strerror(errno));
	}
	ctl_resp_init(&resp);
	path = download_path(job, name, attempt);
	if (ctl_http_download(c, path, fd, 3600, &resp, got) == 0)
		rc = check_file(&resp, got, want, size, fd, name);
	close(fd);
	if (rc == CTL_EX_OK && renameat(pfd, tmp, pfd, base) < 0)
		rc = ctl_fail("%s: %s", name, strerror(errno));
	if (rc != CTL_EX_OK)
		unlinkat(pfd, tmp, 0);
	else
		printf("%12lld  %s  %s\n", (long long)size, got, name);
	close(pfd);
	free(path);
	ctl_resp_free(&resp);
	return rc;
}

static int wanted(const cJSON *a, char **names, int n)
{
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(a, "name"));

	for (int i = 0; i < n; i++)
		if (name && strcmp(names[i], name) == 0)
			return 1;
	return n == 0;
}

static int missing(const cJSON *list, char **names, int n)
{
	for (int i = 0; i < n; i++) {
		const cJSON *a;
		int found = 0;
		cJSON_ArrayForEach(a, list)
			found |= wanted(a, names + i, 1);
		if (!found)
			return ctl_fail("no artifact named %s", names[i]);
	}
	return CTL_EX_OK;
}

static int get_all(struct ctl_conn *c, const char *job, const cJSON *res,
    const struct opts *o, char **names, int n)
{
	const cJSON *list = cJSON_GetObjectItem(res, "artifacts"), *a;
	int attempt = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(res,
	    "attempt"));
	int rc = missing(list, names, n), dirfd;

	if (rc != CTL_EX_OK)
		return rc;
	if (mkdir(o->out, 0755) < 0 && errno != EEXIST)
		return ctl_fail("%s: %s", o->out, strerror(errno));
	if ((dirfd = open(o->out, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return ctl_fail("%s: %s", o->out, strerror(errno));
	cJSON_ArrayForEach(a, list) {
		int r = wanted(a, names, n) ? get_one(c, dirfd, job, attempt, a) :
		    CTL_EX_OK;
		if (r != CTL_EX_OK && (rc == CTL_EX_OK || r == CTL_EX_SERVER))
			rc = r;
	}
	close(dirfd);
	return rc;
}

static int parse(int argc, char **argv, struct ctl_conn *conn, struct opts *o)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "attempt", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		CTL_CONN_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	const char *why;
	int c, k;

	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if (c == 'o') {
			o->out = optarg;
		} else if (c == 'a') {
			if (strnum_int(optarg, 1, 1000, &o->attempt, &why) < 0)
				return ctl_fail("--attempt %s: %s", optarg, why);
		} else if (c == 'h') {
			fputs(artifacts_usage, stdout);
			return -1;
		} else if ((k = ctl_conn_option(conn, c, optarg)) <= 0) {
			return k < 0 ? CTL_EX_FAIL : ctl_usage(artifacts_usage);
		}
	}
	return CTL_EX_OK;
}

int cmd_artifacts(int argc, char **argv)
{
	struct ctl_conn conn = { 0 };
	struct opts o = { ".", 0 };
	int rc, get;
	cJSON *res;

	if (argc < 2 || (strcmp(argv[1], "list") != 0 &&
	    strcmp(argv[1], "get") != 0)) {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
		    strcmp(argv[1], "-h") == 0)) {
			fputs(artifacts_usage, stdout);
			return CTL_EX_OK;
		}
		return ctl_usage(artifacts_usage);
	}
	get = strcmp(argv[1], "get") == 0;
	rc = parse(argc - 1, argv + 1, &conn, &o);
	if (rc != CTL_EX_OK)
		goto out;
	if (optind + 1 > argc - 1 || (!get && optind + 1 != argc - 1)) {
		rc = ctl_usage(artifacts_usage);
		goto out;
	}
	if ((rc = ctl_conn_ready(&conn)) != CTL_EX_OK)
		goto out;
	if ((res = fetch_list(&conn, argv[1 + optind], o.attempt, &rc)) == NULL)
		goto out;
	if (get)
		rc = get_all(&conn, argv[1 + optind], res, &o, argv + 2 + optind,
		    argc - 2 - optind);
	else if (conn.json)
		ctl_print_json(res);
	else
		print_list(cJSON_GetObjectItem(res, "artifacts"));
	cJSON_Delete(res);
out:
	if (rc == -1)
		rc = CTL_EX_OK;
	ctl_conn_free(&conn);
	return rc;
}
