#include "runtime/base/error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];
static _Thread_local pl_status last_code = PL_OK;

static void record(pl_status code, const char *fmt, va_list ap) {
    char msg[sizeof last_error];  // the arguments may point into last_error itself
    vsnprintf(msg, sizeof msg, fmt, ap);
    snprintf(last_error, sizeof last_error, "%s", msg);
    last_code = code;
}

int pl_fail_code(pl_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    record(code, fmt, ap);
    va_end(ap);
    return (int)code;
}

int pl_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    record(PL_ERROR, fmt, ap);
    va_end(ap);
    return -1;
}

const char *pl_errmsg(void) { return last_error; }

pl_status pl_errcode(void) { return last_code; }

void pl_error_clear(void) { last_code = PL_OK; }

pl_status pl_error_status(void) { return last_code != PL_OK ? last_code : PL_ERROR; }

const char *pl_status_name(pl_status code) {
    static const char *const names[] = {"ok",      "error", "usage", "io",       "format",
                                        "corrupt", "nomem", "range", "not found"};
    return (unsigned)code < sizeof names / sizeof names[0] ? names[code] : "unknown";
}

void pl_print_error(void) { fprintf(stderr, "probelab: %s\n", last_error[0] ? last_error : "unknown error"); }
