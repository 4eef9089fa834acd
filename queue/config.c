#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <libpq-fe.h>

#include "log.h"
#include "server.h"
#include "strnum.h"
#include "xalloc.h"

static const char usage_text[] =
"NAME\n"
"    skiff-queue - the reference queue server of skiff\n"
"\n"
"SYNOPSIS\n"
"    skiff-queue --data-dir DIR --tls-cert FILE --tls-key FILE [options]\n"
"    skiff-queue --data-dir DIR --insecure-http [options]\n"
"    skiff-queue --dev [--data-dir DIR] [options]\n"
"    skiff-queue --postgres CONNINFO --tls-cert FILE --tls-key FILE [options]\n"
"\n"
"DESCRIPTION\n"
"    skiff-queue is the central queue of a skiff pool. Operators submit\n"
"    signed jobs to it (skiffctl submit); skiff-agent processes register\n"
"    with a pool registration token, lease jobs over HTTPS long-polls,\n"
"    send heartbeats, logs and artifacts, and complete the jobs. The wire\n"
"    contract is docs/protocol.md; operating notes are docs/queue.md.\n"
"\n"
"    State lives in an SQLite database (WAL) under the data directory,\n"
"    with log bytes and artifact files beside it. Anything the queue has\n"
"    acknowledged survives kill -9 and, with --sync full, a power loss.\n"
"\n"
"    With --postgres, all state lives in PostgreSQL instead and the\n"
"    queue keeps nothing another replica needs: run several replicas on\n"
"    one database, behind a load balancer or with --reuse-port on one\n"
"    host (docs/queue.md, \"Replicas on PostgreSQL\").\n"
"\n"
"    The queue runs in one thread on an epoll loop; a held long-poll\n"
"    costs a suspended connection and a timer, and is answered the moment\n"
"    a matching job is submitted.\n"
"\n"
"OPTIONS\n"
"    --listen ADDR:PORT\n"
"        Address to serve on; IPv6 as [ADDR]:PORT. Port 0 picks a free\n"
"        port (see --port-file). Default 0.0.0.0:8443, with --dev\n"
"        127.0.0.1:8443.\n"
"    --port-file FILE\n"
"        Write the bound port number to FILE once listening.\n"
"    --data-dir DIR\n"
"        Where the database, logs and artifacts live (created 0700).\n"
"        Required unless --dev, which then uses a temporary directory\n"
"        removed at exit.\n"
"    --tls-cert FILE, --tls-key FILE\n"
"        PEM certificate chain and private key to serve HTTPS with.\n"
"    --insecure-http\n"
"        Serve plain HTTP. For loopback development only: tokens and\n"
"        jobs cross the wire in clear.\n"
"    --dev\n"
"        Development mode: makes a CA and a server certificate for\n"
"        127.0.0.1, ::1 and localhost (kept in DIR/tls), an admin token\n"
"        and a registration token for pool \"dev\", prints them and writes\n"
"        them to DIR/dev.env as KEY=value lines (SKIFF_QUEUE_URL,\n"
"        SKIFF_CA_FILE, SKIFF_ADMIN_TOKEN, SKIFF_REGISTRATION_TOKEN,\n"
"        SKIFF_POOL). Run again with the same --data-dir, it reuses them.\n"
"    --admin-token-file FILE\n"
"        File holding the admin token (first line). The environment\n"
"        variable SKIFF_ADMIN_TOKEN is used when this is not given. One of\n"
"        them is required unless --dev.\n"
"    --metrics-token-file FILE\n"
"        Require this bearer token on /metrics (default: open).\n"
"    --trusted-keys FILE\n"
"        JWKS of trusted signing keys. Submitted jobs are then verified as\n"
"        an agent would (signature, claims, schema) and refused early with\n"
"        422. Agents verify again regardless.\n"
"    --postgres CONNINFO\n"
"        Keep all state in PostgreSQL: a libpq connection string or URI\n"
"        (host=db1,db2 target_session_attrs=read-write dbname=skiff ...).\n"
"        No password in it: use --postgres-password-file, PGPASSFILE or\n"
"        ~/.pgpass. The schema is created (or migrated) at start.\n"
"    --postgres-password-file FILE\n"
"        The database password (first line of FILE).\n"
"    --postgres-connections N\n"
"        Connections each replica keeps for queries (4, 1 to 64), plus\n"
"        one that LISTENs.\n"
"    --reuse-port\n"
"        Bind with SO_REUSEPORT, so that several replicas on one host\n"
"        share --listen and the kernel spreads connections over them.\n"
"    --sync full|normal\n"
"        full (default): fsync the database, log bytes and artifact data\n"
"        before acknowledging them. normal: survive a crash of the queue,\n"
"        not of the machine; faster.\n"
"\n"
"TIMING (DUR is 90, 90s, 15m, 2h, 7d)\n"
"    --ack-window DUR          time to acknowledge a lease (15s)\n"
"    --lease-ttl DUR           lease lifetime without a heartbeat (120s)\n"
"    --heartbeat-interval DUR  heartbeat interval told to agents\n"
"                              (10s, at most a third of the TTL)\n"
"    --max-attempts N          attempts before a job is lost (3)\n"
"    --lease-wait DUR          long-poll wait told to agents (30s)\n"
"    --max-lease-wait DUR      cap on a requested wait, at most 60s (60s)\n"
"    --clock-skew DUR          a queued job expires at exp + skew (60s)\n"
"    --client-timeout DUR      close a connection idle this long (60s)\n"
"    --handshake-timeout DUR   close a connection that has not sent a\n"
"                              whole request head this long after it\n"
"                              was accepted: TLS handshake and headers\n"
"                              (10s)\n"
"\n"
"LIMITS (SIZE is 512, 64k, 10M, 2G, 1GiB)\n"
"    --max-connections N       connections held at once (20000); up to\n"
"                              N/16 more are answered 429\n"
"    --max-connections-per-ip N  connections from one client address\n"
"                              (1000; 0: no limit); past it a new\n"
"                              connection is closed at once\n"
"    --max-log SIZE            log bytes per job attempt (1G)\n"
"    --max-artifact SIZE       one artifact file (4G)\n"
"    --max-artifacts-total SIZE  all artifacts of a job attempt (10G)\n"
"    --max-artifact-count N    artifacts per job attempt (1000)\n"
"    --max-cache SIZE          one cache a job saves (2G)\n"
"    --max-cache-pool SIZE     all caches of a pool; the least recently\n"
"                              used go past it (20G)\n"
"    --log-workers N           threads that inflate and write log chunks\n"
"                              off the request loop (4; 1-64); 16 more\n"
"                              sync them with --sync full\n"
"\n"
"RETENTION\n"
"    --retain DUR              delete ended jobs (succeeded, failed,\n"
"                              canceled, timed_out, rejected, expired,\n"
"                              lost) with their logs, artifacts, leases\n"
"                              and uploads once their end is older than\n"
"                              DUR (and their exp has passed), e.g. 30d.\n"
"                              Default: keep everything\n"
"\n"
"LOGGING\n"
"    --log-level error|warn|info|debug   (info)\n"
"    --log-format logfmt|json            (logfmt), on standard error\n"
"\n"
"    --help     this text\n"
"    --version  version and protocol\n"
"\n"
"SIGNALS\n"
"    SIGTERM, SIGINT: stop accepting, answer held long-polls with 503,\n"
"    finish requests in flight (at most 5 s), exit 0.\n"
"\n"
"EXIT STATUS\n"
"    0  stopped by SIGTERM or SIGINT; --help, --version\n"
"    1  a fatal error while serving (the store could not be written)\n"
"    2  bad command line: an unknown option, a value out of range, a\n"
"       --listen that is not ADDR:PORT; nothing has been touched yet\n"
"    3  could not start: TLS files, token files, trusted keys (all\n"
"       read before the data directory is made), data directory,\n"
"       database (PostgreSQL unreachable, its schema newer than this\n"
"       skiff-queue), listen address in use or not local\n"
"\n"
"EXAMPLES\n"
"    skiff-queue --dev\n"
"    skiff-queue --data-dir /var/lib/skiff-queue --listen 0.0.0.0:8443 \\\n"
"        --tls-cert /etc/skiff/queue.pem --tls-key /etc/skiff/queue.key \\\n"
"        --admin-token-file /etc/skiff/admin-token\n";

