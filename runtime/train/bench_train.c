// `probelab bench train`: the trainer's tokens/s and achieved GFLOP/s on the default (bundled)
// architecture, next to OpenBLAS sgemm alone on the same matrix shapes, measured in the same run.
// The ratio says how much of the step is spent outside the matrix products.
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/clock.h"
#include "runtime/base/error.h"
#include "runtime/base/rng.h"
#include "runtime/train/train.h"

#define BENCH_TEXT_LEN 48   // characters per synthetic example (a typical difficulty-4 example)
#define BENCH_PROMPT_LEN 16

// Synthetic examples: digits and operators; only the lengths matter for speed.
static int bench_source(void *user, uint64_t seed, uint64_t index, pl_train_text *out) {
    char *text = malloc(BENCH_TEXT_LEN + 1);
    if (!text) return pl_fail("bench: out of memory");
    pl_rng r = pl_rng_state(seed ^ (index * PL_RNG_GOLDEN));
    static const char alphabet[] = "0123456789+-*=|";
    for (int i = 0; i < BENCH_TEXT_LEN - 1; i++) text[i] = alphabet[pl_rng_below(&r, sizeof alphabet - 1)];
    text[BENCH_TEXT_LEN - 1] = '\n';
    text[BENCH_TEXT_LEN] = '\0';
    out->text = text;
    out->prompt_len = BENCH_PROMPT_LEN;
    return 0;
}

// GFLOP/s of sgemm alone on the forward and both backward products of an [N × in] -> [N × out] layer.
static double sgemm_time(int N, int in, int out, int reps) {
    float *x = calloc((size_t)N * in, sizeof(float)), *w = calloc((size_t)out * in, sizeof(float));
    float *y = calloc((size_t)N * out, sizeof(float)), *dx = calloc((size_t)N * in, sizeof(float));
    float *dw = calloc((size_t)out * in, sizeof(float));
    double t0 = pl_now_sec();
    for (int r = 0; x && w && y && dx && dw && r < reps; r++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, y, out, w, in, 1.0f, dx, in);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1.0f, y, out, x, in, 1.0f, dw, in);
    }
    double dt = pl_now_sec() - t0;
    free(x), free(w), free(y), free(dx), free(dw);
    return dt;
}

int pl_bench_train(FILE *out) {
    pl_train_options o = pl_train_defaults();
    o.steps = 1000000;  // constant-ish learning rate; the schedule does not matter for speed
    pl_trainer *t = NULL;
    if (pl_trainer_new(&o, &t)) return -1;
    pl_train_source src = {bench_source, NULL};
    const int warm = 2, steps = 8;
    for (int i = 0; i < warm; i++)
        if (pl_trainer_step(t, &src, NULL)) return pl_trainer_free(t), -1;
    double t0 = pl_now_sec();
    long tokens = 0;
    for (int i = 0; i < steps; i++) {
        pl_train_stats st;
        if (pl_trainer_step(t, &src, &st)) return pl_trainer_free(t), -1;
        tokens += st.n_tokens;
    }
    double train_s = pl_now_sec() - t0;
    size_t n_params;
    pl_trainer_params(t, &n_params);
    pl_trainer_free(t);

    // Matrix-product FLOPs of one step: 6 N in out per linear layer (forward, dinp, dW) and the
    // attention products as computed (full T × T squares: 2 forward, 4 backward of 2 T² hd each).
    int N = o.batch * BENCH_TEXT_LEN, T = BENCH_TEXT_LEN, d = o.d_model, hd = d / o.n_heads;
    int kd = o.n_kv_heads * hd, f = o.d_ff, V = 354;
    int shapes[][2] = {{d, d}, {d, kd}, {d, kd}, {d, d}, {d, f}, {d, f}, {f, d}};
    double linear_flops = 0;
    for (int s = 0; s < 7; s++) linear_flops += 6.0 * N * shapes[s][0] * shapes[s][1];
    linear_flops = linear_flops * o.n_layers + 6.0 * N * d * V;
    double attn_flops = 12.0 * T * T * hd * o.n_heads * o.batch * o.n_layers;
    double step_flops = linear_flops + attn_flops;

    // sgemm alone on the same linear shapes, as many repetitions as the timed steps.
    double gemm_s = 0;
    for (int l = 0; l < o.n_layers; l++)
        for (int s = 0; s < 7; s++) gemm_s += sgemm_time(N, shapes[s][0], shapes[s][1], steps);
    gemm_s += sgemm_time(N, d, V, steps);
    double train_gflops = step_flops * steps / train_s / 1e9;
    double gemm_gflops = linear_flops * steps / gemm_s / 1e9;

    fprintf(out, "train: d_model %d, %d layers, %d heads (%d kv), ffn %d: %zu parameters, batch %d x %d tokens\n", d,
            o.n_layers, o.n_heads, o.n_kv_heads, f, n_params, o.batch, T);
    fprintf(out, "train: %.0f tokens/s, %.3f s/step, %.2f GFLOP/step (%.0f%% in linear layers)\n", tokens / train_s,
            train_s / steps, step_flops / 1e9, 100.0 * linear_flops / step_flops);
    fprintf(out, "train: achieved %.1f GFLOP/s; OpenBLAS sgemm alone on the same shapes %.1f GFLOP/s; ratio %.2f\n",
            train_gflops, gemm_gflops, train_gflops / gemm_gflops);
    return 0;
}
