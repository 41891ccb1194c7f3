"""Read regions of an OME-Zarr image with zarr-python and with tensorstore.

Usage: python read_regions.py IMAGE REGIONS.json

IMAGE is an .ome.zarr folder or an .ozx archive (read by zarr-python only: tensorstore's zip
kvstore takes an entry's size from its local header, which a streamed ZIP64 entry leaves at
zero, and reads such entries as empty). REGIONS.json is a list of
{"level": L, "region": [[start, end], ...]} (one half-open range per axis). Prints a JSON list
with, for each region and reader, the SHA-256 of the region's samples in C order,
little-endian; the caller compares them with its own reads.
"""

import hashlib
import json
import sys

import numpy as np
import tensorstore as ts
import zarr


def digest(arr):
    le = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))
    return hashlib.sha256(le.tobytes()).hexdigest()


def main(image, regions_path):
    with open(regions_path) as f:
        regions = json.load(f)
    archive = image.endswith(".ozx")
    if archive:
        store = zarr.storage.ZipStore(image, mode="r")
        group = zarr.open_group(store, mode="r")
    else:
        group = zarr.open_group(image, mode="r")
    paths = [d["path"] for d in group.attrs["ome"]["multiscales"][0]["datasets"]]
    z_arrays = {p: group[p] for p in paths}
    t_arrays = {}
    if not archive:
        for p in paths:
            kv = {"driver": "file", "path": f"{image}/{p}/"}
            t_arrays[p] = ts.open({"driver": "zarr3", "kvstore": kv}, open=True).result()
    out = []
    for r in regions:
        p = paths[r["level"]]
        sl = tuple(slice(a, b) for a, b in r["region"])
        row = {"zarr": digest(z_arrays[p][sl])}
        if t_arrays:
            row["tensorstore"] = digest(t_arrays[p][sl].read().result())
        out.append(row)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
