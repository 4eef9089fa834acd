/*
 * Agent configuration. Every setting has one name, SKIFF_<NAME>, used
 * alike in the configuration file (KEY=value lines, so that a systemd
 * EnvironmentFile can be the same file), in the environment and, as
 * --<name-with-dashes>, on the command line. Precedence: defaults, then the
 * file, then the environment, then flags. Unknown keys and bad values are
 * errors that name the key and where it came from.
 */
#ifndef SKIFF_AGENT_CONFIG_H
#define SKIFF_AGENT_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "log.h"

#define CONFIG_DEFAULT_PATH "/etc/skiff/agent.conf"

struct strlist {
	char **v;
	size_t n;
};

/*
 * SKIFF_QUEUE_URL is one URL or several, comma-separated: the replicas of
 * one queue (docs/agent.md, "Several queue URLs"). Each is checked by
 * urlpolicy_base and kept as libcurl writes it back.
 */
#define CONFIG_QUEUE_URLS_MAX	16	/* URLs in the list */
#define CONFIG_QUEUE_URLS_LEN	4096	/* bytes of the whole value */

struct agent_config {
	char *queue_url;		/* the list as kept, comma-joined */
	struct strlist queue_urls;	/* the same, one URL an entry */
	char *pool;
	char *registration_token;
	char *registration_token_file;
	char *name;
	struct strlist labels;
	char *trusted_keys;
	char *pool_key;
	char *ca_file;
	char *pinned_pubkey;
	char *state_dir;
	char *work_dir;
	char *spool_dir;
	char *docker_host;
	int64_t idle_timeout;		/* seconds; 0 = never */
	int64_t max_jobs;		/* 0 = unlimited */
	int64_t capacity;
	enum log_level log_level;
	enum log_format log_format;
	char *on_exit;
	int64_t clock_skew;
	int64_t lease_wait;
	int64_t kill_grace;
	int64_t drain_grace;
	int keep_workspace;
	int host_steps;
	char *net_user;			/* the network half's, when root */
	char *step_user;		/* host steps', when root */
	char *config_file;		/* the file read (it may not exist) */
	char *host_tracking;		/* auto, cgroup, session (proctrack.h) */
	int docker_socket_in_steps;
	int warm_containers;		/* made ahead, exec per step (warm.h) */
	int64_t step_memory_mb;		/* 0 = no limit */
	int64_t step_nano_cpus;		/* 0 = no limit */
	int64_t step_pids;		/* 0 = no limit */
	int64_t disk_floor_mb;		/* 0 = never prune */
	struct strlist prepull_keep;
	int64_t max_artifact_bytes;
	int64_t max_artifacts;
	int64_t max_spool_bytes;
	int64_t max_input_bytes;	/* MiB */
	int64_t inputs_cache_mb;
	char *inputs_ca_file;
};

/* What config_load found on the command line besides settings. */
#define CONFIG_HELP	1	/* --help, -h: print config_usage, exit 0 */
#define CONFIG_VERSION	2	/* --version, -V */
#define CONFIG_USAGE	3	/* unknown option, missing argument: exit 64 */

/*
 * Loads defaults, then the file (--config FILE, else $SKIFF_CONFIG, else
 * CONFIG_DEFAULT_PATH; a missing default file is fine, a named one that
 * cannot be read is an error naming it), then environ, then the flags in
 * argv. The command line's shape is checked first, before any file is
 * read. Prints errors to stderr naming the key or the file. Returns 0,
 * CONFIG_HELP, CONFIG_VERSION, CONFIG_USAGE, or -EINVAL for a bad
 * setting (exit 78); *argi is the index of the first non-option argument.
 */
int config_load(struct agent_config *c, int argc, char **argv, int *argi,
    int *check_only);
/*
 * Parses a SKIFF_QUEUE_URL value into out (each URL as libcurl writes it
 * back, trailing '/' removed, in the order given). Refused, with *why set
 * to a reason that names the URL by its place ("URL 2 of 3 is empty"):
 * an empty value or element (",a", "a,,b", "a,"), a space or control
 * character anywhere, a byte outside ASCII, more than
 * CONFIG_QUEUE_URLS_MAX URLs, a value over CONFIG_QUEUE_URLS_LEN bytes,
 * the same URL twice (compared as kept, ignoring case), and any URL
 * urlpolicy_base refuses. *why is static, or a buffer valid until the
 * next call. Returns 0 or -EINVAL (out untouched).
 */
int config_parse_queue_urls(const char *v, struct strlist *out,
    const char **why);
void config_strlist_free(struct strlist *l);
/* Checks cross-field rules and URL policy; reads nothing from disk. */
int config_validate(const struct agent_config *c);
/*
 * Checks that every file a setting names can be used: readable regular
 * files (token file, trusted keys, pool key, CA files), an executable
 * SKIFF_ON_EXIT. Prints one line per bad file naming the key and the
 * path. Returns 0 or -EINVAL.
 */
int config_check_files(const struct agent_config *c);
/* KEY=value lines of the effective configuration, secrets redacted. */
void config_print(const struct agent_config *c, FILE *f);
void config_usage(FILE *f);
void config_free(struct agent_config *c);
/* Reads the registration token (from the value or the file). */
int config_registration_token(const struct agent_config *c, char **out);

#endif
