"""Real clients of `strata serve`: zarr-python (fsspec HTTP), tensorstore (http kvstore) and a
headless Chromium page running zarrita (cross-origin, so CORS and Range are tested for real).

One small BIDS dataset holds the same synthetic z-stack twice: sample A as an `.ome.zarr`
folder and sample B as one `.ozx` file, which the server also shows as the virtual folder
`sub-BB01_sample-B_BF.ome.zarr/`. Every client reads regions of levels 0 and 1 of both and
must get exactly the pixels that zarr-python reads from the folder image on disk.

Run: `.venv/bin/python -m pytest -q crates/strata-serve/tests/clients`

Environment:
- STRATA_BIN: the `strata` command (default: target/debug/strata of this workspace).
- STRATA_REQUIRE_PEERS=1: a missing peer (aiohttp, tensorstore, npm, Chromium, or the
  `serve` subcommand) fails the test instead of skipping it.
- STRATA_SERVE_STANDIN=/path/server.py: start `python server.py ROOT --addr 127.0.0.1:0`
  instead of `strata serve` (a stand-in with the same command line and first output line,
  for developing these tests without the real server).
- STRATA_CHROMIUM: the Chromium binary (default: chromium on PATH).
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import requests
import zarr
from zarr.storage import LocalStore

HERE = Path(__file__).resolve().parent
BROWSER = HERE / "browser"
REPO = HERE.parents[3]
REQUIRE_PEERS = os.environ.get("STRATA_REQUIRE_PEERS") == "1"
SUBJECT = "BB01"
LAYOUTS = ("folder", "ozx")
LEVELS = (0, 1)
READY_TIMEOUT_S = 30.0
BROWSER_TIMEOUT_S = 45.0

Selection = tuple[slice, ...]


# ----------------------------------------------------------------------------------------
# Helpers


def require(ok: bool, reason: str) -> None:
    """Skip the test when `ok` is false, or fail it under STRATA_REQUIRE_PEERS=1."""
    if ok:
        return
    if REQUIRE_PEERS:
        pytest.fail(f"{reason} (required: STRATA_REQUIRE_PEERS=1)")
    pytest.skip(reason)


def peer_module(name: str) -> ModuleType:
    """Import an optional Python peer, or skip/fail through `require`."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        require(False, f"Python package {name!r} is not installed: {err}")
        raise  # unreachable: require() skipped or failed


def strata_bin() -> str:
    """The `strata` command: $STRATA_BIN, else this workspace's debug build."""
    return os.environ.get("STRATA_BIN") or str(REPO / "target" / "debug" / "strata")


def run_strata(*args: str) -> dict[str, Any]:
    """Run `strata ARGS --json` and return its JSON summary."""
    out = subprocess.run(
        [strata_bin(), *args, "--json"], check=True, capture_output=True, text=True, timeout=120
    )
    return json.loads(out.stdout)


def inner_chunk_shape(array_meta: dict[str, Any]) -> tuple[int, ...]:
    """The inner chunk shape of a sharded Zarr v3 array (its chunk shape when unsharded)."""
    for codec in array_meta["codecs"]:
        if codec["name"] == "sharding_indexed":
            return tuple(codec["configuration"]["chunk_shape"])
    return tuple(array_meta["chunk_grid"]["configuration"]["chunk_shape"])


