#!/usr/bin/python3
"""Compare probelab's hook dumps with the reference written by make_hf_models.py.

Usage: compare_hooks.py NAME REF_DIR DUMP_DIR [TOL]
Every reference hook (and the logits) must be present in DUMP_DIR with the same shape and agree
to TOL absolute (default 1e-4); -inf must match -inf (masked attention scores). Prints the worst
error and where it is; exits 1 on any mismatch or missing hook.
"""
import os
import sys

import numpy as np


def main():
    name, ref_dir, dump_dir = sys.argv[1:4]
    tol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-4
    problems, worst, worst_hook = [], 0.0, ""
    refs = sorted(f for f in os.listdir(ref_dir) if f.endswith(".npy"))
    for f in refs:
        hook = f[:-4]
        path = os.path.join(dump_dir, f)
        if not os.path.exists(path):
            problems.append(f"missing hook {hook}")
            continue
        ref, got = np.load(os.path.join(ref_dir, f)).astype(np.float64), np.load(path).astype(np.float64)
        if ref.shape != got.shape:
            problems.append(f"{hook}: shape {got.shape}, reference {ref.shape}")
            continue
        both_inf = np.isinf(ref) & np.isinf(got) & (np.sign(ref) == np.sign(got))
        with np.errstate(invalid="ignore"):  # inf - inf where both are masked
            err = np.where(both_inf, 0.0, np.abs(ref - got))
        err = np.where(np.isnan(err), np.inf, err)
        e = float(err.max()) if err.size else 0.0
        if e > worst:
            worst, worst_hook = e, hook
        if not e <= tol:
            problems.append(f"{hook}: max abs error {e:.3g} > {tol:g}")
    extra = sorted(set(f[:-4] for f in os.listdir(dump_dir) if f.endswith(".npy")) - set(f[:-4] for f in refs))
    status = "FAIL" if problems else "ok"
    print(f"{status:4} {name:24} {len(refs):3} hooks, worst abs error {worst:.2e} ({worst_hook})"
          + (f"; not in reference: {', '.join(extra)}" if extra else ""))
    for p in problems[:10]:
        print(f"     {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
