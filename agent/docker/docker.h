/*
 * Docker Engine API client for the runner half: HTTP over the engine's
 * unix socket through the agent's libcurl-on-the-event-loop client, never
 * the docker CLI, so every operation is one request with a structured
 * answer. Podman's Docker-compatible socket (`podman system service`)
 * speaks the same API and is driven the same way. docs/docker.md has the
 * call sequence of a step and what the engines were seen to do.
 *
 * API versions: the client speaks the server's version, capped at
 * DOCKER_API_MAX, and refuses a server below DOCKER_API_MIN. Every
 * endpoint and field used here is unchanged from 1.40 (Docker 19.03) to
 * 1.47 (Docker 27); tested with Docker 20.10 (1.41) and Podman 4.3 (1.41).
 *
 * Operations are asynchronous: each takes a completion callback and an
 * argument, and optionally gives back a handle to cancel it. The handle
 * belongs to the client: it is freed right after its done callback
 * returns (or by docker_op_cancel, which calls nothing), so a caller
 * keeping one clears its copy in the callback. Results passed to a
 * callback live only during the call. All callbacks run from the event
 * loop outside libcurl, so they may start, cancel or free anything,
 * except the client itself (docker_free is for the end, outside them).
 *
 * Failures come back as a negative errno with the engine's message:
 *   -ECONNREFUSED  no engine on the socket (stopped or restarting)  transient
 *   -ETIMEDOUT     no answer in time                                transient
 *   -EIO           the connection broke mid-answer                  transient
 *   -EAGAIN        the engine answered 5xx (it, or a registry behind
 *                  it, failed; the same call may work later)        transient
 *   -ENOENT        no such container or image (404)
 *   -EBUSY         conflict (409): name in use, container running,
 *                  image in use by a container
 *   -EINVAL        the engine refused the request (400)
 *   -EACCES        pull: the registry refused or wanted credentials
 *                  (Docker reports this as a 500; classified by text)
 *   -EPROTO        an answer that is not what the API promises
 *   -E2BIG         an answer over its cap
 *   -ENOTSUP       open: API version outside what this client speaks
 * docker_res.transient is set for the transient ones: retry with backoff.
 */
#ifndef SKIFF_AGENT_DOCKER_H
#define SKIFF_AGENT_DOCKER_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct docker;
struct docker_op;

#define DOCKER_DEFAULT_HOST "unix:///var/run/docker.sock"
#define DOCKER_API_MIN "1.40"
#define DOCKER_API_MAX "1.47"

/* Caps on what the engine sends back. */
#define DOCKER_MAX_ANSWER (1u << 20)	/* inspect, create, errors */
#define DOCKER_MAX_LIST   (16u << 20)	/* container and image lists */

struct docker_label {
	const char *key;
	const char *value;
};

struct docker_container {	/* an entry of docker_container_list */
	const char *id;
	const char *name;		/* without the leading '/' */
	const char *image;
	const char *state;		/* "created", "running", "exited", ... */
	int64_t created;		/* unix seconds */
	const struct docker_label *labels;
	size_t n_labels;
};

struct docker_image {		/* an entry of docker_image_list */
	const char *id;
	const char *const *tags;	/* "repo:tag"; none for an untagged image */
	size_t n_tags;
	int64_t created;		/* unix seconds */
	int64_t size;			/* bytes */
};

struct docker_res {
	int err;		/* 0 or a negative errno, see above */
	int transient;		/* err is worth retrying later */
	long status;		/* HTTP status, 0 without an answer */
	const char *msg;	/* the engine's or libcurl's words, or "" */
	/* Filled on success, by operation: */
	const char *id;		/* container_create: the new id;
				 * image_inspect: the image id */
	int present;		/* image_inspect: 1 present, 0 absent (err 0) */
	int64_t exit_code;	/* container_wait, container_inspect */
	int oom_killed;		/* container_inspect */
	int running;		/* container_inspect, exec_inspect */
	int pid;		/* exec_inspect: the process on the host, or 0 */
	const char *state;	/* container_inspect: "exited", "running", ... */
	const struct docker_container *containers;	/* container_list */
	size_t n_containers;
	const struct docker_image *images;		/* image_list */
	size_t n_images;
	const char *root_dir;	/* info: DockerRootDir (Podman: graph root) */
	const char *server;	/* info: ServerVersion */
	/* networks and services (the block at the end): */
	const struct docker_network *networks;		/* network_list */
	size_t n_networks;
	const struct docker_service_info *svc;		/* service_inspect */
	const char *logs;	/* container_logs: not NUL-terminated */
	size_t logs_len;
};

