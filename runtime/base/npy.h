// Minimal NumPy .npy (format 1.0) reading and writing for float32 C-order arrays: the exchange
// format for hook dumps and test references.
#ifndef PL_NPY_H
#define PL_NPY_H

#include <stddef.h>
#include <stdint.h>

#define PL_NPY_MAX_DIMS 8

// The .npy v1.0 header of an array of dtype descr ("<f4", "<i4") and shape, written to head: magic,
// version, length, the dict, then spaces and '\n' up to a multiple of 64 bytes and at least
// min_size (a writer that learns the row count last writes a 128-byte header first, then rewrites
// it in place). Returns its size, or -1 if it does not fit in cap bytes.
int pl_npy_header(char *head, size_t cap, const char *descr, int ndim, const int64_t *shape, size_t min_size);
// Write a float32 array. Returns 0, or -1 with pl_errmsg() naming the file.
int pl_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);
// Write an int32 array (e.g. labels). Returns 0 or -1.
int pl_npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape);
// Read a float32 (or float64, converted) array; *data is malloc'd and owned by the caller.
int pl_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[PL_NPY_MAX_DIMS]);

#endif
