"""Type stubs of the extension module ``strata._strata`` (built from ``python/src/lib.rs``)."""

import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, "os.PathLike[str]"]
_Labels = Union[str, List[str], None]

class RequestError(ValueError):
    """A level the image does not have, a region outside a level or over the size limit, a
    location that cannot be opened."""

    image: str
    level: Optional[int]
    chunk: Optional[List[int]]

class DataError(OSError):
    """Missing or unreadable objects, malformed or inconsistent metadata, a corrupt or
    truncated chunk or shard index."""

    image: str
    level: Optional[int]
    chunk: Optional[List[int]]

class Level:
    """One pyramid level."""

    path: str
    """The array's path inside the image ("0", "1", ...)."""
    shape: List[int]
    """Extent of each axis, in the image's axis order (c, z, y, x for Strata images)."""
    dtype: str
    """numpy dtype name ("uint8", "uint16", ...)."""
    shard_shape: List[int]
    """Shape of a shard."""
    chunk_shape: List[int]
    """Shape of an inner chunk, the unit of decoding."""
    scale: List[float]
    """Physical pixel size along each axis."""
    translation: List[float]
    """Physical position of the first pixel."""

class Image:
    """An OME-Zarr image opened for reading. Safe to share between threads."""

    @property
    def name(self) -> str:
        """The location, as used in messages."""
    @property
    def levels(self) -> List[Level]:
        """Every level, highest resolution first."""
    @property
    def axes(self) -> List[Dict[str, Any]]:
        """The NGFF axes: dicts with ``name``, ``type`` and ``unit``."""
    @property
    def planes(self) -> int:
        """Number of focus planes (the ``z`` extent)."""
    @property
    def channels(self) -> int:
        """Number of channels (the ``c`` extent)."""
    @property
    def pixel_size(self) -> Optional[List[float]]:
        """The BIDS sidecar's ``PixelSize`` (x, y, z), or None without a sidecar."""
    @property
    def sidecar(self) -> Optional[Dict[str, Any]]:
        """The BIDS sidecar, or None."""
    @property
    def provenance(self) -> Optional[Dict[str, Any]]:
        """The conversion's provenance (sources with SHA-256, parameters, versions, times)."""
    @property
    def cached_bytes(self) -> int:
        """Bytes of decoded chunks held by the cache now."""
    def read(
        self, level: int = 0, **axes: Union[int, slice, None]
    ) -> npt.NDArray[Any]:
        """Reads a region of ``level`` as a new C-ordered numpy array.

        Select each axis by its name: an int picks one index and drops the axis, a slice
        (step 1; negative bounds count from the end) keeps it, None or absent reads it
        whole. ``img.read(0, z=3, y=slice(0, 512), x=slice(512, 1024))`` is a
        ``(c, 512, 512)`` array. The GIL is released while the chunks are read and decoded
        in parallel.

        Raises:
            RequestError: no such level or axis, a region outside the level, over the limit.
            DataError: a chunk or shard index that cannot be read or decoded.
        """

def open(
    location: _Path, *, cache_bytes: int = 0, max_region_bytes: Optional[int] = None
) -> Image:
    """Opens an image: an ``.ome.zarr`` folder, an ``.ozx`` file (or ``zip:///path``), or
    ``s3://bucket/key`` (endpoint and credentials from ``STRATA_S3_ENDPOINT``/
    ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...).

    Args:
        cache_bytes: budget of the decoded-chunk LRU cache (0: no cache).
        max_region_bytes: largest region one ``read`` may return (default 1 GiB).

    Raises:
        RequestError: a location that cannot be opened.
        DataError: missing or malformed metadata, unreadable objects.
    """

def bids_images(
    root: _Path,
    *,
    subject: _Labels = None,
    session: _Labels = None,
    sample: _Labels = None,
    stain: _Labels = None,
) -> List[str]:
    """The OME-Zarr images (folders and ``.ozx`` archives) of the BIDS dataset at ``root`` (a
    folder or ``s3://bucket/prefix``) whose entities match (each a label, a list of labels, or
    None for all), in path order, as locations ``open`` takes.

    Raises:
        RequestError: ``root`` is not a BIDS dataset.
    """

class PatchAt:
    """Where a patch was read: image index, level, plane and top-left corner."""

    image: int
    level: int
    z: int
    y: int
    x: int
    def __init__(self, image: int, level: int, z: int, y: int, x: int) -> None: ...

class PatchIter(Iterator[Tuple[npt.NDArray[Any], PatchAt]]):
    """Patches read ahead by a background thread."""

    def __iter__(self) -> "PatchIter": ...
    def __next__(self) -> Tuple[npt.NDArray[Any], PatchAt]: ...

class PatchSampler:
    """Patches of ``size`` from a set of images: random positions (on tissue by default) or
    a regular grid, deterministic for ``seed`` and the epoch, split across ranks and loader
    workers without overlap.

    Args:
        images: opened images or locations.
        size: patch ``(height, width)``.
        level: the level patches are read from.
        per_epoch: random patches per epoch over all ranks and workers.
        grid: every grid patch once per epoch (shuffled) instead of random positions.
        tissue_only: only patches centred on tissue (Otsu on the mask level).
        seed: seed of the positions.
        rank, world_size: this process's share in distributed training.
        prefetch: patches read ahead by ``iter``.
        mask_level: level of the tissue mask (default: the lowest).
        cache_bytes: decoded-chunk cache of images opened from locations.
    """

    def __init__(
        self,
        images: Sequence[Union[Image, _Path]],
        size: Tuple[int, int],
        *,
        level: int = 0,
        per_epoch: int = 1024,
        grid: bool = False,
        tissue_only: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        prefetch: int = 8,
        mask_level: Optional[int] = None,
        cache_bytes: int = 0,
    ) -> None: ...
    @property
    def images(self) -> List[Image]:
        """The images, in the order ``PatchAt.image`` counts."""
    def tissue_fractions(self) -> List[float]:
        """Fraction of each image's mask pixels that are tissue (1.0 without a mask)."""
    def positions(self, epoch: int = 0, worker: int = 0, workers: int = 1) -> List[PatchAt]:
        """The positions of ``epoch`` for loader worker ``worker`` of ``workers``."""
    def read(self, at: PatchAt) -> npt.NDArray[Any]:
        """The ``(c, h, w)`` patch at ``at``."""
    def iter(self, epoch: int = 0, worker: int = 0, workers: int = 1) -> PatchIter:
        """The patches of ``positions(epoch, worker, workers)``, read ahead."""
