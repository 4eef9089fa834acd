/*
 * skiff-unpack: the agent runs this to unpack a job input (docs/agent.md,
 * "Inputs"). Exit 0 when unpacked; 1 with the reason on standard error
 * when refused or broken; 64 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "strnum.h"
#include "unpack.h"

static const char usage[] =
    "usage: skiff-unpack [OPTIONS] ARCHIVE.tar.gz (DIR | --dir-fd N)\n"
    "Unpacks a skiff job input into DIR, refusing absolute names, '..',\n"
    "links that lead out of DIR (also through other links), device files,\n"
    "FIFOs and sockets. Every entry is made beneath DIR's file descriptor.\n"
    "  --dir-fd N         unpack into the directory open on fd N\n"
    "  --max-bytes SIZE   refuse an archive that unpacks to more (16G)\n"
    "  --max-entries N    refuse an archive with more entries (100000)\n"
"  --no-links         refuse symbolic and hard links as well (a cache)\n"
    "  --help, --version\n"
    "Exit: 0 unpacked, 1 refused or broken (the reason on stderr), 64 usage.\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir-fd", required_argument, NULL, 'd' },
		{ "max-bytes", required_argument, NULL, 'b' },
		{ "max-entries", required_argument, NULL, 'e' },
		{ "no-links", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t max_bytes = (int64_t)UNPACK_MAX_BYTES;
	int64_t max_entries = (int64_t)UNPACK_MAX_ENTRIES;
	const char *errstr;
	char err[512] = "";
	int dirfd = -1, c;
	unsigned flags = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (strnum_int(optarg, 0, 1 << 20, &dirfd, &errstr) < 0) {
				fprintf(stderr, "skiff-unpack: --dir-fd: %s\n", errstr);
				return 64;
			}
			break;
		case 'b':
			if (strnum_size(optarg, 0, INT64_MAX, &max_bytes, &errstr) < 0) {
				fprintf(stderr, "skiff-unpack: --max-bytes: %s\n", errstr);
				return 64;
			}
			break;
		case 'e':
			if (strnum_i64(optarg, 1, INT64_MAX, &max_entries, &errstr) < 0) {
				fprintf(stderr, "skiff-unpack: --max-entries: %s\n", errstr);
				return 64;
			}
			break;
		case 'l':
			flags |= UNPACK_NO_LINKS;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			printf("skiff-unpack %s\n", SKIFF_VERSION);
			return 0;
		default:
			fputs(usage, stderr);
			return 64;
		}
	}
	if (argc - optind != (dirfd >= 0 ? 1 : 2)) {
		fputs(usage, stderr);
		return 64;
	}
	if (dirfd < 0 && (dirfd = open(argv[optind + 1], O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0) {
		fprintf(stderr, "cannot open %s: %s", argv[optind + 1],
		    strerror(errno));
		return 1;
	}
	if (unpack_targz_flags(argv[optind], dirfd, (uint64_t)max_bytes,
	    (uint64_t)max_entries, flags, err, sizeof(err)) < 0) {
		fputs(err, stderr);
		return 1;
	}
	return 0;
}
