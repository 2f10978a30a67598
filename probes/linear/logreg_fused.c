#include "probes/linear/logreg_fused.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "runtime/base/error.h"

#ifdef PL_SIMD_X86
#include <immintrin.h>
#define FUSED_AVX512 1  // AVX-512 and AVX2 kernels compiled whatever the build targets; run where the CPU has them
#endif

#define BLOCK_BYTES (256 * 1024)  // rows of X per block: half of a 1 MB L2, so the block survives until the backward
#define MAX_THREADS 64
#define MAX_CHUNKS 16                     // units of work the threads share out
#define CHUNK_SUM_BYTES (64 * 1024 * 1024)  // bound on the chunks' double gradient sums
#define MAX_TILE_FWD 5  // outputs per forward tile: 4 rows × 5 outputs = 20 accumulators + 9 loaded vectors <= 32 registers
#define MAX_TILE_BWD 8  // outputs per backward tile: 8 × 32 columns = 16 accumulators

// Rows are cut into at most MAX_CHUNKS chunks of whole blocks, a number that does not depend on the
// thread count. Threads take chunks from a shared counter (a thread the OS descheduled does not hold
// the others up) and each chunk has its own sums, added up in chunk order: the result is the same
// bits for any thread count and any scheduling.
typedef struct fused_chunk {
    int64_t r0, r1;  // rows [r0, r1)
    double *gw;      // [n_out × d] gradient sums of the chunk's rows (no 1/n, no L2 term)
    double *gb;      // [n_out]
    double loss;     // Σ w_i CE_i over the chunk's rows
} fused_chunk;

typedef struct fused_thread {
    pl_logreg_fused *ws;
    float *g;  // [block × n_out] logits of a block, then dL/dlogits
} fused_thread;

struct pl_logreg_fused {
    int64_t n;
    int d, n_out, block, n_threads, n_chunks;
    fused_thread thread[MAX_THREADS];
    fused_chunk *chunk;  // [n_chunks]
    float *w;            // [n_out × d] float copy of the weights
    atomic_int next_chunk;
    // the evaluation in flight
    const float *x;
    const int32_t *y;
    const float *row_weight;
    const double *b;
    int binary, want_grad;
    pl_simd_level simd;  // which kernels: pl_simd_level_get() at the start of the evaluation
    double inv_n;
};

// ---- forward: z[r][c] = x_r · w_c for a block of rows ----

#ifdef FUSED_AVX512
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,fma")
static inline __mmask16 tail_mask(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

// NR rows × NC outputs of dot products of length d; NR, NC constant after inlining, so the
// NR·NC accumulators live in registers and each loaded vector is used NC (or NR) times.
// prefetch (may be NULL): the next NR rows, fetched while this tile computes, so the first pass
// over rows coming from memory does not stall.
static inline __attribute__((always_inline)) void dot_tile(float *z, int ldz, const float *x, const float *w,
                                                           const float *prefetch, int d, const int NR, const int NC) {
    __m512 acc[4][MAX_TILE_FWD];
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) acc[r][c] = _mm512_setzero_ps();
    for (int j = 0; j < d; j += 16) {
        __mmask16 m = tail_mask(d - j);
        __m512 xv[4], wv[MAX_TILE_FWD];
        if (prefetch)
#pragma GCC unroll 4
            for (int r = 0; r < NR; r++) _mm_prefetch((const char *)(prefetch + (size_t)r * d + j), _MM_HINT_T0);
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++) xv[r] = _mm512_maskz_loadu_ps(m, x + (size_t)r * d + j);
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) wv[c] = _mm512_maskz_loadu_ps(m, w + (size_t)c * d + j);
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++)
#pragma GCC unroll 8
            for (int c = 0; c < NC; c++) acc[r][c] = _mm512_fmadd_ps(xv[r], wv[c], acc[r][c]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) z[r * ldz + c] = _mm512_reduce_add_ps(acc[r][c]);
}

// Output tiles: n_out split into near-equal tiles of at most max_tile (10 -> 5 + 5, not 4 + 4 + 1 + 1:
// a one-output tile reloads every x vector for a single FMA). Returns the size of the tile at c.
static inline int tile_size(int c, int n_out, int max_tile) {
    int n_tiles = (n_out + max_tile - 1) / max_tile, base = n_out / n_tiles, extra = n_out % n_tiles;
    // the first `extra` tiles have base + 1 outputs
    return c < extra * (base + 1) ? base + 1 : base;
}

