"""strata.open / Image.read against zarr-python on the same images, and the errors."""

import os
import threading
from pathlib import Path

import numpy as np
import pytest

import strata


def test_levels_match_the_arrays(folder, reference):
    img = strata.open(folder)
    assert len(img.levels) == len(reference)
    for level, ref in zip(img.levels, reference):
        assert tuple(level.shape) == ref.shape
        assert np.dtype(level.dtype) == ref.dtype
        assert len(level.scale) == 4 and len(level.chunk_shape) == 4
    assert [a["name"] for a in img.axes] == ["c", "z", "y", "x"]
    assert img.planes == 3 and img.channels == 1
    assert img.pixel_size is not None and len(img.pixel_size) == 3
    assert img.sidecar["PixelSizeUnits"] == "um"
    assert img.provenance is not None


@pytest.mark.parametrize("layout", ["folder", "archive"])
def test_regions_equal_zarr_python(layout, folder, archive, reference):
    img = strata.open(folder if layout == "folder" else archive)
    rng = np.random.default_rng(7)
    for _ in range(25):
        level = int(rng.integers(0, len(reference)))
        ref = reference[level]
        _, planes, rows, cols = ref.shape
        z = int(rng.integers(0, planes))
        y0 = int(rng.integers(0, rows - 1)); y1 = int(rng.integers(y0 + 1, rows + 1))
        x0 = int(rng.integers(0, cols - 1)); x1 = int(rng.integers(x0 + 1, cols + 1))
        got = img.read(level, z=z, y=slice(y0, y1), x=slice(x0, x1))
        np.testing.assert_array_equal(got, ref[:, z, y0:y1, x0:x1])
        assert got.flags.c_contiguous and got.flags.writeable


def test_selection_forms(folder, reference):
    img = strata.open(folder)
    ref = reference[0]
    np.testing.assert_array_equal(img.read(0), ref)
    np.testing.assert_array_equal(img.read(0, c=0, z=-1), ref[0, -1])
    np.testing.assert_array_equal(img.read(0, y=slice(-100, None), x=slice(None, 10)), ref[:, :, -100:, :10])
    assert img.read(0, y=slice(5, 5)).shape == (1, 3, 0, 1024)


def test_path_like_and_cache(folder, reference):
    img = strata.open(Path(folder), cache_bytes=64 << 20)
    a = img.read(0, z=1, y=slice(10, 700), x=slice(500, 1000))
    assert img.cached_bytes > 0
    b = img.read(0, z=1, y=slice(10, 700), x=slice(500, 1000))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, reference[0][:, 1, 10:700, 500:1000])


def test_threads_read_at_once(folder, reference):
    """The GIL is released while reading: many Python threads share one image."""
    img = strata.open(folder)
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(20):
            z = int(rng.integers(0, 3)); y = int(rng.integers(0, 768 - 256)); x = int(rng.integers(0, 1024 - 256))
            got = img.read(0, z=z, y=slice(y, y + 256), x=slice(x, x + 256))
            if not np.array_equal(got, reference[0][:, z, y:y + 256, x:x + 256]):
                errors.append((z, y, x))

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_request_errors_are_value_errors(folder):
    img = strata.open(folder)
    with pytest.raises(strata.RequestError) as e:
        img.read(7)
    assert isinstance(e.value, ValueError)
    assert e.value.level == 7 and e.value.image == folder
    assert "no level 7" in str(e.value)
    with pytest.raises(strata.RequestError, match="does not fit"):
        img.read(0, y=slice(0, 769))
    with pytest.raises(strata.RequestError, match="outside"):
        img.read(0, z=3)
    with pytest.raises(strata.RequestError, match="step 1"):
        img.read(0, x=slice(0, 10, 2))
    with pytest.raises(TypeError, match='no axis "t"'):
        img.read(0, t=0)
    with pytest.raises(TypeError, match="int, a slice or None"):
        img.read(0, z="1")
    small = strata.open(folder, max_region_bytes=1000)
    with pytest.raises(strata.RequestError, match="over the limit"):
        small.read(0, z=0)
    with pytest.raises(strata.RequestError, match="unknown scheme"):
        strata.open("ftp://host/x.ome.zarr")


def test_data_errors_are_os_errors(corrupt_copy, tmp_path):
    with pytest.raises(strata.RequestError, match="no such folder"):
        strata.open(tmp_path / "missing.ome.zarr")
    (tmp_path / "empty.ome.zarr").mkdir()
    with pytest.raises(strata.DataError, match="no zarr.json") as e:
        strata.open(tmp_path / "empty.ome.zarr")
    assert isinstance(e.value, OSError)
    img = strata.open(corrupt_copy)
    with pytest.raises(strata.DataError) as e:
        img.read(0)
    assert e.value.level == 0 and e.value.image == corrupt_copy
    # The rest of the image stays readable.
    assert img.read(1, z=0).shape == (1, 384, 512)


def test_truncated_archive(archive, tmp_path):
    cut = tmp_path / "cut.ozx"
    data = Path(archive).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(strata.DataError):
        strata.open(cut).read(0)


def test_bids_selection(dataset):
    every = strata.bids_images(dataset)
    assert [Path(p).name for p in every] == [
        "sub-BB01_sample-0001_stain-Nissl_BF.ome.zarr",
        "sub-BB01_sample-0002_stain-Nissl_BF.ome.zarr",
    ]
    assert strata.bids_images(dataset, sample="0002") == every[1:]
    assert strata.bids_images(dataset, subject=["sub-BB01"], stain="Nissl") == every
    assert strata.bids_images(dataset, subject="XX") == []
    with pytest.raises(strata.RequestError, match="not a BIDS dataset"):
        strata.bids_images(os.path.dirname(dataset))
