#include "strv.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

char **strv_copy(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	char **c = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++) {
		memset(v[i], 0, strlen(v[i]));
		free(v[i]);
	}
	free(v);
}
