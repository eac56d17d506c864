/*
 * Painting on a label volume (pure: typed arrays in, typed arrays changed; no DOM).
 *
 * A volume is a Uint8Array of z*h*w labels in C order (voxel value = label value, 0 =
 * background); a slice is the subarray of one z. Coordinates are Cornerstone's pixel
 * coordinates: x to the right along a row, y down a column, a voxel's centre at (x+0.5, y+0.5).
 */

/** Sets the voxels of ``slice`` (w x h) whose centres lie within ``r`` of (cx, cy). */
export function paintDisc(slice, w, h, cx, cy, r, value) {
  const r2 = r * r;
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(w - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(h - 1, Math.ceil(cy + r));
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy <= r2) slice[y * w + x] = value;
    }
  }
}

/** A brush stroke from ``a`` to ``b`` (points {x, y}): discs close enough to leave no gap. */
export function paintSegment(slice, w, h, a, b, r, value) {
  const d = Math.hypot(b.x - a.x, b.y - a.y);
  const steps = Math.max(1, Math.ceil(d / Math.max(0.5, r / 2)));
  for (let i = 1; i <= steps; i++) {
    const t = i / steps;
    paintDisc(slice, w, h, a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, r, value);
  }
}

/** Voxels a 3-D flood fill may take at most. */
export const FILL_3D_LIMIT = 200000;

/**
 * Flood fill that respects the image (ITK-SNAP / Slicer style): from the seed voxel the
 * region grows over 4-connected (2-D) or 6-connected (3-D) voxels that carry the seed's
 * current label *and* whose intensity lies within ``tolerance`` of the seed's. A region
 * larger than the limit (half the slice in 2-D, ``limit3d`` voxels in 3-D) is not filled:
 * that is a leak through a gap, not a lesion.
 *
 * @param {object} o
 * @param {ArrayLike<number>} o.pixels  the image, z*h*w
 * @param {Uint8Array} o.labels  the label volume, z*h*w
 * @param {number[]} o.shape  [nz, h, w]
 * @param {{x: number, y: number, z: number}} o.seed
 * @param {number} o.tolerance  in the image's stored units
 * @param {boolean} [o.threeD]
 * @param {number} [o.limit3d]
 * @returns {{filled: number, idx: Int32Array|null}|{tooLarge: true, limit: number}}
 */
export function regionGrow({ pixels, labels, shape, seed, tolerance, threeD = false, limit3d = FILL_3D_LIMIT }) {
  const [nz, h, w] = shape;
  const plane = h * w;
  const { x, y, z } = seed;
  if (x < 0 || y < 0 || z < 0 || x >= w || y >= h || z >= nz) return { filled: 0, idx: null };
  const start = z * plane + y * w + x;
  const v0 = pixels[start], target = labels[start];
  const limit = threeD ? limit3d : Math.floor(plane / 2);
  const seen = new Uint8Array(labels.length);
  const out = [];
  const stack = [start];
  seen[start] = 1;
  while (stack.length) {
    const i = stack.pop();
    out.push(i);
    if (out.length > limit) return { tooLarge: true, limit };
    const k = (i / plane) | 0, rest = i - k * plane, py = (rest / w) | 0, px = rest - py * w;
    const next = [];
    if (px > 0) next.push(i - 1);
    if (px < w - 1) next.push(i + 1);
    if (py > 0) next.push(i - w);
    if (py < h - 1) next.push(i + w);
    if (threeD && k > 0) next.push(i - plane);
    if (threeD && k < nz - 1) next.push(i + plane);
    for (const j of next) {
      if (seen[j]) continue;
      seen[j] = 1;
      if (labels[j] === target && Math.abs(pixels[j] - v0) <= tolerance) stack.push(j);
    }
  }
  return { filled: out.length, idx: Int32Array.from(out) };
}

/** Whether two slices differ anywhere. */
export function slicesDiffer(a, b) {
  if (a.length !== b.length) return true;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return true;
  return false;
}
