/*
 * The web view's readers of browser input (queue/ui.c): the Cookie header
 * (the session cookie), Origin, Host and Sec-Fetch-Site (a login), and the
 * artifact name that becomes a Content-Disposition. Never a crash; a
 * token found is of the token form and lies inside the header; the
 * disposition is printable ASCII without a quote or backslash in the
 * file name; and the step list the job page reads from a stored JWS
 * (jobs_steps_json), which is at most JOB_MAX_STEPS entries.
 * Input: NUL-separated fields: cookie, origin, host, fetch-site, name,
 * and the rest: a compact JWS.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "apierr.h"
#include "fuzz.h"
#include "job.h"
#include "queue.h"
#include "token.h"
#include "ui.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *f[6] = { NULL };
	char d[UI_DISPOSITION_MAX];
	const char *tok;
	size_t n, k = 0, p = 0;
	int rc;

	memcpy(buf, data, size);
	buf[size] = '\0';
	while (k < 6 && p <= size) {
		f[k++] = buf + p;
		p += strlen(buf + p) + 1;
	}
	rc = ui_cookie_token(f[0], &tok, &n);
	if (rc == 0 && (!token_valid(tok, n) || tok < f[0] ||
	    tok + n > f[0] + strlen(f[0])))
		__builtin_trap();
	if (rc != 0 && rc != -ENOENT && rc != -EINVAL)
		__builtin_trap();
	(void)ui_same_origin(f[1], f[2], f[3]);
	ui_disposition(f[4] ? f[4] : "", d);
	if (strncmp(d, "attachment; filename=\"", 22) != 0)
		__builtin_trap();
	for (const char *c = d + 22; *c && c[1]; c++)
		if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20 ||
		    (unsigned char)*c > 0x7e)
			__builtin_trap();
	if (f[5]) {
		struct apierr e;
		cJSON *out = NULL;
		size_t rest = size - (size_t)(f[5] - buf);
		if (jobs_steps_json(f[5], rest, &out, &e) == 0 &&
		    cJSON_GetArraySize(cJSON_GetObjectItem(out, "steps")) >
		    JOB_MAX_STEPS)
			__builtin_trap();
		cJSON_Delete(out);
	}
	free(buf);
	return 0;
}
