"""Reading an image from the local S3 server (the test command starts it and sets
STRATA_S3_ENDPOINT), also from forked DataLoader workers."""

import os
import urllib.request
import uuid

import numpy as np
import pytest

import strata
from conftest import peer, run_strata

ENDPOINT = os.environ.get("STRATA_S3_ENDPOINT")


@pytest.fixture(scope="module")
def s3_image(folder, archive):
    if not ENDPOINT:
        if os.environ.get("STRATA_REQUIRE_PEERS"):
            pytest.fail("STRATA_S3_ENDPOINT is not set")
        pytest.skip("no S3 server (set STRATA_S3_ENDPOINT)")
    bucket = f"py-{uuid.uuid4().hex[:12]}"
    urllib.request.urlopen(urllib.request.Request(f"{ENDPOINT}/{bucket}", method="PUT")).close()
    url = f"s3://{bucket}/ds/sec.ome.zarr"
    run_strata("stage", f"file://{folder}", url)
    return url


def test_s3_folder_equals_local(s3_image, reference):
    img = strata.open(s3_image)
    assert [tuple(l.shape) for l in img.levels] == [r.shape for r in reference]
    got = img.read(0, z=2, y=slice(100, 700), x=slice(33, 1000))
    np.testing.assert_array_equal(got, reference[0][:, 2, 100:700, 33:1000])


def test_s3_dataloader_after_fork(s3_image, reference):
    peer("torch")
    from torch.utils.data import DataLoader

    # The parent uses the object store first; the forked workers start their own runtime.
    strata.open(s3_image).read(1, z=0)
    ds = strata.PatchDataset([s3_image], (64, 64), per_epoch=16, seed=4)
    n = 0
    for patches, where in DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="fork", timeout=120):
        for i in range(patches.shape[0]):
            z, y, x = int(where["z"][i]), int(where["y"][i]), int(where["x"][i])
            np.testing.assert_array_equal(patches[i].numpy(), reference[0][:, z, y:y + 64, x:x + 64])
            n += 1
    assert n == 16


def test_s3_dataset_selection(s3_image, dataset):
    bucket = s3_image.split("/")[2]
    run_strata("stage", f"file://{dataset}", f"s3://{bucket}/whole")
    local = [p.split("/bids/", 1)[1] for p in strata.bids_images(dataset)]
    remote = strata.bids_images(f"s3://{bucket}/whole")
    assert [p.split("/whole/", 1)[1] for p in remote] == local
    (second,) = strata.bids_images(f"s3://{bucket}/whole", sample="0002")
    assert second.startswith(f"s3://{bucket}/whole/sub-BB01/micr/")
    assert strata.open(second).read(1, z=0).shape == (1, 384, 512)
