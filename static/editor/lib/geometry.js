/*
 * Grids and affines (pure). A grid is {shape: [nz, h, w], affine: 4x4 voxel (x, y, z) -> RAS
 * mm, rows of four}, as the series JSON gives them.
 */

/** Whether two grids are the same voxels in space (shapes equal, affines within 1e-3). */
export function sameGrid(a, b) {
  if (a === b) return true;
  if (a.shape.some((n, i) => n !== b.shape[i])) return false;
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 4; c++) if (Math.abs(a.affine[r][c] - b.affine[r][c]) > 1e-3) return false;
  }
  return true;
}

/** Inverse of a 4x4 affine (rotation/scale/shear + translation); rows of four, last row implied. */
export function invertAffine(m) {
  const [a, b, c] = [m[0], m[1], m[2]];
  const det = a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0]);
  const inv = [
    [(b[1] * c[2] - b[2] * c[1]) / det, (a[2] * c[1] - a[1] * c[2]) / det, (a[1] * b[2] - a[2] * b[1]) / det],
    [(b[2] * c[0] - b[0] * c[2]) / det, (a[0] * c[2] - a[2] * c[0]) / det, (a[2] * b[0] - a[0] * b[2]) / det],
    [(b[0] * c[1] - b[1] * c[0]) / det, (a[1] * c[0] - a[0] * c[1]) / det, (a[0] * b[1] - a[1] * b[0]) / det],
  ];
  const t = [m[0][3], m[1][3], m[2][3]];
  return inv.map((row) => [...row, -(row[0] * t[0] + row[1] * t[1] + row[2] * t[2])]);
}

/**
 * For each voxel of slice ``z`` of ``target``, the index of the nearest ``source`` voxel
 * (through both affines), or -1 outside the source grid.
 */
export function voxelMap(source, target, z) {
  const inv = invertAffine(source.affine), fwd = target.affine;
  // voxel of target -> RAS -> voxel of source, as one affine
  const m = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) =>
    inv[r][0] * fwd[0][c] + inv[r][1] * fwd[1][c] + inv[r][2] * fwd[2][c] + (c === 3 ? inv[r][3] : 0)));
  const [, h, w] = target.shape, [sz, sh, sw] = source.shape;
  const map = new Int32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = Math.round(m[0][0] * x + m[0][1] * y + m[0][2] * z + m[0][3]);
      const j = Math.round(m[1][0] * x + m[1][1] * y + m[1][2] * z + m[1][3]);
      const k = Math.round(m[2][0] * x + m[2][1] * y + m[2][2] * z + m[2][3]);
      map[y * w + x] = i >= 0 && j >= 0 && k >= 0 && i < sw && j < sh && k < sz ? (k * sh + j) * sw + i : -1;
    }
  }
  return map;
}

/** ``labels`` gathered through ``map`` into ``out`` (0 where the map is -1). */
export function gather(labels, map, out) {
  for (let p = 0; p < map.length; p++) out[p] = map[p] >= 0 ? labels[map[p]] : 0;
  return out;
}
