#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsx.h"
#include "job.h"
#include "strnum.h"
#include "urlpolicy.h"
#include "xalloc.h"

extern char **environ;

enum ktype { K_STR, K_URL, K_INT, K_DUR, K_BOOL, K_LIST, K_LEVEL, K_FORMAT,
	K_CPUS, K_SIZE };

struct key {
	const char *name;	/* after SKIFF_ */
	enum ktype type;
	size_t off;
	int64_t min, max;
	const char *def;
	int secret;
	const char *help;
};

#define OFF(f) offsetof(struct agent_config, f)
#define DAY 86400

static const struct key keys[] = {
	{ "QUEUE_URL", K_URL, OFF(queue_url), 0, 0, NULL, 0,
	  "queue base URL, https://host[:port] (required); or the URLs of the\n"
	  "      queue's replicas, comma-separated (at most 16): on a connection\n"
	  "      failure, a timeout or a 5xx the agent moves on to the next one" },
	{ "POOL", K_STR, OFF(pool), 1, 128, NULL, 0,
	  "pool name (required): jobs must name it in aud, and the queue must register us in it" },
	{ "REGISTRATION_TOKEN", K_STR, OFF(registration_token), 1, 128, NULL, 1,
	  "pool registration token (or REGISTRATION_TOKEN_FILE)" },
	{ "REGISTRATION_TOKEN_FILE", K_STR, OFF(registration_token_file), 1,
	  PATH_MAX, NULL, 0, "file holding the registration token" },
	{ "NAME", K_STR, OFF(name), 1, 128, NULL, 0,
	  "agent name shown to operators (default: the host name)" },
	{ "LABELS", K_LIST, OFF(labels), 0, 32, "", 0,
	  "comma-separated labels; a job runs here only if we have all of its labels" },
	{ "TRUSTED_KEYS", K_STR, OFF(trusted_keys), 1, PATH_MAX,
	  "/etc/skiff/trusted.jwks", 0,
	  "JWKS of the Ed25519 keys whose signed jobs may run here" },
	{ "POOL_KEY", K_STR, OFF(pool_key), 1, PATH_MAX, NULL, 0,
	  "private X25519 JWK of the pool, to open sealed secrets" },
	{ "CA_FILE", K_STR, OFF(ca_file), 1, PATH_MAX, NULL, 0,
	  "CA bundle for the queue's certificate (default: the system store)" },
	{ "PINNED_PUBKEY", K_STR, OFF(pinned_pubkey), 1, 1024, NULL, 0,
	  "also require the queue's key: sha256//<base64> of its SubjectPublicKeyInfo" },
	{ "STATE_DIR", K_STR, OFF(state_dir), 1, PATH_MAX, "/var/lib/skiff", 0,
	  "agent token, replay cache, log spool" },
	{ "WORK_DIR", K_STR, OFF(work_dir), 1, PATH_MAX, "/var/lib/skiff/work", 0,
	  "job workspaces" },
	{ "SPOOL_DIR", K_STR, OFF(spool_dir), 1, PATH_MAX, NULL, 0,
	  "log spool (default: STATE_DIR/spool)" },
	{ "DOCKER_HOST", K_STR, OFF(docker_host), 1, PATH_MAX,
	  "unix:///var/run/docker.sock", 0,
	  "Docker Engine API socket, unix:///path (Podman's works too)" },
	{ "IDLE_TIMEOUT", K_DUR, OFF(idle_timeout), 0, 365 * DAY, "10m", 0,
	  "leave after this long without a job (0: never)" },
	{ "MAX_JOBS", K_INT, OFF(max_jobs), 0, INT32_MAX, "0", 0,
	  "leave after this many jobs (1: ephemeral; 0: no limit)" },
	{ "CAPACITY", K_INT, OFF(capacity), 1, 256, "1", 0,
	  "jobs run at once" },
	{ "LOG_LEVEL", K_LEVEL, OFF(log_level), 0, 0, "info", 0,
	  "error, warn, info or debug" },
	{ "LOG_FORMAT", K_FORMAT, OFF(log_format), 0, 0, "logfmt", 0,
	  "logfmt or json" },
	{ "ON_EXIT", K_STR, OFF(on_exit), 1, PATH_MAX, NULL, 0,
	  "program run after an idle or max-jobs exit (e.g. self-termination)" },
	{ "CLOCK_SKEW", K_DUR, OFF(clock_skew), 0, 3600, "60s", 0,
	  "tolerated clock difference for exp, nbf and iat" },
	{ "LEASE_WAIT", K_DUR, OFF(lease_wait), 1, 60, "30s", 0,
	  "how long the queue may hold a lease request" },
	{ "KILL_GRACE", K_DUR, OFF(kill_grace), 0, 3600, "10s", 0,
	  "from SIGTERM (docker stop) to SIGKILL when a step is stopped" },
	{ "DRAIN_GRACE", K_DUR, OFF(drain_grace), 0, 7 * DAY, "15m", 0,
	  "on SIGTERM, how long running jobs may go on before they are canceled" },
	{ "KEEP_WORKSPACE", K_BOOL, OFF(keep_workspace), 0, 0, "false", 0,
	  "keep job workspaces after the job (for debugging)" },
	{ "NET_USER", K_STR, OFF(net_user), 1, 64, "skiff-net", 0,
	  "user the network half runs as when the agent starts as root" },
	{ "STEP_USER", K_STR, OFF(step_user), 1, 64, "skiff-step", 0,
	  "user host steps run as when the agent starts as root" },
	{ "HOST_TRACKING", K_STR, OFF(host_tracking), 1, 16, "auto", 0,
	  "how host steps' processes are tracked: auto, cgroup or session" },
	{ "HOST_STEPS", K_BOOL, OFF(host_steps), 0, 0, "true", 0,
	  "allow steps without an image to run on the host" },
	{ "DOCKER_SOCKET_IN_STEPS", K_BOOL, OFF(docker_socket_in_steps), 0, 0,
	  "false", 0, "mount the Docker socket into step containers" },
	{ "WARM_CONTAINERS", K_BOOL, OFF(warm_containers), 0, 0, "true", 0,
	  "make each step's container ahead and run the step as an exec in it "
	  "(false: create, attach and start a container per step)" },
	{ "STEP_MEMORY", K_SIZE, OFF(step_memory_mb), 0, 1 << 20, "0", 0,
	  "memory limit of a step container, e.g. 2G (0: none); caps the job's" },
	{ "STEP_CPUS", K_CPUS, OFF(step_nano_cpus), 0, 1024000000000LL, "0", 0,
	  "CPU limit of a step container, e.g. 1.5 (0: none); caps the job's" },
	{ "STEP_PIDS", K_INT, OFF(step_pids), 0, 1 << 22, "4096", 0,
	  "process limit of a step container (0: none); caps the job's" },
	{ "DISK_FLOOR", K_SIZE, OFF(disk_floor_mb), 0, 1 << 30, "0", 0,
	  "prune unused images before a job when the Docker root has less free (0: never)" },
	{ "PREPULL_KEEP", K_LIST, OFF(prepull_keep), 0, 256, "", 0,
	  "comma-separated images never pruned (the pre-pulled ones)" },
	{ "MAX_ARTIFACT_BYTES", K_SIZE, OFF(max_artifact_bytes), 0,
	  (int64_t)1 << 40 >> 20, "10G", 0, "total artifact bytes per job" },
	{ "MAX_ARTIFACTS", K_INT, OFF(max_artifacts), 0, 100000, "1000", 0,
	  "artifact files per job" },
	{ "MAX_SPOOL", K_SIZE, OFF(max_spool_bytes), 1, (int64_t)1 << 40 >> 20,
	  "1G", 0, "log bytes one job may spool to disk" },
	{ "MAX_INPUT", K_SIZE, OFF(max_input_bytes), 1, (int64_t)1 << 40 >> 20,
	  "10G", 0, "size of one job input" },
	{ "INPUTS_CACHE", K_SIZE, OFF(inputs_cache_mb), 0, (int64_t)1 << 40 >> 20,
	  "10G", 0, "inputs kept by digest across jobs (least recently used go)" },
	{ "INPUTS_CA_FILE", K_STR, OFF(inputs_ca_file), 1, PATH_MAX, NULL, 0,
	  "CA bundle for https:// inputs (default: the system store)" },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Names of other programs' variables that may share the environment. */
static const char *const foreign_env[] = {
	"SKIFF_ADMIN_TOKEN", "SKIFF_ADMIN_TOKEN_FILE", "SKIFF_CONFIG",
	"SKIFF_DATA_DIR",	/* skiff-queue --dev's dev.env */
	NULL,
};

static void *field(struct agent_config *c, const struct key *k)
{
	return (char *)c + k->off;
}

static const struct key *find_key(const char *name, size_t n)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strlen(keys[i].name) == n && strncmp(keys[i].name, name, n) == 0)
			return &keys[i];
	return NULL;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* Splits "a, b,c" into a list; every entry must pass valid() if given. */
