"""Checks the group Strata writes with independent readers.

Usage:
    cargo run -p strata-ngff --example group_zarr_json -- 1 30 1024 1024 3 > group.txt
    python check_with_ome_zarr_models.py group.txt

The input is the example's output: the group zarr.json, then one JSON line
per level with its shape. The script writes that group with zarr-python 3,
creates one uint8 array per level, validates the group with
ome-zarr-models (v05 Image) and opens every array with zarr-python.
Needs: pip install ome-zarr-models (brings zarr 3).
"""

import json
import sys
import tempfile

import zarr
from ome_zarr_models.v05.image import Image


def main(path: str) -> None:
    lines = open(path, encoding="utf-8").read().rstrip("\n").split("\n")
    shapes = []
    while lines and lines[-1].startswith("["):
        shapes.insert(0, json.loads(lines.pop()))
    meta = json.loads("\n".join(lines))
    names = [a["name"] for a in meta["attributes"]["ome"]["multiscales"][0]["axes"]]
    store = tempfile.mkdtemp(suffix=".ome.zarr")
    root = zarr.open_group(store, mode="w", zarr_format=3)
    root.attrs.update(meta["attributes"])
    for level, shape in enumerate(shapes):
        chunks = [1] * (len(shape) - 2) + [min(512, shape[-2]), min(512, shape[-1])]
        root.create_array(str(level), shape=shape, dtype="uint8", chunks=chunks, dimension_names=names)
    group = zarr.open_group(store, mode="r")
    image = Image.from_zarr(group)
    paths = [ds.path for ds in image.ome_attributes.multiscales[0].datasets]
    for p, shape in zip(paths, shapes):
        arr = zarr.open_array(f"{store}/{p}", mode="r")
        assert list(arr.shape) == shape, (p, arr.shape, shape)
    print(f"ome-zarr-models and zarr-python accept the group: levels {paths}")


if __name__ == "__main__":
    main(sys.argv[1])
