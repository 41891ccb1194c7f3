"""Fixtures: a small dataset written by the `strata` command (two sections as .ome.zarr
folders, the first also as an .ozx archive), read back by zarr-python as the reference."""

import importlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def strata_bin() -> str:
    """The `strata` command: $STRATA_BIN, else the workspace's release or debug build."""
    env = os.environ.get("STRATA_BIN")
    if env:
        return env
    for profile in ("release", "debug"):
        candidate = ROOT / "target" / profile / "strata"
        if candidate.exists():
            return str(candidate)
    pytest.fail("no strata binary: build it (cargo build --release -p strata-cli) or set STRATA_BIN")


def peer(module: str):
    """Imports an optional peer (torch): required where the test command set
    STRATA_REQUIRE_PEERS, else the test is skipped without it."""
    if os.environ.get("STRATA_REQUIRE_PEERS"):
        return importlib.import_module(module)
    return pytest.importorskip(module)


def run_strata(*args: str) -> dict:
    out = subprocess.run(
        [strata_bin(), *args, "--json"], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """Two 3-plane 1024 x 768 sections of subject BB01 (samples 0001, 0002)."""
    root = tmp_path_factory.mktemp("ds") / "bids"
    run_strata("demo", "--out", str(root), "--sections", "2", "--size", "1024x768", "--planes", "3")
    return root


@pytest.fixture(scope="session")
def folder(dataset) -> str:
    return str(dataset / "sub-BB01/micr/sub-BB01_sample-0001_stain-Nissl_BF.ome.zarr")


@pytest.fixture(scope="session")
def archive(dataset, tmp_path_factory) -> str:
    """Section 0001 converted again from the same TIFFs, as one .ozx file."""
    root = tmp_path_factory.mktemp("ozx") / "bids"
    run_strata(
        "convert", str(dataset / "sourcedata/sub-BB01/sample-0001"),
        "--bids-root", str(root), "--subject", "BB01", "--sample", "0001",
        "--stain", "Nissl", "--layout", "ozx",
    )
    (path,) = root.glob("sub-BB01/micr/*.ozx")
    return str(path)


@pytest.fixture(scope="session")
def reference(folder):
    """Level arrays of section 0001 as zarr-python reads them."""
    import zarr

    group = zarr.open_group(folder, mode="r")
    return [group[str(i)][...] for i in range(len(list(group.array_keys())))]


@pytest.fixture()
def corrupt_copy(folder, tmp_path) -> str:
    """A copy of section 0001 whose level-0 shard has its bytes overwritten in the middle."""
    copy = tmp_path / "corrupt.ome.zarr"
    shutil.copytree(folder, copy)
    shard = max((p for p in (copy / "0").rglob("*") if p.is_file() and p.name != "zarr.json"),
                key=lambda p: p.stat().st_size)
    data = bytearray(shard.read_bytes())
    mid = len(data) // 4
    data[mid:mid + 4096] = bytes(4096)
    shard.write_bytes(bytes(data))
    return str(copy)
