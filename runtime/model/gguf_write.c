// GGUF v3 writer (see gguf_write.h). Metadata is serialized into one growable buffer as it is
// added; tensors are kept as pointers and written after the header, each at an aligned offset.
#include "runtime/model/gguf_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/model/gguf.h"

#define GGUF_ALIGNMENT 32

typedef struct {
    char *name;
    const float *data;
    int n_dims;
    int64_t ne[4];
    uint64_t n_bytes;
    uint64_t offset;  // in the data section
} tensor_entry;

struct pl_gguf_writer {
    uint8_t *meta;  // serialized key/values
    size_t meta_len, meta_cap;
    char **keys;
    int n_keys, cap_keys;
    tensor_entry *tensors;
    int n_tensors, cap_tensors;
    int oom;  // sticky allocation failure
};

pl_gguf_writer *pl_gguf_writer_new(void) { return calloc(1, sizeof(pl_gguf_writer)); }

void pl_gguf_writer_free(pl_gguf_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n_keys; i++) free(w->keys[i]);
    for (int i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->keys);
    free(w->tensors);
    free(w->meta);
    free(w);
}

static void put(pl_gguf_writer *w, const void *bytes, size_t n) {
    if (w->oom) return;
    if (w->meta_len + n > w->meta_cap) {
        size_t cap = w->meta_cap ? w->meta_cap : 4096;
        while (cap < w->meta_len + n) cap *= 2;
        uint8_t *m = realloc(w->meta, cap);
        if (!m) {
            w->oom = 1;
            return;
        }
        w->meta = m;
        w->meta_cap = cap;
    }
    memcpy(w->meta + w->meta_len, bytes, n);
    w->meta_len += n;
}
// GGUF is little-endian; so is every machine probelab targets (x86-64, aarch64).
static void put_u32(pl_gguf_writer *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(pl_gguf_writer *w, uint64_t v) { put(w, &v, 8); }
static void put_str(pl_gguf_writer *w, const char *s) {
    uint64_t n = strlen(s);
    put_u64(w, n);
    put(w, s, n);
}

// Register a new key and write its name and type; -1 on a duplicate.
static int begin_kv(pl_gguf_writer *w, const char *key, uint32_t type) {
    for (int i = 0; i < w->n_keys; i++)
        if (strcmp(w->keys[i], key) == 0) return pl_fail("gguf writer: duplicate metadata key %s", key);
    if (w->n_keys == w->cap_keys) {
        int cap = w->cap_keys ? 2 * w->cap_keys : 32;
        char **k = realloc(w->keys, sizeof(char *) * (size_t)cap);
        if (!k) return pl_fail("gguf writer: out of memory");
        w->keys = k;
        w->cap_keys = cap;
    }
    if (!(w->keys[w->n_keys] = strdup(key))) return pl_fail("gguf writer: out of memory");
    w->n_keys++;
    put_str(w, key);
    put_u32(w, type);
    return 0;
}
static int end_kv(pl_gguf_writer *w) { return w->oom ? pl_fail("gguf writer: out of memory") : 0; }

int pl_gguf_add_u32(pl_gguf_writer *w, const char *key, uint32_t v) {
    if (begin_kv(w, key, PL_GGUF_U32)) return -1;
    put_u32(w, v);
    return end_kv(w);
}
int pl_gguf_add_i32(pl_gguf_writer *w, const char *key, int32_t v) {
    if (begin_kv(w, key, PL_GGUF_I32)) return -1;
    put(w, &v, 4);
    return end_kv(w);
}
int pl_gguf_add_f32(pl_gguf_writer *w, const char *key, float v) {
    if (begin_kv(w, key, PL_GGUF_F32)) return -1;
    put(w, &v, 4);
    return end_kv(w);
}
int pl_gguf_add_bool(pl_gguf_writer *w, const char *key, bool v) {
    if (begin_kv(w, key, PL_GGUF_BOOL)) return -1;
    uint8_t b = v ? 1 : 0;
    put(w, &b, 1);
    return end_kv(w);
}
int pl_gguf_add_string(pl_gguf_writer *w, const char *key, const char *v) {
    if (begin_kv(w, key, PL_GGUF_STRING)) return -1;
    put_str(w, v);
    return end_kv(w);
}
static int begin_array(pl_gguf_writer *w, const char *key, uint32_t elem_type, int n) {
    if (n < 0) return pl_fail("gguf writer: %s: negative array length", key);
    if (begin_kv(w, key, PL_GGUF_ARRAY)) return -1;
    put_u32(w, elem_type);
    put_u64(w, (uint64_t)n);
    return 0;
}
int pl_gguf_add_string_array(pl_gguf_writer *w, const char *key, const char *const *v, int n) {
    if (begin_array(w, key, PL_GGUF_STRING, n)) return -1;
    for (int i = 0; i < n; i++) put_str(w, v[i]);
    return end_kv(w);
}
int pl_gguf_add_f32_array(pl_gguf_writer *w, const char *key, const float *v, int n) {
    if (begin_array(w, key, PL_GGUF_F32, n)) return -1;
    put(w, v, sizeof(float) * (size_t)n);
    return end_kv(w);
}
int pl_gguf_add_i32_array(pl_gguf_writer *w, const char *key, const int32_t *v, int n) {
    if (begin_array(w, key, PL_GGUF_I32, n)) return -1;
    put(w, v, sizeof(int32_t) * (size_t)n);
    return end_kv(w);
}

int pl_gguf_add_tensor_f32(pl_gguf_writer *w, const char *name, const float *data, int n_dims, const int64_t *ne) {
    if (n_dims < 1 || n_dims > 4) return pl_fail("gguf writer: tensor %s: %d dims (1..4 allowed)", name, n_dims);
    for (int i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return pl_fail("gguf writer: duplicate tensor %s", name);
    uint64_t n = 1;
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] <= 0 || (uint64_t)ne[i] > (UINT64_MAX / 4) / n)
            return pl_fail("gguf writer: tensor %s: bad dimension %lld", name, (long long)ne[i]);
        n *= (uint64_t)ne[i];
    }
    if (w->n_tensors == w->cap_tensors) {
        int cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        tensor_entry *t = realloc(w->tensors, sizeof(tensor_entry) * (size_t)cap);
        if (!t) return pl_fail("gguf writer: out of memory");
        w->tensors = t;
        w->cap_tensors = cap;
    }
    tensor_entry *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return pl_fail("gguf writer: out of memory");
    t->data = data;
    t->n_dims = n_dims;
    for (int i = 0; i < n_dims; i++) t->ne[i] = ne[i];
    t->n_bytes = n * sizeof(float);
    w->n_tensors++;
    return 0;
}

