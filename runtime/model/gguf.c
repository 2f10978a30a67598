#include "runtime/model/gguf.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"

typedef struct {
    const uint8_t *p, *end;
    const char *path;
} cursor;

static bool take(cursor *c, void *out, size_t n) {
    if ((size_t)(c->end - c->p) < n) return false;
    memcpy(out, c->p, n);
    c->p += n;
    return true;
}

static bool skip(cursor *c, uint64_t n) {
    if ((uint64_t)(c->end - c->p) < n) return false;
    c->p += n;
    return true;
}

static bool read_string(cursor *c, const uint8_t **s, uint64_t *len) {
    if (!take(c, len, 8)) return false;
    *s = c->p;
    return skip(c, *len);
}

static const size_t scalar_size[PL_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

// Skip over one value of `type` (arrays of arrays are allowed by the spec; nesting is bounded).
static bool skip_value(cursor *c, uint32_t type, int depth) {
    if (type >= PL_GGUF_TYPE_COUNT || depth > 4) return false;
    if (type == PL_GGUF_STRING) {
        const uint8_t *s;
        uint64_t len;
        return read_string(c, &s, &len);
    }
    if (type == PL_GGUF_ARRAY) {
        uint32_t et;
        uint64_t n;
        if (!take(c, &et, 4) || !take(c, &n, 8) || et >= PL_GGUF_TYPE_COUNT) return false;
        if (et != PL_GGUF_STRING && et != PL_GGUF_ARRAY) {
            if (n > (uint64_t)(c->end - c->p) / scalar_size[et]) return false;
            return skip(c, n * scalar_size[et]);
        }
        if (n > (uint64_t)(c->end - c->p) / 8) return false;  // every element takes at least 8 bytes
        for (uint64_t i = 0; i < n; i++)
            if (!skip_value(c, et, depth + 1)) return false;
        return true;
    }
    return skip(c, scalar_size[type]);
}

static char *dup_bytes(const uint8_t *s, uint64_t len) {
    char *out = malloc(len + 1);
    if (!out) return NULL;
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

const char *pl_ggml_type_name(uint32_t type) {
    switch (type) {
    case PL_GGML_F32: return "F32";
    case PL_GGML_F16: return "F16";
    case PL_GGML_BF16: return "BF16";
    case PL_GGML_Q8_0: return "Q8_0";
    case PL_GGML_Q4_0: return "Q4_0";
    default: return NULL;
    }
}

// Bytes for n weights of a supported type; 0 if unsupported or n does not fill whole blocks.
static uint64_t type_bytes(uint32_t type, uint64_t n) {
    switch (type) {
    case PL_GGML_F32: return n * 4;
    case PL_GGML_F16:
    case PL_GGML_BF16: return n * 2;
    case PL_GGML_Q8_0: return n % 32 ? 0 : n / 32 * 34;
    case PL_GGML_Q4_0: return n % 32 ? 0 : n / 32 * 18;
    default: return 0;
    }
}

int pl_gguf_parse(pl_gguf *g, const char *path, const void *data, size_t size) {
    memset(g, 0, sizeof *g);
    g->path = path;
    g->data = data;
    g->size = size;
    // An empty file maps to NULL: no pointer arithmetic on it (NULL + 0 is undefined).
    if (!data || size < 4)
        return pl_fail_code(PL_ERR_FORMAT, "%s: file is too short to be GGUF (%zu bytes)", path, size);
    cursor c = {data, (const uint8_t *)data + size, path};
    char magic[4];
    uint64_t n_tensors, n_kvs;
    if (!take(&c, magic, 4))
        return pl_fail_code(PL_ERR_FORMAT, "%s: file is too short to be GGUF (%zu bytes)", path, size);
    if (memcmp(magic, "GGUF", 4) != 0) return pl_fail_code(PL_ERR_FORMAT, "%s: wrong magic (not a GGUF file)", path);
    if (!take(&c, &g->version, 4)) return pl_fail_code(PL_ERR_CORRUPT, "%s: truncated GGUF header", path);
    if (g->version != 2 && g->version != 3)
        return pl_fail_code(PL_ERR_FORMAT, "%s: GGUF version %u is not supported (only 2 and 3)", path, g->version);
    if (!take(&c, &n_tensors, 8) || !take(&c, &n_kvs, 8))
        return pl_fail_code(PL_ERR_CORRUPT, "%s: truncated GGUF header", path);
    // Each kv takes >= 12 bytes and each tensor info >= 24: bound counts by the file size first.
    if (n_kvs > size / 12 || n_tensors > size / 24)
        return pl_fail_code(PL_ERR_CORRUPT, "%s: corrupt GGUF header (%llu tensors, %llu metadata keys in %zu bytes)",
                            path, (unsigned long long)n_tensors, (unsigned long long)n_kvs, size);
    g->kvs = calloc(n_kvs ? n_kvs : 1, sizeof *g->kvs);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    g->alignment = 32;
    for (uint64_t i = 0; i < n_kvs; i++) {
        pl_gguf_kv *kv = &g->kvs[i];
        const uint8_t *key;
        uint64_t klen;
        if (!read_string(&c, &key, &klen) || !take(&c, &kv->type, 4))
            return pl_fail_code(PL_ERR_CORRUPT, "%s: truncated metadata (key %llu of %llu)", path,
                                (unsigned long long)i, (unsigned long long)n_kvs);
        kv->key = dup_bytes(key, klen);
        g->n_kvs = i + 1;
        if (kv->type >= PL_GGUF_TYPE_COUNT)
            return pl_fail_code(PL_ERR_FORMAT, "%s: metadata '%s' has unknown type %u", path, kv->key, kv->type);
        if (kv->type == PL_GGUF_ARRAY) {
            cursor peek = c;
            if (!take(&peek, &kv->elem_type, 4) || !take(&peek, &kv->n_elems, 8))
                return pl_fail_code(PL_ERR_CORRUPT, "%s: truncated metadata array '%s'", path, kv->key);
            kv->value = peek.p;
        } else {
            kv->value = c.p;
        }
        if (!skip_value(&c, kv->type, 0))
            return pl_fail_code(PL_ERR_CORRUPT, "%s: metadata '%s' runs past the end of the file", path, kv->key);
    }
    int64_t align;
    if (pl_gguf_get_int(g, "general.alignment", &align)) {
        if (align <= 0 || align > 65536 || (align & (align - 1)))
            return pl_fail_code(PL_ERR_FORMAT, "%s: general.alignment %lld is not a power of two", path,
                                (long long)align);
        g->alignment = (uint64_t)align;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        pl_gguf_tensor *t = &g->tensors[i];
        const uint8_t *name;
        uint64_t nlen;
        if (!read_string(&c, &name, &nlen) || !take(&c, &t->n_dims, 4))
            return pl_fail_code(PL_ERR_CORRUPT, "%s: truncated tensor info %llu", path, (unsigned long long)i);
        t->name = dup_bytes(name, nlen);
        g->n_tensors = i + 1;
        if (t->n_dims < 1 || t->n_dims > 4)
            return pl_fail_code(PL_ERR_FORMAT, "%s: tensor '%s' has %u dimensions", path, t->name, t->n_dims);
        uint64_t n = 1;
        for (uint32_t d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            if (!take(&c, &t->ne[d], 8))
                return pl_fail_code(PL_ERR_CORRUPT, "%s: truncated tensor info '%s'", path, t->name);
            if (t->ne[d] == 0 || t->ne[d] > (1ull << 40) || n > (1ull << 40) / t->ne[d])
                return pl_fail_code(PL_ERR_FORMAT, "%s: tensor '%s' has an invalid dimension", path, t->name);
            n *= t->ne[d];
        }
        if (!take(&c, &t->type, 4) || !take(&c, &t->offset, 8))
            return pl_fail_code(PL_ERR_CORRUPT, "%s: truncated tensor info '%s'", path, t->name);
        if (!pl_ggml_type_name(t->type))
            return pl_fail_code(
                PL_ERR_FORMAT,
                "%s: tensor '%s' has tensor type %u, which is not supported (F32, F16, BF16, Q8_0, Q4_0)", path,
                t->name, t->type);
        t->n_bytes = type_bytes(t->type, n);
        if (t->n_bytes == 0)
            return pl_fail_code(PL_ERR_FORMAT,
                                "%s: tensor '%s' of type %s has %llu elements, not whole 32-element blocks", path,
                                t->name, pl_ggml_type_name(t->type), (unsigned long long)n);
    }
    size_t header_end = (size_t)(c.p - (const uint8_t *)data);
    g->data_offset = (header_end + g->alignment - 1) / g->alignment * g->alignment;
    if (n_tensors > 0 && g->data_offset > size)
        return pl_fail_code(PL_ERR_CORRUPT, "%s: truncated before the tensor data", path);
    uint64_t data_size = size - (g->data_offset < size ? g->data_offset : size);
    for (uint64_t i = 0; i < n_tensors; i++) {
        const pl_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return pl_fail_code(PL_ERR_FORMAT, "%s: tensor '%s' offset %llu is not aligned to %llu", path, t->name,
                                (unsigned long long)t->offset, (unsigned long long)g->alignment);
        if (t->offset > data_size || t->n_bytes > data_size - t->offset)
            return pl_fail_code(PL_ERR_CORRUPT,
                                "%s: tensor '%s' (offset %llu, %llu bytes) lies past the end of the file (truncated?)",
                                path, t->name, (unsigned long long)t->offset, (unsigned long long)t->n_bytes);
    }
    return 0;
}

void pl_gguf_free(pl_gguf *g) {
    for (uint64_t i = 0; i < g->n_kvs; i++) free(g->kvs[i].key);
    for (uint64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kvs);
    free(g->tensors);
    memset(g, 0, sizeof *g);
}

const pl_gguf_kv *pl_gguf_find(const pl_gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kvs; i++)
        if (g->kvs[i].key && strcmp(g->kvs[i].key, key) == 0) return &g->kvs[i];
    return NULL;
}

const pl_gguf_tensor *pl_gguf_find_tensor(const pl_gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

bool pl_gguf_get_int(const pl_gguf *g, const char *key, int64_t *out) {
    const pl_gguf_kv *kv = pl_gguf_find(g, key);
    if (!kv) return false;
    const uint8_t *v = kv->value;
    switch (kv->type) {
    case PL_GGUF_U8: *out = v[0]; return true;
    case PL_GGUF_I8: *out = (int8_t)v[0]; return true;
    case PL_GGUF_U16: { uint16_t x; memcpy(&x, v, 2); *out = x; return true; }
    case PL_GGUF_I16: { int16_t x; memcpy(&x, v, 2); *out = x; return true; }
    case PL_GGUF_U32: { uint32_t x; memcpy(&x, v, 4); *out = x; return true; }
    case PL_GGUF_I32: { int32_t x; memcpy(&x, v, 4); *out = x; return true; }
    case PL_GGUF_U64: { uint64_t x; memcpy(&x, v, 8); *out = x > INT64_MAX ? -1 : (int64_t)x; return true; }
    case PL_GGUF_I64: memcpy(out, v, 8); return true;
    default: return false;
    }
}

bool pl_gguf_get_float(const pl_gguf *g, const char *key, double *out) {
    const pl_gguf_kv *kv = pl_gguf_find(g, key);
    if (!kv) return false;
    if (kv->type == PL_GGUF_F32) {
        float f;
        memcpy(&f, kv->value, 4);
        *out = f;
        return true;
    }
    if (kv->type == PL_GGUF_F64) {
        memcpy(out, kv->value, 8);
        return true;
    }
    int64_t i;
    if (pl_gguf_get_int(g, key, &i)) {
        *out = (double)i;
        return true;
    }
    return false;
}

bool pl_gguf_get_bool(const pl_gguf *g, const char *key, bool *out) {
    const pl_gguf_kv *kv = pl_gguf_find(g, key);
    if (!kv || kv->type != PL_GGUF_BOOL) return false;
    *out = kv->value[0] != 0;
    return true;
}

char *pl_gguf_get_string(const pl_gguf *g, const char *key) {
    const pl_gguf_kv *kv = pl_gguf_find(g, key);
    if (!kv || kv->type != PL_GGUF_STRING) return NULL;
    uint64_t len;
    memcpy(&len, kv->value, 8);
    return dup_bytes(kv->value + 8, len);  // bounds were checked by the parser
}

char **pl_gguf_string_array(const pl_gguf *g, const pl_gguf_kv *kv) {
    (void)g;
    if (!kv || kv->type != PL_GGUF_ARRAY || kv->elem_type != PL_GGUF_STRING) return NULL;
    char **out = calloc(kv->n_elems ? kv->n_elems : 1, sizeof *out);
    const uint8_t *p = kv->value;
    for (uint64_t i = 0; i < kv->n_elems; i++) {
        uint64_t len;
        memcpy(&len, p, 8);
        out[i] = dup_bytes(p + 8, len);
        p += 8 + len;
    }
    return out;
}