#define FWD_CASE(NR, NC) \
    case NC: dot_tile(z, ldz, x, w, prefetch, d, NR, NC); break;

static void dot_tiles(float *z, int ldz, const float *x, const float *w, const float *prefetch, int d, int nr, int nc) {
    if (nr == 4) {
        switch (nc) { FWD_CASE(4, 1) FWD_CASE(4, 2) FWD_CASE(4, 3) FWD_CASE(4, 4) FWD_CASE(4, 5) }
    } else {
        switch (nc) { FWD_CASE(1, 1) FWD_CASE(1, 2) FWD_CASE(1, 3) FWD_CASE(1, 4) FWD_CASE(1, 5) }
    }
}

// rows_left: rows of x from this block's start to the end of the matrix, so the prefetch of the
// next 4 rows may run into the next block but never past the matrix.
static void block_logits_avx512(float *z, const float *x, const float *w, int m, int64_t rows_left, int d, int n_out) {
    for (int r = 0; r < m;) {
        int nr = m - r >= 4 ? 4 : 1;
        const float *xr = x + (size_t)r * d, *next = nr == 4 && r + 8 <= rows_left ? xr + (size_t)4 * d : NULL;
        for (int c = 0; c < n_out;) {
            int nc = tile_size(c, n_out, MAX_TILE_FWD);
            dot_tiles(z + r * n_out + c, n_out, xr, w + (size_t)c * d, c ? NULL : next, d, nr, nc);
            c += nc;
        }
        r += nr;
    }
}

// ---- backward: gw[c][j] += Σ_r g[r][c] x[r][j] for a block of rows ----

// Adds the float vector v to gw[0..n) in double (n <= 16).
static inline void add_to_double(double *gw, __m512 v, int n) {
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
    __mmask8 mlo = (__mmask8)(n >= 8 ? 0xFF : (1u << n) - 1);
    __mmask8 mhi = (__mmask8)(n >= 16 ? 0xFF : n > 8 ? (1u << (n - 8)) - 1 : 0);
    _mm512_mask_storeu_pd(gw, mlo, _mm512_add_pd(_mm512_maskz_loadu_pd(mlo, gw), lo));
    if (mhi) _mm512_mask_storeu_pd(gw + 8, mhi, _mm512_add_pd(_mm512_maskz_loadu_pd(mhi, gw + 8), hi));
}

// NC outputs × 32 columns starting at column j of the block: the sums over the block's m rows stay
// in registers (float), then go into the double accumulators.
static inline __attribute__((always_inline)) void grad_tile(double *gw, const float *g, int ldg, const float *x,
                                                            int m, int d, int j, const int NC) {
    __m512 acc[MAX_TILE_BWD][2];
    __mmask16 m0 = tail_mask(d - j), m1 = d - j > 16 ? tail_mask(d - j - 16) : 0;
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) acc[c][0] = _mm512_setzero_ps(), acc[c][1] = _mm512_setzero_ps();
    for (int r = 0; r < m; r++) {
        const float *xr = x + (size_t)r * d + j;
        __m512 x0 = _mm512_maskz_loadu_ps(m0, xr), x1 = _mm512_maskz_loadu_ps(m1, xr + 16);
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) {
            __m512 gv = _mm512_set1_ps(g[r * ldg + c]);
            acc[c][0] = _mm512_fmadd_ps(gv, x0, acc[c][0]);
            acc[c][1] = _mm512_fmadd_ps(gv, x1, acc[c][1]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) {
        add_to_double(gw + (size_t)c * d + j, acc[c][0], d - j);
        if (d - j > 16) add_to_double(gw + (size_t)c * d + j + 16, acc[c][1], d - j - 16);
    }
}

#define BWD_CASE(NC) \
    case NC: grad_tile(gw + (size_t)c * d, g + c, n_out, x, m, d, j, NC); break;

static void block_grad_avx512(double *gw, const float *g, const float *x, int m, int d, int n_out) {
    for (int j = 0; j < d; j += 32)
        for (int c = 0; c < n_out;) {
            int nc = tile_size(c, n_out, MAX_TILE_BWD);
            switch (nc) { BWD_CASE(1) BWD_CASE(2) BWD_CASE(3) BWD_CASE(4) BWD_CASE(5) BWD_CASE(6) BWD_CASE(7) BWD_CASE(8) }
            c += nc;
        }
}
#pragma GCC pop_options

// ---- the same two block kernels for AVX2 + FMA (8 lanes, 16 registers: smaller tiles) ----

