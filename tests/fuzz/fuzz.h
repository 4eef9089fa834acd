/*
 * What every fuzz target defines: libFuzzer's entry point (and, if it
 * needs one-time set-up, LLVMFuzzerInitialize). The same object links
 * into the libFuzzer binary and into replay.c's corpus runner.
 */
#ifndef SKIFF_FUZZ_H
#define SKIFF_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
