#include "artname.h"

/* One component: non-empty, not "." or "..", no forbidden byte. */
static int component_ok(const char *c, size_t n)
{
	if (n == 0 || (n == 1 && c[0] == '.') ||
	    (n == 2 && c[0] == '.' && c[1] == '.'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)c[i];
		if (b < 0x20 || b == 0x7f || b == '\\')
			return 0;
	}
	return 1;
}

int artname_valid(const char *s, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > ARTNAME_MAX)
		return 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '/')
			continue;
		if (!component_ok(s + start, i - start))
			return 0;
		start = i + 1;
	}
	return 1;
}
