#ifndef PL_CLOCK_H
#define PL_CLOCK_H
// Monotonic wall-clock seconds, for progress bars and benchmarks.
double pl_now_sec(void);
#endif
