/*
 * The seam's message decoder (agent/seam/wire.c), as each half's channel
 * runs it on what the other half sent: the first byte picks the side that
 * reads (even: the network half reading the runner's messages, whose INIT
 * settings then go to netconf_parse; odd: the runner reading the network
 * half's), the rest is a stream of messages. Any bytes: no crash, no
 * leak, nothing decoded that breaks a type's bounds.
 */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "netconf.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum seamwire_from from;
	size_t off = 1;

	if (size < 1)
		return 0;
	from = (data[0] & 1) ? SEAMWIRE_FROM_NET : SEAMWIRE_FROM_RUNNER;
	while (size - off >= SEAMWIRE_HDR) {
		struct seamwire_hdr h;
		struct seamwire_msg m;
		const char *why;
		int fd = -1;

		memcpy(&h, data + off, sizeof(h));
		if (seamwire_check_hdr(from, &h, &why) < 0 ||
		    size - off - SEAMWIRE_HDR < h.len)
			break;
		if (seamwire_has_fd(h.type))
			fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (seamwire_decode(from, &h, data + off + SEAMWIRE_HDR, fd, &m,
		    &why) < 0) {
			if (fd >= 0)
				close(fd);
			break;
		}
		if (m.nexit > SEAMWIRE_EXITS_MAX || (m.s1 && strlen(m.s1) >
		    SEAMWIRE_INIT_MAX) || m.noutputs > SEAMWIRE_OUTPUTS_MAX)
			__builtin_trap();
		for (size_t i = 0; i < m.noutputs; i++)
			if (m.outputs[i].name == NULL || m.outputs[i].value == NULL ||
			    strlen(m.outputs[i].name) == 0 ||
			    strlen(m.outputs[i].name) > SEAMWIRE_OUTPUT_NAME_MAX ||
			    strlen(m.outputs[i].value) > SEAMWIRE_OUTPUT_VALUE_MAX)
				__builtin_trap();
		if (m.type == SW_CACHE_GET_DONE && (!m.s1 || !m.s2 ||
		    (strlen(m.s1) != 0 && strlen(m.s1) != 64) ||
		    strspn(m.s1, "0123456789abcdef") != strlen(m.s1)))
			__builtin_trap();
		if (m.type == SW_INIT) {
			struct net_config c;
			if (netconf_parse(m.s1, strlen(m.s1), &c, &why) == 0)
				netconf_free(&c);
		}
		seamwire_msg_clear(&m);
		off += SEAMWIRE_HDR + h.len;
	}
	return 0;
}
