"""Slice rendering and volume encodings for the viewer, the editor and outside clients.

The hot path (thumbnails, review strips, the editor scrolling through slices) must be fast:

* volumes are memory-mapped ``.npy`` files (``storage.read_array(mmap=True)``), kept open in a
  small per-process LRU, so a slice costs one page-cache read and no decoding;
* windowing is plain numpy on one slice; PNG uses zlib level 1 (a 256 x 256 slice encodes in
  well under a millisecond and is barely larger than at level 6);
* encoded PNGs are kept in a byte-bounded LRU keyed by the volume's SHA-256: a volume never
  changes after ingestion, so a cached image can never be stale.

The raw formats (``volume.raw`` / ``slices/{z}.raw``) are the voxel values themselves,
little-endian, C order, as int16 when every value is an integer in the int16 range and as
float32 otherwise; their geometry travels in response headers (see ``cases.apis.series``).
"""

from __future__ import annotations

import gzip
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from PIL import Image

from cases import storage
from cases.models import Series, Volume
from cases.orientation import to_display

_INT16_MIN, _INT16_MAX = -32768, 32767

#: How many volumes stay memory-mapped per process (an open map costs a file descriptor and
#: address space, not memory: pages are the kernel's page cache).
VOLUME_CACHE_SIZE = 32
#: Byte budget of the encoded-PNG cache per process.
PNG_CACHE_BYTES = 64 * 1024 * 1024
#: Largest thumbnail edge a client may ask for.
MAX_THUMBNAIL = 1024


@dataclass(frozen=True)
class VolumeHandle:
    """An opened volume: the (memory-mapped) array and the dtype its raw form uses."""

    array: np.ndarray
    raw_dtype: np.dtype
    sha256: str


class _Lru:
    """A tiny thread-safe LRU with an optional byte budget (values must then be bytes)."""

    def __init__(self, *, max_items: int = 0, max_bytes: int = 0) -> None:
        self._data: OrderedDict[object, object] = OrderedDict()
        self._lock = threading.Lock()
        self._bytes = 0
        self.max_items = max_items
        self.max_bytes = max_bytes

    def get(self, key: object) -> object | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: object, value: object) -> None:
        size = len(value) if self.max_bytes and isinstance(value, bytes) else 0
        if self.max_bytes and size > self.max_bytes // 4:
            return  # one huge item must not flush everything else
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None and self.max_bytes and isinstance(old, bytes):
                self._bytes -= len(old)
            self._data[key] = value
            self._bytes += size
            while (self.max_items and len(self._data) > self.max_items) or (
                self.max_bytes and self._bytes > self.max_bytes
            ):
                _, evicted = self._data.popitem(last=False)
                if self.max_bytes and isinstance(evicted, bytes):
                    self._bytes -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0


_volumes = _Lru(max_items=VOLUME_CACHE_SIZE)
_pngs = _Lru(max_bytes=PNG_CACHE_BYTES)


def caches_clear() -> None:
    """Forgets every opened volume and encoded image (tests, after deletions)."""
    _volumes.clear()
    _pngs.clear()


def raw_dtype_for(array: np.ndarray, volume: Volume) -> np.dtype:
    """int16 when every voxel is an integer in the int16 range, float32 otherwise.

    int16 halves the bytes of the editor's download and is what DICOM MR stores; float data
    (ADC maps in mm²/s, rescaled values) stay float32 so no precision is thrown away.
    """
    in_range = volume.min_value >= _INT16_MIN and volume.max_value <= _INT16_MAX
    if not in_range:
        return np.dtype("<f4")
    if array.dtype.kind in "iub":
        return np.dtype("<i2")
    # Float volumes holding whole numbers only (e.g. rescaled integer DICOM) still fit int16.
    for z in range(array.shape[0]):
        plane = np.asarray(array[z])
        if not np.array_equal(plane, np.round(plane)):
            return np.dtype("<f4")
    return np.dtype("<i2")


