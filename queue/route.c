#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * Patterns are literal segments, "{}" for one decoded parameter segment,
 * and "{*}" for the rest of the path as one decoded name.
 */
struct route {
	const char *method;
	const char *pattern;
	enum route_id id;
	enum route_auth auth;
	enum route_body body;
};

static const struct route routes[] = {
	{ "GET",    "/v1/health",                R_HEALTH,        RA_NONE,         RB_NONE },
	{ "GET",    "/metrics",                  R_METRICS,       RA_METRICS,      RB_NONE },
	{ "POST",   "/v1/agents/register",       R_REGISTER,      RA_REGISTRATION, RB_JSON },
	{ "POST",   "/v1/agent/lease",           R_LEASE,         RA_AGENT,        RB_JSON },
	{ "POST",   "/v1/agent/deregister",      R_DEREGISTER,    RA_AGENT,        RB_JSON },
	{ "POST",   "/v1/leases/{}/heartbeat",   R_HEARTBEAT,     RA_AGENT,        RB_JSON },
	{ "PUT",    "/v1/leases/{}/log",         R_LOG_PUT,       RA_AGENT,        RB_LOG },
	{ "POST",   "/v1/leases/{}/artifacts",   R_ART_CREATE,    RA_AGENT,        RB_JSON },
	{ "POST",   "/v1/leases/{}/complete",    R_COMPLETE,      RA_AGENT,        RB_JSON },
	{ "PUT",    "/v1/uploads/{}",            R_UPLOAD_PUT,    RA_AGENT,        RB_STREAM },
	{ "GET",    "/v1/uploads/{}",            R_UPLOAD_GET,    RA_AGENT,        RB_NONE },
	{ "POST",   "/v1/uploads/{}/commit",     R_UPLOAD_COMMIT, RA_AGENT,        RB_JSON },
	{ "POST",   "/v1/jobs",                  R_JOB_SUBMIT,    RA_ADMIN,        RB_JWS },
	{ "GET",    "/v1/jobs",                  R_JOB_LIST,      RA_VIEWER,       RB_NONE },
	{ "GET",    "/v1/jobs/{}",               R_JOB_GET,       RA_VIEWER,       RB_NONE },
	{ "GET",    "/v1/jobs/{}/log",           R_JOB_LOG,       RA_VIEWER,       RB_NONE },
	{ "GET",    "/v1/jobs/{}/artifacts",     R_JOB_ARTS,      RA_VIEWER,       RB_NONE },
	{ "GET",    "/v1/jobs/{}/artifacts/{*}", R_JOB_ART,       RA_VIEWER,       RB_NONE },
	{ "POST",   "/v1/jobs/{}/cancel",        R_JOB_CANCEL,    RA_ADMIN,        RB_JSON },
	{ "GET",    "/v1/agents",                R_AGENTS,        RA_VIEWER,       RB_NONE },
	{ "DELETE", "/v1/agents/{}",             R_AGENT_DEL,     RA_ADMIN,        RB_NONE },
	{ "POST",   "/v1/pools/{}/tokens",       R_TOKENS_CREATE, RA_ADMIN,        RB_JSON },
	{ "GET",    "/v1/pools/{}/tokens",       R_TOKENS_LIST,   RA_ADMIN,        RB_NONE },
	{ "DELETE", "/v1/tokens/{}",             R_TOKEN_DEL,     RA_ADMIN,        RB_NONE },
	{ "POST",   "/v1/viewer-tokens",         R_VIEWERS_CREATE, RA_ADMIN,       RB_JSON },
	{ "GET",    "/v1/viewer-tokens",         R_VIEWERS_LIST,  RA_ADMIN,        RB_NONE },
	{ "GET",    "/v1/pools",                 R_POOLS,         RA_VIEWER,       RB_NONE },
	{ "GET",    "/v1/jobs/{}/steps",         R_JOB_STEPS,     RA_VIEWER,       RB_NONE },
	{ "POST",   "/v1/leases/{}/caches",      R_CACHE_CREATE,  RA_AGENT,        RB_JSON },
	{ "POST",   "/v1/leases/{}/caches/restore", R_CACHE_FIND, RA_AGENT,        RB_JSON },
	{ "GET",    "/v1/leases/{}/caches/{*}",  R_CACHE_GET,     RA_AGENT,        RB_NONE },
	{ "GET",    "/v1/pools/{}/caches",       R_CACHES_LIST,   RA_ADMIN,        RB_NONE },
	{ "DELETE", "/v1/pools/{}/caches/{*}",   R_CACHE_DEL,     RA_ADMIN,        RB_NONE },
	{ "GET",    "/ui",                       R_UI_ROOT,       RA_NONE,         RB_NONE },
	{ "POST",   "/ui/login",                 R_UI_LOGIN,      RA_LOGIN,        RB_NONE },
	{ "POST",   "/ui/logout",                R_UI_LOGOUT,     RA_NONE,         RB_NONE },
	{ "GET",    "/ui/",                      R_UI,            RA_NONE,         RB_NONE },
	{ "GET",    "/ui/{*}",                   R_UI,            RA_NONE,         RB_NONE },
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static const char *const names[R_COUNT] = {
	"health", "metrics", "register", "lease", "deregister", "heartbeat",
	"log_append", "artifact_create", "complete", "upload_put", "upload_get",
	"upload_commit", "job_submit", "job_list", "job_status", "job_log",
	"job_artifacts", "job_artifact", "job_cancel", "agents", "agent_revoke",
	"token_create", "token_list", "token_revoke", "viewer_token_create",
	"viewer_token_list", "pools", "job_steps", "ui_root", "ui", "ui_login", "ui_logout",
	"cache_create", "cache_find", "cache_get", "caches_list", "cache_delete",
};

const char *route_name(enum route_id id)
{
	return (unsigned)id < R_COUNT ? names[id] : "unknown";
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int route_pct_decode(const char *in, size_t n, char *out, size_t outmax,
    size_t *outlen)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c == '\0')
			return -EINVAL;
		if (c == '%') {
			if (i + 2 >= n)
				return -EINVAL;
			int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EINVAL;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (k + 1 >= outmax)
			return -E2BIG;
		out[k++] = c;
	}
	out[k] = '\0';
	*outlen = k;
	return 0;
}

