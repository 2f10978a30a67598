// Helpers for tests: where ../shared and the probelab binary are, skipping, and comparing arrays.
#ifndef PL_TEST_SUPPORT_H
#define PL_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#define PL_TEST_SKIP 77  // ctest SKIP_RETURN_CODE

// Path of a file under ../shared (static buffer), or NULL if ../shared is absent.
const char *test_shared_path(const char *relative);
// Exit with the skip code (printing why) if ../shared/<relative> does not exist.
void test_require_shared(const char *relative);
// Path to the probelab binary (PL_BIN) and to the source tree (PL_SOURCE_DIR).
const char *test_probelab_bin(void);
const char *test_source_dir(void);
// A fresh temporary directory (static buffer), removed by nobody: tests run in /tmp.
const char *test_tmpdir(void);
// Run a shell command, capture stdout into *out (malloc'd, may be NULL), return the exit status.
int test_run(const char *cmd, char **out);
// Largest absolute difference between a and b over n elements.
double test_max_abs_diff(const float *a, const float *b, size_t n);

#endif
