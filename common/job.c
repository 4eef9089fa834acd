#include "job.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "jsonx.h"
#include "jwk.h"
#include "jws.h"
#include "replay.h"
#include "seal.h"
#include "strnum.h"
#include "xalloc.h"

static const char *const reason_codes[JOBR_COUNT] = {
	[JOBR_OK] = "ok",
	[JOBR_TOO_LARGE] = "too_large",
	[JOBR_MALFORMED] = "malformed",
	[JOBR_BAD_BASE64] = "bad_base64",
	[JOBR_BAD_HEADER] = "bad_header",
	[JOBR_ALG] = "alg_not_allowed",
	[JOBR_UNKNOWN_KID] = "unknown_kid",
	[JOBR_BAD_SIGNATURE] = "bad_signature",
	[JOBR_BAD_JSON] = "bad_json",
	[JOBR_TOO_DEEP] = "too_deep",
	[JOBR_BAD_CLAIMS] = "bad_claims",
	[JOBR_EXPIRED] = "expired",
	[JOBR_NOT_YET_VALID] = "not_yet_valid",
	[JOBR_BAD_IAT] = "bad_iat",
	[JOBR_WRONG_AUD] = "wrong_audience",
	[JOBR_REPLAYED] = "replayed",
	[JOBR_SCHEMA] = "schema",
	[JOBR_LIMITS] = "limits",
	[JOBR_SECRET] = "secret",
};

const char *job_reason_code(enum job_reason r)
{
	if ((int)r < 0 || r >= JOBR_COUNT)
		return "internal";
	return reason_codes[r];
}

static int all_of(const char *s, const char *set)
{
	return strspn(s, set) == strlen(s);
}

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

int job_env_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	return all_of(s, ALNUM "_");
}

int job_jti_valid(const char *s)
{
	size_t n = strlen(s);
	return n >= 8 && n <= 64 && all_of(s, ALNUM "_-");
}

int job_label_valid(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= 64 && all_of(s, ALNUM "_.:=-");
}

int job_relpath_valid(const char *s, int allow_empty)
{
	size_t n = strlen(s);

	if (n == 0)
		return allow_empty;
	if (n > 255 || s[0] == '/')
		return 0;
	for (const char *p = s; *p; ) {
		size_t c = strcspn(p, "/");
		if (c == 0 || (c == 1 && p[0] == '.') ||
		    (c == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		for (size_t i = 0; i < c; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == '\\')
				return 0;
		p += c;
		if (*p == '/')
			p++;
	}
	return 1;
}

static int has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* ---- typed readers that name the field at fault ---- */

static int bad_type(struct err *e, const char *path, const char *key,
    const char *want)
{
	return err_set(e, JOBR_SCHEMA, "%s.%s must be %s", path, key, want);
}

/* A string member; *out stays NULL when absent and not required. */
static int get_str(const cJSON *o, const char *path, const char *key,
    size_t min, size_t max, int required, char **out, struct err *e)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

	if (it == NULL) {
		if (required)
			return err_set(e, JOBR_SCHEMA, "%s.%s is required", path, key);
		return 0;
	}
	if (!cJSON_IsString(it) || it->valuestring == NULL)
		return bad_type(e, path, key, "a string");
	size_t n = strlen(it->valuestring);
	if (n < min)
		return err_set(e, JOBR_SCHEMA, "%s.%s must be at least %zu bytes",
		    path, key, min);
	if (n > max)
		return err_set(e, JOBR_LIMITS, "%s.%s is %zu bytes, over the limit "
		    "of %zu", path, key, n, max);
	*out = xstrdup(it->valuestring);
	return 0;
}

static int get_name(const cJSON *o, const char *path, char **out,
    struct err *e)
{
	int r = get_str(o, path, "name", 1, JOB_MAX_NAME, 1, out, e);

	if (r == 0 && has_ctl(*out))
		return err_set(e, JOBR_SCHEMA, "%s.name has control characters",
		    path);
	return r;
}

static int get_int(const cJSON *o, const char *path, const char *key,
    int64_t min, int64_t max, int64_t *out, struct err *e)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
	int64_t v;

	if (it == NULL)
		return 0;
	if (!jsonx_is_integer(it, &v))
		return bad_type(e, path, key, "an integer");
	if (v < min || v > max)
		return err_set(e, JOBR_LIMITS, "%s.%s is %lld, outside %lld..%lld",
		    path, key, (long long)v, (long long)min, (long long)max);
	*out = v;
	return 0;
}

static int get_bool(const cJSON *o, const char *path, const char *key,
    int *out, struct err *e)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

	if (it == NULL)
		return 0;
	if (!cJSON_IsBool(it))
		return bad_type(e, path, key, "true or false");
	*out = cJSON_IsTrue(it);
	return 0;
}