static int parse_list(const char *s, size_t max, int (*valid)(const char *),
    char ***out, size_t *count, const char **why)
{
	char **v = NULL;
	size_t n = 0;

	while (*s) {
		size_t len = strcspn(s, ",");
		const char *p = s;
		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len) {
			if (n == max) {
				*why = "too many entries";
				goto fail;
			}
			v = xreallocarray(v, n + 1, sizeof(char *));
			v[n++] = xstrndup(p, len);
			if (valid && !valid(v[n - 1])) {
				*why = "an entry has characters outside [A-Za-z0-9_.:=-]";
				goto fail;
			}
		}
		s += strcspn(s, ",");
		if (*s == ',')
			s++;
	}
	*out = v;
	*count = n;
	return 0;
fail:
	free_list(v, n);
	return -EINVAL;
}

static int valid_image_ref(const char *s)
{
	return strlen(s) <= 512 && strspn(s, " \t\n\"'\\") == 0;
}

static int set_string(char **dst, const struct key *k, const char *v,
    const char **why)
{
	size_t n = strlen(v);

	if ((int64_t)n < k->min || (int64_t)n > k->max) {
		*why = n ? "too long" : "empty";
		return -EINVAL;
	}
	free(*dst);
	*dst = xstrdup(v);
	return 0;
}