typedef void (*docker_done_fn)(void *arg, const struct docker_res *r);
/* The engine has set up what was asked (attach: the output is connected;
 * wait: the waiter is registered), before any result. */
typedef void (*docker_ready_fn)(void *arg);
/* Demultiplexed output: stream 1 stdout, 2 stderr; n > 0. */
typedef void (*docker_output_fn)(void *arg, int stream, const char *data,
    size_t n);
/* A summary line of a pull (one per layer state change). */
typedef void (*docker_progress_fn)(void *arg, const char *line);

/* ---- the client ---- */

/* No I/O: parses host ("unix:///abs/path"; NULL: DOCKER_DEFAULT_HOST).
 * -EINVAL for another scheme or a relative path. */
int docker_new(struct ev_loop *loop, const char *host, struct docker **out);
/* Outstanding operations are cancelled without callbacks. NULL is fine. */
void docker_free(struct docker *d);
/* GET /_ping then /version, and settles the API version. Async. */
int docker_negotiate(struct docker *d, docker_done_fn done, void *arg,
    struct docker_op **opp);
/* docker_new + docker_negotiate, running the loop until answered or
 * timeout_ms passed: for start-up, before the loop runs anything else.
 * On failure writes why into err. */
int docker_open(struct ev_loop *loop, const char *host, long timeout_ms,
    struct docker **out, char *err, size_t errlen);
/* "1.41" once negotiated, else NULL. */
const char *docker_api_version(const struct docker *d);
/* The engine's product and version from /version, e.g. "Docker 20.10.24"
 * or "Podman Engine 4.3.1", once negotiated. */
const char *docker_server(const struct docker *d);
/* Requests sent since docker_new (for the benchmark). */
uint64_t docker_calls(const struct docker *d);
/* Cancels an operation in flight: its callbacks are never called. */
void docker_op_cancel(struct docker_op *op);

/* ---- images ---- */

struct docker_auth {		/* for a private registry; never logged */
	const char *username;
	const char *password;
	const char *server;	/* registry host[:port] */
};

/* present = 1 and id, or present = 0 (not an error). */
int docker_image_inspect(struct docker *d, const char *ref,
    docker_done_fn done, void *arg, struct docker_op **opp);
/* POST /images/create. ref without a tag or digest means ":latest" (the
 * engine would pull every tag). auth may be NULL; progress may be NULL.
 * An error inside the 200 stream fails the pull with its message. */
int docker_image_pull(struct docker *d, const char *ref,
    const struct docker_auth *auth, docker_progress_fn progress,
    docker_done_fn done, void *arg, struct docker_op **opp);
int docker_image_list(struct docker *d, docker_done_fn done, void *arg,
    struct docker_op **opp);
/* Untags and deletes; never forced (-EBUSY while a container uses it). */
int docker_image_remove(struct docker *d, const char *ref,
    docker_done_fn done, void *arg, struct docker_op **opp);
/* GET /info: root_dir and server. */
int docker_info(struct docker *d, docker_done_fn done, void *arg,
    struct docker_op **opp);

/* ---- containers ---- */

struct docker_mount {
	const char *source;	/* host path; must exist */
	const char *target;	/* path in the container */
	int read_only;
};