/* An optional array member; *arr is NULL when absent. */
static int get_array(const cJSON *o, const char *path, const char *key,
    size_t max, const cJSON **arr, size_t *count, struct err *e)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

	*arr = NULL;
	*count = 0;
	if (it == NULL)
		return 0;
	if (!cJSON_IsArray(it))
		return bad_type(e, path, key, "an array");
	int n = cJSON_GetArraySize(it);
	if ((size_t)n > max)
		return err_set(e, JOBR_LIMITS, "%s.%s has %d entries, over the "
		    "limit of %zu", path, key, n, max);
	*arr = it;
	*count = (size_t)n;
	return 0;
}

/* An array of strings, each checked by valid() when given. */
static int get_strv(const cJSON *o, const char *path, const char *key,
    size_t maxn, size_t maxlen, int (*valid)(const char *), char ***out,
    size_t *count, struct err *e)
{
	const cJSON *arr, *it;
	size_t n, i = 0;

	if (get_array(o, path, key, maxn, &arr, &n, e) < 0)
		return -EINVAL;
	if (arr == NULL)
		return 0;
	*out = xcalloc(n ? n : 1, sizeof(char *));
	*count = 0;
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it) || it->valuestring == NULL)
			return err_set(e, JOBR_SCHEMA, "%s.%s[%zu] must be a string",
			    path, key, i);
		size_t len = strlen(it->valuestring);
		if (len == 0 || len > maxlen)
			return err_set(e, len ? JOBR_LIMITS : JOBR_SCHEMA,
			    "%s.%s[%zu] must be 1 to %zu bytes", path, key, i, maxlen);
		if (valid && !valid(it->valuestring))
			return err_set(e, JOBR_SCHEMA, "%s.%s[%zu] '%.64s' is not valid",
			    path, key, i, it->valuestring);
		(*out)[(*count)++] = xstrdup(it->valuestring);
		i++;
	}
	return 0;
}

/* An object of strings with valid env names. */
static int get_env(const cJSON *o, const char *path, const char *key,
    size_t maxn, size_t maxval, struct job_kv **out, size_t *count,
    struct err *e)
{
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(o, key), *it;

	if (obj == NULL)
		return 0;
	if (!cJSON_IsObject(obj))
		return bad_type(e, path, key, "an object of strings");
	int n = cJSON_GetArraySize(obj);
	if ((size_t)n > maxn)
		return err_set(e, JOBR_LIMITS, "%s.%s has %d entries, over the "
		    "limit of %zu", path, key, n, maxn);
	*out = xcalloc(n ? (size_t)n : 1, sizeof(**out));
	*count = 0;
	cJSON_ArrayForEach(it, obj) {
		if (!job_env_name_valid(it->string))
			return err_set(e, JOBR_SCHEMA, "%s.%s: '%.64s' is not a valid "
			    "variable name ([A-Za-z_][A-Za-z0-9_]*)", path, key,
			    it->string);
		if (!cJSON_IsString(it) || it->valuestring == NULL)
			return err_set(e, JOBR_SCHEMA, "%s.%s.%s must be a string",
			    path, key, it->string);
		size_t len = strlen(it->valuestring);
		if (len > maxval)
			return err_set(e, JOBR_LIMITS, "%s.%s.%s is %zu bytes, over the "
			    "limit of %zu", path, key, it->string, len, maxval);
		(*out)[*count].name = xstrdup(it->string);
		(*out)[*count].value = xstrdup(it->valuestring);
		(*count)++;
	}
	return 0;
}

/* ---- the job object ---- */

static int parse_resources(const cJSON *step, const char *path,
    struct job_step *s, struct err *e)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(step, "resources");
	char rpath[64];

	if (r == NULL)
		return 0;
	if (!cJSON_IsObject(r))
		return bad_type(e, path, "resources", "an object");
	snprintf(rpath, sizeof(rpath), "%s.resources", path);
	if (get_int(r, rpath, "memory_mb", 4, 1048576, &s->memory_mb, e) < 0 ||
	    get_int(r, rpath, "pids", 8, 1048576, &s->pids, e) < 0)
		return -EINVAL;
	const cJSON *cpus = cJSON_GetObjectItemCaseSensitive(r, "cpus");
	if (cpus) {
		if (!cJSON_IsNumber(cpus))
			return bad_type(e, rpath, "cpus", "a number");
		double d = cpus->valuedouble;
		if (!(d >= 0.01 && d <= 1024))
			return err_set(e, JOBR_LIMITS, "%s.cpus must be 0.01 to 1024",
			    rpath);
		s->nano_cpus = (int64_t)(d * 1e9 + 0.5);
	}
	return 0;
}

static int parse_pull(const cJSON *o, const char *path, enum job_pull *out,
    struct err *e)
{
	char *pull = NULL;
	int r = get_str(o, path, "pull", 1, 32, 0, &pull, e);

	if (r < 0 || pull == NULL)
		return r;
	if (strcmp(pull, "if-not-present") == 0)
		*out = JOB_PULL_IF_NOT_PRESENT;
	else if (strcmp(pull, "always") == 0)
		*out = JOB_PULL_ALWAYS;
	else if (strcmp(pull, "never") == 0)
		*out = JOB_PULL_NEVER;
	else
		r = err_set(e, JOBR_SCHEMA, "%s.pull '%.32s' is not if-not-present, "
		    "always or never", path, pull);
	free(pull);
	return r;
}

