/*
 * Mask overlays as pixels (pure: typed arrays in and out; no DOM).
 *
 * An overlay is drawn into a Uint32Array view of an ImageData (RGBA bytes): on little-endian
 * machines a Uint32 reads them as ABGR, so a label's colour is packed as
 * (alpha << 24) | (blue << 16) | (green << 8) | red.
 */

/** "#rrggbb" to [r, g, b] (white when the colour is missing or malformed). */
export function hexToRgb(hex) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "#ffffff");
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 255, 255];
}

/**
 * The 256-entry colour table of a label set at ``alpha`` (0-255): ``rgbOf[value]`` is a
 * label's [r, g, b] (unknown values are white); value 0 is transparent.
 */
export function labelLut(rgbOf, alpha) {
  const lut = new Uint32Array(256);
  for (let v = 1; v < 256; v++) {
    const c = rgbOf[v] || [255, 255, 255];
    lut[v] = (((alpha & 255) << 24) | (c[2] << 16) | (c[1] << 8) | c[0]) >>> 0;
  }
  return lut;
}

/**
 * Paints the ``w`` x ``h`` slice ``labels`` into ``out`` through ``lut``: filled, or only the
 * lesions' edges with ``outline`` (a voxel whose 4-neighbour has another label, or on the
 * border), every other edge voxel left out with ``dotted`` (a read-only mask).
 */
export function paintOverlay(labels, out, lut, w, h, outline, dotted) {
  if (!outline) {
    for (let i = 0; i < labels.length; i++) out[i] = lut[labels[i]];
    return;
  }
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      const i = row + x, v = labels[i];
      let edge = false;
      if (v !== 0) {
        edge = x === 0 || x === w - 1 || y === 0 || y === h - 1 ||
          labels[i - 1] !== v || labels[i + 1] !== v || labels[i - w] !== v || labels[i + w] !== v;
        if (edge && dotted && ((x + y) & 1)) edge = false;
      }
      out[i] = edge ? lut[v] : 0;
    }
  }
}