#define MAX_TILE_FWD_AVX2 4  // 2 rows × 4 outputs = 8 accumulators + 6 loaded vectors <= 16 registers
#define MAX_TILE_BWD_AVX2 4  // 4 outputs × 16 columns = 8 accumulators

#pragma GCC push_options
#pragma GCC target("avx2,fma")
static const int32_t lane_on[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static const int64_t lane_on64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

// The first n lanes (n clamped to 0..8) of a float vector, or of a double vector (0..4).
static inline __m256i lanes8(int n) { return _mm256_loadu_si256((const __m256i *)(lane_on + 8 - (n < 0 ? 0 : n > 8 ? 8 : n))); }
static inline __m256i lanes4(int n) { return _mm256_loadu_si256((const __m256i *)(lane_on64 + 4 - (n < 0 ? 0 : n > 4 ? 4 : n))); }

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// NR rows × NC outputs of dot products of length d (NR, NC constant after inlining): whole vectors,
// then one masked step for the d % 8 tail.
static inline __attribute__((always_inline)) void dot_tile_avx2(float *z, int ldz, const float *x, const float *w,
                                                                int d, const int NR, const int NC) {
    __m256 acc[2][MAX_TILE_FWD_AVX2], xv[2], wv[MAX_TILE_FWD_AVX2];
#pragma GCC unroll 2
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) acc[r][c] = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= d; j += 8) {
#pragma GCC unroll 2
        for (int r = 0; r < NR; r++) xv[r] = _mm256_loadu_ps(x + (size_t)r * d + j);
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) wv[c] = _mm256_loadu_ps(w + (size_t)c * d + j);
#pragma GCC unroll 2
        for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
            for (int c = 0; c < NC; c++) acc[r][c] = _mm256_fmadd_ps(xv[r], wv[c], acc[r][c]);
    }
    if (j < d) {
        __m256i m = lanes8(d - j);
#pragma GCC unroll 2
        for (int r = 0; r < NR; r++) xv[r] = _mm256_maskload_ps(x + (size_t)r * d + j, m);
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) wv[c] = _mm256_maskload_ps(w + (size_t)c * d + j, m);
#pragma GCC unroll 2
        for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
            for (int c = 0; c < NC; c++) acc[r][c] = _mm256_fmadd_ps(xv[r], wv[c], acc[r][c]);
    }
#pragma GCC unroll 2
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) z[r * ldz + c] = hsum8(acc[r][c]);
}

#define FWD_CASE_AVX2(NR, NC) \
    case NC: dot_tile_avx2(z + r * n_out + c, n_out, xr, w + (size_t)c * d, d, NR, NC); break;

static void block_logits_avx2(float *z, const float *x, const float *w, int m, int d, int n_out) {
    for (int r = 0; r < m;) {
        int nr = m - r >= 2 ? 2 : 1;
        const float *xr = x + (size_t)r * d;
        for (int c = 0; c < n_out;) {
            int nc = tile_size(c, n_out, MAX_TILE_FWD_AVX2);
            if (nr == 2) {
                switch (nc) { FWD_CASE_AVX2(2, 1) FWD_CASE_AVX2(2, 2) FWD_CASE_AVX2(2, 3) FWD_CASE_AVX2(2, 4) }
            } else {
                switch (nc) { FWD_CASE_AVX2(1, 1) FWD_CASE_AVX2(1, 2) FWD_CASE_AVX2(1, 3) FWD_CASE_AVX2(1, 4) }
            }
            c += nc;
        }
        r += nr;
    }
}

// Adds the float vector v to gw[0..n) in double (n <= 8).
static inline void add_to_double_avx2(double *gw, __m256 v, int n) {
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    __m256i mlo = lanes4(n), mhi = lanes4(n - 4);
    _mm256_maskstore_pd(gw, mlo, _mm256_add_pd(_mm256_maskload_pd(gw, mlo), lo));
    if (n > 4) _mm256_maskstore_pd(gw + 4, mhi, _mm256_add_pd(_mm256_maskload_pd(gw + 4, mhi), hi));
}

