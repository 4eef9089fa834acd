/*
 * skiff-queue's command line: every option, its default (the timing and
 * limit defaults of docs/protocol.md sections 7 and 8), and the checks
 * that run before anything starts.
 */
#ifndef SKIFF_QUEUE_CONFIG_H
#define SKIFF_QUEUE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

/* Exit codes (also in --help and docs/queue.md). */
#define QEX_OK      0	/* stopped by SIGTERM or SIGINT */
#define QEX_FAIL    1	/* a fatal error while serving (store I/O) */
#define QEX_USAGE   2	/* bad command line */
#define QEX_START   3	/* could not start: data dir, database, TLS, listen */

struct qcfg {
	char *listen;		/* ADDR:PORT or [ADDR]:PORT */
	char *port_file;
	char *data_dir;
	char *tls_cert, *tls_key;
	int insecure_http;
	int dev;
	char *admin_token_file;
	char *metrics_token_file;
	char *trusted_keys;
	int sync_full;

	int64_t ack_window;	/* seconds */
	int64_t lease_ttl;
	int64_t heartbeat_interval;
	int64_t max_attempts;
	int64_t lease_wait;	/* what agents are told to ask for */
	int64_t max_lease_wait;	/* the cap on what they ask for */
	int64_t clock_skew;
	int64_t client_timeout;
	int64_t handshake_timeout;	/* accept to a whole request head */
	int64_t max_connections;
	int64_t max_connections_per_ip;	/* 0: no limit */

	int64_t max_log;
	int64_t max_artifact;
	int64_t max_artifacts_total;
	int64_t max_artifact_count;
	int64_t max_cache;		/* one cache (issue 13) */
	int64_t max_cache_pool;	/* a pool's caches, LRU evicted past it */

	int64_t log_workers;	/* threads that inflate and write log bytes */

	int64_t retain;		/* seconds after its end a job is deleted; 0: kept */

	char *postgres;		/* libpq connection string: the PostgreSQL store */
	char *pg_password_file;
	int64_t pg_connections;
	int reuse_port;		/* SO_REUSEPORT */

	int log_level;		/* enum log_level */
	int log_format;		/* enum log_format */
};

void cfg_defaults(struct qcfg *c);
/*
 * Parses argv into c (after cfg_defaults). 0: run; 1: --help or --version
 * was printed to out, exit 0; -EINVAL: a message went to err, exit
 * QEX_USAGE.
 */
int cfg_parse(struct qcfg *c, int argc, char **argv, FILE *out, FILE *err);
void cfg_free(struct qcfg *c);
void cfg_usage(FILE *f);

#endif
