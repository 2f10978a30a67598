// A validating GGUF (v2/v3) reader over a memory-mapped file: header, metadata key/values and
// tensor infos. Every count, length and offset is checked against the file size before use, so a
// truncated or corrupt file yields an error naming the file, never an out-of-bounds read.
#ifndef PL_GGUF_H
#define PL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    PL_GGUF_U8 = 0, PL_GGUF_I8, PL_GGUF_U16, PL_GGUF_I16, PL_GGUF_U32, PL_GGUF_I32, PL_GGUF_F32, PL_GGUF_BOOL,
    PL_GGUF_STRING, PL_GGUF_ARRAY, PL_GGUF_U64, PL_GGUF_I64, PL_GGUF_F64, PL_GGUF_TYPE_COUNT
};
enum { PL_GGML_F32 = 0, PL_GGML_F16 = 1, PL_GGML_Q4_0 = 2, PL_GGML_Q8_0 = 8, PL_GGML_BF16 = 30 };

typedef struct {
    char *key;
    uint32_t type;        // PL_GGUF_*
    const uint8_t *value; // into the mapping (for arrays: the first element)
    uint32_t elem_type;   // arrays only
    uint64_t n_elems;     // arrays only
} pl_gguf_kv;

typedef struct {
    char *name;
    uint32_t n_dims;
    uint64_t ne[4];       // innermost first (ne[0] = row length)
    uint32_t type;        // PL_GGML_*
    uint64_t offset;      // relative to the data section
    uint64_t n_bytes;
} pl_gguf_tensor;

typedef struct {
    const char *path;
    const uint8_t *data;  // whole file
    size_t size;
    uint32_t version;
    pl_gguf_kv *kvs;
    uint64_t n_kvs;
    pl_gguf_tensor *tensors;
    uint64_t n_tensors;
    uint64_t alignment;
    size_t data_offset;   // start of the tensor data section
} pl_gguf;

// Parse the file at data[size]. Returns 0, or -1 with pl_errmsg naming path. Free with pl_gguf_free,
// also after a failure.
int pl_gguf_parse(pl_gguf *g, const char *path, const void *data, size_t size);
void pl_gguf_free(pl_gguf *g);
const pl_gguf_kv *pl_gguf_find(const pl_gguf *g, const char *key);
const pl_gguf_tensor *pl_gguf_find_tensor(const pl_gguf *g, const char *name);
// Typed getters: return false if absent or of another type (integers convert between widths).
bool pl_gguf_get_int(const pl_gguf *g, const char *key, int64_t *out);
bool pl_gguf_get_float(const pl_gguf *g, const char *key, double *out);
bool pl_gguf_get_bool(const pl_gguf *g, const char *key, bool *out);
// A malloc'd NUL-terminated copy of a string value, or NULL.
char *pl_gguf_get_string(const pl_gguf *g, const char *key);
// The i-th string of a string array (malloc'd copy) - the caller has checked i < n_elems.
// Array strings are walked sequentially, so use pl_gguf_string_array to read them all at once.
char **pl_gguf_string_array(const pl_gguf *g, const pl_gguf_kv *kv);
const char *pl_ggml_type_name(uint32_t type);

#endif
