"""How a stored slice is shown: the radiological convention, whatever the file's voxel order.

Volumes are stored exactly as they arrive (``(z, y, x)`` = slice, row, column) with an affine
mapping voxel ``(x, y, z)`` to patient RAS millimetres; masks, predictions and exports live on
that grid. Only the *display* is turned, the way every clinical viewer does it:

* axial slices: anterior at the top, the patient's right on the image's left;
* coronal slices: superior at the top, the patient's right on the image's left;
* sagittal slices: superior at the top, anterior on the image's left.

A slice is shown by flipping its rows and/or columns and then turning it by a multiple of 90°
clockwise; :class:`DisplayOrientation` holds exactly the fields of a Cornerstone viewport
(``hflip``, ``vflip``, ``rotation``), so the editor and the server-side pictures (thumbnails,
review strips, the report) agree pixel for pixel. Oblique acquisitions are shown in the nearest
orthogonal orientation; the edge letters then name two directions ("AL").

Pure numpy: no Django, no storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

#: Screen right and screen down as RAS directions, per acquisition plane.
_SCREEN: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
    "coronal": ((-1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, -1.0, 0.0), (0.0, 0.0, -1.0)),
}
_LETTERS = (("L", "R"), ("P", "A"), ("I", "S"))  # (negative, positive) per RAS axis
#: A secondary direction is named on an edge when it makes up at least this cosine.
_OBLIQUE_COSINE = 0.3


@dataclass(frozen=True)
class DisplayOrientation:
    """Flip, then turn clockwise: how a stored slice (rows = y, columns = x) is shown.

    Attributes:
        plane: ``axial``, ``coronal`` or ``sagittal`` (the nearest one for oblique slices).
        hflip: mirror left-right first (columns reversed).
        vflip: mirror top-bottom first (rows reversed).
        rotation: then turn by this many degrees clockwise (0, 90, 180 or 270).
        top, bottom, left, right: the patient direction each screen edge faces ("A", "RA", ...).
    """

    plane: str
    hflip: bool
    vflip: bool
    rotation: int
    top: str
    bottom: str
    left: str
    right: str

    @property
    def transposed(self) -> bool:
        """True when stored rows become screen columns (a 90° or 270° turn)."""
        return self.rotation in (90, 270)

    @property
    def identity(self) -> bool:
        return not (self.hflip or self.vflip or self.rotation)

    @property
    def edges(self) -> dict[str, str]:
        """The orientation letters of the four screen edges."""
        return {"top": self.top, "bottom": self.bottom, "left": self.left, "right": self.right}

    def as_dict(self) -> dict[str, Any]:
        return {
            "plane": self.plane,
            "hflip": self.hflip,
            "vflip": self.vflip,
            "rotation": self.rotation,
            "labels": self.edges,
        }


def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _sign(value: float) -> int:
    return -1 if value < 0 else 1


def _matrix(rotation: int, hflip: bool, vflip: bool) -> npt.NDArray[np.int64]:
    """Screen (right, down) of the stored column and row unit vectors: columns of the 2x2."""
    quarter = {0: (1, 0), 90: (0, 1), 180: (-1, 0), 270: (0, -1)}
    c, s = quarter[rotation]
    turn = np.array([[c, -s], [s, c]], dtype=np.int64)  # clockwise on a y-down screen
    flip = np.diag([-1 if hflip else 1, -1 if vflip else 1]).astype(np.int64)
    return turn @ flip


#: Every flip/turn combination, simplest first (no turn, fewest flips).
_CANDIDATES = sorted(
    ((r, h, v) for r in (0, 90, 180, 270) for h in (False, True) for v in (False, True)),
    key=lambda t: (t[0] != 0, int(t[1]) + int(t[2]), t[0]),
)


def plane_of(affine: npt.ArrayLike) -> str:
    """``axial``, ``coronal`` or ``sagittal``: the RAS axis nearest to the slice normal."""
    a = np.asarray(affine, dtype=np.float64)[:3, :3]
    normal = np.cross(a[:, 0], a[:, 1])
    if not np.any(normal):
        normal = a[:, 2]
    return ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(normal)))]


def direction_letters(vector: npt.ArrayLike) -> str:
    """Patient direction(s) of a RAS vector: the main one first, then a strong oblique one."""
    v = _unit(np.asarray(vector, dtype=np.float64))
    order = np.argsort(-np.abs(v), kind="stable")
    out = []
    for rank, axis in enumerate(order[:2]):
        if rank and abs(v[axis]) < _OBLIQUE_COSINE:
            break
        out.append(_LETTERS[axis][1 if v[axis] > 0 else 0])
    return "".join(out)


def display_orientation(affine: npt.ArrayLike) -> DisplayOrientation:
    """The flips and turn that show a slice of this grid in the radiological convention.

    Args:
        affine: 4x4 (or 3x3+) matrix mapping voxel ``(x, y, z)`` (column, row, slice) to RAS.
    """
    a = np.asarray(affine, dtype=np.float64)[:3, :3]
    plane = plane_of(a)
    right, down = (np.asarray(d) for d in _SCREEN[plane])
    col, row = _unit(a[:, 0]), _unit(a[:, 1])
    # Where do the stored column (x) and row (y) directions point on the screen?
    cx, cy = float(col @ right), float(col @ down)
    rx, ry = float(row @ right), float(row @ down)
    if abs(cx) + abs(ry) >= abs(cy) + abs(rx):
        wanted = np.array([[_sign(cx), 0], [0, _sign(ry)]], dtype=np.int64)
    else:
        wanted = np.array([[0, _sign(rx)], [_sign(cy), 0]], dtype=np.int64)
    rotation, hflip, vflip = next(
        (r, h, v) for r, h, v in _CANDIDATES if np.array_equal(_matrix(r, h, v), wanted)
    )
    # Each screen edge's direction in the stored (x, y) pixel frame, then in RAS.
    inverse = wanted.T  # orthogonal
    in_plane = a[:, :2]

    def edge(screen: tuple[int, int]) -> str:
        pixel = inverse @ np.asarray(screen, dtype=np.float64)
        return direction_letters(in_plane @ pixel)

    return DisplayOrientation(
        plane=plane,
        hflip=hflip,
        vflip=vflip,
        rotation=rotation,
        top=edge((0, -1)),
        bottom=edge((0, 1)),
        left=edge((-1, 0)),
        right=edge((1, 0)),
    )


def to_display(array: npt.NDArray[Any], orientation: DisplayOrientation) -> npt.NDArray[Any]:
    """A slice ``(y, x)`` or a stack ``(..., y, x)`` as shown (a view when possible).

    The same operations as Cornerstone's viewport transform: flips first, then the turn.
    """
    out = array
    if orientation.hflip:
        out = out[..., :, ::-1]
    if orientation.vflip:
        out = out[..., ::-1, :]
    if orientation.rotation:
        out = np.rot90(out, k=-orientation.rotation // 90, axes=(-2, -1))
    return out


def display_aspect(spacing_yx: tuple[float, float], orientation: DisplayOrientation) -> float:
    """Screen row height / column width of one displayed pixel, for ``imshow(aspect=...)``."""
    dy, dx = (float(s) or 1.0 for s in spacing_yx)
    return dx / dy if orientation.transposed else dy / dx
