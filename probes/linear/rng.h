// Small seeded random numbers for the probe library (splitmix64): fold shuffles, bootstrap
// resamples, control labels and synthetic benchmark data are reproducible from one seed.
#ifndef PL_PROBE_RNG_H
#define PL_PROBE_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct pl_rng {
    uint64_t state;
} pl_rng;

static inline pl_rng pl_rng_seed(uint64_t seed) { return (pl_rng){seed ^ 0x9e3779b97f4a7c15ULL}; }

static inline uint64_t pl_rng_next(pl_rng *rng) {
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Uniform in [0, 1).
static inline double pl_rng_uniform(pl_rng *rng) { return (double)(pl_rng_next(rng) >> 11) * 0x1.0p-53; }

// Uniform integer in [0, n); n > 0. The modulo bias is below 2^-40 for n < 2^24.
static inline uint64_t pl_rng_below(pl_rng *rng, uint64_t n) { return pl_rng_next(rng) % n; }

// Standard normal (Box-Muller).
static inline double pl_rng_normal(pl_rng *rng) {
    double u = 1.0 - pl_rng_uniform(rng);  // (0, 1]
    double v = pl_rng_uniform(rng);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

#endif
