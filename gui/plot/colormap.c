// Colormaps as tables with linear interpolation, the theme palettes and backgrounds.
#include "gui/plot/plot_internal.h"

#include <math.h>

// matplotlib's viridis (CC0), every 5th of its 256 entries, so entry k sits at t = k / 51.
static const double viridis_table[52][3] = {
    {0.2670, 0.0049, 0.3294}, {0.2738, 0.0315, 0.3589}, {0.2788, 0.0621, 0.3866},
    {0.2819, 0.0897, 0.4124}, {0.2832, 0.1157, 0.4361}, {0.2826, 0.1409, 0.4575},
    {0.2803, 0.1657, 0.4765}, {0.2762, 0.1901, 0.4930}, {0.2706, 0.2141, 0.5071},
    {0.2637, 0.2376, 0.5188}, {0.2556, 0.2607, 0.5283}, {0.2468, 0.2832, 0.5359},
    {0.2374, 0.3052, 0.5419}, {0.2278, 0.3266, 0.5465}, {0.2181, 0.3474, 0.5500},
    {0.2086, 0.3678, 0.5527}, {0.1994, 0.3876, 0.5546}, {0.1906, 0.4071, 0.5561},
    {0.1823, 0.4262, 0.5571}, {0.1743, 0.4450, 0.5578}, {0.1666, 0.4637, 0.5581},
    {0.1592, 0.4822, 0.5581}, {0.1519, 0.5007, 0.5576}, {0.1448, 0.5191, 0.5566},
    {0.1378, 0.5375, 0.5549}, {0.1312, 0.5559, 0.5525}, {0.1254, 0.5743, 0.5491},
    {0.1211, 0.5927, 0.5446}, {0.1194, 0.6111, 0.5390}, {0.1214, 0.6295, 0.5320},
    {0.1281, 0.6477, 0.5235}, {0.1402, 0.6659, 0.5134}, {0.1579, 0.6838, 0.5017},
    {0.1807, 0.7014, 0.4882}, {0.2080, 0.7187, 0.4729}, {0.2394, 0.7356, 0.4557},
    {0.2741, 0.7520, 0.4366}, {0.3119, 0.7678, 0.4156}, {0.3524, 0.7830, 0.3926},
    {0.3952, 0.7975, 0.3678}, {0.4401, 0.8111, 0.3410}, {0.4870, 0.8239, 0.3123},
    {0.5356, 0.8358, 0.2819}, {0.5857, 0.8467, 0.2499}, {0.6369, 0.8565, 0.2166},
    {0.6889, 0.8654, 0.1827}, {0.7414, 0.8734, 0.1496}, {0.7938, 0.8807, 0.1200},
    {0.8456, 0.8873, 0.0997}, {0.8963, 0.8936, 0.0963}, {0.9456, 0.8998, 0.1128},
    {0.9932, 0.9062, 0.1439},
};

// ColorBrewer RdBu (11 classes) reversed: t = 0 blue, 0.5 near-white, 1 red.
static const double diverging_table[11][3] = {
    {0x05 / 255.0, 0x30 / 255.0, 0x61 / 255.0}, {0x21 / 255.0, 0x66 / 255.0, 0xac / 255.0},
    {0x43 / 255.0, 0x93 / 255.0, 0xc3 / 255.0}, {0x92 / 255.0, 0xc5 / 255.0, 0xde / 255.0},
    {0xd1 / 255.0, 0xe5 / 255.0, 0xf0 / 255.0}, {0xf7 / 255.0, 0xf7 / 255.0, 0xf7 / 255.0},
    {0xfd / 255.0, 0xdb / 255.0, 0xc7 / 255.0}, {0xf4 / 255.0, 0xa5 / 255.0, 0x82 / 255.0},
    {0xd6 / 255.0, 0x60 / 255.0, 0x4d / 255.0}, {0xb2 / 255.0, 0x18 / 255.0, 0x2b / 255.0},
    {0x67 / 255.0, 0x00 / 255.0, 0x1f / 255.0},
};

static pl_rgb table_eval(const double (*table)[3], int n, double t) {
    if (!(t == t)) t = 0.5;  // NaN
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    double pos = t * (n - 1);
    int k = (int)floor(pos);
    if (k >= n - 1) k = n - 2;
    double f = pos - k;
    return (pl_rgb){table[k][0] + f * (table[k + 1][0] - table[k][0]),
                    table[k][1] + f * (table[k + 1][1] - table[k][1]),
                    table[k][2] + f * (table[k + 1][2] - table[k][2])};
}

pl_rgb pl_colormap_eval(pl_colormap cmap, double t) {
    if (cmap == PL_CMAP_DIVERGING) return table_eval(diverging_table, 11, t);
    return table_eval(viridis_table, 52, t);
}

void pl_colorbar_fill(cairo_t *cr, pl_colormap cmap, pl_rect r, int horizontal) {
    // A gradient with a stop at every table entry reproduces the piecewise-linear map exactly and
    // stays a vector in SVG/PDF.
    cairo_pattern_t *pat = horizontal ? cairo_pattern_create_linear(r.x, 0, r.x + r.w, 0)
                                      : cairo_pattern_create_linear(0, r.y + r.h, 0, r.y);
    int n = cmap == PL_CMAP_DIVERGING ? 11 : 52;
    for (int k = 0; k < n; k++) {
        double t = (double)k / (n - 1);
        pl_rgb c = pl_colormap_eval(cmap, t);
        cairo_pattern_add_color_stop_rgb(pat, t, c.r, c.g, c.b);
    }
    cairo_rectangle(cr, r.x, r.y, r.w, r.h);
    cairo_set_source(cr, pat);
    cairo_fill(cr);
    cairo_pattern_destroy(pat);
}

// Tableau 10.
static const unsigned palette_hex[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                         0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

pl_rgb pl_palette_color(pl_theme theme, int index) {
    if (index < 0) index = -index;
    unsigned h = palette_hex[index % 10];
    pl_rgb c = {((h >> 16) & 0xff) / 255.0, ((h >> 8) & 0xff) / 255.0, (h & 0xff) / 255.0};
    if (theme == PL_THEME_DARK) {  // lift towards white so lines stay visible on a dark background
        c.r += 0.25 * (1 - c.r);
        c.g += 0.25 * (1 - c.g);
        c.b += 0.25 * (1 - c.b);
    }
    return c;
}

pl_rgb pl_theme_background(pl_theme theme) {
    // Dark matches GTK4 Adwaita's view background so the viewer blends in.
    return theme == PL_THEME_DARK ? (pl_rgb){0x1e / 255.0, 0x1e / 255.0, 0x1e / 255.0} : (pl_rgb){1, 1, 1};
}
