// Axis ranges and tick values at nice 1-2-5 steps.
#include "gui/plot/plot_internal.h"

#include <math.h>
#include <stdio.h>

void pl_fix_range(double *lo, double *hi) {
    if (!isfinite(*lo) || !isfinite(*hi) || *lo > *hi) {
        *lo = 0;
        *hi = 1;
        return;
    }
    if (*hi - *lo <= 1e-12 * fmax(fabs(*lo), fabs(*hi))) {
        // A single value or all-equal values: centre a range on it.
        double half = *lo == 0 ? 1 : fabs(*lo) * 0.1;
        *lo -= half;
        *hi += half;
    }
}

int pl_nice_ticks(double lo, double hi, int target, double *ticks, double *step_out) {
    if (target < 2) target = 2;
    if (target > PL_MAX_TICKS - 2) target = PL_MAX_TICKS - 2;
    double range = hi - lo;
    if (!(range > 0) || !isfinite(range)) {
        *step_out = 1;
        ticks[0] = isfinite(lo) ? lo : 0;
        return 1;
    }
    // The smallest 1-2-5 step that gives at most `target` ticks inside [lo, hi].
    double mag = pow(10, floor(log10(range / target)));
    static const double mult[3] = {1, 2, 5};
    double step = mag;
    for (int k = 0; k < 12; k++) {
        step = mult[k % 3] * mag * pow(10, k / 3);
        double count = floor(hi / step + 1e-9) - ceil(lo / step - 1e-9) + 1;
        if (count <= target) break;
    }
    double eps = step * 1e-9;
    double first = ceil((lo - eps) / step);
    int n = 0;
    for (double k = first; n < PL_MAX_TICKS; k += 1) {
        double v = k * step;
        if (v > hi + eps) break;
        if (fabs(v) < eps) v = 0;  // no "-0"
        ticks[n++] = v;
    }
    *step_out = step;
    return n;
}

void pl_format_tick(char *buf, size_t size, double value, double step) {
    double a = fabs(value);
    if ((a >= 1e6 || (a > 0 && a < 1e-4)) || step < 1e-5) {
        snprintf(buf, size, "%.3g", value);
        return;
    }
    int decimals = (int)ceil(-log10(step) - 1e-9);
    if (decimals < 0) decimals = 0;
    if (decimals > 6) decimals = 6;
    snprintf(buf, size, "%.*f", decimals, value);
}
