/* A /dev/kmsg record (the kernel's OOM kill summaries): any bytes, never a
 * crash, the cgroup always terminated within its buffer. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "oomlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char memcg[OOMLOG_MEMCG_MAX];
	char small[8];
	uint64_t seq;

	if (oomlog_parse((const char *)data, size, &seq, memcg,
	    sizeof(memcg)) == 1) {
		if (strnlen(memcg, sizeof(memcg)) >= sizeof(memcg))
			__builtin_trap();
		(void)oomlog_names(memcg,
		    "7d48c3346c1231bbbd131533d97f785feabd3e8fdd58a7b91ed1f4c091757bb2");
	}
	if (oomlog_parse((const char *)data, size, &seq, small,
	    sizeof(small)) == 1 && strnlen(small, sizeof(small)) >= sizeof(small))
		__builtin_trap();
	return 0;
}
