// Built-in reasoning tasks and dataset loaders. An example is a prompt, a reference chain of
// thought and a gold answer; the text the model sees and produces is
//     prompt + cot + answer_prefix + answer       e.g.  "Q:3+4*2=?" "|3+4=7|7*2=4|" "A:" "4"
// with the delimiters below, so any run can be split into prompt / cot / answer segments and
// checked step by step. Generators are deterministic for a given (task, n, seed, difficulty).
// The formats (tasks, JSONL, the loaders) are documented in docs/datasets.md.
#ifndef PL_TASKS_H
#define PL_TASKS_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/train/train.h"

#define PL_COT_STEP_SEP '|'      // separates reasoning steps (so does a line break)
#define PL_ANSWER_PREFIX "A:"    // starts the answer segment (the default; a task or example may differ)
#define PL_ANSWER_END '\n'       // ends the answer (the default stop string for generation)
#define PL_MAX_STOP 8            // stop strings of one example at most

typedef struct {
    char *id;          // unique within a dataset, e.g. "arith-000017"
    char *task;        // task name, e.g. "arith"
    char *prompt;      // text before the chain of thought (ends where the CoT starts)
    char *cot;         // reference chain of thought ("|step|step|"), may be "" for loaded data
    char *answer;      // gold answer text
    char **options;    // candidate answers (n_options of them, e.g. "A".."D") or NULL
    int n_options;
    int difficulty;    // task-specific knob (chain length, number of distractors), 0 if unknown
    char *meta_json;   // task-specific JSON object (e.g. the values, the evidence ids), "{}" if none
    char *answer_prefix;  // where the answer starts in a continuation; NULL = the task's (PL_ANSWER_PREFIX)
    char **stop;       // stop strings ending a continuation (n_stop of them); NULL = the task's ("\n")
    int n_stop;
} pl_example;

// The answer delimiter and the stop rule of an example: its own (dataset fields answer_prefix and
// stop), else its built-in task's, else "A:" and "\n". The strings belong to e or to the task table.
const char *pl_example_answer_prefix(const pl_example *e);
// Sets *stops to the stop strings and returns how many (at least one).
int pl_example_stops(const pl_example *e, const char *const **stops);

typedef struct {
    pl_example *items;
    int n;
} pl_dataset;

// Free every example's fields and the items array; leaves *d empty ({NULL, 0}). NULL-safe.
void pl_dataset_free(pl_dataset *d);
// Free the malloc'd fields of one example (not the struct itself) and zero it.
void pl_example_free_fields(pl_example *e);

// ---- built-in tasks ------------------------------------------------------------------------

typedef struct {
    const char *name;             // "arith", "max", "mc", "vars", "memqa"
    const char *description;      // one line
    const char *difficulty_help;  // what the difficulty knob means
    int difficulty_min, difficulty_max;
    const char *answer_prefix;    // starts the answer in a continuation ("A:")
    const char *stop;             // ends a continuation ("\n")
} pl_task_info;

// The built-in tasks (static table, not owned by the caller); *n_tasks receives the count.
const pl_task_info *pl_task_list(int *n_tasks);
// The table entry for `name`, or NULL if there is no such task.
const pl_task_info *pl_task_find(const char *name);

// Generate n examples of task `name` into *out (caller frees with pl_dataset_free). Example i has
// difficulty diff_lo + i % (diff_hi - diff_lo + 1) and depends only on (name, seed, i, difficulty),
// so a dataset is byte-identical for the same arguments. Returns 0, or -1 with pl_errmsg() set
// (unknown task, difficulty outside the task's range, n < 0).
int pl_task_generate(pl_dataset *out, const char *name, int n, uint64_t seed, int diff_lo, int diff_hi);

// Write a synthetic multi-session memory-QA corpus in LoCoMo's JSON layout (a list of samples
// {sample_id, conversation, qa}) with n_questions questions in all. Same determinism as above;
// pl_dataset_load() on the file gives the examples pl_task_generate("memqa", ...) gives.
int pl_memqa_write_locomo(const char *path, int n_questions, uint64_t seed, int diff_lo, int diff_hi);

// prompt + cot + answer prefix + answer + first stop string (the example's format, by default
// "A:" and "\n") as one malloc'd string (caller frees), NULL on OOM.
char *pl_example_full_text(const pl_example *e);

// ---- training examples: the one source over the built-in tasks that the trainer draws from ----

#define PL_TASK_MIX_MAX 8

