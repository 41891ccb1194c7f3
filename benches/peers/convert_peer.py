"""Peer converters for `cargo xtask bench-convert`: the same job as `strata convert`, done with
the Python tools a user would pick instead.

Usage: python convert_peer.py {tensorstore|zarr} TIFF_DIR OUT.ome.zarr [--chunk 512] [--level 3]

Reads each focus level with tifffile (whole plane), writes level 0 as one Zarr v3 array with
one shard holding every plane (inner chunks 1 x 1 x chunk x chunk, zstd), then each pyramid
level as the 2 x 2 mean of the level above, down to one chunk, and the OME-NGFF 0.5 group
metadata. Prints {"seconds": ..., "levels": ...} as JSON.
"""

import argparse
import json
import os
import re
import time

import numpy as np
import tifffile


def natural_key(name):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def mean2(a):
    """2 x 2 mean over the last two axes, rounded half up, odd edges over the pixels present."""
    h, w = a.shape[-2:]
    ph, pw = h % 2, w % 2
    x = a.astype(np.uint32)
    if ph or pw:
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)])
        n = np.pad(np.ones((h, w), np.uint32), [(0, ph), (0, pw)])
    else:
        n = np.ones((h, w), np.uint32)
    s = x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]
    c = n[0::2, 0::2] + n[1::2, 0::2] + n[0::2, 1::2] + n[1::2, 1::2]
    return ((s + c // 2) // c).astype(a.dtype)


def shapes(h, w, chunk):
    out = [(h, w)]
    while (h > chunk or w > chunk) and h > 1 and w > 1:
        h, w = (h + 1) // 2, (w + 1) // 2
        out.append((h, w))
    return out


def write_tensorstore(path, data, chunk, level):
    import tensorstore as ts

    c, z, h, w = data.shape
    hp, wp = -(-h // chunk) * chunk, -(-w // chunk) * chunk
    spec = {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": path},
        "metadata": {
            "shape": list(data.shape),
            "data_type": str(data.dtype),
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [c, z, hp, wp]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "."}},
            "codecs": [
                {
                    "name": "sharding_indexed",
                    "configuration": {
                        "chunk_shape": [c, 1, chunk, chunk],
                        "codecs": [
                            {"name": "bytes", "configuration": {"endian": "little"}},
                            {"name": "zstd", "configuration": {"level": level}},
                        ],
                        "index_codecs": [
                            {"name": "bytes", "configuration": {"endian": "little"}},
                            {"name": "crc32c"},
                        ],
                    },
                }
            ],
            "dimension_names": ["c", "z", "y", "x"],
        },
        "create": True,
        "delete_existing": True,
    }
    store = ts.open(spec).result()
    store.write(data).result()


def write_zarr(path, data, chunk, level):
    import zarr
    from zarr.codecs import ZstdCodec

    c, z, h, w = data.shape
    hp, wp = -(-h // chunk) * chunk, -(-w // chunk) * chunk
    arr = zarr.create_array(
        store=path,
        shape=data.shape,
        dtype=data.dtype,
        shards=(c, z, hp, wp),
        chunks=(c, 1, chunk, chunk),
        compressors=[ZstdCodec(level=level)],
        chunk_key_encoding={"name": "default", "separator": "."},
        dimension_names=["c", "z", "y", "x"],
        overwrite=True,
    )
    arr[...] = data


def main():
    p = argparse.ArgumentParser()
    p.add_argument("tool", choices=["tensorstore", "zarr"])
    p.add_argument("tiff_dir")
    p.add_argument("out")
    p.add_argument("--chunk", type=int, default=512)
    p.add_argument("--level", type=int, default=3)
    a = p.parse_args()
    start = time.perf_counter()
    names = sorted(
        (n for n in os.listdir(a.tiff_dir) if n.lower().endswith((".tif", ".tiff"))),
        key=natural_key,
    )
    planes = [tifffile.imread(os.path.join(a.tiff_dir, n)) for n in names]
    data = np.stack(planes)  # (z, y, x) or (z, y, x, c)
    data = data[np.newaxis] if data.ndim == 3 else np.moveaxis(data, -1, 0)
    data = np.ascontiguousarray(data)
    write = write_tensorstore if a.tool == "tensorstore" else write_zarr
    levels = shapes(data.shape[2], data.shape[3], a.chunk)
    os.makedirs(a.out, exist_ok=True)
    for i in range(len(levels)):
        if i > 0:
            data = mean2(data)
        write(os.path.join(a.out, str(i)), data, a.chunk, a.level)
    group = {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {
            "ome": {
                "version": "0.5",
                "multiscales": [
                    {
                        "axes": [
                            {"name": "c", "type": "channel"},
                            {"name": "z", "type": "space", "unit": "micrometer"},
                            {"name": "y", "type": "space", "unit": "micrometer"},
                            {"name": "x", "type": "space", "unit": "micrometer"},
                        ],
                        "datasets": [
                            {
                                "path": str(i),
                                "coordinateTransformations": [
                                    {"type": "scale", "scale": [1.0, 1.0, 2.0**i, 2.0**i]}
                                ],
                            }
                            for i in range(len(levels))
                        ],
                    }
                ],
            }
        },
    }
    with open(os.path.join(a.out, "zarr.json"), "w") as f:
        json.dump(group, f)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": time.perf_counter() - start, "levels": len(levels), "peak_memory_bytes": peak}))


if __name__ == "__main__":
    main()
