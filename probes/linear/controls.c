#include "probes/linear/controls.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/rng.h"
#include "runtime/base/error.h"

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

// One column per distinct key over all rows: keys[n_keys] sorted, so a row's column is a bsearch.
// key_of(row, k) enumerates the keys of a row (count in *n_row_keys); a value adds to its column.
typedef struct {
    int64_t *keys;
    int n;
} key_set;

static int key_set_build(key_set *ks, const int64_t *all, int64_t n_all) {
    ks->keys = malloc(sizeof(int64_t) * (size_t)(n_all > 0 ? n_all : 1));
    ks->n = 0;
    if (!ks->keys) return pl_fail("out of memory");
    memcpy(ks->keys, all, sizeof(int64_t) * (size_t)n_all);
    qsort(ks->keys, (size_t)n_all, sizeof(int64_t), cmp_i64);
    for (int64_t i = 0; i < n_all; i++)
        if (ks->n == 0 || ks->keys[ks->n - 1] != ks->keys[i]) ks->keys[ks->n++] = ks->keys[i];
    return 0;
}

static int key_col(const key_set *ks, int64_t key) {
    const int64_t *hit = bsearch(&key, ks->keys, (size_t)ks->n, sizeof(int64_t), cmp_i64);
    return (int)(hit - ks->keys);
}

// Dense [n × columns] of the keys (row i's keys are key[off[i]..off[i+1])): counts (or ones).
static int keys_matrix(float **x, int *d, const int64_t *key, const int64_t *off, int64_t n, int one_hot) {
    *x = NULL, *d = 0;
    key_set ks;
    if (key_set_build(&ks, key, off[n])) return -1;
    float *m = calloc((size_t)n * (size_t)(ks.n > 0 ? ks.n : 1), sizeof(float));
    if (!m) { free(ks.keys); return pl_fail("out of memory for %lld × %d input features", (long long)n, ks.n); }
    for (int64_t i = 0; i < n; i++)
        for (int64_t t = off[i]; t < off[i + 1]; t++) {
            float *v = &m[(size_t)i * ks.n + key_col(&ks, key[t])];
            *v = one_hot ? 1.0f : *v + 1.0f;
        }
    *x = m, *d = ks.n;
    free(ks.keys);
    return 0;
}

static int token_keys(float **x, int *d, const int32_t *ids, const int64_t *off, int64_t n, int positional) {
    int64_t total = off[n];
    int64_t *key = malloc(sizeof(int64_t) * (size_t)(total > 0 ? total : 1));
    if (!key) return pl_fail("out of memory");
    for (int64_t i = 0; i < n; i++)
        for (int64_t t = off[i]; t < off[i + 1]; t++)
            key[t] = positional ? ((t - off[i]) << 32) | (uint32_t)ids[t] : (int64_t)ids[t];
    int rc = keys_matrix(x, d, key, off, n, positional);
    free(key);
    return rc;
}

int pl_input_bag_of_tokens(float **x, int *d, const int32_t *ids, const int64_t *off, int64_t n) {
    return token_keys(x, d, ids, off, n, 0);
}

int pl_input_positional(float **x, int *d, const int32_t *ids, const int64_t *off, int64_t n) {
    return token_keys(x, d, ids, off, n, 1);
}

int pl_input_categorical(float **x, int *d, const int32_t *values, int64_t n, int n_fields) {
    *x = NULL, *d = 0;
    int64_t *key = malloc(sizeof(int64_t) * (size_t)(n * n_fields > 0 ? n * n_fields : 1));
    int64_t *off = malloc(sizeof(int64_t) * (size_t)(n + 1));
    if (!key || !off) { free(key), free(off); return pl_fail("out of memory"); }
    uint64_t varies = 0;  // a field with one value over all rows carries nothing (n_fields <= 64)
    for (int f = 0; f < n_fields && f < 64; f++)
        for (int64_t r = 1; r < n; r++)
            if (values[r * n_fields + f] != values[f]) { varies |= 1ULL << f; break; }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        off[i] = k;
        for (int f = 0; f < n_fields && f < 64; f++)
            if (varies >> f & 1) key[k++] = ((int64_t)f << 32) | (uint32_t)values[i * n_fields + f];
    }
    off[n] = k;
    int rc = keys_matrix(x, d, key, off, n, 1);
    free(key), free(off);
    return rc;
}

