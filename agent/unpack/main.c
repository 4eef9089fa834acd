/*
 * skiff-unpack ARCHIVE DIR: the agent runs this to unpack a job input
 * (docs/agent.md, "Inputs"). Exit 0 when unpacked; 1 with the reason on
 * standard error when refused or broken; 64 on a usage error.
 */
#include <stdio.h>
#include <string.h>

#include "unpack.h"

int main(int argc, char **argv)
{
	char err[512] = "";

	if (argc == 2 && (!strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "--version"))) {
		printf("usage: skiff-unpack ARCHIVE.tar.gz DIR\n"
		    "Unpacks a skiff job input into DIR (skiff %s), refusing\n"
		    "absolute paths, '..', links out of DIR and device files.\n",
		    SKIFF_VERSION);
		return 0;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: skiff-unpack ARCHIVE.tar.gz DIR\n");
		return 64;
	}
	if (unpack_targz(argv[1], argv[2], err, sizeof(err)) < 0) {
		fputs(err, stderr);
		return 1;
	}
	return 0;
}
