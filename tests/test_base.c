// runtime/base: the one seeded generator (pl_rng) against splitmix64's published reference outputs.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "runtime/base/rng.h"

// Vigna's reference splitmix64.c started at state 1234567 (the test vector quoted with it).
static void test_rng_matches_splitmix64_reference(void **state) {
    const uint64_t want[] = {6457827717110365317ULL, 3203168211198807973ULL, 9817491932198370423ULL,
                             4593380528125082431ULL, 16408922859458223821ULL};
    pl_rng r = pl_rng_state(1234567);
    for (int i = 0; i < 5; i++) assert_true(pl_rng_next(&r) == want[i]);
    // pl_rng_seed is the same stream started at seed ^ the increment.
    pl_rng a = pl_rng_seed(99), b = pl_rng_state(99 ^ PL_RNG_GOLDEN);
    for (int i = 0; i < 100; i++) assert_true(pl_rng_next(&a) == pl_rng_next(&b));
}

// The derived draws stay in their documented ranges and have the right first two moments.
static void test_rng_draws(void **state) {
    pl_rng r = pl_rng_seed(7);
    enum { N = 200000 };
    double sum = 0, sum2 = 0, lo = 1, hi = 0;
    int counts[7] = {0};
    for (int i = 0; i < N; i++) {
        double u = pl_rng_uniform(&r), o = pl_rng_uniform_open(&r);
        assert_true(u >= 0.0 && u < 1.0);
        assert_true(o > 0.0 && o < 1.0);
        lo = fmin(lo, u), hi = fmax(hi, u);
        uint64_t k = pl_rng_below(&r, 7);
        assert_true(k < 7);
        counts[k]++;
        double z = pl_rng_normal(&r);
        assert_true(isfinite(z));
        sum += z, sum2 += z * z;
    }
    double mean = sum / N, var = sum2 / N - mean * mean;
    printf("uniform in [%.2e, 1 - %.2e]; normal mean %.4f var %.4f\n", lo, 1 - hi, mean, var);
    assert_true(fabs(mean) < 0.01 && fabs(var - 1) < 0.02);  // 4.5 and 6 standard errors
    for (int k = 0; k < 7; k++) assert_true(fabs(counts[k] - N / 7.0) < 5 * sqrt(N / 7.0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_matches_splitmix64_reference),
        cmocka_unit_test(test_rng_draws),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
