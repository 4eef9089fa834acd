#include "ui.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "token.h"

extern const char skiff_ui_html[], skiff_ui_js[], skiff_ui_css[];

/* A sail, so that the browser asks for no /favicon.ico. */
static const char favicon[] =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">"
    "<path d=\"M8 1v11H2z\" fill=\"#1f5fa8\"/>"
    "<path d=\"M1 13h14l-2 2H3z\" fill=\"#20262e\"/></svg>";

static const struct ui_asset assets[] = {
	{ "favicon.svg", "image/svg+xml", favicon },
	{ "", "text/html; charset=utf-8", skiff_ui_html },
	{ "index.html", "text/html; charset=utf-8", skiff_ui_html },
	{ "app.js", "text/javascript; charset=utf-8", skiff_ui_js },
	{ "app.css", "text/css; charset=utf-8", skiff_ui_css },
};

const char *const ui_headers[] = {
	"Content-Security-Policy", "default-src 'none'; script-src 'self'; "
	    "style-src 'self'; img-src 'self'; connect-src 'self'; "
	    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	"X-Frame-Options", "DENY",
	"Referrer-Policy", "no-referrer",
	"Cross-Origin-Opener-Policy", "same-origin",
	"Cross-Origin-Resource-Policy", "same-origin",
	NULL,
};

const struct ui_asset *ui_asset_find(const char *name)
{
	for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++)
		if (strcmp(assets[i].name, name) == 0)
			return &assets[i];
	return NULL;
}

int ui_cookie_token(const char *header, const char **tok, size_t *n)
{
	static const char name[] = UI_COOKIE "=";
	const char *p = header, *found = NULL;
	size_t flen = 0;

	if (header == NULL)
		return -ENOENT;
	while (*p) {
		const char *end;
		while (*p == ' ' || *p == '\t')
			p++;
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) >= sizeof(name) - 1 &&
		    memcmp(p, name, sizeof(name) - 1) == 0) {
			if (found)
				return -EINVAL;
			found = p + sizeof(name) - 1;
			flen = (size_t)(end - found);
			while (flen > 0 && (found[flen - 1] == ' ' ||
			    found[flen - 1] == '\t'))
				flen--;
		}
		p = *end ? end + 1 : end;
	}
	if (found == NULL)
		return -ENOENT;
	if (!token_valid(found, flen))
		return -EINVAL;
	*tok = found;
	*n = flen;
	return 0;
}

int ui_same_origin(const char *origin, const char *host,
    const char *fetch_site)
{
	const char *rest;

	if (fetch_site && strcmp(fetch_site, "same-origin") != 0)
		return 0;
	if (origin == NULL)
		return 1;
	if (host == NULL || *host == '\0')
		return 0;
	if (strncmp(origin, "https://", 8) == 0)
		rest = origin + 8;
	else if (strncmp(origin, "http://", 7) == 0)
		rest = origin + 7;
	else
		return 0;
	return strcmp(rest, host) == 0;
}

void ui_disposition(const char *name, char out[UI_DISPOSITION_MAX])
{
	const char *base = strrchr(name, '/');
	char file[UI_DISPOSITION_MAX - 32];
	size_t k = 0;

	base = base ? base + 1 : name;
	for (; *base && k + 1 < sizeof(file); base++) {
		char c = *base;
		file[k++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ?
		    c : '_';
	}
	file[k] = '\0';
	if (k == 0 || strspn(file, ".") == k)
		snprintf(file, sizeof(file), "artifact");
	snprintf(out, UI_DISPOSITION_MAX, "attachment; filename=\"%s\"", file);
}
