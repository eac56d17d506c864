"""A plausible diagnostic work-up for each phantom case, drawn with the prevalences a stroke
neurologist would recognise. Rounded from these sources (they vary by registry):

* Atrial fibrillation is the source in ~75-80 % of cardioembolic strokes; other high-risk
  sources (LV thrombus, mechanical valve, recent MI, endocarditis) make up the rest
  (TOAST, Adams et al. 1993; Kamel & Healey, Circ Res 2017). AF is also present in ~10 %
  of large-artery and ~8 % of lacunar strokes (comorbidity, not the cause).
* >= 50 % stenosis of the supplying artery is found in ~85 % of large-artery strokes by
  definition of the work-up that found it, and in a few percent of the others (Kolominsky-
  Rieb et al., Stroke 2001).
* A lacunar syndrome (pure motor, pure sensory, ataxic hemiparesis, ...) in ~85 % of
  lacunes and rarely with cortical infarcts (Fisher; Arboix & Marti-Vilalta 2009).
* Vessel imaging is done in ~90 % and cardiac monitoring with echocardiography in ~85 %
  of patients of a stroke unit; "undetermined" strokes split into incomplete evaluation
  (~20 % here) and a complete, negative evaluation.
* About a third of embolic strokes of undetermined source turn out to have paroxysmal AF
  on long-term monitoring (CRYSTAL-AF 12 % at one year, ~30 % at three years; Sanna et al.,
  NEJM 2014): :func:`hidden_mechanism` gives 30 % of cryptogenic phantoms an embolic lesion
  pattern with AF that the recorded work-up did not catch, so the cryptogenic explorer can
  be scored.
* Age and NIHSS by subtype follow the usual registry means (cardioembolic oldest and most
  severe, lacunar mildest, "other" - dissection - youngest).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Probability of each positive finding given the true etiology.
_AF = {
    "cardioembolic": 0.75,
    "atherothrombotic": 0.10,
    "lacunar": 0.08,
    "cryptogenic": 0.0,
    "other": 0.05,
}
_OTHER_SOURCE = {
    "cardioembolic": 0.85,
    "atherothrombotic": 0.02,
    "lacunar": 0.02,
    "cryptogenic": 0.0,
    "other": 0.02,
}
_STENOSIS = {
    "cardioembolic": 0.08,
    "atherothrombotic": 0.85,
    "lacunar": 0.05,
    "cryptogenic": 0.0,
    "other": 0.05,
}
_SYNDROME = {
    "cardioembolic": 0.05,
    "atherothrombotic": 0.08,
    "lacunar": 0.85,
    "cryptogenic": 0.05,
    "other": 0.05,
}
_AGE = {
    "cardioembolic": (75, 10),
    "atherothrombotic": (68, 9),
    "lacunar": (65, 10),
    "cryptogenic": (62, 13),
    "other": (45, 12),
}
_NIHSS = {
    "cardioembolic": 12.0,
    "atherothrombotic": 8.0,
    "lacunar": 3.0,
    "cryptogenic": 6.0,
    "other": 6.0,
}
_CAUSES = (
    "arterial dissection",
    "vasculitis",
    "antiphospholipid syndrome",
    "reversible vasoconstriction",
)
#: Share of cryptogenic phantoms with an undetected embolic (AF) mechanism.
HIDDEN_SHARE = 0.3


def hidden_mechanism(etiology: str, rng: np.random.Generator) -> str | None:
    """``"cardioembolic"`` for the cryptogenic cases whose mechanism the work-up missed."""
    if etiology == "cryptogenic" and rng.random() < HIDDEN_SHARE:
        return "cardioembolic"
    return None


def phantom_workup(etiology: str, rng: np.random.Generator) -> dict[str, Any]:
    """A work-up in the REST contract's shape (``None`` = not known / not done)."""
    vessel = bool(rng.random() < 0.9)
    cardiac = bool(rng.random() < 0.85)
    if etiology == "cryptogenic":
        # Undetermined: incomplete evaluation, or complete and negative.
        complete = rng.random() < 0.8
        vessel, cardiac = (True, True) if complete else (bool(rng.random() < 0.5), False)
    if etiology == "atherothrombotic":
        vessel = bool(rng.random() < 0.97)  # the stenosis was found by imaging it
    af = bool(rng.random() < _AF[etiology])
    source = bool(not af and rng.random() < _OTHER_SOURCE[etiology])
    if etiology == "cardioembolic" and not cardiac and not af:
        source = False  # no work-up, no source found: an incompletely evaluated embolism
    stenosis = bool(rng.random() < _STENOSIS[etiology]) if vessel else None
    mean, sd = _AGE[etiology]
    return {
        "atrial_fibrillation": af if (cardiac or af) else None,
        "cardiac_source": source if cardiac else (True if source else None),
        "stenosis_50": stenosis,
        "vessel_imaging": vessel,
        "cardiac_workup": cardiac,
        "lacunar_syndrome": bool(rng.random() < _SYNDROME[etiology])
        if rng.random() < 0.9
        else None,
        "other_cause": str(rng.choice(_CAUSES))
        if etiology == "other" and rng.random() < 0.9
        else None,
        "age": int(np.clip(rng.normal(mean, sd), 18, 100)),
        "sex": "F" if rng.random() < 0.45 else "M",
        "nihss": int(np.clip(rng.poisson(_NIHSS[etiology]), 0, 42)),
    }
