#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "runtime/base/clock.h"
#include "runtime/base/error.h"
#include "runtime/bench/bench.h"
#include "runtime/session.h"

char *openblas_get_corename(void);
char *openblas_get_config(void);
int openblas_get_num_threads(void);

void pl_bench_print_blas(FILE *out) {
    const char *forced = getenv("OPENBLAS_CORETYPE");
    fprintf(out, "OpenBLAS: core %s, %d threads, %s\n", openblas_get_corename(), openblas_get_num_threads(),
            openblas_get_config());
    fprintf(out, "SIMD path: %s (the kernels OpenBLAS does not run)\n", pl_simd_path());
    if (forced)
        fprintf(out, "note: OPENBLAS_CORETYPE=%s forces this core type (on AVX-512 machines Haswell halves sgemm "
                     "speed); run `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE probelab bench ...` for native speed\n",
                forced);
}

static volatile float hook_sink;
static void touch_hook(const pl_hook_event *ev, void *user) {
    (void)user;
    hook_sink += ev->data[0];  // a read hook that looks at the data, as a recorder would
}

// Time of the best of `reps` runs of fn.
#define BEST_OF(reps, result, ...)                                      \
    do {                                                                \
        result = 1e30;                                                  \
        for (int rep_ = 0; rep_ < (reps); rep_++) {                     \
            double t0_ = pl_now_sec();                                  \
            __VA_ARGS__;                                                \
            double t_ = pl_now_sec() - t0_;                             \
            if (t_ < result) result = t_;                               \
        }                                                               \
    } while (0)