def regions(shape: tuple[int, ...], chunk: tuple[int, ...]) -> dict[str, Selection]:
    """Regions to read, from the array's shape and inner chunk shape (axes c, z, y, x):
    one whole inner chunk, a block across inner chunk borders over every plane, the
    partial edge chunks of the last rows and columns, and the whole array."""
    *lead, height, width = shape
    *_, cy, cx = chunk
    y0, x0 = min(cy // 2, height - 1), min(cx // 2, width - 1)
    return {
        "first-chunk": (*(slice(0, 1) for _ in lead), slice(0, min(cy, height)), slice(0, min(cx, width))),
        "across-borders": (
            *(slice(0, n) for n in lead),
            slice(y0, min(height, y0 + cy + 7)),
            slice(x0, min(width, x0 + 2 * cx + 3)),
        ),
        "edge": (
            *(slice(n - 1, n) for n in lead),
            slice(max(0, height - cy // 2 - 5), height),
            slice(max(0, width - cx - 3), width),
        ),
        "all": tuple(slice(0, n) for n in shape),
    }


def describe(selection: Selection) -> str:
    """`[0:1, 0:3, 64:199, ...]` for assertion messages."""
    return "[" + ", ".join(f"{s.start}:{s.stop}" for s in selection) + "]"


def assert_pixels(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Exact equality of dtype, shape and every pixel, with a short diagnosis."""
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}, expected {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    bad = np.argwhere(actual != expected)
    assert bad.size == 0, (
        f"{what}: {len(bad)} of {expected.size} pixels differ; first at {tuple(bad[0])}: "
        f"{actual[tuple(bad[0])]} != {expected[tuple(bad[0])]}"
    )


def header_tokens(value: str | None) -> set[str]:
    """The lower-case comma-separated tokens of a header value."""
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


# ----------------------------------------------------------------------------------------
# Dataset and server fixtures


@dataclass(frozen=True)
class Level:
    """One pyramid level: its array path, reference pixels and regions to read."""

    index: int
    path: str
    reference: np.ndarray
    regions: dict[str, Selection]


@dataclass(frozen=True)
class Dataset:
    """The BIDS dataset on disk and where its two images are."""

    root: Path
    images: dict[str, str]  # layout -> URL path of the `.ome.zarr/` folder (real or virtual)
    files: dict[str, Path]  # layout -> the `.ome.zarr` folder or the `.ozx` file on disk
    levels: dict[int, Level]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """One z-stack converted twice into one BIDS dataset (folder and .ozx layouts), and the
    reference pixels of levels 0 and 1, read from the folder image on disk."""
    binary = strata_bin()
    require(Path(binary).exists() or shutil.which(binary) is not None, f"no strata binary at {binary}")
    work = tmp_path_factory.mktemp("serve-clients")
    zstack = work / "zstack"
    root = work / "bids"
    # 1000 x 700 with 128-pixel inner chunks: partial edge chunks on both axes; one plane per
    # shard: a region over all planes reads three shard files.
    run_strata("sample", str(zstack), "--size", "1000x700", "--planes", "3")
    files: dict[str, Path] = {}
    for layout, sample, flag in (("folder", "A", "zarr"), ("ozx", "B", "ozx")):
        summary = run_strata(
            "convert", str(zstack), "--bids-root", str(root), "--subject", SUBJECT,
            "--sample", sample, "--layout", flag, "--chunk", "128", "--planes-per-shard", "1",
        )  # fmt: skip
        files[layout] = Path(summary["output"]).resolve()
    images: dict[str, str] = {}
    for layout, path in files.items():
        rel = path.relative_to(root.resolve()).as_posix()
        if layout == "ozx":
            assert rel.endswith(".ozx"), f"ozx layout wrote {rel}"
            rel = rel[: -len(".ozx")] + ".ome.zarr"
        images[layout] = "/" + rel + "/"

    local = LocalStore(files["folder"], read_only=True)
    group = zarr.open_group(store=local, mode="r", zarr_format=3)
    datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
    levels: dict[int, Level] = {}
    for index in LEVELS:
        path = datasets[index]["path"]
        array = group[path]
        assert isinstance(array, zarr.Array), f"level {path} of the folder image is not an array"
        meta = json.loads((files["folder"] / path / "zarr.json").read_text())
        levels[index] = Level(index, path, array[...], regions(array.shape, inner_chunk_shape(meta)))
    return Dataset(root.resolve(), images, files, levels)


def server_command(root: Path) -> list[str]:
    """`strata serve ROOT --addr 127.0.0.1:0`, or the stand-in of STRATA_SERVE_STANDIN."""
    standin = os.environ.get("STRATA_SERVE_STANDIN")
    if standin:
        return [sys.executable, standin, str(root), "--addr", "127.0.0.1:0"]
    binary = strata_bin()
    probe = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=30)
    require(probe.returncode == 0, f"`{binary} serve` is not available: {probe.stderr.strip()[:300]}")
    return [binary, "serve", str(root), "--addr", "127.0.0.1:0"]


@pytest.fixture(scope="module")
def server(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the server on a free loopback port; yield its base URL (ending in `/`);
    stop it with SIGTERM at the end of the module."""
    command = server_command(dataset.root)
    log = tmp_path_factory.mktemp("serve-log") / "stderr.txt"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # keeps reading stdout so that the server never blocks on it
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)  # end of output: the server exited

    threading.Thread(target=pump, daemon=True).start()
    try:
        try:
            first = lines.get(timeout=READY_TIMEOUT_S)
        except queue.Empty:
            first = ""
        if not first:
            tail = log.read_text()[-2000:]
            pytest.fail(f"{command} printed no ready line ({proc.poll()=}); stderr: {tail}")
        assert first.startswith("serving "), f"first line of the server: {first!r}"
        match = re.search(r"http://\S+", first)
        assert match, f"no URL in the server's first line {first!r}"
        url = match.group(0)
        yield url if url.endswith("/") else url + "/"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"{command} did not stop within 10 s of SIGTERM")
    assert code in (0, -signal.SIGTERM, 128 + signal.SIGTERM), (
        f"server exited with {code} on SIGTERM; stderr: {log.read_text()[-2000:]}"
    )


def image_url(server: str, dataset: Dataset, layout: str) -> str:
    """The HTTP URL of an image folder (ends with `/`)."""
    return server + dataset.images[layout].lstrip("/")


def shard_bytes(dataset: Dataset, layout: str, key: str) -> bytes:
    """The bytes of a file of an image (e.g. `0/c.0.0.0.0`) from disk: the folder's file, or
    the member of the `.ozx` zip."""
    path = dataset.files[layout]
    if layout == "folder":
        return (path / key).read_bytes()
    with zipfile.ZipFile(path) as zf:
        return zf.read(key)


def first_shard_key(dataset: Dataset, level: int) -> str:
    """The key of the first shard of a level, in the array's chunk key encoding."""
    path = dataset.levels[level].path
    meta = json.loads((dataset.files["folder"] / path / "zarr.json").read_text())
    encoding = meta["chunk_key_encoding"]
    sep = encoding.get("configuration", {}).get("separator", "/")
    zeros = sep.join("0" for _ in meta["shape"])
    name = f"c{sep}{zeros}" if encoding["name"] == "default" else zeros
    return f"{path}/{name}"


# ----------------------------------------------------------------------------------------
# The HTTP contract, as the clients below rely on it


def test_layouts_hold_the_same_pixels(dataset: Dataset) -> None:
    """Precondition of the comparisons below: the `.ozx` file, read from disk, holds the
    reference pixels of the folder image."""
    from zarr.storage import ZipStore

    store = ZipStore(dataset.files["ozx"], mode="r")
    try:
        for ref in dataset.levels.values():
            array = zarr.open_array(store=store, path=ref.path, mode="r", zarr_format=3)
            assert_pixels(array[...], ref.reference, f"{dataset.files['ozx']} level {ref.path} on disk")
    finally:
        store.close()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_ranges_of_a_shard(server: str, dataset: Dataset, layout: str) -> None:
    """GET without Range, `bytes=a-b`, `bytes=a-`, `bytes=-N`, and HEAD, of one shard file."""
    key = first_shard_key(dataset, 0)
    body = shard_bytes(dataset, layout, key)
    url = image_url(server, dataset, layout) + key
    size = len(body)

    full = requests.get(url, timeout=30)
    assert full.status_code == 200, f"GET {url}: {full.status_code} {dict(full.headers)}"
    assert full.content == body, f"GET {url}: {len(full.content)} bytes differ from the file's {size}"
    assert full.headers.get("ETag"), f"GET {url}: no ETag"

    head = requests.head(url, timeout=30)
    assert head.status_code == 200, f"HEAD {url}: {head.status_code}"
    length = head.headers.get("Content-Length")
    assert length == str(size), f"HEAD {url}: Content-Length {length}, expected {size}"
    assert head.content == b"", f"HEAD {url}: has a body"

    for header, start, end in (
        ("bytes=10-99", 10, 99),
        (f"bytes={size - 50}-", size - 50, size - 1),
        ("bytes=-68", size - 68, size - 1),
        (f"bytes=0-{size + 1000}", 0, size - 1),
    ):
        part = requests.get(url, headers={"Range": header}, timeout=30)
        what = f"GET {url} Range: {header}"
        assert part.status_code == 206, f"{what}: {part.status_code} {dict(part.headers)}"
        content_range = part.headers.get("Content-Range")
        assert content_range == f"bytes {start}-{end}/{size}", f"{what}: Content-Range {content_range!r}"
        assert part.content == body[start : end + 1], f"{what}: wrong bytes ({len(part.content)} bytes)"

    beyond = requests.get(url, headers={"Range": f"bytes={size}-"}, timeout=30)
    assert beyond.status_code == 416, f"GET {url} Range: bytes={size}-: {beyond.status_code}, expected 416"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_virtual_view_metadata(server: str, dataset: Dataset, layout: str) -> None:
    """The image's `zarr.json` and a level's `zarr.json` are served byte for byte."""
    for key in ("zarr.json", f"{dataset.levels[0].path}/zarr.json"):
        url = image_url(server, dataset, layout) + key
        reply = requests.get(url, timeout=30)
        assert reply.status_code == 200, f"GET {url}: {reply.status_code}"
        assert reply.content == shard_bytes(dataset, layout, key), f"GET {url}: body differs from the file"


def test_cors(server: str, dataset: Dataset) -> None:
    """A cross-origin GET is allowed and exposes the headers a Range reader needs, and the
    preflight of a Range request (a suffix range is not CORS-safelisted) is answered."""
    url = image_url(server, dataset, "ozx") + first_shard_key(dataset, 0)
    origin = "http://127.0.0.1:9"
    reply = requests.get(url, headers={"Origin": origin, "Range": "bytes=-20"}, timeout=30)
    assert reply.status_code == 206, f"GET {url}: {reply.status_code}"
    allow_origin = reply.headers.get("Access-Control-Allow-Origin")
    assert allow_origin == "*", f"GET {url} from {origin}: Access-Control-Allow-Origin {allow_origin!r}"
    exposed = header_tokens(reply.headers.get("Access-Control-Expose-Headers"))
    missing = {"content-range", "content-length", "etag"} - exposed
    assert "*" in exposed or not missing, f"Access-Control-Expose-Headers lacks {sorted(missing)}: {exposed}"

    preflight = requests.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range",
        },
        timeout=30,
    )
    assert preflight.status_code in (200, 204), f"OPTIONS {url}: {preflight.status_code}"
    assert preflight.headers.get("Access-Control-Allow-Origin") == "*", "preflight: no Allow-Origin *"
    allowed = header_tokens(preflight.headers.get("Access-Control-Allow-Headers"))
    assert "range" in allowed or "*" in allowed, f"preflight: Allow-Headers {allowed} does not allow Range"
    methods = header_tokens(preflight.headers.get("Access-Control-Allow-Methods"))
    assert not methods or "get" in methods or "*" in methods, f"preflight: Allow-Methods {methods}"