void cfg_usage(FILE *f)
{
	fputs(usage_text, f);
}

void cfg_defaults(struct qcfg *c)
{
	memset(c, 0, sizeof(*c));
	c->sync_full = 1;
	c->pg_connections = 4;
	c->ack_window = 15;
	c->lease_ttl = 120;
	c->heartbeat_interval = 0;	/* 0: min(10 s, TTL / 3) */
	c->max_attempts = 3;
	c->lease_wait = 30;
	c->max_lease_wait = 60;
	c->clock_skew = 60;
	c->client_timeout = 60;
	c->handshake_timeout = 10;
	c->max_connections_per_ip = 1000;
	c->max_connections = 20000;
	c->max_log = INT64_C(1) << 30;
	c->max_artifact = INT64_C(4) << 30;
	c->max_artifacts_total = INT64_C(10) << 30;
	c->max_cache = INT64_C(2) << 30;
	c->max_cache_pool = INT64_C(20) << 30;
	c->max_artifact_count = 1000;
	c->log_workers = 4;
	c->log_level = LOGL_INFO;
	c->log_format = LOGF_LOGFMT;
}

void cfg_free(struct qcfg *c)
{
	free(c->listen);
	free(c->port_file);
	free(c->data_dir);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->admin_token_file);
	free(c->metrics_token_file);
	free(c->trusted_keys);
	free(c->postgres);
	free(c->pg_password_file);
	memset(c, 0, sizeof(*c));
}