// NC outputs × 16 columns starting at column j: float sums over the block's m rows, then into double.
static inline __attribute__((always_inline)) void grad_tile_avx2(double *gw, const float *g, int ldg, const float *x,
                                                                 int m, int d, int j, const int NC) {
    __m256 acc[MAX_TILE_BWD_AVX2][2];
    __m256i m0 = lanes8(d - j), m1 = lanes8(d - j - 8);
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++) acc[c][0] = _mm256_setzero_ps(), acc[c][1] = _mm256_setzero_ps();
    for (int r = 0; r < m; r++) {
        const float *xr = x + (size_t)r * d + j;
        __m256 x0 = _mm256_maskload_ps(xr, m0), x1 = _mm256_maskload_ps(xr + 8, m1);
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            __m256 gv = _mm256_broadcast_ss(g + (size_t)r * ldg + c);
            acc[c][0] = _mm256_fmadd_ps(gv, x0, acc[c][0]);
            acc[c][1] = _mm256_fmadd_ps(gv, x1, acc[c][1]);
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++) {
        add_to_double_avx2(gw + (size_t)c * d + j, acc[c][0], d - j);
        if (d - j > 8) add_to_double_avx2(gw + (size_t)c * d + j + 8, acc[c][1], d - j - 8);
    }
}

#define BWD_CASE_AVX2(NC) \
    case NC: grad_tile_avx2(gw + (size_t)c * d, g + c, n_out, x, m, d, j, NC); break;

static void block_grad_avx2(double *gw, const float *g, const float *x, int m, int d, int n_out) {
    for (int j = 0; j < d; j += 16)
        for (int c = 0; c < n_out;) {
            int nc = tile_size(c, n_out, MAX_TILE_BWD_AVX2);
            switch (nc) { BWD_CASE_AVX2(1) BWD_CASE_AVX2(2) BWD_CASE_AVX2(3) BWD_CASE_AVX2(4) }
            c += nc;
        }
}
#pragma GCC pop_options
#endif

// Portable fallback: the same block structure in plain loops.
static void block_logits_portable(float *z, const float *x, const float *w, int m, int d, int n_out) {
    for (int r = 0; r < m; r++)
        for (int c = 0; c < n_out; c++) {
            float s = 0;
            for (int j = 0; j < d; j++) s += x[(size_t)r * d + j] * w[(size_t)c * d + j];
            z[r * n_out + c] = s;
        }
}

static void block_grad_portable(double *gw, const float *g, const float *x, int m, int d, int n_out) {
    for (int c = 0; c < n_out; c++)
        for (int j = 0; j < d; j++) {
            float s = 0;
            for (int r = 0; r < m; r++) s += g[r * n_out + c] * x[(size_t)r * d + j];
            gw[(size_t)c * d + j] += s;
        }
}

// ---- softmax / sigmoid of a block: logits in g become w_i (p - onehot) / n; returns Σ w_i CE_i ----

