"""The same per-plane metrics as strata-qc, with OpenCV/NumPy/scikit-image, on a 4096 x 4096
8-bit plane like the one of benches/metrics.rs (two gray levels in 700 x 500 blocks, +-12 noise;
whole plane in memory, no tile map).

Usage: python benches/peer_metrics.py   (prints the median time per plane)
"""

import statistics
import time

import cv2
import numpy as np
import skimage.filters

SIZE = 4096


def metrics(g, max_value=255):
    lap = cv2.Laplacian(g, cv2.CV_64F)
    gx = cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3)
    kx = np.array([[-1.0, 2.0, -1.0]])
    mlap = np.abs(cv2.filter2D(g, cv2.CV_64F, kx)) + np.abs(cv2.filter2D(g, cv2.CV_64F, kx.T))
    gi = g.astype(np.int64)
    gf = g.astype(np.float64)
    otsu = skimage.filters.threshold_otsu(g)
    return (
        lap.var(),
        np.mean(gx**2 + gy**2),
        np.mean((gi[:, 2:] - gi[:, :-2]) ** 2),
        gf.var() / gf.mean(),
        mlap.mean(),
        gf.mean(),
        gf.std(),
        np.count_nonzero(g >= max_value) / g.size,
        np.count_nonzero(g == 0) / g.size,
        otsu,
        np.count_nonzero(g <= otsu) / g.size,
    )


def main():
    rng = np.random.default_rng(0)
    g = np.where(
        ((np.arange(SIZE)[None, :] // 700 + np.arange(SIZE)[:, None] // 500) % 2) == 0, 90, 225
    ) + rng.integers(-12, 12, size=(SIZE, SIZE))
    g = g.astype(np.uint8)
    cv2.setNumThreads(1)
    times = []
    for _ in range(7):
        t = time.perf_counter()
        metrics(g)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(f"OpenCV {cv2.__version__} / NumPy / scikit-image, 1 thread: {med * 1000:.1f} ms per "
          f"4096x4096 u8 plane ({SIZE * SIZE / med / 2**20:.1f} MiB/s)")
    cv2.setNumThreads(0)
    times = []
    for _ in range(7):
        t = time.perf_counter()
        metrics(g)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(f"  OpenCV default threads ({cv2.getNumThreads()}): {med * 1000:.1f} ms per plane")


if __name__ == "__main__":
    main()