struct docker_create {
	const char *name;	/* NULL: the engine picks one */
	const char *image;
	/* Replaces the image's ENTRYPOINT, and its CMD is not used: the
	 * container runs exactly this argv. Required. */
	char *const *argv;
	char *const *env;	/* K=V, NULL-terminated; NULL: none added */
	const char *workdir;	/* NULL: the image's */
	const char *user;	/* NULL: the image's */
	const struct docker_mount *mounts;
	size_t n_mounts;
	const struct docker_label *labels;
	size_t n_labels;
	int64_t memory;		/* bytes; 0: no limit */
	/* Memory plus swap, bytes: 0 means equal to memory (no swap, so a
	 * step over its limit is OOM-killed rather than slowed); -1 means
	 * unlimited swap. Ignored without memory. */
	int64_t memory_swap;
	int64_t nano_cpus;	/* 1e9 per CPU; 0: no limit */
	int64_t pids_limit;	/* 0: no limit */
	const char *network;	/* NULL: the engine's default */
	int open_stdin;		/* stdin open, attached by no one */
};

/* Always: Init (a minimal init as pid 1 forwards signals and reaps),
 * no TTY, no stdin, not privileged, not auto-removed. */
int docker_container_create(struct docker *d, const struct docker_create *c,
    docker_done_fn done, void *arg, struct docker_op **opp);
/* Streams stdout and stderr until the container's output ends. ready
 * comes when the engine has hijacked the connection: start the container
 * from there (or later) and no output is lost. done comes at the end of
 * the stream, with err 0 after a clean end. */
int docker_container_attach(struct docker *d, const char *id,
    docker_ready_fn ready, docker_output_fn output, docker_done_fn done,
    void *arg, struct docker_op **opp);
/* An already running container is not an error. */
int docker_container_start(struct docker *d, const char *id,
    docker_done_fn done, void *arg, struct docker_op **opp);
/* Waits, without a time limit, until the container is not running (call
 * it after start: a created container is "not running" already), and
 * gives exit_code. ready may be NULL. */
int docker_container_wait(struct docker *d, const char *id,
    docker_ready_fn ready, docker_done_fn done, void *arg,
    struct docker_op **opp);
/* Waits for the next exit, so it may be sent before start (as docker run
 * does): the answer comes as soon as the engine has seen the exit. ready
 * comes when the engine has registered the waiter. */
int docker_container_wait_next(struct docker *d, const char *id,
    docker_ready_fn ready, docker_done_fn done, void *arg,
    struct docker_op **opp);
/* state, running, exit_code, oom_killed. */
int docker_container_inspect(struct docker *d, const char *id,
    docker_done_fn done, void *arg, struct docker_op **opp);
/* SIGTERM (the image's stop signal), then SIGKILL after grace_s seconds;
 * done when it has stopped. A stopped container is not an error. */
int docker_container_stop(struct docker *d, const char *id, int grace_s,
    docker_done_fn done, void *arg, struct docker_op **opp);
/* SIGKILL. A container that is not running is not an error. */
int docker_container_kill(struct docker *d, const char *id,
    docker_done_fn done, void *arg, struct docker_op **opp);
/* Forced (kills a running one) and with its anonymous volumes. */
int docker_container_remove(struct docker *d, const char *id,
    docker_done_fn done, void *arg, struct docker_op **opp);
/* All containers (running or not) carrying every label given as "k=v"
 * (or "k": any value). */
int docker_container_list(struct docker *d, const char *const *labels,
    size_t n_labels, docker_done_fn done, void *arg,
    struct docker_op **opp);

/* ---- networks and service containers (job.services) ---- */

struct docker_network {		/* an entry of docker_network_list */
	const char *id;
	const char *name;
	const struct docker_label *labels;
	size_t n_labels;
};

struct docker_port {		/* a published TCP port of a container */
	int container_port;
	int host_port;
	const char *host_ip;	/* "127.0.0.1", or "" for all addresses */
};

struct docker_service_info {	/* docker_service_inspect, beside state */
	/* State.Health.Status: "starting", "healthy", "unhealthy"; "" when
	 * the container has no health check. */
	const char *health;
	int has_healthcheck;	/* Config.Healthcheck, other than NONE */
	const struct docker_port *ports;	/* NetworkSettings.Ports */
	size_t n_ports;
};

