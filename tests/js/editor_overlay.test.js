// Mask overlays as pixels: colours packed for a little-endian ImageData, fill and outline.
import assert from "node:assert/strict";
import { test } from "node:test";

import { hexToRgb, labelLut, paintOverlay } from "../../static/editor/lib/overlay.js";

test("a label colour is packed as ABGR for a Uint32 view of RGBA bytes", () => {
  const rgbOf = [];
  rgbOf[2] = hexToRgb("#ff8000");
  const lut = labelLut(rgbOf, 128);
  const bytes = new Uint8Array(new Uint32Array([lut[2]]).buffer);
  // Little-endian (every machine a browser runs on): the bytes read R, G, B, A.
  assert.deepEqual(Array.from(bytes), [255, 128, 0, 128]);
  assert.equal(lut[0], 0, "background stays transparent");
  assert.deepEqual(Array.from(new Uint8Array(new Uint32Array([lut[7]]).buffer)), [255, 255, 255, 128],
    "a value without a label is white");
});

test("a malformed colour is white, not an exception", () => {
  assert.deepEqual(hexToRgb("red"), [255, 255, 255]);
  assert.deepEqual(hexToRgb(undefined), [255, 255, 255]);
  assert.deepEqual(hexToRgb("00ff7f"), [0, 255, 127]);
});

function square(w, h, x0, y0, size, value) {
  const labels = new Uint8Array(w * h);
  for (let y = y0; y < y0 + size; y++) for (let x = x0; x < x0 + size; x++) labels[y * w + x] = value;
  return labels;
}

test("filled, every lesion voxel is painted and nothing else", () => {
  const w = 10, h = 8;
  const labels = square(w, h, 2, 2, 4, 1);
  const lut = new Uint32Array(256).fill(0);
  lut[1] = 0xdeadbeef;
  const out = new Uint32Array(w * h).fill(7);
  paintOverlay(labels, out, lut, w, h, false, false);
  assert.equal(out.filter((v) => v === 0xdeadbeef).length, 16);
  assert.equal(out.filter((v) => v === 0).length, w * h - 16);
});

test("outlined, only the edge of a lesion is painted; dotted leaves every other edge voxel", () => {
  const w = 10, h = 8;
  const labels = square(w, h, 2, 2, 4, 1);
  const lut = new Uint32Array(256);
  lut[1] = 1;
  const out = new Uint32Array(w * h);
  paintOverlay(labels, out, lut, w, h, true, false);
  // A 4 x 4 square has 12 edge voxels and 4 inside.
  assert.equal(out.reduce((a, v) => a + v, 0), 12);
  assert.equal(out[3 * w + 3], 0, "the inside is left clear");
  const dotted = new Uint32Array(w * h);
  paintOverlay(labels, dotted, lut, w, h, true, true);
  assert.equal(dotted.reduce((a, v) => a + v, 0), 6);
  for (let i = 0; i < dotted.length; i++) if (dotted[i]) assert.equal(out[i], 1, "dots lie on the outline");
});

test("two labels touching each other both keep their edge at the border between them", () => {
  const w = 6, h = 3;
  const labels = new Uint8Array([
    0, 0, 0, 0, 0, 0,
    0, 1, 1, 2, 2, 0,
    0, 0, 0, 0, 0, 0,
  ]);
  const lut = new Uint32Array(256);
  lut[1] = 1; lut[2] = 2;
  const out = new Uint32Array(w * h);
  paintOverlay(labels, out, lut, w, h, true, false);
  assert.deepEqual(Array.from(out.subarray(w, 2 * w)), [0, 1, 1, 2, 2, 0]);
});