void config_strlist_free(struct strlist *l)
{
	free_list(l->v, l->n);
	l->v = NULL;
	l->n = 0;
}

/* Why one element of a list of count is refused. */
static const char *url_why(size_t i, size_t count, const char *why)
{
	static char msg[192];

	if (count == 1)
		return why;
	snprintf(msg, sizeof(msg), "URL %zu of %zu %s", i + 1, count, why);
	return msg;
}

/* A byte outside printable ASCII, said as what it most likely is. */
static const char *url_chars(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x80)
			return "contains a byte outside ASCII (write an "
			    "international host name in its xn-- form)";
		if (ch <= ' ' || ch == 0x7f)
			return "contains a space or a control character (URLs "
			    "are separated by a comma alone)";
	}
	return NULL;
}

int config_parse_queue_urls(const char *v, struct strlist *out,
    const char **why)
{
	static char msg[96];
	struct strlist l = { NULL, 0 };
	size_t total = strlen(v), count = 1;
	const char *s = v;

	if (total == 0) {
		*why = "empty";
		return -EINVAL;
	}
	if (total > CONFIG_QUEUE_URLS_LEN) {
		*why = "is longer than 4096 bytes";
		return -EINVAL;
	}
	for (const char *p = v; *p; p++)
		count += *p == ',';
	if (count > CONFIG_QUEUE_URLS_MAX) {
		snprintf(msg, sizeof(msg), "lists %zu URLs; at most %d are allowed",
		    count, CONFIG_QUEUE_URLS_MAX);
		*why = msg;
		return -EINVAL;
	}
	for (size_t i = 0; i < count; i++) {
		size_t len = strcspn(s, ",");
		const char *bad = len == 0 ? "is empty (a comma at an end, or two "
		    "in a row)" : url_chars(s, len);
		char *one, *u = NULL;

		if (bad == NULL) {
			one = xstrndup(s, len);
			if (urlpolicy_base(one, &u, &bad) < 0)
				u = NULL;
			free(one);
		}
		for (size_t k = 0; u && k < l.n; k++)
			if (strcasecmp(u, l.v[k]) == 0) {
				snprintf(msg, sizeof(msg), "repeats URL %zu", k + 1);
				bad = msg;
				free(u);
				u = NULL;
			}
		if (u == NULL) {
			*why = url_why(i, count, bad ? bad : "is invalid");
			config_strlist_free(&l);
			return -EINVAL;
		}
		l.v = xreallocarray(l.v, l.n + 1, sizeof(char *));
		l.v[l.n++] = u;
		s += len + (s[len] == ',');
	}
	*out = l;
	return 0;
}

/* Kept as libcurl writes them back: the host checked in config_validate
 * is the one the agent connects to (urlpolicy.h). Whether plain http:// is
 * allowed is decided there, once every source has had its say. */
