"""Fits the strata-plan constants from real DataLad runs.

Input: the `CALIBRATION {...}` lines of `cargo test --test datalad calibrate -- --ignored
--nocapture` and the `SHAPES {...}` lines of `calibration_shapes` (same matrix).
Usage: python3 fit.py calibrate.log shapes.log
"""

import json
import math
import sys

import numpy as np


def occupied(keys, buckets):
    return 0.0 if keys <= 0 else buckets * (1.0 - math.exp(-keys / buckets))


def load(path, tag):
    out = []
    for line in open(path):
        if line.startswith(tag + " "):
            out.append(json.loads(line[len(tag) + 1 :]))
    return out


runs = load(sys.argv[1], "CALIBRATION")
shapes = {
    (s["layout"], s["grouping"], s["sections"]): s["shapes"]
    for s in load(sys.argv[2], "SHAPES")
    if s["planes"] == 3
}
NAMES = ["base", "annexed", "git_files", "dirs", "saves", "subdatasets"]

rows, loose = [], []
for r in runs:
    sh = shapes[(r["layout"], r["grouping"], r["sections"])]
    rows.append([sum(s["count"] * (1 if n == "base" else s[n]) for s in sh) for n in NAMES])
    loose.append(r["before"]["git"]["loose_objects"])
A, y = np.array(rows, float), np.array(loose, float)
coef, *_ = np.linalg.lstsq(A, y, rcond=None)
print("loose objects per:", {n: round(c, 3) for n, c in zip(NAMES, coef)})
print("  max abs residual", np.abs(A @ coef - y).max(), "of", y.max())

k = dict(zip(NAMES, coef))
gf, gd, gfa, gda, wf, wd = [], [], [], [], [], []
for r in runs:
    sh = shapes[(r["layout"], r["grouping"], r["sections"])]
    n = sum(s["count"] for s in sh)
    fan, adirs, ann, work_dirs, work_files = 0.0, 0.0, 0, 0, 0
    for s in sh:
        lo = sum(k[m] * (1 if m == "base" else s[m]) for m in NAMES)
        a = s["annexed"]
        fan += s["count"] * occupied(lo, 256)
        if a:
            adirs += s["count"] * (1 + occupied(a, 1024) + occupied(a, 1024 * 1024) + a)
        ann += s["count"] * a
        work_dirs += s["count"] * s["dirs"]
        work_files += s["count"] * (s["annexed"] + s["git_files"])
    b, af = r["before"], r["after"]
    gf.append((b["git"]["files"] - b["git"]["loose_objects"] - b["annexed_objects"]) / n)
    gd.append((b["git"]["dirs"] - fan - adirs) / n)
    gfa.append((af["git"]["files"] - af["annexed_objects"]) / n)
    gda.append((af["git"]["dirs"] - adirs) / n)
    wf.append((b["files"] + b["symlinks"] - b["git"]["files"] - work_files) / n)
    wd.append((b["dirs"] - b["git"]["dirs"] - work_dirs) / n)
for name, v in [
    ("git_files", gf),
    ("git_dirs", gd),
    ("git_files_gc", gfa),
    ("git_dirs_gc", gda),
    ("dataset_work_files", wf),
    ("dataset_work_dirs", wd),
]:
    v = np.array(v)
    print(f"{name}: mean {v.mean():.2f} min {v.min():.2f} max {v.max():.2f}")
