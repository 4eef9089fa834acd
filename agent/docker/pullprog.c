#include "pullprog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonx.h"
#include "xalloc.h"

/* Docker's messages nest three levels; a little room for other engines. */
#define PULLPROG_MAX_DEPTH 8

void pullprog_init(struct pullprog *p, pullprog_line_fn fn, void *arg)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->msg, PULLPROG_MSG_MAX);
	p->fn = fn;
	p->arg = arg;
}

void pullprog_free(struct pullprog *p)
{
	if (p == NULL)
		return;
	buf_free(&p->msg);
	free(p->layers);
	free(p->error);
	p->layers = NULL;
	p->error = NULL;
}

const char *pullprog_error(const struct pullprog *p)
{
	return p->error;
}

/* Drops the bytes of a UTF-8 sequence that a cut left incomplete. */
static size_t utf8_trim(const char *s, size_t n)
{
	size_t i = n, cont = 0;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && cont < 3) {
		i--;
		cont++;
	}
	if (i == 0 || ((unsigned char)s[i - 1] & 0x80) == 0)
		return n;
	unsigned char lead = (unsigned char)s[i - 1];
	size_t need = (lead & 0xE0) == 0xC0 ? 1 : (lead & 0xF0) == 0xE0 ? 2 :
	    (lead & 0xF8) == 0xF0 ? 3 : 0;
	return need == cont ? n : i - 1;
}