static int set_urls(struct agent_config *c, const char *v, const char **why)
{
	struct strlist l;
	struct buf b = BUF_INIT(CONFIG_QUEUE_URLS_LEN * 2);

	if (config_parse_queue_urls(v, &l, why) < 0)
		return -EINVAL;
	for (size_t i = 0; i < l.n; i++)
		buf_printf(&b, "%s%s", i ? "," : "", l.v[i]);
	config_strlist_free(&c->queue_urls);
	c->queue_urls = l;
	free(c->queue_url);
	c->queue_url = buf_steal(&b, NULL);
	return 0;
}

static int set_bool(int *dst, const char *v, const char **why)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
		*dst = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
		*dst = 0;
	else {
		*why = "must be true or false";
		return -EINVAL;
	}
	return 0;
}

static int set_value(struct agent_config *c, const struct key *k,
    const char *v, const char **why)
{
	void *f = field(c, k);
	int64_t n;

	switch (k->type) {
	case K_STR:
		return set_string(f, k, v, why);
	case K_URL:
		return set_urls(c, v, why);
	case K_INT:
		if (strnum_i64(v, k->min, k->max, &n, why) < 0)
			return -EINVAL;
		*(int64_t *)f = n;
		return 0;
	case K_DUR:
		if (strnum_duration(v, k->min, k->max, &n, why) < 0)
			return -EINVAL;
		*(int64_t *)f = n;
		return 0;
	case K_SIZE:	/* stored in MiB */
		if (strnum_size(v, 0, k->max << 20, &n, why) < 0)
			return -EINVAL;
		if (n != 0 && n < (1 << 20)) {
			*why = "must be at least 1M (or 0)";
			return -EINVAL;
		}
		*(int64_t *)f = n >> 20;
		return 0;
	case K_CPUS:
		if (strnum_fixed9(v, k->min, k->max, &n, why) < 0)
			return -EINVAL;
		*(int64_t *)f = n;
		return 0;
	case K_BOOL:
		return set_bool(f, v, why);
	case K_LEVEL:
		if (log_level_parse(v, f) < 0) {
			*why = "must be error, warn, info or debug";
			return -EINVAL;
		}
		return 0;
	case K_FORMAT:
		if (log_format_parse(v, f) < 0) {
			*why = "must be logfmt or json";
			return -EINVAL;
		}
		return 0;
	case K_LIST: {
		struct strlist *l = f, nl;
		int (*valid)(const char *) = k->off == OFF(labels) ?
		    job_label_valid : valid_image_ref;
		if (parse_list(v, (size_t)k->max, valid, &nl.v, &nl.n, why) < 0)
			return -EINVAL;
		free_list(l->v, l->n);
		*l = nl;
		return 0;
	}
	}
	return -EINVAL;
}

static int set_from(struct agent_config *c, const char *name, size_t nlen,
    const char *v, const char *src)
{
	const struct key *k = find_key(name, nlen);
	const char *why = "invalid";

	if (k == NULL) {
		fprintf(stderr, "skiff-agent: %s: unknown setting SKIFF_%.*s\n",
		    src, (int)nlen, name);
		return -EINVAL;
	}
	if (set_value(c, k, v, &why) < 0) {
		fprintf(stderr, "skiff-agent: %s: SKIFF_%s: %s\n", src, k->name,
		    why ? why : "invalid");
		return -EINVAL;
	}
	return 0;
}

static int load_defaults(struct agent_config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NKEYS; i++) {
		const char *why;
		if (keys[i].def && set_value(c, &keys[i], keys[i].def, &why) < 0)
			abort();	/* a bad default is a bug */
	}
	return 0;
}

/* Strips surrounding quotes as systemd's EnvironmentFile does. */
static const char *unquote(char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		v[n - 1] = '\0';
		return v + 1;
	}
	return v;
}

/*
 * named_by says who named the file: NULL for the default path, which may be
 * absent; a file named by --config or SKIFF_CONFIG must be there, or the
 * agent would run on defaults the operator did not mean.
 */
