"""The DataLoader-style run of `cargo xtask bench-read`: 256 x 256 training patches from a set
of sections through `torch.utils.data.DataLoader` with 2 worker processes.

Usage: python loader_peer.py {strata|tensorstore} BIDS_ROOT --patches N [--workers W]

- `strata`: `strata.PatchDataset` (random positions on tissue, by the tissue mask of each
  section's lowest level).
- `tensorstore`: the naive loop a user writes without Strata: an IterableDataset that opens
  level 0 of every section with tensorstore and reads patches at uniformly random positions.

Both count a patch as containing tissue when at least 25% of its pixels are darker than the
section's Otsu threshold (scikit-image, on the lowest level's middle plane), and print
patches/s, that fraction and the peak RSS of the main process and of the largest worker
as JSON.
"""

import argparse
import json
import os
import resource
import time

import numpy as np
import torch.utils.data as tud

SIZE = 256


def sections(root):
    import strata

    return strata.bids_images(root)


def thresholds(paths):
    """Otsu threshold of each section (lowest level, middle plane), read with zarr-python."""
    import zarr
    from skimage.filters import threshold_otsu

    out = []
    for p in paths:
        group = zarr.open_group(p, mode="r")
        lowest = group[str(len(list(group.array_keys())) - 1)]
        plane = lowest[0, lowest.shape[1] // 2]
        out.append(float(threshold_otsu(plane)))
    return out


class NaiveTensorstore(tud.IterableDataset):
    """Uniformly random patches of every section, read by tensorstore (built lazily per worker)."""

    def __init__(self, paths, per_epoch, seed=0):
        self.paths, self.per_epoch, self.seed = paths, per_epoch, seed

    def __iter__(self):
        import tensorstore as ts

        info = tud.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        arrays = [
            ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{p}/0/"}},
                    open=True, read=True).result()
            for p in self.paths
        ]
        rng = np.random.default_rng([self.seed, worker])
        for _ in range(worker, self.per_epoch, workers):
            i = int(rng.integers(len(arrays)))
            _, planes, rows, cols = arrays[i].shape
            z = int(rng.integers(planes)); y = int(rng.integers(rows - SIZE)); x = int(rng.integers(cols - SIZE))
            yield arrays[i][:, z, y:y + SIZE, x:x + SIZE].read().result(), {"image": i}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tool", choices=["strata", "tensorstore"])
    ap.add_argument("root")
    ap.add_argument("--patches", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    import strata

    paths = sections(args.root)
    limits = thresholds(paths)
    if args.tool == "strata":
        ds = strata.PatchDataset(paths, (SIZE, SIZE), per_epoch=args.patches, seed=1)
    else:
        ds = NaiveTensorstore(paths, args.patches, seed=1)
    loader = tud.DataLoader(ds, batch_size=32, num_workers=args.workers, prefetch_factor=4)
    n = tissue = 0
    start = time.perf_counter()
    for patches, where in loader:
        arr = patches.numpy()
        for k in range(arr.shape[0]):
            limit = limits[int(where["image"][k])]
            tissue += float((arr[k] <= limit).mean()) >= 0.25
        n += arr.shape[0]
    secs = time.perf_counter() - start
    main_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The largest finished worker (forked: its resident pages include the parent's torch).
    worker_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({
        "reader": args.tool, "sections": len(paths), "patches": n, "seconds": secs,
        "patches_per_second": n / secs, "tissue_fraction": tissue / max(n, 1),
        "peak_rss_mib": main_kib / 1024, "worker_peak_rss_mib": worker_kib / 1024, "workers": args.workers, "pid": os.getpid(),
    }))


if __name__ == "__main__":
    main()