int route_pool_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 128 && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	    "_.:-") == n;
}

/* Next segment of *p (after its '/'); NULL at the end of the path. */
static const char *next_seg(const char **p, size_t *len)
{
	const char *s = *p, *e;

	if (*s != '/')
		return NULL;
	s++;
	e = strchr(s, '/');
	*len = e ? (size_t)(e - s) : strlen(s);
	*p = s + *len;
	return s;
}

enum { MATCH_NO, MATCH_YES, MATCH_BAD };

static int match_param(const char *seg, size_t len, char *out, size_t outmax,
    struct route_match *m)
{
	size_t outlen;
	int r = route_pct_decode(seg, len, out, outmax, &outlen);

	if (r == -E2BIG) {
		snprintf(m->why, sizeof(m->why), "path segment is over %zu bytes",
		    outmax - 1);
		return MATCH_BAD;
	}
	if (r < 0) {
		snprintf(m->why, sizeof(m->why),
		    "path has a malformed or NUL percent-escape");
		return MATCH_BAD;
	}
	if (outlen == 0 || memchr(out, '/', outlen)) {
		/* An encoded '/' in an id cannot name anything. */
		return MATCH_NO;
	}
	return MATCH_YES;
}

/* Matches path against one pattern, filling m's parameters. */
static int match_one(const char *pat, const char *path, struct route_match *m)
{
	const char *pp = pat, *up = path, *ps, *us;
	size_t pl, ul;

	for (;;) {
		ps = next_seg(&pp, &pl);
		if (ps && pl == 3 && memcmp(ps, "{*}", 3) == 0) {
			size_t outlen;
			if (*up != '/' || up[1] == '\0')
				return MATCH_NO;
			if (route_pct_decode(up + 1, strlen(up + 1), m->name,
			    sizeof(m->name), &outlen) < 0) {
				snprintf(m->why, sizeof(m->why), "artifact name in the "
				    "path is malformed or over %d bytes", ROUTE_NAME_MAX);
				return MATCH_BAD;
			}
			return MATCH_YES;
		}
		us = next_seg(&up, &ul);
		if (ps == NULL || us == NULL)
			return ps == NULL && us == NULL ? MATCH_YES : MATCH_NO;
		if (pl == 2 && memcmp(ps, "{}", 2) == 0) {
			int r = match_param(us, ul, m->param, sizeof(m->param), m);
			if (r != MATCH_YES)
				return r;
		} else if (pl != ul || memcmp(ps, us, pl) != 0) {
			return MATCH_NO;
		}
	}
}

static void add_allow(struct route_match *m, const char *method)
{
	size_t n = strlen(m->allow);

	if (strstr(m->allow, method))
		return;
	snprintf(m->allow + n, sizeof(m->allow) - n, "%s%s", n ? ", " : "",
	    method);
}

int route_match(const char *method, const char *path, struct route_match *m)
{
	int path_known = 0;

	memset(m, 0, sizeof(*m));
	if (path == NULL || path[0] != '/') {
		snprintf(m->why, sizeof(m->why), "path must start with '/'");
		return -EINVAL;
	}
	for (size_t i = 0; i < NROUTES; i++) {
		int r = match_one(routes[i].pattern, path, m);
		if (r == MATCH_BAD)
			return -EINVAL;
		if (r == MATCH_NO)
			continue;
		if (strcmp(method, routes[i].method) != 0) {
			path_known = 1;
			add_allow(m, routes[i].method);
			continue;
		}
		m->id = routes[i].id;
		m->auth = routes[i].auth;
		m->body = routes[i].body;
		return 0;
	}
	return path_known ? -EOPNOTSUPP : -ENOENT;
}
