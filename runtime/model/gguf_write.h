// A GGUF v3 writer: collect metadata key/values and F32 tensors, then write one file that follows
// the GGUF spec (little-endian, general.alignment = 32, tensor data aligned), so llama.cpp and
// the `gguf` Python package read it the same way probelab's reader does.
//
//   pl_gguf_writer *w = pl_gguf_writer_new();
//   pl_gguf_add_string(w, "general.architecture", "llama");
//   int64_t ne[2] = {d_in, d_out};                     // innermost first: ne[0] = row length
//   pl_gguf_add_tensor_f32(w, "blk.0.attn_q.weight", wq, 2, ne);
//   pl_gguf_write_file(w, "model.gguf");  pl_gguf_writer_free(w);
#ifndef PL_GGUF_WRITE_H
#define PL_GGUF_WRITE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct pl_gguf_writer pl_gguf_writer;

// A new empty writer (NULL on out of memory). The caller frees it with pl_gguf_writer_free.
pl_gguf_writer *pl_gguf_writer_new(void);
void pl_gguf_writer_free(pl_gguf_writer *w);

// Metadata. Keys and values are copied. Each returns 0, or -1 (pl_errmsg) on a duplicate key or OOM.
int pl_gguf_add_u32(pl_gguf_writer *w, const char *key, uint32_t v);
int pl_gguf_add_i32(pl_gguf_writer *w, const char *key, int32_t v);
int pl_gguf_add_f32(pl_gguf_writer *w, const char *key, float v);
int pl_gguf_add_bool(pl_gguf_writer *w, const char *key, bool v);
int pl_gguf_add_string(pl_gguf_writer *w, const char *key, const char *v);
int pl_gguf_add_string_array(pl_gguf_writer *w, const char *key, const char *const *v, int n);
int pl_gguf_add_f32_array(pl_gguf_writer *w, const char *key, const float *v, int n);
int pl_gguf_add_i32_array(pl_gguf_writer *w, const char *key, const int32_t *v, int n);

// An F32 tensor of n_dims (1..4) dims, ne innermost first. The data is NOT copied: it must stay
// valid until pl_gguf_write_file returns. Returns 0, or -1 on a duplicate name or bad dims.
int pl_gguf_add_tensor_f32(pl_gguf_writer *w, const char *name, const float *data, int n_dims, const int64_t *ne);

// Write everything to path (general.alignment is added automatically). Returns 0, or -1 with
// pl_errmsg naming the file.
int pl_gguf_write_file(pl_gguf_writer *w, const char *path);

#endif
