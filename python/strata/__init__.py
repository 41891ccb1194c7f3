"""Read Strata's BIDS microscopy / OME-Zarr repositories from Python.

Open an image wherever it lives (an ``.ome.zarr`` folder, a single-file ``.ozx`` archive, an
``s3://bucket/prefix/x.ome.zarr`` prefix or ``.ozx`` key) and read regions of its pyramid
levels as numpy arrays, with the GIL released while the chunks are decoded in parallel::

    import strata

    img = strata.open("sub-01/micr/sub-01_sample-A_BF.ome.zarr")
    img.levels[0].shape                      # (c, z, y, x)
    tile = img.read(0, z=12, y=slice(0, 512), x=slice(1024, 1536))   # (c, 512, 512)

For training, :class:`PatchSampler` draws patches on tissue (or on a grid), deterministic for
a seed and split across ranks and loader workers, and :class:`PatchDataset` wraps it as a
``torch.utils.data.IterableDataset`` (plain iteration without torch).

Errors are :class:`RequestError` (a ``ValueError``: a level, region or location the image
cannot answer) and :class:`DataError` (an ``OSError``: missing, corrupt or inconsistent data),
each with ``image``, ``level`` and ``chunk`` attributes.
"""

from ._strata import (
    DataError,
    Image,
    Level,
    PatchAt,
    PatchIter,
    PatchSampler,
    RequestError,
    __version__,
    bids_images,
    open,
)
from .dataset import PatchDataset

__all__ = [
    "DataError",
    "Image",
    "Level",
    "PatchAt",
    "PatchDataset",
    "PatchIter",
    "PatchSampler",
    "RequestError",
    "__version__",
    "bids_images",
    "open",
]
