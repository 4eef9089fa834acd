/*
 * The job: claims and the `job` object of a signed payload
 * (docs/protocol.md section 3), parsed into C structs under the limits of
 * section 8, and the whole verification pipeline of section 3.2.
 */
#ifndef SKIFF_JOB_H
#define SKIFF_JOB_H

#include <stddef.h>
#include <stdint.h>

struct err;
struct jwk;
struct jwks;
struct replay;

/* Rejection reasons (docs/protocol.md section 11). Stable. */
enum job_reason {
	JOBR_OK = 0,
	JOBR_TOO_LARGE,
	JOBR_MALFORMED,
	JOBR_BAD_BASE64,
	JOBR_BAD_HEADER,
	JOBR_ALG,
	JOBR_UNKNOWN_KID,
	JOBR_BAD_SIGNATURE,
	JOBR_BAD_JSON,
	JOBR_TOO_DEEP,
	JOBR_BAD_CLAIMS,
	JOBR_EXPIRED,
	JOBR_NOT_YET_VALID,
	JOBR_BAD_IAT,
	JOBR_WRONG_AUD,
	JOBR_REPLAYED,
	JOBR_SCHEMA,
	JOBR_LIMITS,
	JOBR_SECRET,
	JOBR_COUNT
};

#define JOB_MAX_DEPTH       16
#define JOB_MAX_STEPS       64
#define JOB_MAX_ENV         128
#define JOB_MAX_SECRETS     64
#define JOB_MAX_INPUTS      32
/* job.caches (docs/protocol.md 3.4) */
#define JOB_MAX_CACHES      4
#define JOB_MAX_CACHE_PATHS 32
#define JOB_MAX_RESTORE_KEYS 8
#define JOB_MAX_CACHE_KEY   255
#define JOB_MAX_REGISTRIES  8
#define JOB_MAX_LABELS      16
#define JOB_MAX_ARTIFACTS   32
#define JOB_MAX_SHELL       8
#define JOB_MAX_NAME        128
#define JOB_MAX_SCRIPT      (64 * 1024)
#define JOB_MAX_ENV_VALUE   (32 * 1024)
#define JOB_MAX_SECRET      (8 * 1024)
#define JOB_MAX_LIFETIME    (30 * 86400)
#define JOB_DEFAULT_TIMEOUT 3600
#define JOB_MAX_TIMEOUT     86400
/* job.services (docs/protocol.md section 3.4) */
#define JOB_MAX_SERVICES        8
#define JOB_MAX_SERVICE_NAME    32
#define JOB_MAX_SERVICE_PORTS   16
#define JOB_MAX_SERVICE_ARGS    64
#define JOB_MAX_SERVICE_ARG     4096
#define JOB_DEFAULT_SERVICE_WAIT 60
#define JOB_MAX_SERVICE_WAIT    600

enum job_pull { JOB_PULL_IF_NOT_PRESENT, JOB_PULL_ALWAYS, JOB_PULL_NEVER };

struct job_kv {
	char *name;
	char *value;
};

struct job_secret {
	char *name;
	char *sealed;		/* base64url, as signed */
	char *value;		/* after job_open_secrets; wiped on free */
	size_t value_len;
};

struct job_registry {
	char *server;
	char *username;
	char *password;		/* the name of a secret */
};

struct job_input {
	char *url;
	char *path;
	unsigned char sha256[32];
	char sha256_hex[65];
	int extract;
};

/* A cache: restored before the first step, saved after success. */
struct job_cache {
	char *key;
	char **paths;		/* relative to the workspace */
	size_t npaths;
	char **restore_keys;	/* prefixes, tried in order */
	size_t nrestore;
};

