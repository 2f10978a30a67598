#include "probes/linear/lbfgs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"

#define FTOL_WINDOW 5  // iterations over which the relative decrease is measured

pl_lbfgs_options pl_lbfgs_defaults(void) {
    return (pl_lbfgs_options){.max_iter = 1000, .history = 10, .gtol = 1e-5, .ftol = 1e-9, .max_linesearch = 40};
}

const char *pl_lbfgs_stop_name(pl_lbfgs_stop stop) {
    switch (stop) {
    case PL_LBFGS_GTOL: return "gtol";
    case PL_LBFGS_FTOL: return "ftol";
    case PL_LBFGS_MAX_ITER: return "max_iter";
    case PL_LBFGS_LINE_SEARCH: return "line_search";
    }
    return "?";
}

static double dot(const double *a, const double *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double max_abs(const double *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

// Everything the line search reads and writes: the start point (x, f, g), the direction p, and
// the trial point (xt, ft, gt) which holds the accepted point on success.
typedef struct line_search {
    pl_lbfgs_objective objective;
    void *ctx;
    int64_t n;
    const double *x, *p;
    double f, dphi0;
    double *xt, *gt;
    double ft;
    int evaluations;
} line_search;

// phi(alpha) = f(x + alpha p); returns phi and stores phi'(alpha) in *dphi.
static double trial(line_search *ls, double alpha, double *dphi) {
    for (int64_t i = 0; i < ls->n; i++) ls->xt[i] = ls->x[i] + alpha * ls->p[i];
    ls->ft = ls->objective(ls->gt, ls->xt, ls->ctx);
    ls->evaluations++;
    *dphi = dot(ls->gt, ls->p, ls->n);
    if (!isfinite(*dphi)) ls->ft = INFINITY;
    return ls->ft;
}

// Minimizer of the cubic through (a, fa, da) and (b, fb, db), kept inside the middle 80% of the
// interval (bisection when the cubic is useless), so the bracket always shrinks.
static double interpolate(double a, double fa, double da, double b, double fb, double db) {
    double lo = fmin(a, b), hi = fmax(a, b), width = hi - lo;
    double t = 0.5 * (a + b);
    if (isfinite(fa) && isfinite(fb)) {
        double d1 = da + db - 3 * (fa - fb) / (a - b);
        double disc = d1 * d1 - da * db;
        if (disc >= 0) {
            double d2 = (b > a ? 1 : -1) * sqrt(disc);
            double c = b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2);
            if (isfinite(c)) t = c;
        }
    }
    if (t < lo + 0.1 * width || t > hi - 0.1 * width) t = 0.5 * (a + b);
    return t;
}

// Hager & Zhang's approximate Wolfe conditions: near the minimum, f differences drown in the
// rounding of float logits, so a step is also accepted when f rose by no more than that noise and
// the slope went from phi'(0) < 0 to within [c2 phi'(0), (2 delta - 1) phi'(0)].
static int approximate_wolfe(const line_search *ls, double fa, double d, double c2) {
    const double delta = 0.1, noise = 1e-6;
    return fa <= ls->f + noise * fabs(ls->f) && d >= c2 * ls->dphi0 && d <= (2 * delta - 1) * ls->dphi0;
}

// Strong-Wolfe line search: sufficient decrease (c1) and curvature |phi'| <= c2 |phi'(0)|, or the
// approximate Wolfe conditions above. Returns 1 when a step was accepted (the point is in
// xt/gt/ft), 0 when none was found.
static int wolfe_search(line_search *ls, double alpha, int max_evals) {
    const double c1 = 1e-4, c2 = 0.9;
    double a_prev = 0, f_prev = ls->f, d_prev = ls->dphi0;
    double a_lo, f_lo, d_lo, a_hi, f_hi, d_hi;
    int evals = 0;
    for (;;) {  // bracketing phase
        if (evals++ >= max_evals) return 0;
        double d;
        double fa = trial(ls, alpha, &d);
        if (approximate_wolfe(ls, fa, d, c2)) return 1;
        if (fa > ls->f + c1 * alpha * ls->dphi0 || (evals > 1 && fa >= f_prev)) {
            a_lo = a_prev, f_lo = f_prev, d_lo = d_prev, a_hi = alpha, f_hi = fa, d_hi = d;
            break;
        }
        if (fabs(d) <= -c2 * ls->dphi0) return 1;
        if (d >= 0) {
            a_lo = alpha, f_lo = fa, d_lo = d, a_hi = a_prev, f_hi = f_prev, d_hi = d_prev;
            break;
        }
        a_prev = alpha, f_prev = fa, d_prev = d;
        alpha *= 2;
        if (alpha > 1e10) return 0;
    }
    for (;;) {  // zoom phase: a_lo always satisfies sufficient decrease and has the lowest f
        if (evals++ >= max_evals) return 0;
        if (fabs(a_hi - a_lo) <= 1e-14 * fmax(a_hi, a_lo)) return 0;
        double a = interpolate(a_lo, f_lo, d_lo, a_hi, f_hi, d_hi);
        double d;
        double fa = trial(ls, a, &d);
        if (approximate_wolfe(ls, fa, d, c2)) return 1;
        if (fa > ls->f + c1 * a * ls->dphi0 || fa >= f_lo) {
            a_hi = a, f_hi = fa, d_hi = d;
        } else {
            if (fabs(d) <= -c2 * ls->dphi0) return 1;
            if (d * (a_hi - a_lo) >= 0) a_hi = a_lo, f_hi = f_lo, d_hi = d_lo;
            a_lo = a, f_lo = fa, d_lo = d;
        }
    }
}

int pl_lbfgs_minimize(double *x, pl_lbfgs_result *result, pl_lbfgs_objective objective, void *ctx, int64_t n,
                      const pl_lbfgs_options *opts) {
    pl_lbfgs_options o = opts ? *opts : pl_lbfgs_defaults();
    if (o.history < 1) o.history = 1;
    if (o.max_linesearch < 4) o.max_linesearch = 4;
    int m = o.history;
    memset(result, 0, sizeof *result);
    // g, p, xt, gt, then the history: s[m][n], y[m][n]
    double *buf = malloc(sizeof(double) * (size_t)n * (4 + 2 * (size_t)m));
    double *rho = malloc(sizeof(double) * (size_t)m), *alpha_k = malloc(sizeof(double) * (size_t)m);
    if (!buf || !rho || !alpha_k) {
        free(buf), free(rho), free(alpha_k);
        return pl_fail("lbfgs: out of memory for %lld parameters", (long long)n);
    }
    double *g = buf, *p = g + n, *xt = p + n, *gt = xt + n, *s = gt + n, *y = s + (size_t)m * n;
    double f = objective(g, x, ctx);
    result->evaluations = 1;
    if (!isfinite(f)) {
        free(buf), free(rho), free(alpha_k);
        return pl_fail("lbfgs: objective is not finite at the start point");
    }
    int n_pairs = 0, newest = -1;  // ring buffer of the last m (s, y) pairs
    double f_window[FTOL_WINDOW];  // f after iteration i sits at [i % FTOL_WINDOW]
    f_window[0] = f;
    result->stop = PL_LBFGS_MAX_ITER;
    for (int iter = 0;; iter++) {
        double gmax = max_abs(g, n);
        result->f = f, result->grad_max = gmax, result->iterations = iter;
        if (gmax <= o.gtol * fmax(1.0, fabs(f))) {
            result->stop = PL_LBFGS_GTOL;
            break;
        }
        if (iter >= o.max_iter) break;
        // Two-loop recursion: p = -H g.
        for (int64_t i = 0; i < n; i++) p[i] = -g[i];
        for (int j = 0; j < n_pairs; j++) {
            int k = (newest - j + m) % m;
            alpha_k[k] = rho[k] * dot(s + (size_t)k * n, p, n);
            for (int64_t i = 0; i < n; i++) p[i] -= alpha_k[k] * y[(size_t)k * n + i];
        }
        double step0;
        if (n_pairs > 0) {
            double *yn = y + (size_t)newest * n;
            double gamma = dot(s + (size_t)newest * n, yn, n) / dot(yn, yn, n);
            for (int64_t i = 0; i < n; i++) p[i] *= gamma;
            step0 = 1.0;
        } else {
            step0 = 1.0 / fmax(1.0, sqrt(dot(g, g, n)));  // first step: at most unit length
        }
        for (int j = n_pairs - 1; j >= 0; j--) {
            int k = (newest - j + m) % m;
            double beta = rho[k] * dot(y + (size_t)k * n, p, n);
            for (int64_t i = 0; i < n; i++) p[i] += (alpha_k[k] - beta) * s[(size_t)k * n + i];
        }
        line_search ls = {.objective = objective, .ctx = ctx, .n = n, .x = x, .p = p, .f = f,
                          .dphi0 = dot(g, p, n), .xt = xt, .gt = gt};
        int ok = ls.dphi0 < 0 && wolfe_search(&ls, step0, o.max_linesearch);
        if (!ok && n_pairs > 0) {
            // The quasi-Newton model may be stale: retry once along steepest descent.
            n_pairs = 0;
            for (int64_t i = 0; i < n; i++) p[i] = -g[i];
            ls.dphi0 = -dot(g, g, n);
            ok = wolfe_search(&ls, 1.0 / fmax(1.0, sqrt(-ls.dphi0)), o.max_linesearch);
        }
        result->evaluations += ls.evaluations;
        if (!ok) {
            result->stop = PL_LBFGS_LINE_SEARCH;
            break;
        }
        // Store the pair s = xt - x, y = gt - g (skipped if the curvature is not positive).
        int slot = (newest + 1) % m;
        double *sk = s + (size_t)slot * n, *yk = y + (size_t)slot * n;
        for (int64_t i = 0; i < n; i++) sk[i] = xt[i] - x[i], yk[i] = gt[i] - g[i];
        double sy = dot(sk, yk, n);
        if (sy > 1e-12 * sqrt(dot(sk, sk, n) * dot(yk, yk, n))) {
            rho[slot] = 1.0 / sy;
            newest = slot;
            if (n_pairs < m) n_pairs++;
        }
        memcpy(x, xt, sizeof(double) * (size_t)n);
        memcpy(g, gt, sizeof(double) * (size_t)n);
        f = ls.ft;
        // Decrease test over a window: single-step differences of a float-computed loss are noise
        // near the minimum (and approximate-Wolfe steps may even raise f slightly).
        double f_then = f_window[(iter + 1) % FTOL_WINDOW];
        f_window[(iter + 1) % FTOL_WINDOW] = f;
        if (o.ftol > 0 && iter + 1 >= FTOL_WINDOW &&
            (f_then - f) / fmax(fmax(fabs(f_then), fabs(f)), 1.0) <= FTOL_WINDOW * o.ftol) {
            result->f = f, result->grad_max = max_abs(g, n), result->iterations = iter + 1;
            result->stop = PL_LBFGS_FTOL;
            break;
        }
    }
    result->converged = result->stop == PL_LBFGS_GTOL || result->stop == PL_LBFGS_FTOL;
    free(buf), free(rho), free(alpha_k);
    return 0;
}
