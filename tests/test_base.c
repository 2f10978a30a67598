// runtime/base: the one seeded generator (pl_rng) against splitmix64's published reference outputs;
// the one .npy header writer (whole arrays and headers rewritten in place) read back by the reader.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/base/npy.h"
#include "runtime/base/rng.h"
#include "support/test_support.h"

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

static void test_npy_header(void **state) {
    char head[256];
    int64_t shape2[2] = {1600, 128}, shape1[1] = {7};
    int n = pl_npy_header(head, sizeof head, "<f4", 2, shape2, 0);
    assert_int_equal(n, 128);  // 10 + 74 + 1 bytes, padded to a multiple of 64
    assert_memory_equal(head, "\x93NUMPY\x01\x00", 8);
    assert_int_equal((unsigned char)head[8] | (unsigned char)head[9] << 8, n - 10);
    assert_int_equal(head[n - 1], '\n');
    assert_non_null(strstr(head + 10, "'shape': (1600, 128), }"));
    n = pl_npy_header(head, sizeof head, "<i4", 1, shape1, 0);
    assert_int_equal(n, 128);
    assert_non_null(strstr(head + 10, "'shape': (7,), }"));
    assert_int_equal(pl_npy_header(head, sizeof head, "<i4", 1, shape1, 200), 256);  // min_size, rounded up
    assert_int_equal(pl_npy_header(head, 100, "<i4", 1, shape1, 0), -1);             // does not fit

    // A 128-byte header written before the row count, then rewritten in place, reads back.
    char path[512];
    snprintf(path, sizeof path, "%s/stream.npy", test_tmpdir());
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    int64_t shape[2] = {0, 3};
    assert_int_equal(pl_npy_header(head, 128, "<f4", 2, shape, 128), 128);
    assert_int_equal(fwrite(head, 1, 128, f), 128);
    float rows[2][3] = {{1, 2, 3}, {4, 5, 6}};
    assert_int_equal(fwrite(rows, sizeof rows, 1, f), 1);
    shape[0] = 2;
    assert_int_equal(pl_npy_header(head, 128, "<f4", 2, shape, 128), 128);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    assert_int_equal(fwrite(head, 1, 128, f), 128);
    assert_int_equal(fclose(f), 0);
    float *data = NULL;
    int ndim = 0;
    int64_t got[PL_NPY_MAX_DIMS];
    assert_int_equal(pl_npy_read_f32(path, &data, &ndim, got), 0);
    assert_int_equal(ndim, 2);
    assert_true(got[0] == 2 && got[1] == 3);
    assert_memory_equal(data, rows, sizeof rows);
    free(data);

    // The whole-array writer: a 1-D int32 file of the same header shape.
    snprintf(path, sizeof path, "%s/whole.npy", test_tmpdir());
    int32_t v[7] = {0, 1, 2, 3, 4, 5, -6};
    assert_int_equal(pl_npy_write_i32(path, v, 1, shape1), 0);
    f = fopen(path, "rb");
    assert_non_null(f);
    char back[128 + sizeof v];
    assert_int_equal(fread(back, 1, sizeof back, f), sizeof back);
    fclose(f);
    assert_int_equal(pl_npy_header(head, sizeof head, "<i4", 1, shape1, 0), 128);
    assert_memory_equal(back, head, 128);
    assert_memory_equal(back + 128, v, sizeof v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_matches_splitmix64_reference),
        cmocka_unit_test(test_rng_draws),
        cmocka_unit_test(test_npy_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
