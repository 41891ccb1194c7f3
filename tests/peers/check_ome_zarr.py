"""Open OME-Zarr images with independent readers and report what they see, as JSON.

Usage: python check_ome_zarr.py IMAGE.ome.zarr [...]

For each image: ome-zarr-models validates the group's OME-NGFF metadata (v0.5 or v0.4), and
zarr-python opens every multiscale level and reads it whole. Prints
{"images": [{"path", "valid", "error", "levels": [{"path", "shape", "dtype", "plane_sums"}]}]}.
"""

import json
import sys

import zarr


def check(path):
    out = {"path": path, "valid": False, "error": None, "levels": []}
    try:
        group = zarr.open_group(path, mode="r")
        version = group.attrs.get("ome", {}).get("version")
        if version == "0.5":
            from ome_zarr_models.v05.image import Image
        else:
            from ome_zarr_models.v04.image import Image
        image = Image.from_zarr(group)
        multiscale = (
            image.ome_attributes.multiscales[0]
            if hasattr(image, "ome_attributes")
            else image.attributes.multiscales[0]
        )
        for dataset in multiscale.datasets:
            array = zarr.open_array(f"{path}/{dataset.path}", mode="r")
            data = array[...]
            sums = [int(data[0, z].sum(dtype="uint64")) for z in range(data.shape[1])]
            out["levels"].append(
                {
                    "path": dataset.path,
                    "shape": list(array.shape),
                    "dtype": str(array.dtype),
                    "plane_sums": sums,
                }
            )
        out["valid"] = True
    except Exception as exc:  # report every failure as data, for the Rust test to assert on
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


if __name__ == "__main__":
    print(json.dumps({"images": [check(p) for p in sys.argv[1:]]}))
