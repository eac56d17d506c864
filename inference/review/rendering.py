"""Pictures of the case review: a greyscale slice with the annotation, the prediction or
their difference (``inference.review.comparison``'s classes) blended in, as PNG."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import numpy.typing as npt
from django.utils.translation import gettext as _
from PIL import Image

from cases.orientation import to_display
from cases.rendering import volume_open, window_to_uint8
from inference.review.comparison import (
    AGREE,
    ANNOTATOR_ONLY,
    LABEL_DIFFERS,
    MODEL_ONLY,
    difference_classes,
)
from inference.review.selectors import ReviewPair, labels_by_value
from strokeaid_site.errors import ApplicationError, NotFoundError

#: Colours of the difference overlay (agree uses the label's own colour). Cyan rather than
#: yellow for "annotator only": the lacunar label is already yellow.
DIFF_COLORS = {ANNOTATOR_ONLY: "#00e5ff", MODEL_ONLY: "#ff00ff", LABEL_DIFFERS: "#ffffff"}
LAYERS = ("image", "annotation", "prediction", "difference")


def _hex_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


def overlay_png(
    base: npt.NDArray[np.uint8],
    *,
    classes: npt.NDArray[Any] | None,
    colors: dict[int, str],
    alpha: float = 0.55,
) -> bytes:
    """A greyscale slice with ``classes`` (0 = transparent) blended in ``colors``, as PNG."""
    rgb = np.repeat(base[:, :, None], 3, axis=2).astype(np.float32)
    if classes is not None:
        for value, color in colors.items():
            sel = classes == value
            if sel.any():
                rgb[sel] = (1 - alpha) * rgb[sel] + alpha * np.asarray(
                    _hex_rgb(color), dtype=np.float32
                )
    image = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), mode="RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


# --- rows to arrays -------------------------------------------------------------------------


def review_slice_png(
    *,
    pair: ReviewPair,
    z: int,
    layer: str,
    label: int | None = None,
    center: float | None = None,
    width: float | None = None,
) -> bytes:
    """One slice of the review viewer: the image, or the image with an overlay layer, at the
    series' window or the one given."""
    series = pair.series
    if not 0 <= z < int(series.shape[0]):
        raise NotFoundError(_("No such slice."), {"z": z})
    if layer not in LAYERS:
        raise ApplicationError(_("Unknown layer."), {"layer": layer, "allowed": list(LAYERS)})
    handle = volume_open(series)
    # Shown in the radiological convention, like the editor (cases.orientation).
    display = series.display

    def shown(plane: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.ascontiguousarray(to_display(np.asarray(plane), display))

    center = series.window_center if center is None else center
    width = series.window_width if width is None or width <= 0 else width
    base = shown(window_to_uint8(handle.array[z], center, width))
    labels = labels_by_value()
    label_colors = {v: lab.color for v, lab in labels.items()}
    ann = pair.annotation_mask()
    pred = pair.prediction_mask()
    if layer == "image":
        return overlay_png(base, classes=None, colors={})
    if layer == "annotation":
        return overlay_png(
            base, classes=None if ann is None else shown(ann[z]), colors=label_colors
        )
    if layer == "prediction":
        return overlay_png(
            base, classes=None if pred is None else shown(pred[z]), colors=label_colors
        )
    if ann is None or pred is None:
        return overlay_png(base, classes=None, colors={})
    a, p = shown(ann[z]), shown(pred[z])
    classes = difference_classes(a, p, label=label)
    # "Agree" voxels take their label's colour: encode them as 10 + label value.
    painted = classes.astype(np.int16)
    agree = classes == AGREE
    painted[agree] = 10 + a[agree].astype(np.int16)
    colors = {10 + v: c for v, c in label_colors.items()}
    colors.update(DIFF_COLORS)
    return overlay_png(base, classes=painted, colors=colors, alpha=0.65)
