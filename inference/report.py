"""The prediction report picture: one PNG that the report page, the REST API, the chat bot and
a PACS all show the same way (``GET /api/predictions/{id}/report.png``).

Layout (matplotlib, Agg): a header (case, model, date; "demo" warning), the answers side by
side as horizontal bars (segmentation vote, learned case model) with the TOAST rules' answer
and reason, the explanation, the lesion pattern, the work-up used and its gaps, and up to six
key slices (largest predicted lesion area first) with the predicted lesion outlined in its
label colour and a legend. Text arrives already translated; rendering only lays it out.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

MAX_SLICES = 6


@dataclass
class ReportContent:
    """Everything the picture shows (strings translated by the caller)."""

    title: str
    subtitle: str
    headline: str
    answers: list[tuple[str, dict[str, float]]]  # (method title, {label title: p})
    rules_line: str
    explanation: list[str] = field(default_factory=list)
    pattern: list[str] = field(default_factory=list)
    workup: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    warning: str = ""
    colors: dict[str, str] = field(default_factory=dict)  # label title -> colour
    value_titles: dict[int, str] = field(default_factory=dict)  # mask value -> label title
    labels_heading: str = "Lesion"
    no_lesion: str = ""
    headings: dict[str, str] = field(default_factory=dict)
    #: Patient direction of each image edge ("top": "A", "left": "R", ...), drawn on key slices.
    edges: dict[str, str] = field(default_factory=dict)


#: Where each orientation letter sits on a key slice, in axes coordinates.
_EDGE_PLACES = {
    "top": (0.5, 0.98, "center", "top"),
    "bottom": (0.5, 0.02, "center", "bottom"),
    "left": (0.02, 0.5, "left", "center"),
    "right": (0.98, 0.5, "right", "center"),
}


def key_slices(labels: npt.NDArray[Any], n: int = MAX_SLICES) -> list[int]:
    """Indices of up to ``n`` slices with the largest lesion area, largest first."""
    area = (labels != 0).reshape(labels.shape[0], -1).sum(axis=1)
    order = [int(z) for z in np.argsort(-area, kind="stable") if area[z] > 0]
    return order[:n]


def _display(image: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    data = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(data, [1.0, 99.5]) if data.size else (0.0, 1.0)
    if not hi > lo:
        hi = lo + 1.0
    return np.clip((data - lo) / (hi - lo), 0.0, 1.0)


def render_report_png(
    content: ReportContent,
    *,
    image: npt.NDArray[Any] | None,
    labels: npt.NDArray[Any] | None,
    aspect: float = 1.0,
) -> bytes:
    """The report as PNG bytes (about 1400 x 1000 pixels).

    Args:
        content: the texts and numbers.
        image: the reference series ``(z, y, x)``.
        labels: the predicted label volume on the same grid.
        aspect: row / column pixel spacing (so slices keep their physical shape).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch

    fig = plt.figure(figsize=(14, 10), dpi=100)
    try:
        grid = fig.add_gridspec(3, 6, height_ratios=[1.15, 1.0, 1.35], hspace=0.45, wspace=0.3)
        fig.suptitle(content.title, x=0.01, ha="left", fontsize=16, fontweight="bold")
        fig.text(0.01, 0.935, content.subtitle, fontsize=10, color="#555555")
        if content.warning:
            fig.text(0.99, 0.935, content.warning, fontsize=10, color="#b00020", ha="right")
        fig.text(0.01, 0.905, content.headline, fontsize=13, fontweight="bold")

        # --- answers as bars -----------------------------------------------------------
        for i, (method, probs) in enumerate(content.answers[:2]):
            ax = fig.add_subplot(grid[0, i * 2 : i * 2 + 2])
            names = list(probs)
            values = [probs[n] for n in names]
            colors = [content.colors.get(n, "#888888") for n in names]
            ax.barh(names, values, color=colors)
            ax.set_xlim(0, 1)
            ax.invert_yaxis()
            ax.set_title(method, fontsize=11, loc="left")
            ax.tick_params(labelsize=9)
            for y, v in enumerate(values):
                ax.text(min(v + 0.02, 0.9), y, f"{v:.2f}", va="center", fontsize=8)
        text_ax = fig.add_subplot(grid[0, 4:6])
        text_ax.axis("off")
        lines = [content.headings.get("rules", "TOAST"), *textwrap.wrap(content.rules_line, 48)]
        if content.explanation:
            lines += ["", content.headings.get("explanation", "Why"), *content.explanation[:5]]
        text_ax.text(0, 1, "\n".join(lines), va="top", fontsize=9, family="DejaVu Sans")

        # --- pattern, work-up, gaps ----------------------------------------------------
        for col, (key, rows) in enumerate(
            (("pattern", content.pattern), ("workup", content.workup), ("gaps", content.gaps))
        ):
            ax = fig.add_subplot(grid[1, col * 2 : col * 2 + 2])
            ax.axis("off")
            wrapped: list[str] = []
            for row in rows:
                wrapped += textwrap.wrap(row, 46) or [""]
            ax.text(
                0,
                1,
                "\n".join([content.headings.get(key, key), *wrapped[:12]]),
                va="top",
                fontsize=9,
            )

        # --- key slices ----------------------------------------------------------------
        slices = key_slices(labels) if labels is not None else []
        if image is None or labels is None or not slices:
            ax = fig.add_subplot(grid[2, :])
            ax.axis("off")
            ax.text(0.5, 0.5, content.no_lesion, ha="center", va="center", fontsize=12)
        else:
            shown = _display(image)
            present: list[int] = sorted(int(v) for v in np.unique(np.asarray(labels)) if v)
            for i, z in enumerate(slices):
                ax = fig.add_subplot(grid[2, i])
                ax.imshow(shown[z], cmap="gray", aspect=aspect, interpolation="nearest")
                for value in present:
                    region = (np.asarray(labels[z]) == value).astype(np.float32)
                    if region.any():
                        title = content.value_titles.get(value, str(value))
                        ax.contour(
                            region,
                            levels=[0.5],
                            colors=[content.colors.get(title, "#ff0000")],
                            linewidths=1.4,
                        )
                for edge, (ex, ey, ha, va) in _EDGE_PLACES.items():
                    if content.edges.get(edge):
                        ax.text(
                            ex,
                            ey,
                            content.edges[edge],
                            transform=ax.transAxes,
                            ha=ha,
                            va=va,
                            fontsize=8,
                            color="#ffd54f",
                        )
                ax.set_title(f"{content.headings.get('slice', 'slice')} {z + 1}", fontsize=9)
                ax.axis("off")
            handles = [
                Patch(
                    color=content.colors.get(content.value_titles.get(v, str(v)), "#ff0000"),
                    label=content.value_titles.get(v, str(v)),
                )
                for v in present
            ]
            fig.legend(
                handles=handles,
                loc="lower center",
                ncol=max(1, len(handles)),
                fontsize=9,
                frameon=False,
                title=content.labels_heading,
            )
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)
