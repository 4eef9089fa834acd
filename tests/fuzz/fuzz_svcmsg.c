/* ##skiff[...] service message parser: any bytes, never a crash. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "svcmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct svcmsg m;

	if (svcmsg_parse((const char *)data, size, &m) == 1) {
		for (size_t i = 0; i < m.nattrs; i++)
			if (strlen(m.attrs[i].value) > SVCMSG_MAX_VALUE)
				__builtin_trap();
		(void)svcmsg_get(&m, "path");
	}
	return 0;
}
