"""What an exporter receives: the cases of a dataset snapshot with their series and mask."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cases import storage
from cases.models import Series
from inference.services.arrays import load_series_array, mask_to_reference, resample_to, same_grid

#: Progress callback: fraction of the exporter's work done, 0..1.
Progress = Callable[[float], None]


@dataclass
class ExportCase:
    """One case of an export.

    Attributes:
        name: the file-name stem (``case00012``): the case's database id, never its code
            or anything typed by a person, so no free text ends up in file names.
        code: the case's pseudonymous code.
        etiology: confirmed etiology label name (None when unset).
        split: ``train`` / ``val`` / ``test`` of the snapshot.
        series: ``{kind: Series}`` with volumes (DWI, ADC, FLAIR as available).
        mask_series: the series the mask was drawn on.
        mask_key: storage key of the mask revision.
        revision_id, revision_number: the mask revision exported.
        annotator: pseudonym of whoever drew it (``annotator-<user id>`` or ``consensus``).
    """

    case_id: int
    name: str
    code: str
    etiology: str | None
    confirmed: bool
    split: str
    series: dict[str, Series]
    mask_series: Series
    mask_key: str
    revision_id: int
    revision_number: int
    annotator: str
    state: str
    notes: list[str] = field(default_factory=list)

    def mask(self) -> npt.NDArray[np.uint8]:
        """The mask on its own series' grid."""
        return np.asarray(storage.read_array(self.mask_key), dtype=np.uint8)

    def reference(self, kinds: tuple[str, ...] = ("DWI", "FLAIR")) -> Series:
        """The grid images and label share: DWI when present (acute lesions are defined on
        diffusion imaging), else FLAIR, else the mask's own series."""
        for kind in kinds:
            if kind in self.series:
                return self.series[kind]
        return self.mask_series

    def image_on(self, kind: str, reference: Series) -> npt.NDArray[Any]:
        """The stored volume of ``kind`` on ``reference``'s grid (resampled only when needed,
        so the stored voxel values and dtype usually travel unchanged)."""
        series = self.series[kind]
        array = load_series_array(series)
        if same_grid(series, reference):
            return array
        return resample_to(array, source=series, target=reference)

    def mask_on(self, reference: Series) -> npt.NDArray[np.uint8]:
        return mask_to_reference(self.mask(), mask_series=self.mask_series, reference=reference)


def pseudonym(annotator_id: int | None, *, consensus: bool) -> str:
    """A stable pseudonym for an annotator: user names may be real names and never leave."""
    return "consensus" if consensus or annotator_id is None else f"annotator-{annotator_id}"