static int valid_glob(const char *s)
{
	return s[0] != '/' && !has_ctl(s);
}

static int parse_step(const cJSON *o, size_t idx, struct job_step *s,
    struct err *e)
{
	char path[48];
	static const char *const default_shell[] = { "/bin/sh", "-e", "-c" };

	snprintf(path, sizeof(path), "job.steps[%zu]", idx);
	if (!cJSON_IsObject(o))
		return err_set(e, JOBR_SCHEMA, "%s must be an object", path);
	if (get_name(o, path, &s->name, e) < 0 ||
	    get_str(o, path, "image", 1, 512, 0, &s->image, e) < 0 ||
	    parse_pull(o, path, &s->pull, e) < 0 ||
	    get_str(o, path, "script", 1, JOB_MAX_SCRIPT, 1, &s->script, e) < 0 ||
	    get_strv(o, path, "shell", JOB_MAX_SHELL, 256, NULL, &s->shell,
	    &s->nshell, e) < 0 ||
	    get_env(o, path, "env", JOB_MAX_ENV, JOB_MAX_ENV_VALUE, &s->env,
	    &s->nenv, e) < 0 ||
	    get_str(o, path, "workdir", 0, 255, 0, &s->workdir, e) < 0 ||
	    get_str(o, path, "user", 1, 64, 0, &s->user, e) < 0 ||
	    get_int(o, path, "timeout", 1, JOB_MAX_TIMEOUT, &s->timeout, e) < 0 ||
	    get_bool(o, path, "continue_on_error", &s->continue_on_error, e) < 0 ||
	    get_strv(o, path, "artifacts", JOB_MAX_ARTIFACTS, 512, valid_glob,
	    &s->artifacts, &s->nartifacts, e) < 0 ||
	    parse_resources(o, path, s, e) < 0)
		return -EINVAL;
	if (s->image && has_ctl(s->image))
		return err_set(e, JOBR_SCHEMA, "%s.image has control characters", path);
	if (s->user && has_ctl(s->user))
		return err_set(e, JOBR_SCHEMA, "%s.user has control characters", path);
	if (cJSON_GetObjectItemCaseSensitive(o, "shell") && s->nshell == 0)
		return err_set(e, JOBR_SCHEMA, "%s.shell must not be empty", path);
	if (s->nshell == 0) {
		s->shell = xcalloc(3, sizeof(char *));
		for (size_t i = 0; i < 3; i++)
			s->shell[i] = xstrdup(default_shell[i]);
		s->nshell = 3;
	}
	if (s->workdir == NULL)
		s->workdir = xstrdup("");
	if (!job_relpath_valid(s->workdir, 1))
		return err_set(e, JOBR_SCHEMA, "%s.workdir '%.64s' must be a relative "
		    "path without '..'", path, s->workdir);
	if (s->image == NULL && (s->memory_mb || s->nano_cpus || s->pids ||
	    cJSON_GetObjectItemCaseSensitive(o, "pull")))
		return err_set(e, JOBR_SCHEMA, "%s: pull and resources need an image",
		    path);
	return 0;
}

static int parse_secrets(const cJSON *job, struct job *j, struct err *e)
{
	struct job_kv *kv = NULL;
	size_t n = 0;
	int r = get_env(job, "job", "secrets", JOB_MAX_SECRETS,
	    (JOB_MAX_SECRET / 3 + 1) * 4 + 64, &kv, &n, e);

	j->secrets = xcalloc(n ? n : 1, sizeof(*j->secrets));
	for (size_t i = 0; i < n; i++) {
		j->secrets[i].name = kv[i].name;
		j->secrets[i].sealed = kv[i].value;
	}
	j->nsecrets = n;
	free(kv);
	return r;
}

static int parse_registries(const cJSON *job, struct job *j, struct err *e)
{
	const cJSON *arr, *it;
	size_t n, i = 0;
	char path[40];

	if (get_array(job, "job", "registries", JOB_MAX_REGISTRIES, &arr, &n, e) < 0)
		return -EINVAL;
	j->registries = xcalloc(n ? n : 1, sizeof(*j->registries));
	cJSON_ArrayForEach(it, arr) {
		struct job_registry *g = &j->registries[i];
		snprintf(path, sizeof(path), "job.registries[%zu]", i++);
		j->nregistries = i;
		if (!cJSON_IsObject(it))
			return err_set(e, JOBR_SCHEMA, "%s must be an object", path);
		if (get_str(it, path, "server", 1, 255, 1, &g->server, e) < 0 ||
		    get_str(it, path, "username", 1, 255, 1, &g->username, e) < 0 ||
		    get_str(it, path, "password", 1, 128, 1, &g->password, e) < 0)
			return -EINVAL;
		if (has_ctl(g->server) || strchr(g->server, '/'))
			return err_set(e, JOBR_SCHEMA, "%s.server must be host[:port]",
			    path);
		if (job_secret_find(j, g->password) == NULL)
			return err_set(e, JOBR_SCHEMA, "%s.password names no secret "
			    "'%.64s'", path, g->password);
	}
	return 0;
}

