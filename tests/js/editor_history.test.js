// Undo and redo of the slice editor (static/editor/lib/history.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { History, applySnapshot } from "../../static/editor/lib/history.js";

function series(nz, plane) {
  const labels = new Uint8Array(nz * plane);
  return { labels, slice: (z) => labels.subarray(z * plane, (z + 1) * plane) };
}

test("undo and redo walk the edits back and forth; a new edit clears redo", () => {
  const h = new History(10);
  assert.equal(h.undo(), null);
  h.push("a");
  h.push("b");
  assert.equal(h.undo(), "b");
  assert.ok(h.canRedo && h.canUndo);
  assert.equal(h.redo(), "b");
  assert.equal(h.redo(), null);
  h.undo();
  h.push("c");
  assert.equal(h.canRedo, false);
  assert.equal(h.undo(), "c");
  assert.equal(h.undo(), "a");
  assert.equal(h.canUndo, false);
});

test("the history keeps at most its limit, dropping the oldest", () => {
  const h = new History(3);
  ["a", "b", "c", "d"].forEach((e) => h.push(e));
  assert.deepEqual([h.undo(), h.undo(), h.undo(), h.undo()], ["d", "c", "b", null]);
});

test("drop forgets the edits of one series in both directions", () => {
  const h = new History(10);
  h.push({ s: 1 });
  h.push({ s: 2 });
  h.push({ s: 1 });
  h.undo();
  h.drop((e) => e.s === 1);
  assert.deepEqual(h.undoStack, [{ s: 2 }]);
  assert.deepEqual(h.redoStack, []);
});

test("a slice snapshot restores the whole slice, a sparse one only the voxels it names", () => {
  const s = series(2, 4);
  s.labels.set([1, 1, 1, 1, 2, 2, 2, 2]);
  applySnapshot({ s, z: 1, before: new Uint8Array([0, 0, 0, 0]) }, new Uint8Array([0, 3, 0, 3]));
  assert.deepEqual(Array.from(s.labels), [1, 1, 1, 1, 0, 3, 0, 3]);
  const fill = { s, idx: Int32Array.from([0, 2]), before: new Uint8Array([1, 1]), after: 5 };
  applySnapshot(fill, fill.after);  // redo of a fill: one value for every voxel
  assert.deepEqual(Array.from(s.labels.subarray(0, 4)), [5, 1, 5, 1]);
  applySnapshot(fill, fill.before);  // its undo: each voxel's own value
  assert.deepEqual(Array.from(s.labels.subarray(0, 4)), [1, 1, 1, 1]);
});
