// Where the lesions are: slices with a lesion, the busiest slice, lesion-to-lesion jumps.
import assert from "node:assert/strict";
import { test } from "node:test";

import { busiestSlice, lesionAreas, lesionSlices, nextLesion } from "../../static/editor/lib/lesions.js";

const SLICE = 4;  // 2 x 2 slices

function volume(areas) {
  const labels = new Uint8Array(areas.length * SLICE);
  areas.forEach((area, z) => { for (let i = 0; i < area; i++) labels[z * SLICE + i] = 1 + (i % 2); });
  return labels;
}

test("areas count lesion voxels of any label per slice", () => {
  assert.deepEqual(lesionAreas(volume([0, 3, 0, 4, 1]), SLICE), [0, 3, 0, 4, 1]);
});

test("a shown prediction adds its slices, without counting a voxel twice", () => {
  const labels = volume([0, 2, 0]);
  const prediction = volume([1, 2, 0]);
  assert.deepEqual(lesionSlices(labels, SLICE), [1]);
  assert.deepEqual(lesionSlices(labels, SLICE, prediction), [0, 1]);
  assert.deepEqual(lesionAreas(labels, SLICE, prediction), [1, 2, 0]);
});

test("the busiest slice is the first of the largest; none without a lesion", () => {
  assert.equal(busiestSlice(volume([1, 4, 2, 4]), SLICE), 1);
  assert.equal(busiestSlice(volume([0, 0, 0]), SLICE), null);
});

test("jumps go to the next or previous lesion slice and wrap around", () => {
  const slices = [2, 5, 9];
  assert.equal(nextLesion(slices, 0, 1), 2);
  assert.equal(nextLesion(slices, 2, 1), 5);
  assert.equal(nextLesion(slices, 9, 1), 2);
  assert.equal(nextLesion(slices, 5, -1), 2);
  assert.equal(nextLesion(slices, 2, -1), 9);
  assert.equal(nextLesion(slices, 7, -1), 5);
  assert.equal(nextLesion([], 3, 1), null);
});
