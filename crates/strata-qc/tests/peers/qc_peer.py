"""Reference QC metrics with OpenCV, NumPy and scikit-image, for strata-qc's agreement test.

Usage: qc_peer.py MANIFEST.json  (prints one JSON object on stdout)

The manifest lists raw images written by the Rust test:
  {"tile_size": 64, "tile_min_tissue": 0.5,
   "histograms": [[count, ...], ...],
   "images": [{"name": ..., "path": ..., "width": W, "height": H,
               "format": "gray8|gray16|rgb8|rgb16", "max_value": M,
               "skimage": "cell"|"immunohistochemistry"|null}]}
For every image it writes the luminance plane next to the raw file (`<path>.gray`) so the test
can compare the RGB conversion byte for byte, and prints the metrics.
"""

import json
import math
import sys

import cv2
import numpy as np
import skimage
import skimage.data
import skimage.filters


def load(entry):
    dtype = np.uint8 if entry["format"].endswith("8") else np.dtype("<u2")
    channels = 3 if entry["format"].startswith("rgb") else 1
    shape = (entry["height"], entry["width"]) + ((3,) if channels == 3 else ())
    img = np.fromfile(entry["path"], dtype=dtype).reshape(shape)
    if entry.get("skimage"):
        # The same pixels, read by scikit-image from its own wheel.
        ref = getattr(skimage.data, entry["skimage"])()
        if not np.array_equal(ref, img):
            raise SystemExit(f"{entry['name']}: raw pixels differ from skimage.data")
    if channels == 3:
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    else:
        gray = img
    gray = np.ascontiguousarray(gray)
    gray.astype(gray.dtype.newbyteorder("<")).tofile(entry["path"] + ".gray")
    return gray


def metrics(g, max_value, tile_size, tile_min_tissue):
    h, w = g.shape
    n = g.size
    lap = cv2.Laplacian(g, cv2.CV_64F)  # ksize=1: [[0,1,0],[1,-4,1],[0,1,0]], BORDER_REFLECT_101
    gx = cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3)
    kx = np.array([[-1.0, 2.0, -1.0]])
    mlap = np.abs(cv2.filter2D(g, cv2.CV_64F, kx)) + np.abs(cv2.filter2D(g, cv2.CV_64F, kx.T))
    gi = g.astype(np.int64)
    brenner = float(np.mean((gi[:, 2:] - gi[:, :-2]) ** 2)) if w >= 3 else 0.0
    gf = g.astype(np.float64)
    mean = float(gf.mean())
    std = float(gf.std())
    lo, hi = int(g.min()), int(g.max())
    otsu = int(skimage.filters.threshold_otsu(g))
    tissue_pixels = 0 if lo == hi else int(np.count_nonzero(g <= otsu))
    if lo == hi:
        separation = 0.0
    else:
        separation = float(gf[g > otsu].mean() - gf[g <= otsu].mean()) / max_value
    tiles = []
    for y0 in range(0, h, tile_size):
        for x0 in range(0, w, tile_size):
            t = lap[y0 : y0 + tile_size, x0 : x0 + tile_size]
            v = np.sort(g[y0 : y0 + tile_size, x0 : x0 + tile_size], axis=None)
            k = max(math.ceil(tile_min_tissue * v.size), 1)
            tiles.append({"focus": float(t.var()), "quantile": int(v[k - 1])})
    return {
        "variance_of_laplacian": float(lap.var()),
        "tenengrad": float(np.mean(gx**2 + gy**2)),
        "brenner": brenner,
        "normalized_variance": float(gf.var() / mean) if mean != 0 else 0.0,
        "modified_laplacian": float(mlap.mean()),
        "mean": mean,
        "std": std,
        "min": lo,
        "max": hi,
        "saturated_fraction": float(np.count_nonzero(g >= max_value)) / n,
        "black_fraction": float(np.count_nonzero(g == 0)) / n,
        "rms_contrast": std / max_value,
        "michelson_contrast": (hi - lo) / (hi + lo) if hi + lo else 0.0,
        "otsu_threshold": otsu,
        "tissue_fraction": tissue_pixels / n,
        "tissue_pixels": tissue_pixels,
        "class_separation": separation,
        "pixels": n,
        "tiles": tiles,
    }


def main():
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    out = {
        "versions": {
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "scikit-image": skimage.__version__,
        },
        "images": {},
    }
    for entry in manifest["images"]:
        g = load(entry)
        out["images"][entry["name"]] = metrics(
            g, entry["max_value"], manifest["tile_size"], manifest["tile_min_tissue"]
        )
    # Histograms with large counts (planes far above 2^24 pixels): near ties are decided by
    # scikit-image's float32 roundings.
    out["histogram_otsu"] = [
        int(skimage.filters.threshold_otsu(hist=np.array(h, dtype=np.int64)))
        for h in manifest.get("histograms", [])
    ]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