enum {
	O_LISTEN = 256, O_PORT_FILE, O_DATA_DIR, O_TLS_CERT, O_TLS_KEY,
	O_INSECURE, O_DEV, O_ADMIN_TOKEN_FILE, O_METRICS_TOKEN_FILE,
	O_TRUSTED_KEYS, O_SYNC, O_ACK, O_TTL, O_HB, O_ATTEMPTS, O_WAIT,
	O_MAX_WAIT, O_SKEW, O_CLIENT_TIMEOUT, O_HANDSHAKE_TIMEOUT, O_MAX_CONN,
	O_MAX_CONN_PER_IP, O_MAX_LOG,
	O_MAX_ART, O_MAX_ART_TOTAL, O_MAX_ART_COUNT, O_MAX_CACHE, O_MAX_CACHE_POOL, O_LOG_WORKERS, O_RETAIN,
	O_LOG_LEVEL, O_LOG_FORMAT, O_HELP, O_VERSION, O_POSTGRES, O_PG_PASSWORD,
	O_PG_CONNS, O_REUSE_PORT,
};

static const struct option long_opts[] = {
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "port-file", required_argument, NULL, O_PORT_FILE },
	{ "data-dir", required_argument, NULL, O_DATA_DIR },
	{ "tls-cert", required_argument, NULL, O_TLS_CERT },
	{ "tls-key", required_argument, NULL, O_TLS_KEY },
	{ "insecure-http", no_argument, NULL, O_INSECURE },
	{ "dev", no_argument, NULL, O_DEV },
	{ "admin-token-file", required_argument, NULL, O_ADMIN_TOKEN_FILE },
	{ "metrics-token-file", required_argument, NULL, O_METRICS_TOKEN_FILE },
	{ "trusted-keys", required_argument, NULL, O_TRUSTED_KEYS },
	{ "sync", required_argument, NULL, O_SYNC },
	{ "ack-window", required_argument, NULL, O_ACK },
	{ "lease-ttl", required_argument, NULL, O_TTL },
	{ "heartbeat-interval", required_argument, NULL, O_HB },
	{ "max-attempts", required_argument, NULL, O_ATTEMPTS },
	{ "lease-wait", required_argument, NULL, O_WAIT },
	{ "max-lease-wait", required_argument, NULL, O_MAX_WAIT },
	{ "clock-skew", required_argument, NULL, O_SKEW },
	{ "client-timeout", required_argument, NULL, O_CLIENT_TIMEOUT },
	{ "handshake-timeout", required_argument, NULL, O_HANDSHAKE_TIMEOUT },
	{ "max-connections", required_argument, NULL, O_MAX_CONN },
	{ "max-connections-per-ip", required_argument, NULL, O_MAX_CONN_PER_IP },
	{ "max-log", required_argument, NULL, O_MAX_LOG },
	{ "max-artifact", required_argument, NULL, O_MAX_ART },
	{ "max-artifacts-total", required_argument, NULL, O_MAX_ART_TOTAL },
	{ "max-cache", required_argument, NULL, O_MAX_CACHE },
	{ "max-cache-pool", required_argument, NULL, O_MAX_CACHE_POOL },
	{ "max-artifact-count", required_argument, NULL, O_MAX_ART_COUNT },
	{ "log-workers", required_argument, NULL, O_LOG_WORKERS },
	{ "retain", required_argument, NULL, O_RETAIN },
	{ "postgres", required_argument, NULL, O_POSTGRES },
	{ "postgres-password-file", required_argument, NULL, O_PG_PASSWORD },
	{ "postgres-connections", required_argument, NULL, O_PG_CONNS },
	{ "reuse-port", no_argument, NULL, O_REUSE_PORT },
	{ "log-level", required_argument, NULL, O_LOG_LEVEL },
	{ "log-format", required_argument, NULL, O_LOG_FORMAT },
	{ "help", no_argument, NULL, O_HELP },
	{ "version", no_argument, NULL, O_VERSION },
	{ NULL, 0, NULL, 0 },
};

