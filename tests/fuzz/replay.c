/*
 * Runs a fuzz target without libFuzzer: every file named on the command
 * line, and every regular file in every directory named, is fed once to
 * LLVMFuzzerTestOneInput, in name order. This is how CI exercises the
 * seed corpus and every crasher ever found, with any compiler and under
 * ASan/UBSan, in a fraction of a second.
 *
 *   fuzz_<name>_replay tests/fuzz/corpus/<name> [more files or dirs...]
 *
 * Exits 0 when every input ran; 1 when a path cannot be read or a
 * directory holds no input (a corpus that went missing must not pass as
 * an empty success). A bug in the target crashes or aborts, as under
 * libFuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#pragma weak LLVMFuzzerInitialize

/* Inputs are copied into an allocation of exactly their size, so that
 * ASan sees any read past the end. */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rbe");
	long size;
	unsigned char *data;

	if (f == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "replay: %s: cannot size\n", path);
		fclose(f);
		return -1;
	}
	data = malloc(size ? (size_t)size : 1);
	if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "replay: %s: read failed\n", path);
		free(data);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(data, (size_t)size);
	free(data);
	return 0;
}

static int is_input(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

static int run_dir(const char *dir, size_t *count)
{
	struct dirent **names;
	int n = scandir(dir, &names, is_input, alphasort), r = 0;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    names[i]->d_name) >= sizeof(path) || stat(path, &st) < 0) {
			r = -1;
		} else if (S_ISREG(st.st_mode)) {
			if (run_file(path) < 0)
				r = -1;
			else
				(*count)++;
		}
		free(names[i]);
	}
	free(names);
	if (r == 0 && n == 0) {
		fprintf(stderr, "replay: %s holds no input\n", dir);
		r = -1;
	}
	return r;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int failed = 0;
	struct stat st;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS-DIR|FILE...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			failed = 1;
		} else if (S_ISDIR(st.st_mode)) {
			failed |= run_dir(argv[i], &count) < 0;
		} else if (run_file(argv[i]) < 0) {
			failed = 1;
		} else {
			count++;
		}
	}
	printf("replay: %zu input%s ran\n", count, count == 1 ? "" : "s");
	return failed;
}