int job_cache_key_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= JOB_MAX_CACHE_KEY && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	    "_.:+=@,/-") == n;
}

static int cache_path_valid(const char *s)
{
	return job_relpath_valid(s, 0);
}

/* job.caches (issue 13): at most JOB_MAX_CACHES, keys unique. */
static int parse_caches(const cJSON *job, struct job *j, struct err *e)
{
	const cJSON *arr, *it;
	size_t n, i = 0;
	char path[40];

	if (get_array(job, "job", "caches", JOB_MAX_CACHES, &arr, &n, e) < 0)
		return -EINVAL;
	j->caches = xcalloc(n ? n : 1, sizeof(*j->caches));
	cJSON_ArrayForEach(it, arr) {
		struct job_cache *c = &j->caches[i];
		snprintf(path, sizeof(path), "job.caches[%zu]", i++);
		j->ncaches = i;
		if (!cJSON_IsObject(it))
			return err_set(e, JOBR_SCHEMA, "%s must be an object", path);
		if (get_str(it, path, "key", 1, JOB_MAX_CACHE_KEY, 1, &c->key, e) < 0 ||
		    get_strv(it, path, "paths", JOB_MAX_CACHE_PATHS, 255,
		    cache_path_valid, &c->paths, &c->npaths, e) < 0 ||
		    get_strv(it, path, "restore_keys", JOB_MAX_RESTORE_KEYS,
		    JOB_MAX_CACHE_KEY, job_cache_key_valid, &c->restore_keys,
		    &c->nrestore, e) < 0)
			return -EINVAL;
		if (!job_cache_key_valid(c->key))
			return err_set(e, JOBR_SCHEMA, "%s.key must match "
			    "[A-Za-z0-9_.:+=@,/-]{1,255}", path);
		if (c->npaths == 0)
			return err_set(e, JOBR_SCHEMA, "%s.paths must name at least "
			    "one path", path);
		for (size_t k = 0; k + 1 < i; k++)
			if (strcmp(j->caches[k].key, c->key) == 0)
				return err_set(e, JOBR_SCHEMA, "%s.key '%.64s' is given "
				    "twice", path, c->key);
	}
	return 0;
}

static int parse_inputs(const cJSON *job, struct job *j, struct err *e)
{
	const cJSON *arr, *it;
	size_t n, i = 0;
	char path[40], *hex = NULL;

	if (get_array(job, "job", "inputs", JOB_MAX_INPUTS, &arr, &n, e) < 0)
		return -EINVAL;
	j->inputs = xcalloc(n ? n : 1, sizeof(*j->inputs));
	cJSON_ArrayForEach(it, arr) {
		struct job_input *in = &j->inputs[i];
		snprintf(path, sizeof(path), "job.inputs[%zu]", i++);
		j->ninputs = i;
		if (!cJSON_IsObject(it))
			return err_set(e, JOBR_SCHEMA, "%s must be an object", path);
		if (get_str(it, path, "url", 1, 2048, 1, &in->url, e) < 0 ||
		    get_str(it, path, "path", 1, 255, 1, &in->path, e) < 0 ||
		    get_str(it, path, "sha256", 64, 64, 1, &hex, e) < 0 ||
		    get_bool(it, path, "extract", &in->extract, e) < 0)
			goto fail;
		if (strncmp(in->url, "https://", 8) != 0 &&
		    strncmp(in->url, "http://", 7) != 0) {
			err_set(e, JOBR_SCHEMA, "%s.url must be http:// or https://", path);
			goto fail;
		}
		if (has_ctl(in->url) || strchr(in->url, ' ')) {
			err_set(e, JOBR_SCHEMA, "%s.url has spaces or control characters",
			    path);
			goto fail;
		}
		if (!job_relpath_valid(in->path, 0)) {
			err_set(e, JOBR_SCHEMA, "%s.path '%.64s' must be a relative path "
			    "without '..'", path, in->path);
			goto fail;
		}
		if (!all_of(hex, "0123456789abcdef") ||
		    hex_decode(hex, in->sha256, 32) < 0) {
			err_set(e, JOBR_SCHEMA, "%s.sha256 must be 64 lowercase hex digits",
			    path);
			goto fail;
		}
		memcpy(in->sha256_hex, hex, 65);
		free(hex);
		hex = NULL;
	}
	return 0;
fail:
	free(hex);
	return -EINVAL;
}

