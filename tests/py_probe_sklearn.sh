#!/usr/bin/env bash
# Linear probes against scikit-learn: numpy makes Gaussian-blob data, `test_logreg fit-npy` fits
# the C probe, and sklearn's LogisticRegression(lbfgs) fits the same standardized data with
# C = 1 / (lambda * n_train) (probelab's mean-loss lambda, see probes/linear/logreg.h). Checks:
# standardization, coefficients and intercepts (~1e-3 relative), test probabilities (1e-3), and
# AUROC against sklearn.metrics.roc_auc_score on the same probabilities (1e-6), for a multinomial
# probe, a binary probe, and both with balanced class weights; plus binary AUROC with many ties.
# Needs Debian's python3-sklearn (exit 77 = skip without it).
set -euo pipefail
PY=/usr/bin/python3
if ! $PY -c "import sklearn, numpy" 2>/dev/null; then
    echo "SKIP: python3-sklearn is not installed (apt-get install -y python3-sklearn)"
    exit 77
fi
BIN="${PL_BUILD_DIR:-build}/tests/test_logreg"
if [ ! -x "$BIN" ]; then
    echo "FAIL: $BIN not found (set PL_BUILD_DIR)"
    exit 1
fi
TMP=$(mktemp -d /tmp/py_probe_sklearn.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export BIN TMP
$PY - <<'PYEOF'
import json, os, subprocess, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

BIN, TMP = os.environ["BIN"], os.environ["TMP"]
failures = 0

def check(name, ok, detail):
    global failures
    print(("ok   " if ok else "FAIL ") + name + ": " + detail)
    failures += 0 if ok else 1

def case(name, k, balanced, lam, seed):
    rng = np.random.default_rng(seed)
    n, n_test, d = 500, 300, 10
    labels = np.array([2, 5, 7, 9, 11][:k])
    means = 0.6 * rng.standard_normal((k, d))
    p = np.linspace(1, 2.5, k); p /= p.sum()  # unequal class sizes
    yi = rng.choice(k, size=n + n_test, p=p)
    x = means[yi] + rng.standard_normal((n + n_test, d))
    x[:, 3] = 4 * x[:, 3] + 30  # large mean and scale: standardization matters
    y = labels[yi]
    xtr, ytr, xte, yte = x[:n].astype(np.float32), y[:n], x[n:].astype(np.float32), y[n:]
    out = os.path.join(TMP, name); os.makedirs(out)
    np.save(os.path.join(out, "x_train.npy"), xtr); np.save(os.path.join(out, "y_train.npy"), ytr.astype(np.float32))
    np.save(os.path.join(out, "x_test.npy"), xte); np.save(os.path.join(out, "y_test.npy"), yte.astype(np.float32))
    ties = rng.integers(0, 5, 400).astype(np.float32)
    tie_labels = (rng.random(400) < 0.3 + 0.1 * ties).astype(np.float32)
    np.save(os.path.join(out, "tie_scores.npy"), ties); np.save(os.path.join(out, "tie_labels.npy"), tie_labels)
    res = subprocess.run([BIN, "fit-npy", out, repr(lam), str(balanced)], capture_output=True, text=True)
    if res.returncode != 0:
        check(name, False, "test_logreg fit-npy failed: " + res.stderr.strip()); return
    lines = [json.loads(l) for l in res.stdout.splitlines() if l.startswith("{")]
    c_out = {kk: v for l in lines for kk, v in l.items()}
    load = lambda f: np.load(os.path.join(out, f)).astype(np.float64)
    coef, intercept, mean, std, probs = load("coef.npy"), load("intercept.npy"), load("mean.npy"), load("std.npy"), load("probs.npy")

    # Independent standardization (population std, as StandardScaler) and the sklearn fit.
    mu, sd = xtr.astype(np.float64).mean(0), xtr.astype(np.float64).std(0)
    check(name + " standardization", np.abs(mean - mu).max() < 1e-4 * np.abs(mu).max() and np.abs(std - sd).max() < 1e-5 * sd.max(),
          "max |mean diff| %.2g, max |std diff| %.2g" % (np.abs(mean - mu).max(), np.abs(std - sd).max()))
    C = 1.0 / (lam * n)
    clf = LogisticRegression(C=C, solver="lbfgs", tol=1e-10, max_iter=10000,
                             class_weight="balanced" if balanced else None)
    clf.fit((xtr - mu) / sd, ytr)
    sk_coef, sk_int = clf.coef_, clf.intercept_
    rel_c = np.abs(coef - sk_coef).max() / np.abs(sk_coef).max()
    rel_b = np.abs(intercept - sk_int).max() / max(np.abs(sk_int).max(), 1e-3)
    check(name + " coefficients", rel_c < 1e-3 and rel_b < 1e-3,
          "max relative error weights %.2g, intercepts %.2g (C = %g, %d iterations in C, converged %d)" %
          (rel_c, rel_b, C, c_out["iterations"], c_out["converged"]))
    sk_probs = clf.predict_proba((xte - mu) / sd)
    dp = np.abs(probs - sk_probs).max()
    check(name + " probabilities", dp < 1e-3, "max |p - p_sklearn| %.2g on %d test rows" % (dp, n_test))
    pf = probs.astype(np.float32).astype(np.float64)
    sk_auc = roc_auc_score(yte, pf[:, 1]) if k == 2 else roc_auc_score(yte, pf, multi_class="ovr", average="macro", labels=labels)
    check(name + " auroc", abs(c_out["auroc"] - sk_auc) < 1e-6, "C %.9f vs sklearn %.9f" % (c_out["auroc"], sk_auc))
    yte_idx = np.searchsorted(labels, yte)
    sk_ll = -np.mean(np.log(np.clip(pf[np.arange(n_test), yte_idx], 1e-15, 1)))
    check(name + " log-loss", abs(c_out["log_loss"] - sk_ll) < 1e-6, "C %.9f vs numpy %.9f" % (c_out["log_loss"], sk_ll))
    sk_tie = roc_auc_score(tie_labels, ties)
    check(name + " auroc with ties", abs(c_out["tie_auroc"] - sk_tie) < 1e-9, "C %.12f vs sklearn %.12f" % (c_out["tie_auroc"], sk_tie))

case("multinomial", 4, 0, 1e-2, 1)
case("multinomial_balanced", 4, 1, 3e-3, 2)
case("binary", 2, 0, 1e-2, 3)
case("binary_balanced", 2, 1, 1e-3, 4)
case("multinomial_weak_l2", 3, 0, 1e-4, 5)
sys.exit(1 if failures else 0)
PYEOF