static const char *opt_name(int c)
{
	for (const struct option *o = long_opts; o->name; o++)
		if (o->val == c)
			return o->name;
	return "?";
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

/* Numeric options: where the value goes and how it is read. */
struct numopt {
	int opt;
	size_t off;
	int kind;	/* 'd' duration, 'n' integer, 's' size */
	int64_t min, max;
};

#define OFF(f) offsetof(struct qcfg, f)
static const struct numopt numopts[] = {
	{ O_ACK, OFF(ack_window), 'd', 1, 3600 },
	{ O_TTL, OFF(lease_ttl), 'd', 1, 86400 },
	{ O_HB, OFF(heartbeat_interval), 'd', 1, 86400 },
	{ O_ATTEMPTS, OFF(max_attempts), 'n', 1, 100 },
	{ O_WAIT, OFF(lease_wait), 'd', 1, 60 },
	{ O_MAX_WAIT, OFF(max_lease_wait), 'd', 1, 60 },
	{ O_SKEW, OFF(clock_skew), 'd', 0, 3600 },
	{ O_CLIENT_TIMEOUT, OFF(client_timeout), 'd', 1, 3600 },
	{ O_HANDSHAKE_TIMEOUT, OFF(handshake_timeout), 'd', 1, 3600 },
	{ O_MAX_CONN, OFF(max_connections), 'n', 16, 1000000 },
	{ O_MAX_CONN_PER_IP, OFF(max_connections_per_ip), 'n', 0, 1000000 },
	{ O_MAX_LOG, OFF(max_log), 's', 1024, INT64_C(1) << 50 },
	{ O_MAX_ART, OFF(max_artifact), 's', 1, INT64_C(1) << 50 },
	{ O_MAX_ART_TOTAL, OFF(max_artifacts_total), 's', 1, INT64_C(1) << 50 },
	{ O_MAX_ART_COUNT, OFF(max_artifact_count), 'n', 1, 1000000 },
	{ O_MAX_CACHE, OFF(max_cache), 's', 1, INT64_C(1) << 50 },
	{ O_MAX_CACHE_POOL, OFF(max_cache_pool), 's', 1, INT64_C(1) << 50 },
	{ O_LOG_WORKERS, OFF(log_workers), 'n', 1, 64 },
	/* Up to a century; "keep everything" is the default, not a value. */
	{ O_RETAIN, OFF(retain), 'd', 1, INT64_C(36500) * 86400 },
	{ O_PG_CONNS, OFF(pg_connections), 'n', 1, 64 },
};

static int set_num(struct qcfg *c, const struct numopt *no, const char *v,
    FILE *err)
{
	const char *why = NULL;
	int64_t *dst = (int64_t *)(void *)((char *)c + no->off);
	int r;

	if (no->kind == 'd')
		r = strnum_duration(v, no->min, no->max, dst, &why);
	else if (no->kind == 's')
		r = strnum_size(v, no->min, no->max, dst, &why);
	else
		r = strnum_i64(v, no->min, no->max, dst, &why);
	if (r < 0)
		fprintf(err, "skiff-queue: --%s %s: %s (from %lld to %lld%s)\n",
		    opt_name(no->opt), v, why, (long long)no->min,
		    (long long)no->max, no->kind == 'd' ? " seconds" :
		    no->kind == 's' ? " bytes" : "");
	return r;
}

static int set_enum(struct qcfg *c, int opt, const char *v, FILE *err)
{
	enum log_level l;
	enum log_format f;

	if (opt == O_SYNC && (strcmp(v, "full") == 0 || strcmp(v, "normal") == 0)) {
		c->sync_full = strcmp(v, "full") == 0;
		return 0;
	}
	if (opt == O_LOG_LEVEL && log_level_parse(v, &l) == 0) {
		c->log_level = (int)l;
		return 0;
	}
	if (opt == O_LOG_FORMAT && log_format_parse(v, &f) == 0) {
		c->log_format = (int)f;
		return 0;
	}
	fprintf(err, "skiff-queue: --%s %s: not one of %s\n", opt_name(opt), v,
	    opt == O_SYNC ? "full, normal" : opt == O_LOG_LEVEL ?
	    "error, warn, info, debug" : "logfmt, json");
	return -EINVAL;
}

static int set_opt(struct qcfg *c, int opt, const char *v, FILE *err)
{
	for (size_t i = 0; i < sizeof(numopts) / sizeof(numopts[0]); i++)
		if (numopts[i].opt == opt)
			return set_num(c, &numopts[i], v, err);
	switch (opt) {
	case O_LISTEN: set_str(&c->listen, v); return 0;
	case O_PORT_FILE: set_str(&c->port_file, v); return 0;
	case O_DATA_DIR: set_str(&c->data_dir, v); return 0;
	case O_TLS_CERT: set_str(&c->tls_cert, v); return 0;
	case O_TLS_KEY: set_str(&c->tls_key, v); return 0;
	case O_INSECURE: c->insecure_http = 1; return 0;
	case O_DEV: c->dev = 1; return 0;
	case O_ADMIN_TOKEN_FILE: set_str(&c->admin_token_file, v); return 0;
	case O_METRICS_TOKEN_FILE: set_str(&c->metrics_token_file, v); return 0;
	case O_TRUSTED_KEYS: set_str(&c->trusted_keys, v); return 0;
	case O_POSTGRES: set_str(&c->postgres, v); return 0;
	case O_PG_PASSWORD: set_str(&c->pg_password_file, v); return 0;
	case O_REUSE_PORT: c->reuse_port = 1; return 0;
	default: return set_enum(c, opt, v, err);
	}
}

static int check_transport(const struct qcfg *c, FILE *err)
{
	int tls = c->tls_cert || c->tls_key;

	if (tls && (!c->tls_cert || !c->tls_key)) {
		fputs("skiff-queue: --tls-cert and --tls-key go together\n", err);
		return -EINVAL;
	}
	if (c->dev + tls + c->insecure_http != 1) {
		fputs("skiff-queue: choose one of --tls-cert/--tls-key, "
		    "--insecure-http or --dev\n", err);
		return -EINVAL;
	}
	if (c->postgres && (c->dev || c->data_dir)) {
		fputs("skiff-queue: --postgres keeps everything in the database: "
		    "no --data-dir or --dev with it\n", err);
		return -EINVAL;
	}
	if (!c->dev && !c->data_dir && !c->postgres) {
		fputs("skiff-queue: --data-dir is required (or --dev, or "
		    "--postgres)\n", err);
		return -EINVAL;
	}
	if (c->pg_password_file && !c->postgres) {
		fputs("skiff-queue: --postgres-password-file goes with "
		    "--postgres\n", err);
		return -EINVAL;
	}
	return 0;
}

/* A password on the command line is visible to every user of the host
 * (ps, /proc): refused, with where it belongs instead. */
static int check_postgres(const struct qcfg *c, FILE *err)
{
	PQconninfoOption *opts, *o;
	char *why = NULL;
	int r = 0;

	if (c->postgres == NULL)
		return 0;
	if ((opts = PQconninfoParse(c->postgres, &why)) == NULL) {
		fprintf(err, "skiff-queue: --postgres: %s", why ? why :
		    "not a connection string\n");
		PQfreemem(why);
		return -EINVAL;
	}
	for (o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && *o->val) {
			fputs("skiff-queue: --postgres: no password on the command "
			    "line; use --postgres-password-file, PGPASSFILE or "
			    "~/.pgpass\n", err);
			r = -EINVAL;
		}
	PQconninfoFree(opts);
	return r;
}

static int check_timing(const struct qcfg *c, FILE *err)
{
	if (c->heartbeat_interval > c->lease_ttl) {
		fprintf(err, "skiff-queue: --heartbeat-interval %llds is longer "
		    "than --lease-ttl %llds\n", (long long)c->heartbeat_interval,
		    (long long)c->lease_ttl);
		return -EINVAL;
	}
	if (c->lease_wait > c->max_lease_wait) {
		fprintf(err, "skiff-queue: --lease-wait %llds is over "
		    "--max-lease-wait %llds\n", (long long)c->lease_wait,
		    (long long)c->max_lease_wait);
		return -EINVAL;
	}
	return 0;
}

/* A malformed address is a usage error, found before the data directory
 * is made; whether it can be bound is found at start (exit 3). */
static int check_listen(const struct qcfg *c, FILE *err)
{
	struct sockaddr_storage ss;
	unsigned len;

	if (srv_parse_listen(c->listen, &ss, &len) == 0)
		return 0;
	fprintf(err, "skiff-queue: --listen %s: want ADDR:PORT or [ADDR]:PORT "
	    "with a numeric address and a port from 0 to 65535\n", c->listen);
	return -EINVAL;
}

int cfg_parse(struct qcfg *c, int argc, char **argv, FILE *out, FILE *err)
{
	int opt;

	optind = 0;	/* GNU: reinitialise, so that tests can parse twice */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
		if (opt == O_HELP) {
			cfg_usage(out);
			return 1;
		}
		if (opt == O_VERSION) {
			fprintf(out, "skiff-queue %s (protocol 1)\n", SKIFF_VERSION);
			return 1;
		}
		if (opt == '?' || opt == ':') {
			fprintf(err, "skiff-queue: %s '%s'; see --help\n",
			    opt == ':' ? "missing value for" : "unknown option",
			    argv[optind - 1]);
			return -EINVAL;
		}
		if (set_opt(c, opt, optarg, err) < 0)
			return -EINVAL;
	}
	if (optind < argc) {
		fprintf(err, "skiff-queue: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (c->heartbeat_interval == 0) {
		c->heartbeat_interval = c->lease_ttl / 3 < 10 ? c->lease_ttl / 3 : 10;
		if (c->heartbeat_interval < 1)
			c->heartbeat_interval = 1;
	}
	if (check_transport(c, err) < 0 || check_timing(c, err) < 0 ||
	    check_postgres(c, err) < 0)
		return -EINVAL;
	if (c->listen == NULL)
		c->listen = xstrdup(c->dev ? "127.0.0.1:8443" : "0.0.0.0:8443");
	return check_listen(c, err);
}