static int parse_steps(const cJSON *job, struct job *j, struct err *e)
{
	const cJSON *arr, *it;
	size_t n, i = 0;

	if (get_array(job, "job", "steps", JOB_MAX_STEPS, &arr, &n, e) < 0)
		return -EINVAL;
	if (arr == NULL || n == 0)
		return err_set(e, JOBR_SCHEMA, "job.steps must list at least one step");
	j->steps = xcalloc(n, sizeof(*j->steps));
	cJSON_ArrayForEach(it, arr) {
		j->nsteps = i + 1;
		if (parse_step(it, i, &j->steps[i], e) < 0)
			return -EINVAL;
		i++;
	}
	return 0;
}

/* job.container: "fresh" (default) or "shared" (docs/protocol.md 3.4). */
static int parse_container_mode(const cJSON *job, struct job *j,
    struct err *e)
{
	char *mode = NULL;

	if (get_str(job, "job", "container", 1, 16, 0, &mode, e) < 0)
		return -EINVAL;
	if (mode == NULL || strcmp(mode, "fresh") == 0) {
		j->shared_container = 0;
	} else if (strcmp(mode, "shared") == 0) {
		j->shared_container = 1;
	} else {
		free(mode);
		return err_set(e, JOBR_SCHEMA, "job.container must be \"fresh\" "
		    "or \"shared\"");
	}
	free(mode);
	return 0;
}

/* ---- job.services ---- */

int job_service_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > JOB_MAX_SERVICE_NAME || !(s[0] >= 'a' && s[0] <= 'z') ||
	    s[n - 1] == '-')
		return 0;
	return all_of(s, "abcdefghijklmnopqrstuvwxyz0123456789-");
}

static int parse_service_ports(const cJSON *o, const char *path,
    struct job_service *sv, struct err *e)
{
	const cJSON *arr, *it;
	size_t n, i = 0;

	if (get_array(o, path, "ports", JOB_MAX_SERVICE_PORTS, &arr, &n, e) < 0)
		return -EINVAL;
	sv->ports = xcalloc(n ? n : 1, sizeof(int));
	cJSON_ArrayForEach(it, arr) {
		int64_t v;
		if (!jsonx_is_integer(it, &v))
			return err_set(e, JOBR_SCHEMA, "%s.ports[%zu] must be an integer",
			    path, i);
		if (v < 1 || v > 65535)
			return err_set(e, JOBR_SCHEMA, "%s.ports[%zu] is %lld, outside "
			    "1..65535", path, i, (long long)v);
		for (size_t k = 0; k < sv->nports; k++)
			if (sv->ports[k] == (int)v)
				return err_set(e, JOBR_SCHEMA, "%s.ports lists %lld twice",
				    path, (long long)v);
		sv->ports[sv->nports++] = (int)v;
		i++;
	}
	return 0;
}

/* {"tcp": port} or {"health": true}, and an optional "timeout". */
static int parse_service_wait(const cJSON *o, const char *path,
    struct job_service *sv, struct err *e)
{
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "wait");
	int64_t port = 0;
	int health = -1;
	char wpath[80];

	sv->wait_timeout = JOB_DEFAULT_SERVICE_WAIT;
	if (w == NULL)
		return 0;
	if (!cJSON_IsObject(w))
		return bad_type(e, path, "wait", "an object");
	snprintf(wpath, sizeof(wpath), "%s.wait", path);
	if (get_int(w, wpath, "tcp", 1, 65535, &port, e) < 0 ||
	    get_bool(w, wpath, "health", &health, e) < 0 ||
	    get_int(w, wpath, "timeout", 1, JOB_MAX_SERVICE_WAIT,
	    &sv->wait_timeout, e) < 0)
		return -EINVAL;
	if ((port != 0) == (health != -1))
		return err_set(e, JOBR_SCHEMA, "%s needs exactly one of tcp and "
		    "health", wpath);
	if (health == 0)
		return err_set(e, JOBR_SCHEMA, "%s.health must be true", wpath);
	if (health == 1) {
		sv->wait = JOB_WAIT_HEALTH;
		return 0;
	}
	for (size_t i = 0; i < sv->nports; i++) {
		if (sv->ports[i] == (int)port) {
			sv->wait = JOB_WAIT_TCP;
			sv->wait_port = (int)port;
			return 0;
		}
	}
	return err_set(e, JOBR_SCHEMA, "%s.tcp %lld is not one of the service's "
	    "ports", wpath, (long long)port);
}

static int parse_service(const cJSON *o, size_t idx, struct job *j,
    struct job_service *sv, struct err *e)
{
	char path[48];