static int load_file(struct agent_config *c, const char *path,
    const char *named_by)
{
	struct buf b = BUF_INIT(1 << 20);
	int r = path[0] ? fsx_read_file(path, 1 << 20, &b) : -ENOENT, lineno = 0;
	int bad = 0;

	if (r == -ENOENT && named_by == NULL) {
		buf_free(&b);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "skiff-agent: configuration file %s%s%s (from %s): "
		    "%s\n", path[0] ? "" : "\"", path, path[0] ? "" : "\"",
		    named_by ? named_by : "the default", r == -E2BIG ? "file too large" :
		    strerror(-r));
		buf_free(&b);
		return -EINVAL;
	}
	for (char *line = b.data, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		line += strspn(line, " \t");
		size_t n = strlen(line);
		while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' ||
		    line[n - 1] == '\t'))
			line[--n] = '\0';
		if (*line == '\0' || *line == '#')
			continue;
		if (strncmp(line, "export ", 7) == 0)
			line += 7;
		char *eq = strchr(line, '=');
		char src[PATH_MAX + 32];
		snprintf(src, sizeof(src), "%s:%d", path, lineno);
		if (eq == NULL || strncmp(line, "SKIFF_", 6) != 0) {
			fprintf(stderr, "skiff-agent: %s: expected SKIFF_KEY=value\n",
			    src);
			bad = 1;
			continue;
		}
		*eq = '\0';
		if (set_from(c, line + 6, strlen(line + 6), unquote(eq + 1), src) < 0)
			bad = 1;
	}
	buf_free(&b);
	return bad ? -EINVAL : 0;
}

static int is_foreign(const char *entry, size_t nlen)
{
	for (size_t i = 0; foreign_env[i]; i++)
		if (strlen(foreign_env[i]) == nlen &&
		    strncmp(foreign_env[i], entry, nlen) == 0)
			return 1;
	/* A step's own variables (docs/protocol.md section 3.5), for an
	 * agent started from inside a job. */
	static const char *const step_prefixes[] = { "SKIFF_JOB_", "SKIFF_STEP_",
	    "SKIFF_WORKSPACE", "SKIFF_INPUTS", "SKIFF_AGENT_NAME", NULL };
	for (size_t i = 0; step_prefixes[i]; i++)
		if (strncmp(entry, step_prefixes[i], strlen(step_prefixes[i])) == 0)
			return 1;
	return 0;
}

/*
 * Known keys from the environment are checked like the file's; an unknown
 * SKIFF_* variable only draws a warning, since other tools (skiffctl, test
 * runners, a job the agent runs in) share the prefix and the environment.
 */
static int load_env(struct agent_config *c)
{
	int bad = 0;

	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, "SKIFF_", 6) != 0)
			continue;
		const char *eq = strchr(*e, '=');
		if (eq == NULL || is_foreign(*e, (size_t)(eq - *e)))
			continue;
		size_t nlen = (size_t)(eq - *e - 6);
		if (find_key(*e + 6, nlen) == NULL) {
			fprintf(stderr, "skiff-agent: warning: ignoring unknown "
			    "environment variable SKIFF_%.*s\n", (int)nlen, *e + 6);
			continue;
		}
		if (set_from(c, *e + 6, nlen, eq + 1, "environment") < 0)
			bad = 1;
	}
	return bad ? -EINVAL : 0;
}

/* --queue-url for QUEUE_URL. */
static char *flag_name(const char *key)
{
	char *f = xstrdup(key);

	for (char *p = f; *p; p++)
		*p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
	return f;
}

enum { OPT_CONFIG = 1000, OPT_CHECK, OPT_HELP, OPT_VERSION, OPT_KEY0 = 2000 };

static struct option *build_options(void)
{
	struct option *o = xcalloc(NKEYS + 5, sizeof(*o));
	size_t n = 0;

	o[n++] = (struct option){ "config", required_argument, NULL, OPT_CONFIG };
	o[n++] = (struct option){ "check-config", no_argument, NULL, OPT_CHECK };
	o[n++] = (struct option){ "help", no_argument, NULL, OPT_HELP };
	o[n++] = (struct option){ "version", no_argument, NULL, OPT_VERSION };
	for (size_t i = 0; i < NKEYS; i++)
		o[n++] = (struct option){ flag_name(keys[i].name), required_argument,
		    NULL, OPT_KEY0 + (int)i };
	return o;
}

static void free_options(struct option *o)
{
	for (size_t i = 4; o[i].name; i++)
		free((char *)o[i].name);
	free(o);
}

/*
 * The first pass over the command line: its shape (an unknown option or
 * a missing argument is a usage error, found before any file is read),
 * --help and --version whatever else it holds, --check-config, and the
 * file to read. getopt itself finds --config, so that "--config=F", an
 * abbreviation ("--conf F") and a value that only looks like the flag
 * ("--name --config") mean here what they mean to the second pass.
 */
