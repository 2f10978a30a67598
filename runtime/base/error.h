// Error reporting for the whole library (SQLite's pattern: a status code plus a message). A
// function that fails records a message that names the file (or object) and what is wrong, with a
// status code saying what kind of failure it is, and returns the code. The command prints
// pl_errmsg() and exits; the library never exits. Tests check codes, not message text.
#ifndef PL_ERROR_H
#define PL_ERROR_H

// What kind of failure. Constructors (pl_model_open, pl_session_open, pl_store_open, ...) return
// one of these; PL_OK is 0, so `if (pl_x_open(...) != 0)` keeps working.
typedef enum {
    PL_OK = 0,
    PL_ERROR,          // a failure without a more specific code
    PL_ERR_USAGE,      // a bad argument from the caller (an empty input, a contradictory request)
    PL_ERR_IO,         // a file or folder could not be opened, mapped, read or written
    PL_ERR_FORMAT,     // a file is not of the expected kind, or uses a feature probelab does not support
    PL_ERR_CORRUPT,    // a file contradicts itself: truncated, offsets past the end, shapes against the config
    PL_ERR_NOMEM,      // out of memory
    PL_ERR_RANGE,      // a value outside its valid range (a token id, more tokens than the context holds)
    PL_ERR_NOT_FOUND,  // something named does not exist (a path, a tensor, a metadata key, a hook, a run)
} pl_status;

// Record a printf-style message with its code for this thread and return the code (so
// `return pl_fail_code(PL_ERR_IO, "%s: cannot open", path);` works).
int pl_fail_code(pl_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// The same with code PL_ERROR, returning -1: for functions that return a count or an index, where
// -1 means failure.
int pl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The last message recorded on this thread ("" if none). Valid until the next pl_fail*.
const char *pl_errmsg(void);
// The code of the last failure recorded on this thread (PL_OK if none or since pl_error_clear).
pl_status pl_errcode(void);
// Forget the last code (constructors call it first, so the code they return is their own).
void pl_error_clear(void);
// The code to return after a callee failed: pl_errcode(), or PL_ERROR if it recorded none.
pl_status pl_error_status(void);
// A code's name: "ok", "error", "usage", "io", "format", "corrupt", "nomem", "range", "not found".
const char *pl_status_name(pl_status code);
// Print "probelab: <msg>" to stderr using the last message.
void pl_print_error(void);

#endif
