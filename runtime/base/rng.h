// The one seeded random number generator of probelab: splitmix64 (Steele, Lea & Flood 2014, as in
// Vigna's reference splitmix64.c). Tiny, fast, identical on every platform, so every seeded stream
// (sampling, task generation, weight init, fold shuffles, bootstrap resamples, control labels) is
// reproducible from its seed. Header-only: the hot loops that draw from it inline it.
#ifndef PL_RNG_H
#define PL_RNG_H

#include <math.h>
#include <stdint.h>

#define PL_RNG_GOLDEN 0x9e3779b97f4a7c15ULL  // 2^64 / φ: splitmix64's state increment

typedef struct pl_rng {
    uint64_t state;
} pl_rng;

// splitmix64's output function: a bijective 64-bit mix, also a good hash of a counter or a seed.
static inline uint64_t pl_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// A generator started at this raw state (Vigna's reference seeding: the first output is
// pl_mix64(state + PL_RNG_GOLDEN)).
static inline pl_rng pl_rng_state(uint64_t state) { return (pl_rng){state}; }

// A generator from a user seed (the probe library's convention: the seed is xored with the
// increment first, so small seeds do not start near state 0).
static inline pl_rng pl_rng_seed(uint64_t seed) { return (pl_rng){seed ^ PL_RNG_GOLDEN}; }

// The next 64 random bits.
static inline uint64_t pl_rng_next(pl_rng *r) { return pl_mix64(r->state += PL_RNG_GOLDEN); }

// Uniform in [0, 1): the top 53 bits.
static inline double pl_rng_uniform(pl_rng *r) { return (double)(pl_rng_next(r) >> 11) * 0x1.0p-53; }

// Uniform in the open interval (0, 1): (k + 1/2) / 2^53, never 0 (safe for a log).
static inline double pl_rng_uniform_open(pl_rng *r) { return ((double)(pl_rng_next(r) >> 11) + 0.5) * 0x1.0p-53; }

// Uniform integer in [0, n); n > 0. The modulo bias is below 2^-40 for n < 2^24.
static inline uint64_t pl_rng_below(pl_rng *r, uint64_t n) { return pl_rng_next(r) % n; }

// Standard normal (Box-Muller on 1 - uniform, which lies in (0, 1]).
static inline double pl_rng_normal(pl_rng *r) {
    double u = 1.0 - pl_rng_uniform(r);
    double v = pl_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

#endif
