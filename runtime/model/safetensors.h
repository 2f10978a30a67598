// safetensors files (Hugging Face): an 8-byte little-endian header length, a JSON header
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the raw little-endian tensor bytes. The parser checks everything before any tensor is
// used: the header fits in the file, offsets are ordered and inside the data region, and each
// tensor's byte size equals product(shape) × dtype size, with every product checked for overflow.
#ifndef PL_SAFETENSORS_H
#define PL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PL_ST_F32, PL_ST_F16, PL_ST_BF16 } pl_st_dtype;

#define PL_ST_MAX_DIMS 4

typedef struct {
    char *name;                      // owned by the pl_st_file
    pl_st_dtype dtype;
    int n_dims;
    int64_t shape[PL_ST_MAX_DIMS];   // outermost first, as stored
    int64_t n_elements;
    const void *data;                // points into the caller's buffer (usually a mapping)
    uint64_t file_offset;            // byte offset of data in the file
    uint64_t n_bytes;
} pl_st_tensor;

typedef struct {
    pl_st_tensor *tensors;
    int n_tensors;
} pl_st_file;

// Parse a whole safetensors file held in buf[size] (e.g. a mapping; it must outlive *out, since
// tensors point into it). path is only used in error messages. Returns 0, or -1 with pl_errmsg
// "PATH: what is wrong". The caller frees *out with pl_st_file_free.
int pl_st_parse(pl_st_file *out, const void *buf, size_t size, const char *path);
void pl_st_file_free(pl_st_file *f);
// The tensor named name, or NULL.
const pl_st_tensor *pl_st_find(const pl_st_file *f, const char *name);
// "F32", "F16", "BF16".
const char *pl_st_dtype_name(pl_st_dtype dtype);
// Bytes per element.
size_t pl_st_dtype_size(pl_st_dtype dtype);
// Convert n elements of a tensor (starting at element `first`) to float32 in out[n]. Handles
// unaligned sources. The caller checks first + n <= t->n_elements.
void pl_st_to_f32(float *out, const pl_st_tensor *t, int64_t first, int64_t n);

#endif
