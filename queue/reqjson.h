/*
 * The JSON bodies of the requests the queue accepts (docs/protocol.md
 * sections 4 and 5), parsed under the JSON guards (size, depth, duplicate
 * keys) into plain structs. Every refusal is a 400 whose message names the
 * field and the rule it broke. Unknown fields are ignored (section 1).
 */
#ifndef SKIFF_QUEUE_REQJSON_H
#define SKIFF_QUEUE_REQJSON_H

#include <stddef.h>
#include <stdint.h>

#include "jstate.h"

struct apierr;

#define REQJ_MAX_BODY (64 * 1024)
#define REQJ_MAX_DEPTH 8
#define REQJ_MAX_AGENT_LABELS 32
#define REQJ_MAX_EXIT_CODES 64
#define REQJ_MAX_TEXT 1024
/* A job's output variables in complete (docs/protocol.md 4.6, 8). */
#define REQJ_MAX_OUTPUTS 64
#define REQJ_MAX_OUTPUT_NAME 64
#define REQJ_MAX_OUTPUT_VALUE 4096
#define REQJ_MAX_OUTPUTS_TOTAL (16 * 1024)

struct reqj_register {
	char name[129];
	char *labels[REQJ_MAX_AGENT_LABELS];
	size_t nlabels;
	int capacity;
	char version[65];
};

struct reqj_lease {
	int wait;		/* seconds, 0-60; 30 when absent */
	int free;		/* informative */
};

struct reqj_complete {
	enum jstate result;
	int64_t exit_codes[REQJ_MAX_EXIT_CODES];
	size_t nexit;
	int64_t log_length;
	char reason_code[65];
	char reason[REQJ_MAX_TEXT + 1];
	char *outputs;		/* the "outputs" object as JSON text, or NULL */
};

struct reqj_artifact {
	char name[256];
	int64_t size;
};

/* POST /v1/leases/{id}/caches {"key", "size"} and
 * .../caches/restore {"key", "restore_keys"} (issue 13). */
#define REQJ_MAX_RESTORE_KEYS 8
struct reqj_cache {
	char key[256];
	int64_t size;		/* -1: not given */
	char restore[REQJ_MAX_RESTORE_KEYS][256];
	size_t nrestore;
};

/* Bodies that are JSON objects with one optional text field
 * ("reason", "description"); an empty body is an empty object. */
struct reqj_text {
	char text[REQJ_MAX_TEXT + 1];
};

/* 400 bad_request, reason bad_json, naming the offset of the first byte
 * of s[0..n) that is not UTF-8; returns -1. */
int reqj_utf8_error(const char *s, size_t n, const char *what,
    struct apierr *e);
int reqj_register(const char *s, size_t n, struct reqj_register *out,
    struct apierr *e);
void reqj_register_free(struct reqj_register *r);
int reqj_lease(const char *s, size_t n, struct reqj_lease *out,
    struct apierr *e);
/* Heartbeat fields are informative: any JSON object (or nothing). */
int reqj_heartbeat(const char *s, size_t n, struct apierr *e);
int reqj_complete(const char *s, size_t n, struct reqj_complete *out,
    struct apierr *e);
/* Frees what reqj_complete allocated (outputs). */
void reqj_complete_clear(struct reqj_complete *c);
int reqj_artifact(const char *s, size_t n, struct reqj_artifact *out,
    struct apierr *e);
/* restore 0: {"key", "size"}; 1: {"key", "restore_keys"}. */
int reqj_cache(const char *s, size_t n, int restore, struct reqj_cache *out,
    struct apierr *e);
/* {"sha256": 64 lowercase hex digits} into out. */
int reqj_commit(const char *s, size_t n, char out[65], struct apierr *e);
int reqj_text(const char *s, size_t n, const char *key,
    struct reqj_text *out, struct apierr *e);

#endif