def test_listing(server: str, dataset: Dataset) -> None:
    """`?list` and `Accept: application/json` list a folder as JSON naming both images by
    their `.ome.zarr` folders (the `.ozx` file by its virtual view or its own name)."""
    micr = f"{server}sub-{SUBJECT}/micr/"
    names = {dataset.images[layout].rstrip("/").rsplit("/", 1)[-1] for layout in LAYOUTS}
    for what, reply in (
        ("?list", requests.get(micr + "?list", timeout=30)),
        ("Accept: application/json", requests.get(micr, headers={"Accept": "application/json"}, timeout=30)),
    ):
        assert reply.status_code == 200, f"GET {micr} ({what}): {reply.status_code}"
        listing = reply.json()
        text = json.dumps(listing)
        for name in names:
            assert name in text, f"listing of {micr} ({what}) does not name {name}: {text[:500]}"


def test_not_found_and_no_escape(server: str, dataset: Dataset) -> None:
    """A missing file is 404, and `..` cannot reach files beside the dataset root."""
    (dataset.root.parent / "secret.txt").write_text("outside the dataset\n")
    missing = requests.get(image_url(server, dataset, "ozx") + "nope/zarr.json", timeout=30)
    assert missing.status_code == 404, f"missing member of the .ozx view: {missing.status_code}"
    for path in ("%2e%2e/secret.txt", "sub-BB01/%2e%2e/%2e%2e/secret.txt", "..%2fsecret.txt"):
        reply = requests.get(server + path, timeout=30)
        assert reply.status_code in (400, 403, 404), f"GET /{path}: {reply.status_code}"
        assert b"outside the dataset" not in reply.content, f"GET /{path} leaked a file outside the root"


