// A synthetic trace store for the viewer and figure tests (and for trying the viewer without a
// model): written through the same recorder path as `probelab trace`. Test support, not gui: gui
// only reads stores.
#ifndef PL_TEST_SAMPLE_STORE_H
#define PL_TEST_SAMPLE_STORE_H

// Write a synthetic store at `path` (which must not exist): n_runs short runs over two tasks
// (arith, logic) with tokens, logprob/entropy, 'correct' labels, attention for 2 layers × 4 heads
// and a probe's per-token outputs, plus one long run of long_tokens tokens (0 = none) and sample
// analyses of every kind the figures know. Values are deterministic: attention of run r, layer l,
// head h, query q, key k is proportional to exp(-|q - k - h| / (1 + l)). -1 with pl_errmsg().
int test_sample_store_write(const char *path, int n_runs, int long_tokens);

#endif