	snprintf(path, sizeof(path), "job.services[%zu]", idx);
	if (!cJSON_IsObject(o))
		return err_set(e, JOBR_SCHEMA, "%s must be an object", path);
	if (get_str(o, path, "name", 1, JOB_MAX_SERVICE_NAME, 1, &sv->name, e) < 0)
		return -EINVAL;
	if (!job_service_name_valid(sv->name))
		return err_set(e, JOBR_SCHEMA, "%s.name '%.64s' must be a DNS label: "
		    "[a-z]([a-z0-9-]*[a-z0-9])?", path, sv->name);
	for (size_t i = 0; i < idx; i++)
		if (strcmp(j->services[i].name, sv->name) == 0)
			return err_set(e, JOBR_SCHEMA, "%s.name '%s' is taken by "
			    "job.services[%zu]", path, sv->name, i);
	sv->env_name = xstrdup(sv->name);
	for (char *p = sv->env_name; *p; p++)
		*p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ?
		    *p - 'a' + 'A' : *p);
	if (get_str(o, path, "image", 1, 512, 1, &sv->image, e) < 0 ||
	    parse_pull(o, path, &sv->pull, e) < 0 ||
	    get_env(o, path, "env", JOB_MAX_ENV, JOB_MAX_ENV_VALUE, &sv->env,
	    &sv->nenv, e) < 0 ||
	    get_strv(o, path, "command", JOB_MAX_SERVICE_ARGS, JOB_MAX_SERVICE_ARG,
	    NULL, &sv->command, &sv->ncommand, e) < 0 ||
	    parse_service_ports(o, path, sv, e) < 0 ||
	    parse_service_wait(o, path, sv, e) < 0)
		return -EINVAL;
	if (has_ctl(sv->image))
		return err_set(e, JOBR_SCHEMA, "%s.image has control characters", path);
	if (sv->command && sv->ncommand == 0)
		return err_set(e, JOBR_SCHEMA, "%s.command must not be empty", path);
	return 0;
}

static int parse_services(const cJSON *job, struct job *j, struct err *e)
{
	const cJSON *arr, *it;
	size_t n, i = 0;

	if (get_array(job, "job", "services", JOB_MAX_SERVICES, &arr, &n, e) < 0)
		return -EINVAL;
	j->services = xcalloc(n ? n : 1, sizeof(*j->services));
	cJSON_ArrayForEach(it, arr) {
		j->nservices = i + 1;
		if (parse_service(it, i, j, &j->services[i], e) < 0)
			return -EINVAL;
		i++;
	}
	return 0;
}

static int parse_job_object(const cJSON *root, struct job *j, struct err *e)
{
	const cJSON *job = cJSON_GetObjectItemCaseSensitive(root, "job");

	if (job == NULL)
		return err_set(e, JOBR_SCHEMA, "payload has no 'job' object");
	if (!cJSON_IsObject(job))
		return err_set(e, JOBR_SCHEMA, "'job' must be an object");
	j->timeout = JOB_DEFAULT_TIMEOUT;
	if (get_name(job, "job", &j->name, e) < 0 ||
	    get_strv(job, "job", "labels", JOB_MAX_LABELS, 64, job_label_valid,
	    &j->labels, &j->nlabels, e) < 0 ||
	    get_int(job, "job", "timeout", 1, JOB_MAX_TIMEOUT, &j->timeout, e) < 0 ||
	    parse_container_mode(job, j, e) < 0 ||
	    get_env(job, "job", "env", JOB_MAX_ENV, JOB_MAX_ENV_VALUE, &j->env,
	    &j->nenv, e) < 0 ||
	    parse_secrets(job, j, e) < 0 ||
	    parse_registries(job, j, e) < 0 ||
	    parse_inputs(job, j, e) < 0 ||
	    parse_caches(job, j, e) < 0 ||
	    parse_steps(job, j, e) < 0 ||
	    parse_services(job, j, e) < 0)
		return -EINVAL;
	return 0;
}

/* ---- claims ---- */

static int claim_int(const cJSON *root, const char *key, int required,
    int64_t *out, int *present, struct err *e)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);

	if (it == NULL) {
		if (required)
			return err_set(e, JOBR_BAD_CLAIMS, "claim '%s' is required", key);
		return 0;
	}
	if (!jsonx_is_integer(it, out) || *out < 0)
		return err_set(e, JOBR_BAD_CLAIMS,
		    "claim '%s' must be a non-negative integer", key);
	if (present)
		*present = 1;
	return 0;
}

static int parse_aud(const cJSON *root, struct job *j, struct err *e)
{
	const cJSON *aud = cJSON_GetObjectItemCaseSensitive(root, "aud"), *it;

	if (cJSON_IsString(aud) && aud->valuestring && *aud->valuestring &&
	    strlen(aud->valuestring) <= 128) {
		j->aud = xcalloc(1, sizeof(char *));
		j->aud[0] = xstrdup(aud->valuestring);
		j->naud = 1;
		return 0;
	}
	int n = cJSON_IsArray(aud) ? cJSON_GetArraySize(aud) : 0;
	if (n < 1 || n > 16)
		return err_set(e, JOBR_BAD_CLAIMS, "claim 'aud' must be a pool name "
		    "or an array of 1 to 16 pool names");
	j->aud = xcalloc((size_t)n, sizeof(char *));
	cJSON_ArrayForEach(it, aud) {
		if (!cJSON_IsString(it) || !it->valuestring || !*it->valuestring ||
		    strlen(it->valuestring) > 128)
			return err_set(e, JOBR_BAD_CLAIMS,
			    "claim 'aud' entries must be strings of 1 to 128 bytes");
		j->aud[j->naud++] = xstrdup(it->valuestring);
	}
	return 0;
}