int pl_shuffle_labels(int32_t *out, const int32_t *y, const int32_t *groups, int64_t n, uint64_t seed) {
    // Distinct groups in first-appearance order, each with its first row.
    int64_t *first = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    int64_t *gidx = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (!first || !gidx || !perm) { free(first), free(gidx), free(perm); return pl_fail("out of memory"); }
    int64_t n_groups = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t g = n_groups;
        if (groups)  // groups are few per row set: a linear scan over the distinct ones so far
            for (int64_t j = 0; j < n_groups; j++)
                if (groups[first[j]] == groups[i]) { g = j; break; }
        if (g == n_groups) first[n_groups++] = i;
        gidx[i] = g;
    }
    for (int64_t g = 0; g < n_groups; g++) perm[g] = g;
    pl_rng rng = pl_rng_seed(seed ^ 0x5a0ff1eULL);
    for (int64_t g = n_groups - 1; g > 0; g--) {
        int64_t j = (int64_t)pl_rng_below(&rng, (uint64_t)g + 1), t = perm[g];
        perm[g] = perm[j], perm[j] = t;
    }
    for (int64_t i = 0; i < n; i++) out[i] = y[first[perm[gidx[i]]]];
    free(first), free(gidx), free(perm);
    return 0;
}

// out = g with its component along w removed (Gram-Schmidt in double, twice: the second pass
// removes the round-off of the first), scaled to |w| (ww = w·w > 0). Fails with why if nothing is left.
static int orthogonal_at_norm_of_w(float *out, double *g, const float *w, double ww, int d, const char *why) {
    for (int pass = 0; pass < 2; pass++) {
        double gw = 0;
        for (int j = 0; j < d; j++) gw += g[j] * w[j];
        for (int j = 0; j < d; j++) g[j] -= gw / ww * w[j];
    }
    double gg = 0;
    for (int j = 0; j < d; j++) gg += g[j] * g[j];
    if (!(gg > 1e-20 * ww)) return pl_fail("%s", why);
    double scale = sqrt(ww / gg);
    for (int j = 0; j < d; j++) out[j] = (float)(g[j] * scale);
    return 0;
}

int pl_orthogonal_control(float *out, const float *w, int d, uint64_t seed) {
    double ww = 0;
    for (int j = 0; j < d; j++) ww += (double)w[j] * w[j];
    if (!(ww > 0)) return pl_fail("control direction: w is zero");
    double *g = malloc(sizeof(double) * (size_t)d);
    if (!g) return pl_fail("out of memory");
    pl_rng rng = pl_rng_seed(seed);
    for (int j = 0; j < d; j++) g[j] = pl_rng_normal(&rng);
    int rc = orthogonal_at_norm_of_w(out, g, w, ww, d, "control direction: the random draw lies along w");
    free(g);
    return rc;
}

int pl_covariance_control(float *out, const float *w, const float *x, int64_t n, int d, uint64_t seed) {
    if (n < 2) return pl_fail("covariance control: needs at least 2 rows, got %lld", (long long)n);
    double ww = 0;
    for (int j = 0; j < d; j++) ww += (double)w[j] * w[j];
    if (!(ww > 0)) return pl_fail("covariance control: w is zero");
    double *mean = calloc((size_t)d, sizeof(double)), *g = calloc((size_t)d, sizeof(double));
    if (!mean || !g) { free(mean), free(g); return pl_fail("out of memory"); }
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) mean[j] += x[(size_t)i * d + j];
    for (int j = 0; j < d; j++) mean[j] /= (double)n;
    pl_rng rng = pl_rng_seed(seed);
    for (int64_t i = 0; i < n; i++) {
        double z = pl_rng_normal(&rng);
        for (int j = 0; j < d; j++) g[j] += z * (x[(size_t)i * d + j] - mean[j]);
    }
    int rc = orthogonal_at_norm_of_w(out, g, w, ww, d, "covariance control: the activations vary only along w");
    free(mean), free(g);
    return rc;
}

void pl_mean_sd(double *mean, double *sd, const double *v, int n) {
    double s = 0, q = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) s += v[i], k++;
    *mean = k ? s / k : NAN;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = k > 1 ? sqrt(q / (k - 1)) : NAN;
}
