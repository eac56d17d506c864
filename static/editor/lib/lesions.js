/*
 * Where the lesions are in a label volume (pure: typed arrays in, slice numbers out; no DOM).
 * A volume is z * sliceSize labels in C order; 0 is background.
 */

/** Lesion voxels per slice of ``labels`` (and of ``extra``, e.g. a shown prediction). */
export function lesionAreas(labels, sliceSize, extra) {
  const n = Math.floor(labels.length / sliceSize);
  const areas = new Array(n).fill(0);
  for (let z = 0; z < n; z++) {
    const end = (z + 1) * sliceSize;
    let count = 0;
    for (let i = z * sliceSize; i < end; i++) if (labels[i] !== 0 || (extra && extra[i] !== 0)) count++;
    areas[z] = count;
  }
  return areas;
}

/** The slices holding a lesion voxel in ``labels`` or ``extra``, in order. */
export function lesionSlices(labels, sliceSize, extra) {
  const out = [];
  lesionAreas(labels, sliceSize, extra).forEach((area, z) => { if (area) out.push(z); });
  return out;
}

/** The slice with the most lesion voxels (the first of equals), or null without a lesion. */
export function busiestSlice(labels, sliceSize) {
  let best = null, bestCount = 0;
  lesionAreas(labels, sliceSize).forEach((area, z) => {
    if (area > bestCount) { best = z; bestCount = area; }
  });
  return best;
}

/** The slice after (``dir`` = 1) or before (-1) ``z`` in ``slices``, wrapping around. */
export function nextLesion(slices, z, dir) {
  if (!slices.length) return null;
  const found = dir > 0 ? slices.find((s) => s > z) : slices.slice().reverse().find((s) => s < z);
  if (found !== undefined) return found;
  return dir > 0 ? slices[0] : slices[slices.length - 1];
}