struct job_step {
	char *name;
	char *image;		/* NULL: host step */
	enum job_pull pull;
	char **shell;
	size_t nshell;
	char *script;
	struct job_kv *env;
	size_t nenv;
	char *workdir;		/* "" for the workspace itself */
	char *user;		/* NULL: the image's (or the agent's) */
	int64_t timeout;	/* 0: the job's remaining time */
	int continue_on_error;
	char **artifacts;
	size_t nartifacts;
	int64_t memory_mb;	/* 0: agent default */
	int64_t nano_cpus;	/* 0: agent default */
	int64_t pids;		/* 0: agent default */
};

enum job_wait { JOB_WAIT_NONE, JOB_WAIT_TCP, JOB_WAIT_HEALTH };

/* A container that runs beside the steps for the whole job. */
struct job_service {
	char *name;		/* a DNS label: [a-z]([a-z0-9-]*[a-z0-9])? */
	char *env_name;		/* name upper-cased, '-' as '_' */
	char *image;
	enum job_pull pull;	/* as a step's */
	struct job_kv *env;
	size_t nenv;
	char **command;		/* NULL: the image's CMD (its ENTRYPOINT stays) */
	size_t ncommand;
	int *ports;		/* container TCP ports, published on 127.0.0.1 */
	size_t nports;
	enum job_wait wait;
	int wait_port;		/* JOB_WAIT_TCP: one of ports */
	int64_t wait_timeout;	/* seconds */
};

struct job {
	char *iss;
	char *jti;
	char **aud;
	size_t naud;
	int64_t iat, exp, nbf;
	int has_nbf;
	char *name;
	char **labels;
	size_t nlabels;
	int64_t timeout;
	struct job_kv *env;
	size_t nenv;
	struct job_secret *secrets;
	size_t nsecrets;
	struct job_registry *registries;
	size_t nregistries;
	struct job_input *inputs;
	size_t ninputs;
	struct job_step *steps;
	size_t nsteps;
	/* "container": "shared": consecutive container steps of the same
	 * image, user and resources run in one container */
	int shared_container;
	struct job_service *services;
	size_t nservices;
	struct job_cache *caches;
	size_t ncaches;
};

struct job_check {
	const struct jwks *trusted;
	const char *pool;	/* NULL: audience not checked (queue side) */
	int64_t now;
	int64_t skew;
	struct replay *replay;	/* NULL: no replay check (queue side) */
};

const char *job_reason_code(enum job_reason r);
/* Name validity for env and secret names: [A-Za-z_][A-Za-z0-9_]{0,127}. */
int job_env_name_valid(const char *s);
/* Relative path without "..", empty components or a leading '/'. */
int job_relpath_valid(const char *s, int allow_empty);
int job_jti_valid(const char *s);
int job_label_valid(const char *s);
/* A service name: a DNS label of at most JOB_MAX_SERVICE_NAME bytes,
 * lower case, starting with a letter. */
int job_service_name_valid(const char *s);
/* A cache key or restore key: [A-Za-z0-9_.:+=@,/-]{1,255}. */
int job_cache_key_valid(const char *s);

/*
 * The payload JSON into a job: claims (presence and types) and the job
 * object against the schema and limits. Time, audience and replay are
 * checked by job_check_claims.
 */
int job_parse(const char *payload, size_t n, struct job **out, struct err *e);
int job_check_claims(const struct job *j, const struct job_check *c,
    struct err *e);
/*
 * The whole pipeline of docs/protocol.md section 3.2, steps 1 to 8:
 * verify the raw JWS, parse, check claims and replay. On success the jti
 * is recorded in the replay cache (when one is given) and *out is the job.
 * Secrets are opened separately with job_open_secrets.
 */
int job_verify(const char *compact, size_t n, const struct job_check *c,
    struct job **out, struct err *e);
/* Opens every sealed secret with the pool's private key; all or nothing:
 * after a failure no opened value is left in j. */
int job_open_secrets(struct job *j, const struct jwk *pool_key,
    struct err *e);
void job_free(struct job *j);
/* The secret named name (value NULL until job_open_secrets succeeded);
 * NULL when the job has no such secret. */
const struct job_secret *job_secret_find(const struct job *j,
    const char *name);

#endif
