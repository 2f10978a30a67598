#include "runtime/base/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"

static int write_array(const char *path, const void *data, size_t elem_size, const char *descr, int ndim,
                       const int64_t *shape) {
    char header[512];
    char dims[256] = "";
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld%s", (long long)shape[i], (ndim == 1 || i < ndim - 1) ? ", " : "");
        strncat(dims, buf, sizeof dims - strlen(dims) - 1);
        count *= (size_t)shape[i];
    }
    if (ndim == 1) dims[strlen(dims) - 1] = '\0';  // "(n,)" not "(n, )"
    int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
    // Pad so that magic(6)+version(2)+len(2)+header is a multiple of 64, ending in '\n'.
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    memset(header + n, ' ', (size_t)pad);
    header[n + pad] = '\n';
    uint16_t hlen = (uint16_t)(n + pad + 1);

    FILE *f = fopen(path, "wb");
    if (!f) return pl_fail("%s: cannot open for writing", path);
    int ok = fwrite("\x93NUMPY\x01\x00", 1, 8, f) == 8 && fwrite(&hlen, 2, 1, f) == 1 &&
             fwrite(header, 1, hlen, f) == hlen && fwrite(data, elem_size, count, f) == count;
    if (fclose(f) != 0) ok = 0;
    if (!ok) return pl_fail("%s: write failed (disk full?)", path);
    return 0;
}

int pl_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape) {
    return write_array(path, data, 4, "<f4", ndim, shape);
}

int pl_npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape) {
    return write_array(path, data, 4, "<i4", ndim, shape);
}

int pl_npy_read_f32(const char *path, float **out, int *ndim, int64_t shape[PL_NPY_MAX_DIMS]) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return pl_fail("%s: cannot open", path);
    unsigned char pre[10];
    char header[4096];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1) {
        fclose(f);
        return pl_fail("%s: not a version-1 .npy file", path);
    }
    size_t hlen = (size_t)pre[8] | ((size_t)pre[9] << 8);
    if (hlen >= sizeof header || fread(header, 1, hlen, f) != hlen) {
        fclose(f);
        return pl_fail("%s: truncated .npy header", path);
    }
    header[hlen] = '\0';
    int is_f8 = strstr(header, "'<f8'") != NULL;
    if (!is_f8 && !strstr(header, "'<f4'")) {
        fclose(f);
        return pl_fail("%s: only little-endian float32/float64 arrays are supported", path);
    }
    if (strstr(header, "'fortran_order': True")) {
        fclose(f);
        return pl_fail("%s: Fortran-order arrays are not supported", path);
    }
    const char *p = strstr(header, "'shape': (");
    if (!p) {
        fclose(f);
        return pl_fail("%s: .npy header has no shape", path);
    }
    p += 10;
    *ndim = 0;
    size_t count = 1;
    while (*p && *p != ')') {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) break;
        if (*ndim >= PL_NPY_MAX_DIMS || v < 0) {
            fclose(f);
            return pl_fail("%s: bad shape in .npy header", path);
        }
        shape[(*ndim)++] = v;
        count *= (size_t)v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    float *data = malloc(count * sizeof(float) + 1);
    if (!data) {
        fclose(f);
        return pl_fail("%s: out of memory", path);
    }
    int ok = 1;
    if (is_f8) {
        for (size_t i = 0; i < count && ok; i++) {
            double d;
            ok = fread(&d, 8, 1, f) == 1;
            data[i] = (float)d;
        }
    } else {
        ok = fread(data, 4, count, f) == count;
    }
    fclose(f);
    if (!ok) {
        free(data);
        return pl_fail("%s: truncated .npy data", path);
    }
    *out = data;
    return 0;
}
