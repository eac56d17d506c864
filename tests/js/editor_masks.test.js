// Painting and the flood fill of the slice editor (static/editor/lib/masks.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { FILL_3D_LIMIT, paintDisc, paintSegment, regionGrow, slicesDiffer } from "../../static/editor/lib/masks.js";

const count = (arr, value) => arr.reduce((n, v) => n + (v === value ? 1 : 0), 0);

test("a disc paints the voxels whose centres lie within the radius, clipped at the edges", () => {
  const w = 20, h = 10, slice = new Uint8Array(w * h);
  paintDisc(slice, w, h, 10, 5, 2, 3);
  // Centres (x+0.5, y+0.5) within 2 of (10, 5): a 12-voxel digital disc.
  assert.equal(count(slice, 3), 12);
  assert.equal(slice[5 * w + 10], 3);
  assert.equal(slice[5 * w + 13], 0);
  const corner = new Uint8Array(w * h);
  paintDisc(corner, w, h, 0, 0, 3, 1);  // a quarter of it falls outside: no wrap-around
  assert.equal(corner[w - 1], 0);
  assert.ok(count(corner, 1) > 0 && count(corner, 1) < 12);
});

test("erasing is painting 0, and only the touched voxels change", () => {
  const w = 16, h = 16, slice = new Uint8Array(w * h).fill(2);
  paintDisc(slice, w, h, 8, 8, 3, 0);
  assert.equal(slice[8 * w + 8], 0);
  assert.equal(slice[0], 2);
});

test("a stroke leaves no gap between its discs, however fast the pointer moved", () => {
  const w = 64, h = 8, slice = new Uint8Array(w * h);
  paintSegment(slice, w, h, { x: 2, y: 4 }, { x: 60, y: 4 }, 1, 1);
  for (let x = 3; x <= 60; x++) assert.equal(slice[4 * w + x], 1, `x=${x}`);
});

function volume(nz, h, w) {
  return { pixels: new Float32Array(nz * h * w), labels: new Uint8Array(nz * h * w), shape: [nz, h, w] };
}

test("the fill grows over voxels of the seed's intensity and label, and stops at an edge", () => {
  const v = volume(1, 10, 10);
  // A bright 4 x 4 square on a dark background.
  for (let y = 3; y < 7; y++) for (let x = 3; x < 7; x++) v.pixels[y * 10 + x] = 100;
  const found = regionGrow({ ...v, seed: { x: 4, y: 4, z: 0 }, tolerance: 10 });
  assert.equal(found.filled, 16);
  assert.deepEqual(Array.from(found.idx).sort((a, b) => a - b), [33, 34, 35, 36, 43, 44, 45, 46, 53, 54, 55, 56, 63, 64, 65, 66]);
  // A voxel already labelled otherwise is a border too.
  v.labels[33] = 2;
  assert.equal(regionGrow({ ...v, seed: { x: 4, y: 4, z: 0 }, tolerance: 10 }).filled, 15);
});

test("a region that leaks past half the slice is refused, not filled", () => {
  const v = volume(1, 10, 10);  // uniform: everything is one region
  const found = regionGrow({ ...v, seed: { x: 1, y: 1, z: 0 }, tolerance: 5 });
  assert.deepEqual(found, { tooLarge: true, limit: 50 });
});

test("2-D stays on its slice; 3-D follows the region through the slices up to its limit", () => {
  const v = volume(3, 8, 8);
  for (let z = 0; z < 3; z++) for (let y = 2; y < 5; y++) for (let x = 2; x < 5; x++) v.pixels[z * 64 + y * 8 + x] = 50;
  const seed = { x: 3, y: 3, z: 1 };
  assert.equal(regionGrow({ ...v, seed, tolerance: 1 }).filled, 9);
  assert.equal(regionGrow({ ...v, seed, tolerance: 1, threeD: true }).filled, 27);
  assert.deepEqual(regionGrow({ ...v, seed, tolerance: 1, threeD: true, limit3d: 20 }), { tooLarge: true, limit: 20 });
  assert.equal(FILL_3D_LIMIT, 200000);
});

test("a seed outside the volume fills nothing", () => {
  const v = volume(1, 4, 4);
  assert.deepEqual(regionGrow({ ...v, seed: { x: 4, y: 0, z: 0 }, tolerance: 1 }), { filled: 0, idx: null });
});

test("slicesDiffer tells an edit that changed nothing", () => {
  assert.equal(slicesDiffer(new Uint8Array([1, 2]), new Uint8Array([1, 2])), false);
  assert.equal(slicesDiffer(new Uint8Array([1, 2]), new Uint8Array([1, 3])), true);
});
