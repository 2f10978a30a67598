#!/usr/bin/python3
"""Side-by-side reference for `probelab bench probe` (not a test).

Fits scikit-learn's LogisticRegression(solver="lbfgs") on the exact data the C benchmark used and
prints its time, iterations, held-out accuracy and objective next to probelab's. Usage:

    mkdir -p /tmp/bench && PL_BENCH_PROBE_EXPORT=/tmp/bench probelab bench probe
    /usr/bin/python3 tests/bench_probe_sklearn.py /tmp/bench

Both sides standardize with the training mean and population std, use the same L2 strength
(sklearn C = 1 / (lambda * n_train), see probes/linear/logreg.h) and the same gradient tolerance
(max |g_i| <= gtol for a loss below 1). For a like-for-like timing run both with the same thread
count, e.g. OPENBLAS_NUM_THREADS=1. Needs python3-sklearn (Debian).
"""
import json
import os
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    meta = json.load(open(os.path.join(d, "bench_probe.json")))
    xtr, ytr = np.load(os.path.join(d, "x_train.npy")), np.load(os.path.join(d, "y_train.npy"))
    xte, yte = np.load(os.path.join(d, "x_test.npy")), np.load(os.path.join(d, "y_test.npy"))
    lam, n = meta["lambda"], xtr.shape[0]
    t0 = time.perf_counter()
    mu, sd = xtr.mean(0, dtype=np.float64), xtr.std(0, dtype=np.float64)
    xs = ((xtr - mu) / sd).astype(np.float64)
    clf = LogisticRegression(C=1.0 / (lam * n), solver="lbfgs", tol=meta["gtol"], max_iter=1000)
    clf.fit(xs, ytr)
    seconds = time.perf_counter() - t0
    acc = (clf.predict((xte - mu) / sd) == yte).mean()
    # probelab's objective at sklearn's solution: mean cross-entropy + lambda/2 ||W||^2.
    p = clf.predict_proba(xs)
    loss = -np.mean(np.log(p[np.arange(n), np.searchsorted(clf.classes_, ytr)])) + 0.5 * lam * np.sum(clf.coef_ ** 2)
    print("sklearn %s LogisticRegression(lbfgs, C=%g, tol=%g), float64" % (
        __import__("sklearn").__version__, 1.0 / (lam * n), meta["gtol"]))
    try:  # the BLAS threads numpy/sklearn ran with (threadpoolctl comes with python3-sklearn)
        from threadpoolctl import threadpool_info
        pools = ", ".join("%s %s threads=%d" % (p["internal_api"], p.get("architecture", ""), p["num_threads"])
                          for p in threadpool_info())
    except ImportError:
        pools = "threadpoolctl not installed"
    print("  threads: %s; OPENBLAS_NUM_THREADS=%s OPENBLAS_CORETYPE=%s" % (
        pools or "no BLAS pool found", os.environ.get("OPENBLAS_NUM_THREADS", "(unset)"),
        os.environ.get("OPENBLAS_CORETYPE", "(unset)")))
    print("  sklearn    fit %8.3f s  %3d iterations  held-out accuracy %.4f  loss %.6f" % (
        seconds, int(np.max(clf.n_iter_)), acc, loss))
    print("  probelab   fit %8.3f s  %3d iterations  held-out accuracy %.4f  loss %.6f  (converged %d)" % (
        meta["seconds"], meta["iterations"], meta["accuracy"], meta["train_loss"], meta["converged"]))
    print("  sklearn / probelab time: %.2fx" % (seconds / meta["seconds"]))


if __name__ == "__main__":
    main()
