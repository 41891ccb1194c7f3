"""Peer readers for `cargo xtask bench-read`: the same patches read with tensorstore (with a
cache pool of the same budget as strata's chunk cache), zarr-python 3, or Strata's own
Python package (`strata`, to compare the binding with the Rust API).

Usage: python read_peer.py {tensorstore|zarr|strata} IMAGE POSITIONS.json --size N [--cache-mib M]

POSITIONS.json is a list of [z, y, x] (level 0, channel 0). Prints patches per second as JSON.
"""

import argparse
import json
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tool", choices=["tensorstore", "zarr", "strata"])
    ap.add_argument("image")
    ap.add_argument("positions")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cache-mib", type=int, default=0)
    args = ap.parse_args()
    with open(args.positions) as f:
        positions = json.load(f)
    n = args.size
    if args.tool == "tensorstore":
        import tensorstore as ts

        spec = {
            "driver": "zarr3",
            "kvstore": {"driver": "file", "path": f"{args.image}/0/"},
            "context": {"cache_pool": {"total_bytes_limit": args.cache_mib << 20}},
        }
        arr = ts.open(spec, open=True, read=True).result()

        def read(z, y, x):
            return arr[0, z, y : y + n, x : x + n].read().result()

    elif args.tool == "strata":
        import strata

        img = strata.open(args.image, cache_bytes=args.cache_mib << 20)

        def read(z, y, x):
            return img.read(0, c=0, z=z, y=slice(y, y + n), x=slice(x, x + n))

    else:
        import zarr

        arr = zarr.open_array(f"{args.image}/0", mode="r")

        def read(z, y, x):
            return arr[0, z, y : y + n, x : x + n]

    total = 0
    start = time.perf_counter()
    for z, y, x in positions:
        total += np.asarray(read(z, y, x)).nbytes
    secs = time.perf_counter() - start
    print(
        json.dumps(
            {
                "reader": args.tool,
                "patches": len(positions),
                "seconds": secs,
                "patches_per_second": len(positions) / secs,
                "bytes": total,
            }
        )
    )


if __name__ == "__main__":
    main()