# ----------------------------------------------------------------------------------------
# zarr-python over fsspec HTTP


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_zarr_python(server: str, dataset: Dataset, layout: str, level: int) -> None:
    """zarr-python 3 opens the image group over HTTP and reads exact regions of a level."""
    peer_module("aiohttp")  # fsspec's HTTP filesystem
    from zarr.storage import FsspecStore

    url = image_url(server, dataset, layout)
    store = FsspecStore.from_url(url, read_only=True)
    group = zarr.open_group(store=store, mode="r", zarr_format=3)
    multiscales = group.attrs["ome"]["multiscales"][0]
    ref = dataset.levels[level]
    assert multiscales["datasets"][level]["path"] == ref.path, f"{url}: level {level} path differs"
    array = zarr.open_array(store=store, path=ref.path, mode="r", zarr_format=3)
    assert array.shape == ref.reference.shape, f"{url}{ref.path}: shape {array.shape}"
    for name, selection in ref.regions.items():
        what = f"zarr-python {url}{ref.path} {name} {describe(selection)}"
        assert_pixels(array[selection], ref.reference[selection], what)


# ----------------------------------------------------------------------------------------
# tensorstore over its http kvstore


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_tensorstore(server: str, dataset: Dataset, layout: str, level: int) -> None:
    """tensorstore's zarr3 driver on the http kvstore reads exact regions of a level."""
    ts = peer_module("tensorstore")
    url = image_url(server, dataset, layout)
    ref = dataset.levels[level]
    spec = {
        "driver": "zarr3",
        "kvstore": {"driver": "http", "base_url": url, "path": ref.path + "/"},
        "context": {"cache_pool": {"total_bytes_limit": 0}},
    }
    array = ts.open(spec, read=True, open=True).result()
    assert tuple(array.shape) == ref.reference.shape, f"{url}{ref.path}: shape {array.shape}"
    for name, selection in ref.regions.items():
        what = f"tensorstore {url}{ref.path} {name} {describe(selection)}"
        assert_pixels(np.asarray(array[selection].read().result()), ref.reference[selection], what)