def volume_open(series: Series) -> VolumeHandle:
    """The series' volume, memory-mapped on local disk and kept in the per-process LRU."""
    volume = series.volume
    cached = _volumes.get(volume.key)
    if isinstance(cached, VolumeHandle) and cached.sha256 == volume.sha256:
        return cached
    array = storage.read_array(volume.key, mmap=True)
    handle = VolumeHandle(array=array, raw_dtype=raw_dtype_for(array, volume), sha256=volume.sha256)
    _volumes.put(volume.key, handle)
    return handle


def window_to_uint8(plane: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear window/level (DICOM's VOI LUT idea): ``center ± width/2`` maps onto 0..255."""
    width = max(float(width), 1e-6)
    low = float(center) - width / 2.0
    scaled = (np.asarray(plane, dtype=np.float32) - np.float32(low)) * np.float32(255.0 / width)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return (scaled + 0.5).astype(np.uint8)


def _png_key(
    series: Series, z: int, center: float, width: float, size: int | None
) -> tuple[object, ...]:
    d = series.display
    return (
        series.volume.sha256,
        z,
        round(float(center), 4),
        round(float(width), 4),
        size or 0,
        (d.rotation, d.hflip, d.vflip),
    )


def slice_png(
    series: Series,
    z: int,
    *,
    center: float | None = None,
    width: float | None = None,
    size: int | None = None,
) -> bytes:
    """One axial slice, windowed to 8 bits, as PNG.

    Args:
        series: a series with its volume (``select_related("volume")``).
        z: slice index, ``0 <= z < shape[0]`` (the caller checks).
        center, width: window; the series' default window when None.
        size: longest edge of a downscaled thumbnail (never upscales); None keeps full size.
    Returns:
        PNG bytes (8-bit greyscale) in the radiological convention (``series.display``): a
        stored slice is flipped and turned as every viewer shows it.
    """
    center = series.window_center if center is None else center
    width = series.window_width if width is None else width
    key = _png_key(series, z, center, width, size)
    cached = _pngs.get(key)
    if isinstance(cached, bytes):
        return cached
    handle = volume_open(series)
    pixels = np.ascontiguousarray(
        to_display(window_to_uint8(handle.array[z], center, width), series.display)
    )
    image = Image.fromarray(pixels, mode="L")
    if size and max(image.size) > size:
        scale = size / max(image.size)
        target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        # reduce() by an integer factor first (fast box filter), then a bilinear finish.
        factor = max(1, int(1 / scale))
        if factor > 1:
            image = image.reduce(factor)
        if image.size != target:
            image = image.resize(target, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    data = out.getvalue()
    _pngs.put(key, data)
    return data


def cached_slice_png(
    series: Series, z: int, *, center: float, width: float, size: int | None
) -> bytes | None:
    """The PNG ``slice_png`` rendered before with these arguments, or None."""
    cached = _pngs.get(_png_key(series, z, center, width, size))
    return cached if isinstance(cached, bytes) else None


def slice_raw(series: Series, z: int) -> tuple[bytes, np.dtype]:
    """The voxel values of slice ``z`` (y, x) in the raw dtype, little-endian, C order."""
    handle = volume_open(series)
    plane = np.ascontiguousarray(handle.array[z], dtype=handle.raw_dtype)
    return plane.tobytes(), handle.raw_dtype


def volume_raw(series: Series) -> tuple[bytes, np.dtype]:
    """The whole volume (z, y, x) in the raw dtype, little-endian, C order."""
    handle = volume_open(series)
    return np.ascontiguousarray(handle.array, dtype=handle.raw_dtype).tobytes(), handle.raw_dtype


def volume_nifti_gz(series: Series) -> bytes:
    """The volume as gzipped NIfTI-1 with the series' affine (scanner/RAS, mm).

    Stored arrays are (z, y, x); NIfTI indexes voxels (i, j, k) = (x, y, z), so the array is
    transposed (a view: nibabel writes it in Fortran order without copying). gzip level 1:
    most of the size gain at a fraction of the default level's time.
    """
    handle = volume_open(series)
    data = np.asarray(handle.array).transpose(2, 1, 0)
    affine = np.asarray(series.affine, dtype=np.float64)
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    return gzip.compress(image.to_bytes(), compresslevel=1, mtime=0)