struct docker_service {
	const char *name;	/* container name; NULL: the engine picks one */
	const char *image;
	/* The arguments of the image's ENTRYPOINT, which is always kept;
	 * NULL: the image's CMD. */
	char *const *cmd;
	char *const *env;	/* K=V, NULL-terminated; NULL: none added */
	const struct docker_label *labels;
	size_t n_labels;
	const char *network;	/* required: the container's only network */
	const char *alias;	/* its DNS name there, and its host name */
	const int *ports;	/* TCP; each published on 127.0.0.1 only, on a
				 * host port the engine picks */
	size_t n_ports;
	int64_t memory;		/* bytes, 0: none; no swap beyond it */
	int64_t nano_cpus;
	int64_t pids_limit;
};

/* A bridge network of that name carrying labels; gives id. -EBUSY when
 * the name is taken. */
int docker_network_create(struct docker *d, const char *name,
    const struct docker_label *labels, size_t n_labels, docker_done_fn done,
    void *arg, struct docker_op **opp);
/* By id or name. -ENOENT when it is gone; while containers are attached
 * Docker answers 403 (-EACCES) and Podman 500 (-EAGAIN). */
int docker_network_remove(struct docker *d, const char *id,
    docker_done_fn done, void *arg, struct docker_op **opp);
/* Networks carrying every label given as "k=v" (or "k"). */
int docker_network_list(struct docker *d, const char *const *labels,
    size_t n_labels, docker_done_fn done, void *arg,
    struct docker_op **opp);
/* A long-running container as its image means it: its ENTRYPOINT, and
 * CMD unless cmd is given; no init added, not privileged, no TTY. */
int docker_service_create(struct docker *d, const struct docker_service *s,
    docker_done_fn done, void *arg, struct docker_op **opp);
/* state, running, exit_code, oom_killed and svc. */
int docker_service_inspect(struct docker *d, const char *id,
    docker_done_fn done, void *arg, struct docker_op **opp);
/* The last tail (1..1000) lines of the container's stdout and stderr,
 * demultiplexed, in the order written: logs and logs_len. -E2BIG when
 * they are over DOCKER_MAX_ANSWER. */
int docker_container_logs(struct docker *d, const char *id, int tail,
    docker_done_fn done, void *arg, struct docker_op **opp);

/* ---- exec: a process in a running container ---- */

struct docker_exec {
	char *const *argv;	/* required */
	char *const *env;	/* K=V added to the container's; NULL: none */
	const char *workdir;	/* NULL: the container's */
	const char *user;	/* NULL: the container's */
};

/* id: the exec's id. */
int docker_exec_create(struct docker *d, const char *id,
    const struct docker_exec *e, docker_done_fn done, void *arg,
    struct docker_op **opp);
/* Starts it and streams its stdout and stderr (demultiplexed) until they
 * end, which the engine does once the process has exited (and its output
 * is drained, or a short while after: a background child holding the
 * stream does not keep it open). Start and stream are one request, so no
 * output is lost. No exit code: docker_exec_inspect gives it. */
int docker_exec_start(struct docker *d, const char *exec_id,
    docker_output_fn output, docker_done_fn done, void *arg,
    struct docker_op **opp);
/* running, exit_code (-1 while running) and pid (its host pid, 0 when
 * the engine does not say). */
int docker_exec_inspect(struct docker *d, const char *exec_id,
    docker_done_fn done, void *arg, struct docker_op **opp);

/*
 * For the fuzz target and tests: decodes an answer of the named call
 * ("version", "image-inspect", "image-list", "info", "create",
 * "exec-create", "exec-inspect", "wait", "inspect", "list",
 * "network-create", "network-list", "service-inspect", "logs", "kill";
 * "pull" only with a failed status) with HTTP status as if the engine had
 * sent it, and hands the result to see (NULL is fine) before freeing what
 * it points into. Returns the result's err; -EINVAL for an unknown call.
 */
int docker_decode_answer(const char *call, long status, const char *data,
    size_t n, void (*see)(void *arg, const struct docker_res *r), void *arg);

#endif