static void emit(struct pullprog *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Registry text reaches the job log: no control bytes, bounded length. */
static void emit(struct pullprog *p, const char *fmt, ...)
{
	char line[PULLPROG_LINE_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	int len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	size_t n = (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1;
	if ((size_t)len >= sizeof(line))
		n = utf8_trim(line, n);
	line[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	p->lines++;
	if (p->fn)
		p->fn(p->arg, line);
}

static const char *human_size(int64_t v, char *out, size_t outlen)
{
	static const char *unit[] = { "kB", "MB", "GB", "TB" };
	double d = (double)v;
	int u = -1;

	if (v < 1000) {
		snprintf(out, outlen, "%lld B", (long long)v);
		return out;
	}
	while (d >= 1000 && u < 3) {
		d /= 1000;
		u++;
	}
	snprintf(out, outlen, "%.1f %s", d, unit[u]);
	return out;
}

static int present(const cJSON *it)
{
	return it != NULL && !cJSON_IsNull(it);
}

static void take_error(struct pullprog *p, const cJSON *j)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *detail = cJSON_GetObjectItemCaseSensitive(j, "errorDetail");
	const char *m = NULL;

	if (!present(e) && !present(detail))
		return;
	if (jsonx_string(detail, "message", PULLPROG_MSG_MAX, &m) < 0 ||
	    *m == '\0')
		jsonx_string(j, "error", PULLPROG_MSG_MAX, &m);
	if (p->error == NULL)
		p->error = xstrdup(m && *m ? m : "unspecified pull error");
}

static struct pullprog_layer *find_layer(struct pullprog *p, const char *id)
{
	for (size_t i = 0; i < p->n_layers; i++)
		if (strcmp(p->layers[i].id, id) == 0)
			return &p->layers[i];
	if (p->n_layers == PULLPROG_MAX_LAYERS)
		return NULL;
	p->layers = xreallocarray(p->layers, p->n_layers + 1,
	    sizeof(*p->layers));
	struct pullprog_layer *l = &p->layers[p->n_layers++];
	snprintf(l->id, sizeof(l->id), "%s", id);
	l->state[0] = '\0';
	return l;
}

/* A layer's state; "Retrying in 5 seconds" counts down once a second
 * and is one state. */
static void layer_state(const char *status, char *out, size_t outlen)
{
	if (strncmp(status, "Retrying in ", 12) == 0)
		status = "Retrying";
	snprintf(out, outlen, "%s", status);
}

static void layer_message(struct pullprog *p, const cJSON *j,
    const char *id, const char *status)
{
	char state[PULLPROG_STATE_MAX], size[32];
	int64_t total = 0;
	struct pullprog_layer *l = find_layer(p, id);

	if (l == NULL) {
		p->untracked++;
		return;
	}
	layer_state(status, state, sizeof(state));
	if (strcmp(l->state, state) == 0)
		return;
	memcpy(l->state, state, sizeof(state));
	const cJSON *pd = cJSON_GetObjectItemCaseSensitive(j, "progressDetail");
	if (jsonx_int(pd, "total", 1, INT64_MAX, &total) == 0)
		emit(p, "%s: %s %s", l->id, state,
		    human_size(total, size, sizeof(size)));
	else
		emit(p, "%s: %s", l->id, state);
}

static void take_message(struct pullprog *p, const cJSON *j)
{
	const char *status = NULL, *id = NULL;

	take_error(p, j);
	if (jsonx_string(j, "status", PULLPROG_MSG_MAX, &status) < 0 ||
	    *status == '\0')
		return;
	jsonx_string(j, "id", PULLPROG_MSG_MAX, &id);
	/* "Pulling from repo" carries the tag as its id, not a layer. */
	if (id == NULL || *id == '\0' || strncmp(status, "Pulling from ", 13) == 0)
		emit(p, "%s", status);
	else
		layer_message(p, j, id, status);
}

static int handle(struct pullprog *p, const char *s, size_t n)
{
	int jerr = 0;

	while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return 0;
	cJSON *j = jsonx_parse(s, n, PULLPROG_MSG_MAX, PULLPROG_MAX_DEPTH, &jerr);
	if (j == NULL)
		return jerr == JSONX_TOO_BIG ? -E2BIG : -EPROTO;
	int rc = 0;
	if (!cJSON_IsObject(j)) {
		rc = -EPROTO;
		goto out;
	}
	p->messages++;
	take_message(p, j);
out:
	cJSON_Delete(j);
	return rc;
}

int pullprog_feed(struct pullprog *p, const char *data, size_t n)
{
	while (n > 0 && p->err == 0) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;
		if (buf_append(&p->msg, data, take) < 0) {
			p->err = -E2BIG;
			break;
		}
		data += take;
		n -= take;
		if (nl == NULL)
			break;
		data++;
		n--;
		p->err = handle(p, p->msg.data ? p->msg.data : "", p->msg.len);
		buf_reset(&p->msg);
	}
	return p->err;
}

int pullprog_finish(struct pullprog *p)
{
	if (p->err == 0 && p->msg.len > 0)
		p->err = handle(p, p->msg.data, p->msg.len);
	buf_reset(&p->msg);
	return p->err;
}

static int has_word(const char *msg, const char *const *words)
{
	for (; *words; words++)
		if (strcasestr(msg, *words))
			return 1;
	return 0;
}

enum pullprog_class pullprog_classify(const char *message)
{
	/* Docker's and Podman's wording for a registry that refused the
	 * credentials or wanted some; Docker Hub also says "denied" for a
	 * repository that does not exist, which the caller cannot tell
	 * apart either. Checked before "not found". */
	static const char *const auth[] = { "unauthorized",
	    "authentication required", "no basic auth credentials",
	    "access denied", "requested access to the resource is denied",
	    "incorrect username or password", "invalid username/password",
	    NULL };
	static const char *const notfound[] = { "manifest unknown",
	    "not found", "name unknown", "does not exist", NULL };

	if (message == NULL)
		return PULLPROG_OTHER;
	if (has_word(message, auth))
		return PULLPROG_AUTH;
	/* A layer the registry lost ("unknown blob", Podman's "reading blob
	 * ...: 404 (Not Found)") is the registry's fault, not a wrong name. */
	if (strcasestr(message, "blob"))
		return PULLPROG_OTHER;
	if (has_word(message, notfound))
		return PULLPROG_NOTFOUND;
	return PULLPROG_OTHER;
}