static int parse_claims(const cJSON *root, struct job *j, struct err *e)
{
	const cJSON *jti = cJSON_GetObjectItemCaseSensitive(root, "jti");
	const cJSON *iss = cJSON_GetObjectItemCaseSensitive(root, "iss");

	if (!cJSON_IsString(iss) || !iss->valuestring || !*iss->valuestring ||
	    strlen(iss->valuestring) > 128 || has_ctl(iss->valuestring))
		return err_set(e, JOBR_BAD_CLAIMS,
		    "claim 'iss' must be a string of 1 to 128 bytes");
	if (!cJSON_IsString(jti) || !jti->valuestring ||
	    !job_jti_valid(jti->valuestring))
		return err_set(e, JOBR_BAD_CLAIMS,
		    "claim 'jti' must match [A-Za-z0-9_-]{8,64}");
	j->iss = xstrdup(iss->valuestring);
	j->jti = xstrdup(jti->valuestring);
	if (parse_aud(root, j, e) < 0 ||
	    claim_int(root, "iat", 1, &j->iat, NULL, e) < 0 ||
	    claim_int(root, "exp", 1, &j->exp, NULL, e) < 0 ||
	    claim_int(root, "nbf", 0, &j->nbf, &j->has_nbf, e) < 0)
		return -EINVAL;
	return 0;
}

/* Names the byte at fault, as every rejection names its value. */
static int utf8_rejection(const char *payload, size_t n, struct err *e)
{
	size_t at = 0;

	(void)jsonx_utf8_valid(payload, n, &at);	/* only for the offset */
	return err_set(e, JOBR_BAD_JSON, "payload is not valid UTF-8: byte 0x%02x "
	    "at offset %zu (RFC 8259 section 8.1)",
	    at < n ? (unsigned char)payload[at] : 0, at);
}

int job_parse(const char *payload, size_t n, struct job **out, struct err *e)
{
	int jerr, r;
	struct job *j;
	cJSON *root = jsonx_parse(payload, n, JWS_MAX_COMPACT, JOB_MAX_DEPTH, &jerr);

	if (root == NULL) {
		if (jerr == JSONX_TOO_DEEP)
			return err_set(e, JOBR_TOO_DEEP, "payload JSON nests deeper "
			    "than %d", JOB_MAX_DEPTH);
		if (jerr == JSONX_TOO_BIG)
			return err_set(e, JOBR_TOO_LARGE, "payload is over %d bytes",
			    JWS_MAX_COMPACT);
		if (jerr == JSONX_DUPKEY)
			return err_set(e, JOBR_SCHEMA, "payload has a duplicate key");
		if (jerr == JSONX_UTF8)
			return utf8_rejection(payload, n, e);
		return err_set(e, JOBR_BAD_JSON, "payload is not valid JSON");
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return err_set(e, JOBR_BAD_JSON, "payload is not a JSON object");
	}
	j = xcalloc(1, sizeof(*j));
	r = parse_claims(root, j, e);
	if (r == 0)
		r = parse_job_object(root, j, e);
	cJSON_Delete(root);
	if (r < 0) {
		job_free(j);
		return r;
	}
	*out = j;
	return 0;
}

int job_check_claims(const struct job *j, const struct job_check *c,
    struct err *e)
{
	if (j->exp <= c->now - c->skew)
		return err_set(e, JOBR_EXPIRED, "job expired at %lld, now is %lld "
		    "(skew %llds)", (long long)j->exp, (long long)c->now,
		    (long long)c->skew);
	if (j->has_nbf && j->nbf - c->skew > c->now)
		return err_set(e, JOBR_NOT_YET_VALID, "job not valid before %lld, "
		    "now is %lld (skew %llds)", (long long)j->nbf,
		    (long long)c->now, (long long)c->skew);
	if (j->iat - c->skew > c->now)
		return err_set(e, JOBR_BAD_IAT, "job issued in the future (iat %lld, "
		    "now %lld)", (long long)j->iat, (long long)c->now);
	if (j->iat > j->exp)
		return err_set(e, JOBR_BAD_IAT, "job issued after it expires");
	if (j->exp - j->iat > JOB_MAX_LIFETIME)
		return err_set(e, JOBR_BAD_IAT, "job lifetime exp - iat is over "
		    "%d days", JOB_MAX_LIFETIME / 86400);
	if (c->pool) {
		size_t i;
		for (i = 0; i < j->naud; i++)
			if (strcmp(j->aud[i], c->pool) == 0)
				break;
		if (i == j->naud)
			return err_set(e, JOBR_WRONG_AUD, "job audience '%.128s' is not "
			    "this pool '%.128s'", j->aud[0], c->pool);
	}
	if (c->replay && replay_seen(c->replay, j->jti))
		return err_set(e, JOBR_REPLAYED, "job id '%s' was accepted before "
		    "(replay)", j->jti);
	return 0;
}

