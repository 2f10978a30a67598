// Minimal NumPy .npy (format 1.0) reading and writing for float32 C-order arrays: the exchange
// format for hook dumps and test references.
#ifndef PL_NPY_H
#define PL_NPY_H

#include <stdint.h>

#define PL_NPY_MAX_DIMS 8

// Write a float32 array. Returns 0, or -1 with pl_errmsg() naming the file.
int pl_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);
// Write an int32 array (e.g. labels). Returns 0 or -1.
int pl_npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape);
// Read a float32 (or float64, converted) array; *data is malloc'd and owned by the caller.
int pl_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[PL_NPY_MAX_DIMS]);

#endif
