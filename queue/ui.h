/*
 * The web view at /ui/ (docs/queue.md, "The web view"): its assets, built
 * into the binary from queue/ui/, the headers every one of its answers
 * carries, and what reads the browser's side of a request: the session
 * cookie, the origin of a login, and the file name an artifact download
 * is saved as.
 */
#ifndef SKIFF_QUEUE_UI_H
#define SKIFF_QUEUE_UI_H

#include <stddef.h>

/* The session cookie: it holds a viewer token, nothing else. */
#define UI_COOKIE "skiff_view"
#define UI_DISPOSITION_MAX 160

struct ui_asset {
	const char *name;	/* "" is the page itself */
	const char *type;
	const char *data;
};

/* The asset named (the path after /ui/), NULL when there is none. */
const struct ui_asset *ui_asset_find(const char *name);
/* NULL-terminated name, value pairs: a strict Content-Security-Policy (no
 * inline script or style, nothing from elsewhere), no framing, no
 * referrer (X-Content-Type-Options: nosniff is on every answer). */
extern const char *const ui_headers[];

/*
 * The token in the skiff_view cookie of a Cookie header value (RFC 6265
 * section 4.2.1: "name=value" pairs separated by "; "). 0 and *tok, *n
 * set; -ENOENT when the header or the cookie is absent; -EINVAL when the
 * cookie is there twice or its value is not of the token form.
 */
int ui_cookie_token(const char *header, const char **tok, size_t *n);
/*
 * 1 when a request from a browser comes from the view's own origin:
 * Sec-Fetch-Site (when sent) is same-origin and Origin (when sent) is
 * http:// or https:// followed by exactly the Host header. Either may be
 * NULL (absent).
 */
int ui_same_origin(const char *origin, const char *host,
    const char *fetch_site);
/* Content-Disposition for an artifact: attachment, with the last path
 * component of name as the file name, every byte outside
 * [A-Za-z0-9._-] replaced by '_' (so that no quote, no control character
 * and no path reaches the header). */
void ui_disposition(const char *name, char out[UI_DISPOSITION_MAX]);

#endif
