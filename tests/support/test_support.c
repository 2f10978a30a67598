#include "tests/support/test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *test_shared_path(const char *relative) {
    static char buf[4096];
    const char *dir = getenv("PL_SHARED_DIR");
    if (!dir) dir = "../shared";
    snprintf(buf, sizeof buf, "%s/%s", dir, relative);
    struct stat st;
    return stat(buf, &st) == 0 ? buf : NULL;
}

void test_require_shared(const char *relative) {
    if (!test_shared_path(relative)) {
        printf("SKIP: ../shared/%s is absent\n", relative);
        exit(PL_TEST_SKIP);
    }
}

const char *test_probelab_bin(void) {
    const char *bin = getenv("PL_BIN");
    return bin ? bin : "./probelab";
}

const char *test_source_dir(void) {
    const char *dir = getenv("PL_SOURCE_DIR");
    return dir ? dir : ".";
}

const char *test_tmpdir(void) {
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/pltest.XXXXXX");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(1);
    }
    return buf;
}

int test_run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 1024) buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int status = pclose(p);
    if (out) *out = buf;
    else free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

double test_max_abs_diff(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) worst = d;  // NaN counts as worst
    }
    return worst;
}

// LeakSanitizer (ASan builds): fontconfig, used by cairo's text, keeps its configuration for the
// whole process. That is not our leak; every test that draws text would otherwise report it.
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig.so\n"; }