// Tasks to train on, each with its difficulty range; a task named twice is drawn twice as often.
typedef struct {
    const char *names[PL_TASK_MIX_MAX];
    int lo[PL_TASK_MIX_MAX], hi[PL_TASK_MIX_MAX];
    int n;
} pl_task_mix;

// Parse a comma-separated task list ("arith,max,vars,vars"); each task's difficulties are [lo, hi]
// clipped to its own range. Returns 0, or -1 with pl_errmsg() naming the unknown task or range.
int pl_task_mix_parse(pl_task_mix *mix, const char *list, int lo, int hi);

// A pl_train_source_fn (runtime/train/train.h) with user = a pl_task_mix: example `index` of the
// step with seed `seed` is a task chosen uniformly from the mix, a difficulty uniform in its range,
// one generated example (prompt + chain of thought + answer; the loss skips the prompt). It depends
// only on (seed, index), so a run is reproducible. out->text is malloc'd (the trainer frees it).
int pl_task_mix_next(void *mix, uint64_t seed, uint64_t index, pl_train_text *out);

// ---- files ---------------------------------------------------------------------------------

typedef enum {
    PL_FORMAT_AUTO = 0,   // .json / a whole-file JSON value -> LoCoMo; else JSONL, detected per line
    PL_FORMAT_PROBELAB,   // {id, task, prompt, cot, answer, options?, difficulty, meta, answer_prefix?, stop?}
    PL_FORMAT_MC,         // {question, options|choices, answer: letter or 0-based index}
    PL_FORMAT_GSM8K,      // {question, answer: "rationale\n#### 42"}
    PL_FORMAT_LOCOMO,     // LoCoMo JSON: [{sample_id?, conversation, qa}] or one such object
} pl_format;

// Parse "auto", "probelab", "mc", "gsm8k", "locomo"; returns -1 with pl_errmsg() set if unknown.
int pl_format_parse(const char *name, pl_format *out);

// Write d as JSONL (one probelab record per line). Returns 0, or -1 naming the file.
int pl_dataset_write_jsonl(const pl_dataset *d, const char *path);

// Load a dataset file (format auto-detected) into *out (caller frees with pl_dataset_free).
// A malformed JSONL line fails the load with "FILE:LINE: what is wrong" unless skip_bad is set;
// then the line is skipped, warned about on stderr and counted in *n_skipped (may be NULL).
// LoCoMo files are always loaded tolerantly: skipped questions are warned about and counted.
int pl_dataset_load(pl_dataset *out, const char *path, bool skip_bad, int *n_skipped);
// Same with an explicit format (PL_FORMAT_AUTO = detect).
int pl_dataset_load_as(pl_dataset *out, const char *path, pl_format format, bool skip_bad,
                       int *n_skipped);

// ---- checking chains of thought ------------------------------------------------------------

typedef enum {
    PL_COT_SOUND = 0,        // steps valid, answer follows from them, answer correct
    PL_COT_NON_ENTAILMENT,   // steps valid but the answer does not follow from them
    PL_COT_CONFABULATION,    // some step false, the answer follows from the (false) steps
    PL_COT_HALLUCINATION,    // some step false and the answer does not follow either
    PL_COT_INCOMPLETE,       // steps valid, answer follows, but wrong: the chain stopped early
    PL_COT_NO_ANSWER,        // no answer prefix ("A:") in the generated text
    PL_COT_UNCHECKED,        // task without a step checker (loaded data): only `correct` is known
} pl_cot_class;

typedef struct {
    char answer[128];    // extracted final answer (after the prefix, up to a stop string), valid if has_answer
    bool has_answer;
    bool correct;        // has_answer and answer == gold (task-specific normalisation)
    bool steps_checked;  // false if the task has no step checker or the prompt is not parseable
    bool steps_valid;    // every step is a true statement given the prompt (and n_steps > 0)
    bool entailed;       // the answer equals the result of the last step as written
    int n_steps;         // steps between '|' separators
    int n_valid_steps;
} pl_cot_check;

// Check a model's continuation (the text after the prompt: cot + answer prefix + answer; the
// example's answer prefix and stop strings, "A:" and "\n" by default: the answer ends at the first
// stop string after the prefix) against example e. Steps are separated by '|' or line breaks. Fills *out; returns 0, or -1
// with pl_errmsg() set if an argument is NULL.
int pl_check_cot(pl_cot_check *out, const pl_example *e, const char *generated);
// The taxonomy class of a check (see pl_cot_class).
pl_cot_class pl_cot_classify(const pl_cot_check *c);
// "sound", "non-entailment", "confabulation", "hallucination", "incomplete", "no-answer", "unchecked".
const char *pl_cot_class_name(pl_cot_class c);

#endif
