#include "runtime/model/safetensors.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "runtime/base/error.h"

// The reference implementation refuses headers above 100 MB; so do we (a corrupt length would
// otherwise make us parse megabytes of tensor bytes as JSON).
#define PL_ST_MAX_HEADER ((uint64_t)100 << 20)

const char *pl_st_dtype_name(pl_st_dtype dtype) {
    switch (dtype) {
    case PL_ST_F32: return "F32";
    case PL_ST_F16: return "F16";
    case PL_ST_BF16: return "BF16";
    }
    return "?";
}

size_t pl_st_dtype_size(pl_st_dtype dtype) { return dtype == PL_ST_F32 ? 4 : 2; }

void pl_st_file_free(pl_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    f->tensors = NULL;
    f->n_tensors = 0;
}

const pl_st_tensor *pl_st_find(const pl_st_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

static int compare_by_offset(const void *a, const void *b) {
    const pl_st_tensor *x = *(const pl_st_tensor *const *)a, *y = *(const pl_st_tensor *const *)b;
    return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

// Fill t from one header entry; data_begin/data_size describe the data region of the file.
static int parse_entry(pl_st_tensor *t, const char *name, json_t *entry, const uint8_t *data_begin,
                       uint64_t data_offset_in_file, uint64_t data_size, const char *path) {
    if (!json_is_object(entry)) return pl_fail_code(PL_ERR_FORMAT, "%s: header entry %s is not an object", path, name);
    json_t *dtype = json_object_get(entry, "dtype");
    json_t *shape = json_object_get(entry, "shape");
    json_t *offsets = json_object_get(entry, "data_offsets");
    if (!json_is_string(dtype) || !json_is_array(shape) || !json_is_array(offsets) || json_array_size(offsets) != 2)
        return pl_fail_code(PL_ERR_CORRUPT, "%s: tensor %s needs dtype, shape and data_offsets [begin, end]", path,
                            name);
    const char *ds = json_string_value(dtype);
    if (strcmp(ds, "F32") == 0) t->dtype = PL_ST_F32;
    else if (strcmp(ds, "F16") == 0) t->dtype = PL_ST_F16;
    else if (strcmp(ds, "BF16") == 0) t->dtype = PL_ST_BF16;
    else
        return pl_fail_code(PL_ERR_FORMAT, "%s: tensor %s has unsupported dtype %s (supported: F32, F16, BF16)", path,
                            name, ds);

    size_t n_dims = json_array_size(shape);
    if (n_dims > PL_ST_MAX_DIMS)
        return pl_fail_code(PL_ERR_FORMAT, "%s: tensor %s has %zu dimensions (at most %d)", path, name, n_dims,
                            PL_ST_MAX_DIMS);
    t->n_dims = (int)n_dims;
    uint64_t n_el = 1;
    for (size_t i = 0; i < n_dims; i++) {
        json_t *v = json_array_get(shape, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return pl_fail_code(PL_ERR_CORRUPT, "%s: tensor %s: shape[%zu] is not a non-negative integer", path, name,
                                i);
        uint64_t dim = (uint64_t)json_integer_value(v);
        if (dim != 0 && n_el > UINT64_MAX / dim)
            return pl_fail_code(PL_ERR_CORRUPT, "%s: tensor %s: shape overflows", path, name);
        n_el *= dim;
        t->shape[i] = (int64_t)dim;
    }
    size_t el_size = pl_st_dtype_size(t->dtype);
    if (n_el > (uint64_t)INT64_MAX / el_size)
        return pl_fail_code(PL_ERR_CORRUPT, "%s: tensor %s: shape overflows", path, name);
    json_t *b = json_array_get(offsets, 0), *e = json_array_get(offsets, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 || json_integer_value(e) < 0)
        return pl_fail_code(PL_ERR_CORRUPT, "%s: tensor %s: data_offsets are not non-negative integers", path, name);
    uint64_t begin = (uint64_t)json_integer_value(b), end = (uint64_t)json_integer_value(e);
    if (begin > end)
        return pl_fail_code(PL_ERR_CORRUPT, "%s: tensor %s: data_offsets [%llu, %llu] are not ordered", path, name,
                            (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return pl_fail_code(
            PL_ERR_CORRUPT,
            "%s: tensor %s: data_offsets end %llu is past the end of the data (%llu bytes; file truncated?)", path,
            name, (unsigned long long)end, (unsigned long long)data_size);
    if (end - begin != n_el * el_size)
        return pl_fail_code(PL_ERR_CORRUPT, "%s: tensor %s: %llu bytes for %llu elements of %s (expected %llu)", path,
                            name, (unsigned long long)(end - begin), (unsigned long long)n_el, ds,
                            (unsigned long long)(n_el * el_size));
    t->n_elements = (int64_t)n_el;
    t->n_bytes = end - begin;
    t->file_offset = data_offset_in_file + begin;
    t->data = data_begin + begin;
    t->name = strdup(name);
    if (!t->name) return pl_fail_code(PL_ERR_NOMEM, "%s: out of memory", path);
    return 0;
}

int pl_st_parse(pl_st_file *out, const void *buf, size_t size, const char *path) {
    memset(out, 0, sizeof *out);
    const uint8_t *bytes = buf;
    if (size < 8) return pl_fail_code(PL_ERR_FORMAT, "%s: too short for a safetensors file (%zu bytes)", path, size);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | bytes[i];
    if (header_len < 2 || header_len > PL_ST_MAX_HEADER || header_len > size - 8)
        return pl_fail_code(PL_ERR_CORRUPT, "%s: header length %llu does not fit in the file (%zu bytes)", path,
                            (unsigned long long)header_len, size);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)bytes + 8, (size_t)header_len, 0, &jerr);
    if (!root)
        return pl_fail_code(PL_ERR_FORMAT, "%s: header is not valid JSON (%s, at byte %d)", path, jerr.text,
                            jerr.position);
    pl_st_tensor **by_offset = NULL;
    if (!json_is_object(root)) {
        pl_fail_code(PL_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto fail;
    }
    size_t n_entries = json_object_size(root);
    out->tensors = calloc(n_entries ? n_entries : 1, sizeof *out->tensors);
    if (!out->tensors) {
        pl_fail_code(PL_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    const uint8_t *data_begin = bytes + 8 + header_len;
    uint64_t data_size = size - 8 - header_len;
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "__metadata__") == 0) continue;
        if (parse_entry(&out->tensors[out->n_tensors], key, value, data_begin, 8 + header_len, data_size, path))
            goto fail;
        out->n_tensors++;
    }
    // Tensors must not overlap (the format lays them out back to back).
    by_offset = malloc((out->n_tensors ? out->n_tensors : 1) * sizeof *by_offset);
    if (!by_offset) {
        pl_fail_code(PL_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < out->n_tensors; i++) by_offset[i] = &out->tensors[i];
    qsort(by_offset, out->n_tensors, sizeof *by_offset, compare_by_offset);
    for (int i = 1; i < out->n_tensors; i++) {
        if (by_offset[i]->n_bytes == 0) continue;
        const pl_st_tensor *prev = by_offset[i - 1];
        if (prev->file_offset + prev->n_bytes > by_offset[i]->file_offset) {
            pl_fail_code(PL_ERR_CORRUPT, "%s: tensors %s and %s overlap", path, prev->name, by_offset[i]->name);
            goto fail;
        }
    }
    free(by_offset);
    json_decref(root);
    return 0;
fail:
    free(by_offset);
    json_decref(root);
    pl_st_file_free(out);
    return -1;
}

void pl_st_to_f32(float *out, const pl_st_tensor *t, int64_t first, int64_t n) {
    const uint8_t *src = (const uint8_t *)t->data + (size_t)first * pl_st_dtype_size(t->dtype);
    switch (t->dtype) {
    case PL_ST_F32:
        memcpy(out, src, (size_t)n * sizeof(float));  // memcpy: the source may be unaligned
        break;
    case PL_ST_F16:
    case PL_ST_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(src[2 * i] | (src[2 * i + 1] << 8));
            out[i] = t->dtype == PL_ST_F16 ? pl_f16_to_f32(h) : pl_bf16_to_f32(h);
        }
        break;
    }
}
