"""Read every level of an OME-Zarr image with zarr-python and with tensorstore.

Usage: python read_levels.py IMAGE.ome.zarr OUT_DIR

For each level listed in the multiscale, writes OUT_DIR/<reader>-<level>.raw: the whole
array's samples in C order (c, z, y, x), little-endian, and prints a JSON summary. The caller
compares the bytes with what it wrote.
"""

import json
import sys

import numpy as np
import tensorstore as ts
import zarr


def main(image, out_dir):
    group = zarr.open_group(image, mode="r")
    datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
    summary = []
    for d in datasets:
        path = d["path"]
        a = zarr.open_array(f"{image}/{path}", mode="r")[...]
        store = ts.open(
            {"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{image}/{path}"}},
            open=True,
        ).result()
        b = store.read().result()
        for name, arr in (("zarr", a), ("tensorstore", b)):
            le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
            with open(f"{out_dir}/{name}-{path}.raw", "wb") as f:
                f.write(np.ascontiguousarray(le).tobytes())
        summary.append({"path": path, "shape": list(a.shape), "dtype": str(a.dtype)})
    print(json.dumps({"levels": summary}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