int pl_bench_forward(FILE *out, const char *model_path, int T, int n_decode) {
    pl_model *m = NULL;
    if (model_path) {
        if (pl_model_open(&m, model_path) != 0) return -1;
    } else {
        pl_config c = {.arch = PL_ARCH_LLAMA, .d_model = 768, .n_layers = 8, .n_heads = 12, .n_kv_heads = 4,
                       .head_dim = 64, .d_ff = 2048, .vocab_size = 32000, .context_length = 2048, .norm_eps = 1e-5f,
                       .rope_theta = 10000.0f, .rope_style = PL_ROPE_ADJACENT};
        snprintf(c.arch_name, sizeof c.arch_name, "llama");
        if (pl_model_random(&c, 1, &m) != 0) return -1;
    }
    const pl_config *c = &m->config;
    if (T + n_decode + 1 > c->context_length) T = c->context_length / 2, n_decode = c->context_length / 4;
    pl_bench_print_blas(out);
    fprintf(out, "model: %s, %lld parameters (d %d, layers %d, heads %d/%d, ffn %d, vocab %d)\n", m->path,
            (long long)pl_model_n_params(m), c->d_model, c->n_layers, c->n_heads, c->n_kv_heads, c->d_ff, c->vocab_size);

    int d = c->d_model, f = c->d_ff, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, V = c->vocab_size;
    // The model's own matrix shapes (out × in) of one block, plus the unembedding.
    int shapes[][2] = {{qd, d}, {kvd, d}, {kvd, d}, {d, qd}, {f, d}, {f, d}, {d, f}};
    int n_shapes = c->arch == PL_ARCH_GPT2 ? 6 : 7;
    double block_flops = 0, block_bytes = 0;
    for (int i = 0; i < n_shapes; i++) {
        block_flops += 2.0 * shapes[i][0] * shapes[i][1];
        block_bytes += 4.0 * shapes[i][0] * shapes[i][1];
    }
    // Model FLOPs of a prefill: the linear layers for every token, causal attention (q·k and
    // pattern·v over the keys each query sees), and the logits of the last token.
    double attention_flops = 2.0 * 2.0 * c->n_heads * c->head_dim * ((double)T * (T + 1) / 2) * c->n_layers;
    double prefill_flops = T * block_flops * c->n_layers + attention_flops + 2.0 * d * V;
    double decode_bytes = block_bytes * c->n_layers + 4.0 * V * d;

    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(T + n_decode));
    for (int i = 0; i < T + n_decode; i++) ids[i] = (int32_t)((i * 7919 + 13) % V);
    pl_session *s;
    if (pl_session_open(&s, m, T + n_decode + 1) != 0) {
        free(ids);
        pl_model_free(m);
        return -1;
    }
    pl_hooks *hooks = pl_hooks_new(c);
    pl_hooks_add(hooks, "*", touch_hook, NULL);
    const float *logits;
    double t_prefill[2], t_decode[2];
    for (int with_hooks = 0; with_hooks < 2; with_hooks++) {
        pl_session_set_hooks(s, with_hooks ? hooks : NULL);
        BEST_OF(3, t_prefill[with_hooks], pl_session_reset(s); pl_forward(s, ids, T, &logits));
        BEST_OF(2, t_decode[with_hooks], pl_session_reset(s); pl_forward(s, ids, 1, &logits);
                for (int i = 1; i <= n_decode; i++) pl_forward(s, ids + i, 1, &logits));
    }

    // Baselines: sgemm on the same shapes with T rows; memcpy of the decode's weight bytes.
    float *a = calloc((size_t)T * (f > qd ? (f > d ? f : d) : (qd > d ? qd : d)), sizeof(float));
    float *cbuf = calloc((size_t)T * (f > qd ? (f > d ? f : d) : (qd > d ? qd : d)), sizeof(float));
    double t_sgemm;
    const pl_layer_weights *L = &m->weights.layers[0];
    const float *ws[] = {L->wq, L->wk, L->wv, L->wo, L->w_up, L->w_gate ? L->w_gate : L->w_up, L->w_down};
    BEST_OF(3, t_sgemm, for (int l = 0; l < c->n_layers; l++) for (int i = 0; i < n_shapes; i++)
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, shapes[i][0], shapes[i][1], 1.0f, a,
                                        shapes[i][1], ws[i], shapes[i][1], 0.0f, cbuf, shapes[i][0]));
    double sgemm_gflops = T * block_flops * c->n_layers / t_sgemm * 1e-9;
    size_t nbytes = (size_t)decode_bytes;
    char *src = malloc(nbytes), *dst = malloc(nbytes);
    memset(src, 1, nbytes);
    memset(dst, 0, nbytes);
    double t_memcpy;
    BEST_OF(3, t_memcpy, memcpy(dst, src, nbytes); hook_sink += dst[nbytes / 2]);
    double memcpy_gbs = nbytes / t_memcpy * 1e-9;

    fprintf(out, "\n%-22s %12s %12s %12s %10s\n", "", "tokens/s", "rate", "baseline", "ratio");
    for (int hk = 0; hk < 2; hk++) {
        double gflops = prefill_flops / t_prefill[hk] * 1e-9;
        fprintf(out, "prefill %-4d %-9s %12.1f %8.1f GF/s %7.1f GF/s %9.0f%%   (baseline: OpenBLAS sgemm, same shapes)\n",
                T, hk ? "hooks on" : "no hooks", T / t_prefill[hk], gflops, sgemm_gflops, 100 * gflops / sgemm_gflops);
    }
    for (int hk = 0; hk < 2; hk++) {
        double per_token = t_decode[hk] / (n_decode + 1);
        double gbs = decode_bytes / per_token * 1e-9;
        fprintf(out, "decode  %-4d %-9s %12.1f %8.2f GB/s %7.2f GB/s %9.0f%%   (baseline: memcpy of the weight bytes)\n",
                n_decode, hk ? "hooks on" : "no hooks", 1 / per_token, gbs, memcpy_gbs, 100 * gbs / memcpy_gbs);
    }
    fprintf(out, "hooks on ('*', every hook point): prefill %.1f%%, decode %.1f%% slower\n",
            100 * (t_prefill[1] / t_prefill[0] - 1), 100 * (t_decode[1] / t_decode[0] - 1));
    free(a);
    free(cbuf);
    free(src);
    free(dst);
    pl_hooks_free(hooks);
    pl_session_free(s);
    free(ids);
    pl_model_free(m);
    return 0;
}
