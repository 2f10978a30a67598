// Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c): a private scratch folder and writing
// the fuzzer's bytes to a file there, since the readers under test open paths.
// Header-only: each harness is one executable (with libFuzzer, or replay_main.c in normal builds).
#ifndef PL_FUZZ_SUPPORT_H
#define PL_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir_path[64];

static inline void fuzz_remove_dir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (fuzz_dir_path[0] && system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_path);
}

// A scratch folder of this process (in /dev/shm if writable, else /tmp), removed at exit.
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        // In memory where there is a tmpfs: the harnesses write a file per input.
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/plfuzz.XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(fuzz_dir_path)) abort();
        atexit(fuzz_remove_dir);
    }
    return fuzz_dir_path;
}

// Write bytes to <scratch>/name; returns the path (static buffer) or aborts (a harness bug).
static inline const char *fuzz_write(const char *name, const void *data, size_t size) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) abort();
    return path;
}

// Split data at the first occurrence of sep: [0, *a_size) and [b, end). Without sep, all is a.
static inline void fuzz_split(const uint8_t *data, size_t size, const char *sep, size_t *a_size, const uint8_t **b, size_t *b_size) {
    size_t k = strlen(sep);
    for (size_t i = 0; i + k <= size; i++)
        if (memcmp(data + i, sep, k) == 0) {
            *a_size = i;
            *b = data + i + k;
            *b_size = size - i - k;
            return;
        }
    *a_size = size;
    *b = data + size;
    *b_size = 0;
}

#endif
