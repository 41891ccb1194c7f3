"""`PatchDataset`: training patches as an iterable dataset for PyTorch's ``DataLoader``."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

from ._strata import PatchSampler, bids_images

try:  # torch is optional: without it the dataset is a plain iterable.
    import torch.utils.data as _torch_data

    _Base: Any = _torch_data.IterableDataset
except ImportError:  # pragma: no cover - exercised where torch is absent
    _torch_data = None
    _Base = object

PathLike = Union[str, "os.PathLike[str]"]


def _distributed() -> "tuple[int, int]":
    """This process's (rank, world size) under ``torch.distributed``, else (0, 1)."""
    if _torch_data is not None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    return 0, 1


class PatchDataset(_Base):  # type: ignore[misc]
    """Patches of a set of images, one epoch per iteration.

    Each item is ``(patch, where)``: ``patch`` a numpy array of shape ``(c, h, w)`` in the
    image's dtype (after ``transform``, if given), ``where`` a dict with ``image`` (the index
    into :attr:`paths`), ``path``, ``level``, ``z``, ``y`` and ``x``, so results map back to
    the section. ``DataLoader``'s default collation turns both into batched tensors/lists.

    The positions are a pure function of ``seed`` and the epoch (:meth:`set_epoch`), split
    without overlap across ranks (``rank``/``world_size``, by default from
    ``torch.distributed`` when it is initialised) and across the loader's worker processes
    (``torch.utils.data.get_worker_info()``): every worker reads its own share, so
    ``DataLoader(dataset, num_workers=N)`` yields each patch of the epoch exactly once.

    Nothing is opened until iteration starts: each worker process opens the images and
    computes the tissue masks itself (state made before ``fork`` is not shared).

    Args:
        images: image locations (``.ome.zarr`` folders, ``.ozx`` files, ``s3://`` URLs), or
            a BIDS dataset root (a folder or ``s3://bucket/prefix``) with
            ``subject``/``session``/``sample``/``stain`` selecting
            its images (see :func:`strata.bids_images`).
        size: patch ``(height, width)`` in pixels of ``level``.
        level: pyramid level patches are read from.
        per_epoch: patches per epoch over all ranks and workers (random positions).
        grid: every patch of a regular grid once per epoch instead of random positions.
        tissue_only: only patches centred on tissue (Otsu's threshold on the lowest level).
        seed: seed of the positions.
        rank, world_size: distributed training (default: from ``torch.distributed``).
        prefetch: patches read ahead per worker.
        cache_bytes: decoded-chunk cache per image, in bytes (0: none).
        transform: applied to each patch array before it is yielded.
    """

    def __init__(
        self,
        images: Union[PathLike, Sequence[PathLike]],
        size: "tuple[int, int]",
        *,
        subject: Union[str, List[str], None] = None,
        session: Union[str, List[str], None] = None,
        sample: Union[str, List[str], None] = None,
        stain: Union[str, List[str], None] = None,
        level: int = 0,
        per_epoch: int = 1024,
        grid: bool = False,
        tissue_only: bool = True,
        seed: int = 0,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        prefetch: int = 8,
        cache_bytes: int = 0,
        transform: Optional[Callable[[Any], Any]] = None,
    ) -> None:
        if isinstance(images, (str, os.PathLike)):
            self.paths: List[str] = bids_images(
                images, subject=subject, session=session, sample=sample, stain=stain
            )
            if not self.paths:
                raise ValueError(
                    f"{os.fspath(images)}: no OME-Zarr image matches the selection "
                    f"(subject={subject!r}, session={session!r}, sample={sample!r}, stain={stain!r})"
                )
        else:
            self.paths = [os.fspath(p) for p in images]
            if not self.paths:
                raise ValueError("PatchDataset needs at least one image")
        if rank is None or world_size is None:
            rank, world_size = _distributed()
        self.size = (int(size[0]), int(size[1]))
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.transform = transform
        self._options: Dict[str, Any] = dict(
            level=level,
            per_epoch=per_epoch,
            grid=grid,
            tissue_only=tissue_only,
            seed=seed,
            rank=rank,
            world_size=world_size,
            prefetch=prefetch,
            cache_bytes=cache_bytes,
        )
        self._sampler: Optional[PatchSampler] = None
        self._sampler_pid: Optional[int] = None

    def set_epoch(self, epoch: int) -> None:
        """Selects the epoch the next iteration yields (as ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    @property
    def sampler(self) -> PatchSampler:
        """The sampler of this process, opened on first use."""
        if self._sampler is None or self._sampler_pid != os.getpid():
            self._sampler = PatchSampler(self.paths, self.size, **self._options)
            self._sampler_pid = os.getpid()
        return self._sampler

    def __getstate__(self) -> Dict[str, Any]:
        # Workers started by spawn/forkserver get the parameters, never the open sampler.
        state = self.__dict__.copy()
        state["_sampler"] = None
        state["_sampler_pid"] = None
        return state

    def __iter__(self) -> Iterator["tuple[Any, Dict[str, Any]]"]:
        worker, workers = 0, 1
        if _torch_data is not None:
            info = _torch_data.get_worker_info()
            if info is not None:
                worker, workers = info.id, info.num_workers
        for patch, at in self.sampler.iter(self.epoch, worker, workers):
            if self.transform is not None:
                patch = self.transform(patch)
            yield patch, {
                "image": at.image,
                "path": self.paths[at.image],
                "level": at.level,
                "z": at.z,
                "y": at.y,
                "x": at.x,
            }
