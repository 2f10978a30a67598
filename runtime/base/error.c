#include "runtime/base/error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

int pl_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return -1;
}

const char *pl_errmsg(void) { return last_error; }

void pl_print_error(void) { fprintf(stderr, "probelab: %s\n", last_error[0] ? last_error : "unknown error"); }
