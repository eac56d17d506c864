// Grids and affines of the slice editor's cross-sequence masks (static/editor/lib/geometry.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { gather, invertAffine, sameGrid, voxelMap } from "../../static/editor/lib/geometry.js";

const eye = () => [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];

test("the inverse of an oblique affine with translation undoes it", () => {
  const c = Math.cos(0.3), s = Math.sin(0.3);
  const m = [[0.9 * c, -1.1 * s, 0, 12], [0.9 * s, 1.1 * c, 0, -7], [0, 0, 5, 30], [0, 0, 0, 1]];
  const inv = invertAffine(m);
  const p = [3, 4, 2];
  const world = [0, 1, 2].map((r) => m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2] + m[r][3]);
  const back = [0, 1, 2].map((r) => inv[r][0] * world[0] + inv[r][1] * world[1] + inv[r][2] * world[2] + inv[r][3]);
  back.forEach((v, i) => assert.ok(Math.abs(v - p[i]) < 1e-9, `${v} vs ${p[i]}`));
});

test("grids are the same only with the same shape and (nearly) the same affine", () => {
  const a = { shape: [2, 4, 4], affine: eye() };
  assert.ok(sameGrid(a, { shape: [2, 4, 4], affine: eye() }));
  assert.ok(!sameGrid(a, { shape: [2, 4, 5], affine: eye() }));
  const moved = eye();
  moved[0][3] = 0.5;
  assert.ok(!sameGrid(a, { shape: [2, 4, 4], affine: moved }));
});

test("a flipped grid maps each voxel to its mirror, outside voxels to -1", () => {
  // Source: x runs to the right; target: the same voxels with x mirrored (LAS vs RAS).
  const source = { shape: [1, 2, 4], affine: eye() };
  const flipped = eye();
  flipped[0][0] = -1;
  flipped[0][3] = 3;
  const target = { shape: [1, 2, 5], affine: flipped };
  const map = voxelMap(source, target, 0);
  assert.deepEqual(Array.from(map.subarray(0, 5)), [3, 2, 1, 0, -1]);
  const labels = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(Array.from(gather(labels, map, new Uint8Array(10))), [4, 3, 2, 1, 0, 8, 7, 6, 5, 0]);
});