int job_verify(const char *compact, size_t n, const struct job_check *c,
    struct job **out, struct err *e)
{
	struct buf payload = BUF_INIT(JWS_MAX_COMPACT);
	struct job *j = NULL;
	int r;

	if ((r = jws_verify(compact, n, c->trusted, &payload, NULL, e)) < 0)
		goto out;
	if ((r = job_parse(payload.data, payload.len, &j, e)) < 0)
		goto out;
	if ((r = job_check_claims(j, c, e)) < 0)
		goto out;
	if (c->replay && (r = replay_add(c->replay, j->jti, j->exp)) < 0) {
		/* Without a durable record the job could run twice. */
		r = err_set(e, JOBR_REPLAYED, "cannot record job id in the replay "
		    "cache: %s", strerror(-r));
		goto out;
	}
	*out = j;
	j = NULL;
out:
	job_free(j);
	sodium_memzero(payload.data, payload.cap);
	buf_free(&payload);
	return r;
}

const struct job_secret *job_secret_find(const struct job *j, const char *name)
{
	for (size_t i = 0; i < j->nsecrets; i++)
		if (strcmp(j->secrets[i].name, name) == 0)
			return &j->secrets[i];
	return NULL;
}

static void wipe_secret(struct job_secret *s)
{
	if (s->value)
		sodium_memzero(s->value, s->value_len);
	free(s->value);
	s->value = NULL;
	s->value_len = 0;
}

static int open_secret(struct job_secret *s, const struct jwk *pool_key,
    struct err *e)
{
	int r;

	wipe_secret(s);
	r = seal_open(pool_key, s->sealed, &s->value, &s->value_len);
	if (r == -EBADMSG)
		return err_set(e, JOBR_SECRET, "secret '%s' does not open with "
		    "pool key '%s'", s->name, pool_key->kid);
	if (r < 0)
		return err_set(e, JOBR_SECRET, "secret '%s' is not a sealed box "
		    "in base64url", s->name);
	if (memchr(s->value, '\0', s->value_len))
		return err_set(e, JOBR_SECRET, "secret '%s' holds a NUL byte",
		    s->name);
	return 0;
}

/* All or nothing: after a failure no opened value is left in the job. */
int job_open_secrets(struct job *j, const struct jwk *pool_key, struct err *e)
{
	if (j->nsecrets && (pool_key == NULL || pool_key->type != JWK_X25519 ||
	    !pool_key->has_priv))
		return err_set(e, JOBR_SECRET, "job has sealed secrets but this "
		    "agent has no pool key");
	for (size_t i = 0; i < j->nsecrets; i++) {
		if (open_secret(&j->secrets[i], pool_key, e) < 0) {
			for (size_t k = 0; k <= i; k++)
				wipe_secret(&j->secrets[k]);
			return -EINVAL;
		}
	}
	return 0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void free_kv(struct job_kv *kv, size_t n)
{
	for (size_t i = 0; kv && i < n; i++) {
		free(kv[i].name);
		if (kv[i].value)
			sodium_memzero(kv[i].value, strlen(kv[i].value));
		free(kv[i].value);
	}
	free(kv);
}

static void free_step(struct job_step *s)
{
	free(s->name);
	free(s->image);
	free_strv(s->shell, s->nshell);
	free(s->script);
	free_kv(s->env, s->nenv);
	free(s->workdir);
	free(s->user);
	free_strv(s->artifacts, s->nartifacts);
}

static void free_services(struct job_service *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].name);
		free(v[i].env_name);
		free(v[i].image);
		free_kv(v[i].env, v[i].nenv);
		free_strv(v[i].command, v[i].ncommand);
		free(v[i].ports);
	}
	free(v);
}

void job_free(struct job *j)
{
	if (j == NULL)
		return;
	free(j->iss);
	free(j->jti);
	free_strv(j->aud, j->naud);
	free(j->name);
	free_strv(j->labels, j->nlabels);
	free_kv(j->env, j->nenv);
	for (size_t i = 0; j->secrets && i < j->nsecrets; i++) {
		free(j->secrets[i].name);
		free(j->secrets[i].sealed);
		wipe_secret(&j->secrets[i]);
	}
	free(j->secrets);
	for (size_t i = 0; j->registries && i < j->nregistries; i++) {
		free(j->registries[i].server);
		free(j->registries[i].username);
		free(j->registries[i].password);
	}
	free(j->registries);
	for (size_t i = 0; j->inputs && i < j->ninputs; i++) {
		free(j->inputs[i].url);
		free(j->inputs[i].path);
	}
	free(j->inputs);
	for (size_t i = 0; j->caches && i < j->ncaches; i++) {
		free(j->caches[i].key);
		free_strv(j->caches[i].paths, j->caches[i].npaths);
		free_strv(j->caches[i].restore_keys, j->caches[i].nrestore);
	}
	free(j->caches);
	for (size_t i = 0; j->steps && i < j->nsteps; i++)
		free_step(&j->steps[i]);
	free(j->steps);
	free_services(j->services, j->nservices);
	free(j);
}