#ifdef FUSED_AVX512
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,fma")
// e^x for x <= 0 in 16 lanes (Cephes expf: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial for e^r,
// then scaled by 2^n), within 2 ulp of expf; inputs below -87.3 give e^-87.3 ≈ 1e-38 instead of less.
static inline __m512 exp_nonpositive(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln 2 split in two: exact n·hi
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

// Softmax rows of up to 16 outputs, one vector per row: the same result as the scalar loop below.
static double block_loss_softmax16(double *gb, float *g, const int32_t *y, const float *row_weight, const double *b,
                                   int m, int n_out, double inv_n) {
    __mmask16 k = tail_mask(n_out);
    float bf[16] = {0};
    for (int c = 0; c < n_out; c++) bf[c] = (float)b[c];
    __m512 bias = _mm512_loadu_ps(bf), gsum = _mm512_setzero_ps();
    double loss = 0;
    for (int r = 0; r < m; r++) {
        float *gr = g + (size_t)r * n_out;
        double wi = row_weight ? row_weight[r] : 1.0;
        int yi = y[r];
        __m512 z = _mm512_add_ps(_mm512_maskz_loadu_ps(k, gr), bias);
        float zmax = _mm512_mask_reduce_max_ps(k, z), zy = gr[yi] + bf[yi];
        __m512 e = _mm512_maskz_mov_ps(k, exp_nonpositive(_mm512_sub_ps(z, _mm512_set1_ps(zmax))));
        float sum = _mm512_reduce_add_ps(e);  // >= 1: the max term is e^0
        loss += wi * ((double)zmax + log((double)sum) - (double)zy);
        float wn = (float)(wi * inv_n);
        __m512 gv = _mm512_mul_ps(e, _mm512_set1_ps(wn / sum));
        gv = _mm512_mask_sub_ps(gv, (__mmask16)(1u << yi), gv, _mm512_set1_ps(wn));  // minus the one-hot
        _mm512_mask_storeu_ps(gr, k, gv);
        gsum = _mm512_add_ps(gsum, gv);
    }
    float gs[16];
    _mm512_storeu_ps(gs, gsum);
    for (int c = 0; c < n_out; c++) gb[c] += gs[c];
    return loss;
}
#pragma GCC pop_options
#endif

static double block_loss(double *gb, float *g, const int32_t *y, const float *row_weight, const double *b, int m,
                         int n_out, int binary, double inv_n, int avx512) {
#ifdef FUSED_AVX512
    if (avx512 && !binary && n_out <= 16) return block_loss_softmax16(gb, g, y, row_weight, b, m, n_out, inv_n);
#endif
    double loss = 0;
    for (int r = 0; r < m; r++) {
        float *gr = g + (size_t)r * n_out;
        double wi = row_weight ? row_weight[r] : 1.0;
        int yi = y[r];
        if (binary) {
            double t = gr[0] + b[0];
            loss += wi * (fmax(t, 0.0) + log1p(exp(-fabs(t))) - (yi ? t : 0.0));  // softplus(t) - y t
            double p = t >= 0 ? 1.0 / (1.0 + exp(-t)) : exp(t) / (1.0 + exp(t));
            double gi = wi * (p - yi) * inv_n;
            gr[0] = (float)gi;
            gb[0] += gi;
            continue;
        }
        double zmax = -INFINITY, zy = gr[yi] + b[yi];
        for (int c = 0; c < n_out; c++) zmax = fmax(zmax, gr[c] + b[c]);
        float sum = 0;  // exp in float: each term is in (0, 1], and the sum is >= 1
        for (int c = 0; c < n_out; c++) sum += gr[c] = expf((float)(gr[c] + b[c] - zmax));
        loss += wi * (zmax + log((double)sum) - zy);  // CE = logsumexp(z + b) - (z_y + b_y)
        float scale = (float)(wi * inv_n) / sum;
        for (int c = 0; c < n_out; c++) {
            float gi = gr[c] * scale - (c == yi ? (float)(wi * inv_n) : 0.0f);
            gr[c] = gi;
            gb[c] += gi;
        }
    }
    return loss;
}

static void *thread_rows(void *arg) {
    fused_thread *t = arg;
    pl_logreg_fused *ws = t->ws;
    int d = ws->d, n_out = ws->n_out;
    for (int c; (c = atomic_fetch_add(&ws->next_chunk, 1)) < ws->n_chunks;) {
        fused_chunk *ch = &ws->chunk[c];
        memset(ch->gw, 0, sizeof(double) * (size_t)n_out * d);
        memset(ch->gb, 0, sizeof(double) * (size_t)n_out);
        ch->loss = 0;
        for (int64_t r0 = ch->r0; r0 < ch->r1; r0 += ws->block) {
            int m = (int)(ch->r1 - r0 < ws->block ? ch->r1 - r0 : ws->block);
            const float *xb = ws->x + r0 * d;
#ifdef FUSED_AVX512
            if (ws->simd == PL_SIMD_AVX512) block_logits_avx512(t->g, xb, ws->w, m, ws->n - r0, d, n_out);
            else if (ws->simd == PL_SIMD_AVX2) block_logits_avx2(t->g, xb, ws->w, m, d, n_out);
            else
#endif
                block_logits_portable(t->g, xb, ws->w, m, d, n_out);
            ch->loss += block_loss(ch->gb, t->g, ws->y + r0, ws->row_weight ? ws->row_weight + r0 : NULL, ws->b, m,
                                   n_out, ws->binary, ws->inv_n, ws->simd == PL_SIMD_AVX512);
            if (!ws->want_grad) continue;
#ifdef FUSED_AVX512
            if (ws->simd == PL_SIMD_AVX512) block_grad_avx512(ch->gw, t->g, xb, m, d, n_out);
            else if (ws->simd == PL_SIMD_AVX2) block_grad_avx2(ch->gw, t->g, xb, m, d, n_out);
            else
#endif
                block_grad_portable(ch->gw, t->g, xb, m, d, n_out);
        }
    }
    return NULL;
}

int pl_logreg_fused_new(pl_logreg_fused **out, int64_t n, int d, int n_out, int n_threads) {
    *out = NULL;
    pl_logreg_fused *ws = calloc(1, sizeof *ws);
    if (!ws) return pl_fail("probe: out of memory for the fused objective");
    ws->n = n, ws->d = d, ws->n_out = n_out;
    int block = BLOCK_BYTES / (int)(sizeof(float) * (size_t)(d > 0 ? d : 1));
    ws->block = block < 16 ? 16 : block > 1024 ? 1024 : block & ~3;
    int64_t n_blocks = (n + ws->block - 1) / ws->block;
    // chunks: at most MAX_CHUNKS, and their sums within CHUNK_SUM_BYTES
    int64_t n_chunks = CHUNK_SUM_BYTES / ((int64_t)sizeof(double) * n_out * d + 1);
    if (n_chunks > MAX_CHUNKS) n_chunks = MAX_CHUNKS;
    if (n_chunks > n_blocks) n_chunks = n_blocks;
    if (n_chunks < 1) n_chunks = 1;
    ws->n_chunks = (int)n_chunks;
    if (n_threads <= 0) n_threads = openblas_get_num_threads();
    if (n_threads > n_chunks) n_threads = (int)n_chunks;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    ws->n_threads = n_threads;
    ws->w = malloc(sizeof(float) * (size_t)n_out * d);
    ws->chunk = calloc((size_t)n_chunks, sizeof(fused_chunk));
    int ok = ws->w && ws->chunk;
    for (int c = 0; ok && c < n_chunks; c++) {
        fused_chunk *ch = &ws->chunk[c];
        ch->r0 = n_blocks * c / n_chunks * ws->block;  // whole blocks per chunk, as even as possible
        ch->r1 = n_blocks * (c + 1) / n_chunks * ws->block;
        if (ch->r1 > n) ch->r1 = n;
        ch->gw = malloc(sizeof(double) * (size_t)n_out * d);
        ch->gb = malloc(sizeof(double) * (size_t)n_out);
        ok = ch->gw && ch->gb;
    }
    for (int t = 0; ok && t < n_threads; t++) {
        ws->thread[t].ws = ws;
        ws->thread[t].g = malloc(sizeof(float) * (size_t)ws->block * n_out);
        ok = ws->thread[t].g != NULL;
    }
    if (!ok) {
        pl_logreg_fused_free(ws);
        return pl_fail("probe: out of memory for the fused objective (%d threads, %d × %d)", n_threads, n_out, d);
    }
    *out = ws;
    return 0;
}

int pl_logreg_fused_threads(const pl_logreg_fused *ws) { return ws->n_threads; }

void pl_logreg_fused_free(pl_logreg_fused *ws) {
    if (!ws) return;
    for (int t = 0; t < ws->n_threads; t++) free(ws->thread[t].g);
    for (int c = 0; ws->chunk && c < ws->n_chunks; c++) free(ws->chunk[c].gw), free(ws->chunk[c].gb);
    free(ws->chunk), free(ws->w);
    free(ws);
}

double pl_logreg_fused_eval(pl_logreg_fused *ws, double *grad, const double *params, const float *x,
                            const int32_t *y, const float *row_weight, int binary, double lambda) {
    int d = ws->d, n_out = ws->n_out;
    size_t n_w = (size_t)n_out * d;
    for (size_t j = 0; j < n_w; j++) ws->w[j] = (float)params[j];
    ws->x = x, ws->y = y, ws->row_weight = row_weight, ws->b = params + n_w, ws->binary = binary;
    ws->want_grad = grad != NULL;
    ws->simd = pl_simd_level_get();
    ws->inv_n = 1.0 / (double)ws->n;
    atomic_store(&ws->next_chunk, 0);
    pthread_t tid[MAX_THREADS];
    int started = 1;
    for (int t = 1; t < ws->n_threads; t++, started++)
        if (pthread_create(&tid[t], NULL, thread_rows, &ws->thread[t]) != 0) break;
    thread_rows(&ws->thread[0]);
    for (int t = 1; t < started; t++) pthread_join(tid[t], NULL);
    (void)started;  // a thread that could not start leaves its chunks to the others
    double loss = 0, reg = 0;
    for (int c = 0; c < ws->n_chunks; c++) loss += ws->chunk[c].loss;
    loss *= ws->inv_n;
    for (size_t j = 0; j < n_w; j++) reg += params[j] * params[j];
    loss += 0.5 * lambda * reg;
    if (grad) {
        for (size_t j = 0; j < n_w; j++) {
            double s = lambda * params[j];
            for (int c = 0; c < ws->n_chunks; c++) s += ws->chunk[c].gw[j];
            grad[j] = s;
        }
        for (int c = 0; c < n_out; c++) {
            double s = 0;
            for (int h = 0; h < ws->n_chunks; h++) s += ws->chunk[h].gb[c];
            grad[n_w + c] = s;
        }
    }
    return loss;
}