# ----------------------------------------------------------------------------------------
# A browser: headless Chromium, zarrita, another origin


def pinned_versions() -> dict[str, str]:
    """The exact versions package.json pins (dependencies and devDependencies)."""
    package = json.loads((BROWSER / "package.json").read_text())
    return {**package.get("dependencies", {}), **package.get("devDependencies", {})}


def installed_version(name: str) -> str | None:
    """The version of an npm package in browser/node_modules, if installed."""
    manifest = BROWSER / "node_modules" / name / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


@pytest.fixture(scope="module")
def page_bundle() -> Path:
    """browser/build/: index.html and bundle.js (page.js and zarrita, bundled by esbuild);
    `npm ci` first when node_modules does not hold the pinned versions."""
    npm = shutil.which("npm")
    require(npm is not None and shutil.which("node") is not None, "node/npm not found on PATH")
    assert npm is not None
    if any(installed_version(name) != version for name, version in pinned_versions().items()):
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=BROWSER, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    build = BROWSER / "build"
    build.mkdir(exist_ok=True)
    esbuild = BROWSER / "node_modules" / ".bin" / "esbuild"
    done = subprocess.run(
        [str(esbuild), "page.js", "--bundle", "--format=esm", "--outfile=build/bundle.js",
         "--log-level=warning"],
        cwd=BROWSER, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, f"esbuild failed:\n{done.stderr[-3000:]}"
    shutil.copy(BROWSER / "index.html", build / "index.html")
    return build


class PageServer(ThreadingHTTPServer):
    """Serves the page folder on its own origin and collects the pages' POSTed results."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.results: dict[str, queue.Queue[str]] = {}
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), PageHandler)
        self.daemon_threads = True

    def inbox(self, token: str) -> queue.Queue[str]:
        """The queue that receives the result of the page run with `token`."""
        with self.lock:
            return self.results.setdefault(token, queue.Queue())


class PageHandler(SimpleHTTPRequestHandler):
    """GET: the page's files; POST /result?token=...: a page's result."""

    server: PageServer

    def __init__(self, request: Any, client_address: Any, server: PageServer) -> None:
        super().__init__(request, client_address, server, directory=str(server.folder))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        token = urllib.parse.parse_qs(url.query).get("token", [""])[0]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if url.path == "/result" and token:
            self.server.inbox(token).put(body)


@pytest.fixture(scope="module")
def page_origin(page_bundle: Path) -> Iterator[tuple[str, PageServer]]:
    """The test page on its own origin (a second loopback port): (base URL, server)."""
    pages = PageServer(page_bundle)
    thread = threading.Thread(target=pages.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{pages.server_address[1]}/", pages
    finally:
        pages.shutdown()
        pages.server_close()


def chromium_binary() -> str:
    """Chromium: $STRATA_CHROMIUM, else the first of chromium, chromium-browser on PATH."""
    env = os.environ.get("STRATA_CHROMIUM")
    if env:
        require(Path(env).exists() or shutil.which(env) is not None, f"STRATA_CHROMIUM={env} not found")
        return env
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    require(False, "Chromium not found (chromium on PATH or STRATA_CHROMIUM)")
    raise AssertionError("unreachable")


def run_page(page_url: str, pages: PageServer, token: str, profile: Path) -> dict[str, Any]:
    """Open the page in headless Chromium and return the result it POSTs back."""
    command = [
        chromium_binary(),
        "--headless",
        "--no-sandbox",  # the tests run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
        page_url,
    ]
    log = profile.with_suffix(".log")
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        body = pages.inbox(token).get(timeout=BROWSER_TIMEOUT_S)
    except queue.Empty:
        tail = log.read_text()[-3000:]
        pytest.fail(f"the page posted no result in {BROWSER_TIMEOUT_S} s: {page_url}\nChromium: {tail}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # Chromium and the children it started
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return json.loads(body)


@pytest.mark.parametrize(
    ("layout", "suffix"),
    [("folder", True), ("folder", False), ("ozx", True), ("ozx", False)],
    ids=["folder-suffix-range", "folder-head-range", "ozx-suffix-range", "ozx-head-range"],
)
def test_browser_zarrita(
    server: str,
    dataset: Dataset,
    page_origin: tuple[str, PageServer],
    tmp_path: Path,
    layout: str,
    suffix: bool,
) -> None:
    """Chromium on another origin reads a level-0 region across inner chunk borders and
    shards with zarrita's FetchStore (crc32c of the shard indexes verified in the page), and
    sees a missing key as a 404 (CORS headers on errors too)."""
    chromium_binary()
    base, pages = page_origin
    ref = dataset.levels[0]
    selection = ref.regions["across-borders"]
    token = f"{layout}-{int(suffix)}"
    query = urllib.parse.urlencode(
        {
            "image": image_url(server, dataset, layout),
            "level": str(ref.index),
            "region": json.dumps([[s.start, s.stop] for s in selection]),
            "suffix": "1" if suffix else "0",
            "token": token,
        }
    )
    result = run_page(f"{base}index.html?{query}", pages, token, tmp_path / "chromium-profile")
    mode = "suffix" if suffix else "HEAD +"
    what = f"zarrita in Chromium, {layout} image, {mode} ranges, level 0 {describe(selection)}"
    assert result.get("status") == "ok", f"{what}: {result.get('error', result)}"
    expected = ref.reference[selection]
    assert result["dtype"] == str(expected.dtype), f"{what}: dtype {result['dtype']}"
    actual = np.asarray(result["data"], dtype=expected.dtype).reshape(result["shape"])
    assert_pixels(actual, expected, what)

    assert result["missingKeyIsAbsent"] is True, f"{what}: a missing key was not a readable 404"
    fetches = result["requests"]
    ranged = [r for r in fetches if r["range"]]
    assert ranged, f"{what}: no Range request was made: {fetches}"
    assert any(r["status"] == 404 for r in fetches), f"{what}: the missing key was not a 404: {fetches}"
    for r in ranged:
        assert r["status"] == 206, f"{what}: {r['method']} {r['url']} Range: {r['range']}: {r['status']}"
        assert r["contentRange"], f"{what}: Content-Range not readable (not exposed by CORS?) for {r}"
    if suffix:
        assert any(r["range"].startswith("bytes=-") for r in ranged), f"{what}: no suffix range: {ranged}"
    else:
        heads = [r for r in fetches if r["method"] == "HEAD" and r["status"] == 200]
        assert heads, f"{what}: no successful HEAD: {fetches}"
