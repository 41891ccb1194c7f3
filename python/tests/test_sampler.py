"""PatchSampler and PatchDataset: determinism, splits without overlap, pixels, DataLoader."""

from collections import Counter

import numpy as np
import pytest

import strata
from conftest import peer


def key(at):
    return (at.image, at.level, at.z, at.y, at.x)


def test_patches_are_the_image_pixels(dataset, reference):
    paths = strata.bids_images(dataset)
    sampler = strata.PatchSampler(paths, (96, 128), per_epoch=40, seed=5)
    seen = 0
    for patch, at in sampler.iter(epoch=0):
        assert patch.shape == (1, 96, 128) and patch.dtype == np.uint8
        if at.image == 0:
            np.testing.assert_array_equal(patch, reference[0][:, at.z, at.y:at.y + 96, at.x:at.x + 128])
        np.testing.assert_array_equal(patch, sampler.read(at))
        seen += 1
    assert seen == 40


def test_deterministic_and_split_without_overlap(dataset):
    paths = strata.bids_images(dataset)
    a = strata.PatchSampler(paths, (64, 64), per_epoch=200, seed=11)
    b = strata.PatchSampler(paths, (64, 64), per_epoch=200, seed=11)
    assert a.positions(3) == b.positions(3)
    assert a.positions(3) != a.positions(4)
    every = [key(p) for p in a.positions(3)]
    parts = []
    for rank in range(2):
        s = strata.PatchSampler(paths, (64, 64), per_epoch=200, seed=11, rank=rank, world_size=2)
        for worker in range(3):
            parts.append([key(p) for p in s.positions(3, worker, 3)])
    assert sorted(k for part in parts for k in part) == sorted(every)
    assert sum(map(len, parts)) == len(every) == 200


def test_grid_covers_each_tile_once(folder):
    s = strata.PatchSampler([folder], (256, 256), grid=True, tissue_only=False)
    keys = [key(p) for p in s.positions(0)]
    assert len(keys) == len(set(keys)) == 3 * 3 * 4
    assert sorted(keys) == sorted(key(p) for p in s.positions(1))


def test_tissue_only_positions_are_on_tissue(folder):
    s = strata.PatchSampler([folder], (32, 32), per_epoch=100, seed=2)
    (fraction,) = s.tissue_fractions()
    assert 0.0 < fraction < 1.0
    img = strata.open(folder)
    lowest = img.read(len(img.levels) - 1, c=0)
    # The darker-than-background rule: each centre is darker than the plane's mean.
    scale = img.levels[0].shape[2] / lowest.shape[1]
    darker = 0
    for at in s.positions(0):
        cy = int((at.y + 16) / scale); cx = int((at.x + 16) / scale)
        darker += lowest[lowest.shape[0] // 2, cy, cx] < lowest.mean()
    assert darker >= 90


def test_bad_sampler_arguments(dataset, folder):
    with pytest.raises(strata.RequestError):
        strata.PatchSampler([folder], (2048, 64))
    with pytest.raises(strata.DataError, match="rank 2"):
        strata.PatchSampler([folder], (64, 64), rank=2, world_size=2)
    with pytest.raises(ValueError, match="no OME-Zarr image"):
        strata.PatchDataset(dataset, (8, 8), subject="nobody")


def test_dataset_without_workers(dataset):
    ds = strata.PatchDataset(dataset, (64, 64), sample="0002", per_epoch=12, seed=1)
    items = list(ds)
    assert len(items) == 12
    patch, where = items[0]
    assert patch.shape == (1, 64, 64)
    assert where["path"].endswith("sample-0002_stain-Nissl_BF.ome.zarr")
    ds.set_epoch(1)
    assert [w["y"] for _, w in ds] != [w["y"] for _, w in items]



@pytest.fixture(scope="module")
def torch_mod():
    return peer("torch")


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_share_the_epoch(torch_mod, dataset, context):
    from torch.utils.data import DataLoader

    paths = strata.bids_images(dataset)
    # The parent reads first: forked workers must not depend on its reader threads.
    strata.open(paths[0]).read(0, z=0)
    ds = strata.PatchDataset(paths, (64, 64), per_epoch=48, seed=9)
    ds.set_epoch(2)
    loader = DataLoader(ds, batch_size=8, num_workers=2, multiprocessing_context=context)
    got = Counter()
    for patches, where in loader:
        assert isinstance(patches, torch_mod.Tensor) and patches.shape[1:] == (1, 64, 64)
        for i in range(patches.shape[0]):
            k = (int(where["image"][i]), int(where["level"][i]), int(where["z"][i]), int(where["y"][i]), int(where["x"][i]))
            got[k] += 1
            if i == 0:
                img = strata.open(where["path"][i])
                expect = img.read(0, z=k[2], y=slice(k[3], k[3] + 64), x=slice(k[4], k[4] + 64))
                np.testing.assert_array_equal(patches[i].numpy(), expect)
    expected = Counter(key(p) for p in strata.PatchSampler(paths, (64, 64), per_epoch=48, seed=9).positions(2))
    assert got == expected
