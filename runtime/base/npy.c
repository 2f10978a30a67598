#include "runtime/base/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"

int pl_npy_header(char *head, size_t cap, const char *descr, int ndim, const int64_t *shape, size_t min_size) {
    char dims[PL_NPY_MAX_DIMS * 24] = "";
    size_t used = 0;
    for (int i = 0; i < ndim && i < PL_NPY_MAX_DIMS; i++)  // "(n,)" for one dimension, "(a, b)" for more
        used += (size_t)snprintf(dims + used, sizeof dims - used, "%lld%s", (long long)shape[i],
                                 ndim == 1 ? "," : i < ndim - 1 ? ", " : "");
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
    // magic(6) + version(2) + length(2) + dict + spaces + '\n': a multiple of 64 bytes, at least min_size
    size_t total = 10 + (size_t)n + 1;
    total += (64 - total % 64) % 64;
    while (total < min_size) total += 64;
    if (ndim < 0 || ndim > PL_NPY_MAX_DIMS || n < 0 || (size_t)n >= sizeof dict || total > cap || total - 10 > 65535)
        return -1;
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (char)((total - 10) & 0xff), head[9] = (char)((total - 10) >> 8);
    memset(head + 10, ' ', total - 10);
    memcpy(head + 10, dict, (size_t)n);
    head[total - 1] = '\n';
    return (int)total;
}

static int write_array(const char *path, const void *data, size_t elem_size, const char *descr, int ndim,
                       const int64_t *shape) {
    char header[512];
    int hlen = pl_npy_header(header, sizeof header, descr, ndim, shape, 0);
    if (hlen < 0) return pl_fail("%s: cannot describe a %d-dimensional array in an .npy header", path, ndim);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) count *= (size_t)shape[i];
    FILE *f = fopen(path, "wb");
    if (!f) return pl_fail("%s: cannot open for writing", path);
    int ok = fwrite(header, 1, (size_t)hlen, f) == (size_t)hlen && fwrite(data, elem_size, count, f) == count;
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