static uint64_t align_up(uint64_t x) { return (x + GGUF_ALIGNMENT - 1) / GGUF_ALIGNMENT * GGUF_ALIGNMENT; }

int pl_gguf_write_file(pl_gguf_writer *w, const char *path) {
    static const uint8_t zeros[GGUF_ALIGNMENT] = {0};
    bool has_alignment = false;
    for (int i = 0; i < w->n_keys; i++) has_alignment |= strcmp(w->keys[i], "general.alignment") == 0;
    if (!has_alignment && pl_gguf_add_u32(w, "general.alignment", GGUF_ALIGNMENT)) return -1;

    // Header: magic, version, counts, key/values, then tensor infos; data starts at the next aligned offset.
    pl_gguf_writer head = {0};
    put(&head, "GGUF", 4);
    put_u32(&head, 3);
    put_u64(&head, (uint64_t)w->n_tensors);
    put_u64(&head, (uint64_t)w->n_keys);
    put(&head, w->meta, w->meta_len);
    uint64_t offset = 0;
    for (int i = 0; i < w->n_tensors; i++) {
        tensor_entry *t = &w->tensors[i];
        put_str(&head, t->name);
        put_u32(&head, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(&head, (uint64_t)t->ne[d]);
        put_u32(&head, PL_GGML_F32);
        t->offset = offset;
        put_u64(&head, offset);
        offset = align_up(offset + t->n_bytes);
    }
    if (head.oom) {
        free(head.meta);
        return pl_fail("%s: out of memory building the GGUF header", path);
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(head.meta);
        return pl_fail("%s: cannot open for writing", path);
    }
    int ok = fwrite(head.meta, 1, head.meta_len, f) == head.meta_len;
    size_t pad = (size_t)(align_up(head.meta_len) - head.meta_len);
    ok = ok && fwrite(zeros, 1, pad, f) == pad;
    for (int i = 0; ok && i < w->n_tensors; i++) {
        tensor_entry *t = &w->tensors[i];
        ok = fwrite(t->data, 1, t->n_bytes, f) == t->n_bytes;
        size_t tpad = (size_t)(align_up(t->n_bytes) - t->n_bytes);
        ok = ok && fwrite(zeros, 1, tpad, f) == tpad;
    }
    free(head.meta);
    if (fclose(f) != 0) ok = 0;
    if (!ok) return pl_fail("%s: write failed (disk full?)", path);
    return 0;
}
