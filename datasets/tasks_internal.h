// Pieces shared by the files of datasets/ only: per-example generator streams, a string builder,
// dataset growth and the LoCoMo-to-examples conversion used both by the loader and by the memqa generator.
#ifndef PL_TASKS_INTERNAL_H
#define PL_TASKS_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "datasets/tasks.h"
#include "runtime/base/rng.h"

// The generator for example `index` of (task, seed): independent of n and of the other examples.
pl_rng pl_rng_for(const char *task, uint64_t seed, int index);

// Growable NUL-terminated string.
typedef struct {
    char *buf;
    size_t len, cap;
} pl_sb;

void pl_sb_putc(pl_sb *s, char c);
void pl_sb_puts(pl_sb *s, const char *text);
void pl_sb_printf(pl_sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Hand over the buffer ("" if nothing was written; caller frees) and reset s.
char *pl_sb_take(pl_sb *s);

// Append a zeroed example to d and return it (NULL on OOM).
pl_example *pl_dataset_push(pl_dataset *d);
// strdup that never returns NULL for a NULL input ("" instead).
char *pl_strdup0(const char *s);

// Convert LoCoMo samples (an array or one object) to examples appended to out. Problems are
// warned about on stderr as "SOURCE: what" and counted in *n_skipped; never fails on content.
void pl_locomo_to_examples(pl_dataset *out, json_t *root, const char *source, int *n_skipped);
// Build the synthetic LoCoMo samples (a JSON array, caller decrefs) holding n_questions questions.
json_t *pl_memqa_build(int n_questions, uint64_t seed, int diff_lo, int diff_hi);

#endif