static int scan_args(int argc, char **argv, const struct option *opts,
    const char **path, int *check_only)
{
	int opt, usage = 0;

	optind = 0;	/* glibc's full reset: getopt runs twice */
	while ((opt = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		if (opt == 'h' || opt == OPT_HELP)
			return CONFIG_HELP;
		if (opt == 'V' || opt == OPT_VERSION)
			return CONFIG_VERSION;
		if (opt == OPT_CONFIG)
			*path = optarg;
		else if (opt == OPT_CHECK)
			*check_only = 1;
		else if (opt < OPT_KEY0)
			usage = 1;	/* getopt said which option */
	}
	return usage ? CONFIG_USAGE : 0;
}

/* The second pass: flags win over the file and the environment. */
static int apply_flags(struct agent_config *c, int argc, char **argv,
    const struct option *opts)
{
	int opt, bad = 0;

	optind = 0;
	opterr = 0;	/* the first pass reported the shape already */
	while ((opt = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		if (opt < OPT_KEY0 || opt >= OPT_KEY0 + (int)NKEYS)
			continue;
		const struct key *k = &keys[opt - OPT_KEY0];
		if (set_from(c, k->name, strlen(k->name), optarg,
		    "command line") < 0)
			bad = 1;
	}
	opterr = 1;
	return bad ? -EINVAL : 0;
}

int config_load(struct agent_config *c, int argc, char **argv, int *argi,
    int *check_only)
{
	struct option *opts = build_options();
	const char *path = NULL, *src = "--config";
	int r, bad = 0;

	load_defaults(c);
	*check_only = 0;
	r = scan_args(argc, argv, opts, &path, check_only);
	if (r != 0)
		goto out;
	if (path == NULL && (path = getenv("SKIFF_CONFIG")) != NULL)
		src = "SKIFF_CONFIG";
	if (path == NULL) {
		path = CONFIG_DEFAULT_PATH;
		src = NULL;
	}
	if (load_file(c, path, src) < 0)
		bad = 1;
	free(c->config_file);
	c->config_file = xstrdup(path);
	if (load_env(c) < 0)
		bad = 1;
	if (apply_flags(c, argc, argv, opts) < 0)
		bad = 1;
	*argi = optind;
	r = bad ? -EINVAL : 0;
out:
	free_options(opts);
	return r;
}

int config_validate(const struct agent_config *c)
{
	int bad = 0;

	if (c->queue_url == NULL) {
		fprintf(stderr, "skiff-agent: SKIFF_QUEUE_URL is required\n");
		bad = 1;
	} else {
		for (size_t i = 0; i < c->queue_urls.n; i++) {
			if (urlpolicy_cleartext_ok(c->queue_urls.v[i]) == 0)
				continue;
			/* The agent token would cross the network in clear. */
			fprintf(stderr, "skiff-agent: SKIFF_QUEUE_URL %s: plain "
			    "http:// is only allowed to a loopback address "
			    "(127.0.0.0/8, [::1] or localhost); use https://\n",
			    c->queue_urls.v[i]);
			bad = 1;
		}
	}
	if (c->registration_token && c->registration_token_file) {
		fprintf(stderr, "skiff-agent: set SKIFF_REGISTRATION_TOKEN or "
		    "SKIFF_REGISTRATION_TOKEN_FILE, not both\n");
		bad = 1;
	}
	if (c->max_jobs && c->capacity > c->max_jobs) {
		fprintf(stderr, "skiff-agent: SKIFF_CAPACITY (%lld) is more than "
		    "SKIFF_MAX_JOBS (%lld)\n", (long long)c->capacity,
		    (long long)c->max_jobs);
		bad = 1;
	}
	/* A socket path, taken literally as the Docker CLI does (no host
	 * part, no percent-decoding); sun_path holds 107 bytes and a NUL. */
	if (strncmp(c->docker_host, "unix://", 7) != 0 ||
	    c->docker_host[7] != '/' || strlen(c->docker_host + 7) > 107) {
		fprintf(stderr, "skiff-agent: SKIFF_DOCKER_HOST %s: only "
		    "unix:///absolute/path sockets (at most 107 bytes) are "
		    "supported\n", c->docker_host);
		bad = 1;
	}
	if (c->state_dir[0] != '/' || c->work_dir[0] != '/' ||
	    (c->spool_dir && c->spool_dir[0] != '/')) {
		fprintf(stderr, "skiff-agent: SKIFF_STATE_DIR, SKIFF_WORK_DIR and "
		    "SKIFF_SPOOL_DIR must be absolute paths\n");
		bad = 1;
	}
	if (c->pinned_pubkey && strncmp(c->pinned_pubkey, "sha256//", 8) != 0) {
		fprintf(stderr, "skiff-agent: SKIFF_PINNED_PUBKEY must be "
		    "sha256//<base64>[;sha256//...]\n");
		bad = 1;
	}
	return bad ? -EINVAL : 0;
}

/* A file the agent reads later: a regular file it can open now (a FIFO
 * named by mistake cannot hang the start). */
static int check_readable(const char *key, const char *path)
{
	int r = fsx_check_regular(path);

	if (r < 0)
		fprintf(stderr, "skiff-agent: SKIFF_%s %s: %s\n", key, path,
		    r == -EINVAL ? "not a regular file" : strerror(-r));
	return r;
}

static int check_executable(const char *key, const char *path)
{
	struct stat st;
	const char *why = NULL;

	if (stat(path, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0)
		why = strerror(errno);
	if (why)
		fprintf(stderr, "skiff-agent: SKIFF_%s %s: %s\n", key, path, why);
	return why ? -EINVAL : 0;
}

static int check_token_file(const struct agent_config *c)
{
	char *tok = NULL;
	int r;

	if (c->registration_token_file == NULL)
		return 0;
	/* With the file set, -ENOENT is the file's own. */
	r = config_registration_token(c, &tok);
	if (tok) {
		memset(tok, 0, strlen(tok));
		free(tok);
	}
	if (r < 0)
		fprintf(stderr, "skiff-agent: SKIFF_REGISTRATION_TOKEN_FILE %s: %s\n",
		    c->registration_token_file, r == -EINVAL ?
		    "empty or longer than 128 bytes" : r == -E2BIG ?
		    "file too large" : strerror(-r));
	return r;
}

int config_check_files(const struct agent_config *c)
{
	int bad = 0;

	/* Read at registration only, which a stored agent token skips; read
	 * anyway: after a revocation the agent registers again, and finding
	 * out then is finding out far from the typo. */
	bad |= check_token_file(c) < 0;
	bad |= check_readable("TRUSTED_KEYS", c->trusted_keys) < 0;
	if (c->pool_key)
		bad |= check_readable("POOL_KEY", c->pool_key) < 0;
	/* libcurl would read these at the first connection and fail it;
	 * retrying that forever helps nobody. */
	if (c->ca_file)
		bad |= check_readable("CA_FILE", c->ca_file) < 0;
	if (c->inputs_ca_file)
		bad |= check_readable("INPUTS_CA_FILE", c->inputs_ca_file) < 0;
	/* Run only at the very end, on the way out of the VM. */
	if (c->on_exit)
		bad |= check_executable("ON_EXIT", c->on_exit) < 0;
	return bad ? -EINVAL : 0;
}

static void print_value(const struct agent_config *c, const struct key *k,
    FILE *f)
{
	const void *v = (const char *)c + k->off;
	static const char *const lv[] = { "error", "warn", "info", "debug" };

	switch (k->type) {
	case K_STR:
	case K_URL:
		fputs(*(char *const *)v ? *(char *const *)v : "", f);
		break;
	case K_INT:
	case K_DUR:
		fprintf(f, "%lld", (long long)*(const int64_t *)v);
		break;
	case K_SIZE:
		fprintf(f, "%lldM", (long long)*(const int64_t *)v);
		break;
	case K_CPUS:
		fprintf(f, "%lld.%09lld", (long long)(*(const int64_t *)v / 1000000000),
		    (long long)(*(const int64_t *)v % 1000000000));
		break;
	case K_BOOL:
		fputs(*(const int *)v ? "true" : "false", f);
		break;
	case K_LEVEL:
		fputs(lv[*(const enum log_level *)v], f);
		break;
	case K_FORMAT:
		fputs(*(const enum log_format *)v == LOGF_JSON ? "json" : "logfmt", f);
		break;
	case K_LIST: {
		const struct strlist *l = v;
		for (size_t i = 0; i < l->n; i++)
			fprintf(f, "%s%s", i ? "," : "", l->v[i]);
		break;
	}
	}
}

void config_print(const struct agent_config *c, FILE *f)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		fprintf(f, "SKIFF_%s=", k->name);
		if (k->secret && *(char *const *)((const char *)c + k->off))
			fputs("<redacted>", f);
		else
			print_value(c, k, f);
		fputc('\n', f);
	}
}

void config_usage(FILE *f)
{
	fputs(
	    "usage: skiff-agent [options]                 run: register, lease and run jobs\n"
	    "       skiff-agent [options] prepull IMAGE...   pull images ahead of time\n"
	    "       skiff-agent --check-config [options]  validate and print the configuration\n"
	    "       skiff-agent [options] check-sandbox  show that the network half's\n"
	    "                                            sandbox stops execve and reads\n"
	    "       skiff-agent --help | --version\n"
	    "\n"
	    "skiff-agent is the worker agent of a skiff pool. It registers with the\n"
	    "queue, long-polls it for jobs, runs a job only when a key of its\n"
	    "trusted key set signed it, runs each step in the step's container\n"
	    "(Docker Engine API) or on the host, streams the log, uploads\n"
	    "artifacts, and after SKIFF_IDLE_TIMEOUT without work deregisters and\n"
	    "exits 0 so that the VM can terminate itself.\n"
	    "\n"
	    "Settings come from, in increasing priority: defaults, the file\n"
	    "(--config FILE, else $SKIFF_CONFIG, else " CONFIG_DEFAULT_PATH
	    " if it exists)\n"
	    "of SKIFF_KEY=value lines, the environment, and flags. Every key is\n"
	    "also a flag: SKIFF_QUEUE_URL is --queue-url. Durations take s, m,\n"
	    "h, d suffixes; sizes take K, M, G.\n"
	    "\n"
	    "settings:\n", f);
	for (size_t i = 0; i < NKEYS; i++) {
		char *flag = flag_name(keys[i].name);
		fprintf(f, "  SKIFF_%-24s --%s\n      %s", keys[i].name, flag,
		    keys[i].help);
		if (keys[i].def && *keys[i].def)
			fprintf(f, " [%s]", keys[i].def);
		fputc('\n', f);
		free(flag);
	}
	fputs(
	    "\n"
	    "signals:\n"
	    "  SIGTERM, SIGINT  drain: stop leasing, let running jobs finish within\n"
	    "                   SKIFF_DRAIN_GRACE, then cancel them; a second one\n"
	    "                   cancels at once\n"
	    "  SIGQUIT          leave at once: kill running steps, exit\n"
	    "\n"
	    "exit status:\n"
	    "  0   idle timeout or SKIFF_MAX_JOBS reached: the VM may terminate\n"
	    "  1   runtime failure (restart me)\n"
	    "  10  stopped by a signal\n"
	    "  75  the network half died (or broke the protocol): running jobs\n"
	    "      were stopped, their logs are in the spool (restart me)\n"
	    "  64  usage error: unknown option or command, missing argument\n"
	    "  77  the queue refused our credentials (registration token or agent\n"
	    "      token revoked)\n"
	    "  78  configuration error: a bad setting, a file named that cannot\n"
	    "      be used, a refused SKIFF_QUEUE_URL\n", f);
}

void config_free(struct agent_config *c)
{
	free(c->config_file);
	c->config_file = NULL;
	for (size_t i = 0; i < NKEYS; i++) {
		void *f = field(c, &keys[i]);
		if (keys[i].type == K_URL)
			config_strlist_free(&c->queue_urls);
		if (keys[i].type == K_STR || keys[i].type == K_URL) {
			char **s = f;
			if (*s && keys[i].secret)
				memset(*s, 0, strlen(*s));
			free(*s);
			*s = NULL;
		} else if (keys[i].type == K_LIST) {
			struct strlist *l = f;
			free_list(l->v, l->n);
			l->v = NULL;
			l->n = 0;
		}
	}
}

int config_registration_token(const struct agent_config *c, char **out)
{
	struct buf b = BUF_INIT(4096);
	int r;

	if (c->registration_token) {
		*out = xstrdup(c->registration_token);
		return 0;
	}
	if (c->registration_token_file == NULL)
		return -ENOENT;
	if ((r = fsx_read_file(c->registration_token_file, 4096, &b)) < 0) {
		buf_free(&b);
		return r;
	}
	while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' ||
	    b.data[b.len - 1] == ' '))
		b.data[--b.len] = '\0';
	if (b.len == 0 || b.len > 128) {
		buf_free(&b);
		return -EINVAL;
	}
	*out = buf_steal(&b, NULL);
	return 0;
}
