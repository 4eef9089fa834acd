/*
 * The container engine's answers, decoded as the agent's Docker client
 * decodes them (agent/docker/docker.c): any bytes, never a crash, and
 * every string of a result readable (ASan sees a result that points past
 * what it was decoded from).
 *
 * Input: "CALL STATUS\n" then the answer's body, e.g.
 *   inspect 200\n{"State":{"ExitCode":137,"Running":false,"OOMKilled":true}}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "fuzz.h"
#include "log.h"

static volatile size_t sink;

static void touch(const char *s)
{
	if (s)
		sink += strlen(s);
}

static void see(void *arg, const struct docker_res *r)
{
	(void)arg;
	touch(r->msg);
	if (r->err != 0)
		return;
	touch(r->id);
	touch(r->state);
	touch(r->root_dir);
	touch(r->server);
	for (size_t i = 0; i < r->n_containers; i++) {
		const struct docker_container *c = &r->containers[i];
		touch(c->id);
		touch(c->name);
		touch(c->image);
		touch(c->state);
		for (size_t k = 0; k < c->n_labels; k++) {
			touch(c->labels[k].key);
			touch(c->labels[k].value);
		}
	}
	for (size_t i = 0; i < r->n_images; i++) {
		touch(r->images[i].id);
		for (size_t k = 0; k < r->images[i].n_tags; k++)
			touch(r->images[i].tags[k]);
	}
	for (size_t i = 0; i < r->n_networks; i++) {
		touch(r->networks[i].id);
		touch(r->networks[i].name);
		for (size_t k = 0; k < r->networks[i].n_labels; k++) {
			touch(r->networks[i].labels[k].key);
			touch(r->networks[i].labels[k].value);
		}
	}
	if (r->svc) {
		touch(r->svc->health);
		for (size_t i = 0; i < r->svc->n_ports; i++) {
			touch(r->svc->ports[i].host_ip);
			if (r->svc->ports[i].container_port < 1 ||
			    r->svc->ports[i].container_port > 65535 ||
			    r->svc->ports[i].host_port < 1 ||
			    r->svc->ports[i].host_port > 65535)
				__builtin_trap();
		}
	}
	for (size_t i = 0; i < r->logs_len; i++)
		sink += (unsigned char)r->logs[i];
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The version answer logs the engine it found: not each run. */
	log_setup("fuzz", LOGL_ERROR, LOGF_LOGFMT);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *nl, *sp;
	char call[32];
	long status = 0;

	if ((nl = memchr(p, '\n', size)) == NULL ||
	    (sp = memchr(p, ' ', (size_t)(nl - p))) == NULL ||
	    (size_t)(sp - p) >= sizeof(call))
		return 0;
	memcpy(call, p, (size_t)(sp - p));
	call[sp - p] = '\0';
	for (const char *s = sp + 1; s < nl; s++) {
		if (*s < '0' || *s > '9' || status > 999)
			return 0;
		status = status * 10 + (*s - '0');
	}
	(void)docker_decode_answer(call, status, nl + 1,
	    size - (size_t)(nl + 1 - p), see, NULL);
	return 0;
}
