// Error reporting for the whole library: a function that fails calls pl_fail() with a message that
// names the file (or object) and what is wrong, and returns its error code. The command prints
// pl_errmsg() and exits; the library never exits.
#ifndef PL_ERROR_H
#define PL_ERROR_H

// Record a printf-style message for this thread and return -1 (so `return pl_fail(...)` works).
int pl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The last message recorded by pl_fail() on this thread ("" if none). Valid until the next pl_fail.
const char *pl_errmsg(void);
// Print "probelab: <msg>" to stderr using the last message.
void pl_print_error(void);

#endif
