/*
 * One series of the editor: its configuration, its label volume (Uint8Array, z*y*x, voxel value =
 * label value), and its voxels, which Cornerstone reads through ``imageFor``.
 *
 * The first slice comes alone (prefetched by the page when it can) so the picture shows at
 * once; the whole volume follows in one request (GET volume.raw: int16 or float32, C order),
 * so window/level works on the real values and scrolling never waits for the network.
 */
import { gettext, interpolate } from "./lib/i18n.js";

export class SeriesData {
  constructor(conf) {
    this.conf = conf;
    this.id = conf.id;
    this.kind = conf.kind;
    this.shape = conf.shape;               // [z, y, x]
    this.sliceSize = conf.shape[1] * conf.shape[2];
    this.labels = new Uint8Array(conf.shape[0] * this.sliceSize);
    this.prediction = null;
    this.annotation = conf.annotation;     // {id, state, etag, ...} or null
    this.etag = conf.annotation ? conf.annotation.etag : null;
    this.dirty = false;
    this.version = 0;
    this.pixels = null;
    // Stored values map onto Cornerstone's integer LUT domain. The bounds come from the
    // volume's recorded range, so the first slice and the whole volume agree exactly.
    const [lo, hi] = conf.range;
    this.isFloat = false;
    this.lo = lo; this.hi = hi > lo ? hi : lo + 1;
    this.slope = 1; this.intercept = 0;
    this.minStored = Math.floor(lo); this.maxStored = Math.max(Math.ceil(hi), Math.floor(lo) + 1);
    const pre = (window.__strokeaidPrefetch || {})[conf.id] || {};
    this.firstZ = pre.z !== undefined ? pre.z : Math.floor(conf.shape[0] / 2);
    this.first = this.fetchRaw(pre.slice || null, conf.slice_url.replace("{z}", this.firstZ), this.sliceSize);
    this.prefetchedMask = pre.mask || null;
    this.volume = null;
  }

  loadVolume() {
    if (!this.volume) {
      this.volume = this.fetchRaw(null, this.conf.volume_url, this.shape[0] * this.sliceSize)
        .then((pixels) => { this.pixels = pixels; return this; });
    }
    return this.volume;
  }

  /** Fetches raw voxels (int16 or float32, see X-Dtype) into Cornerstone's stored form. */
  async fetchRaw(pending, url, n) {
    const r = await (pending || fetch(url, { credentials: "same-origin" }));
    if (!r.ok) throw new Error(interpolate(gettext("Could not load %s images"), [this.kind]));
    const dtype = r.headers.get("X-Dtype") || "int16";
    const buf = await r.arrayBuffer();
    let data;
    if (dtype === "int16") data = new Int16Array(buf);
    else if (dtype === "uint16") data = new Uint16Array(buf);
    else if (dtype === "uint8") data = new Uint8Array(buf);
    else data = new Float32Array(buf);
    if (data.length !== n) throw new Error(interpolate(gettext("%s volume has an unexpected size"), [this.kind]));
    if (data instanceof Float32Array) {
      // Cornerstone's LUT indexes stored integers: floats (ADC in mm²/s, rescaled data) are
      // quantised to 16 bits over the volume's range and mapped back with slope/intercept,
      // so window/level still reads in real units.
      const span = this.hi - this.lo, k = 65535 / span, lo = this.lo;
      const q = new Uint16Array(n);
      for (let i = 0; i < n; i++) q[i] = (data[i] - lo) * k + 0.5;  // Uint16Array clamps
      this.isFloat = true;
      this.slope = span / 65535; this.intercept = lo;
      this.minStored = 0; this.maxStored = 65535;
      data = q;
    }
    return data;
  }

  imageFor(z, imageId) {
    if (this.pixels) return Promise.resolve(this.image(z, imageId, this.pixels.subarray(z * this.sliceSize, (z + 1) * this.sliceSize)));
    if (z === this.firstZ) return this.first.then((px) => this.image(z, imageId, px));
    return this.loadVolume().then(() => this.imageFor(z, imageId));
  }

  image(z, imageId, pixels) {
    const [, rows, cols] = this.shape;
    return {
      imageId,
      minPixelValue: this.minStored,
      maxPixelValue: this.maxStored,
      slope: this.slope,
      intercept: this.intercept,
      windowCenter: this.conf.window[0],
      windowWidth: this.conf.window[1],
      getPixelData: () => pixels,
      rows, columns: cols, height: rows, width: cols,
      color: false, rgba: false, invert: false,
      columnPixelSpacing: this.conf.spacing[2],
      rowPixelSpacing: this.conf.spacing[1],
      sizeInBytes: pixels.byteLength,
    };
  }

  slice(z) { return this.labels.subarray(z * this.sliceSize, (z + 1) * this.sliceSize); }

  /** Slice centre in scanner mm (affine: voxel x, y, z -> RAS). */
  position(z) {
    const a = this.conf.affine;
    const v = [this.shape[2] / 2, this.shape[1] / 2, z];
    return [0, 1, 2].map((r) => a[r][0] * v[0] + a[r][1] * v[1] + a[r][2] * v[2] + a[r][3]);
  }

  /** The slice of this series nearest to a point (along this series' slice normal). */
  sliceAt(p) {
    const a = this.conf.affine;
    const n = [a[0][2], a[1][2], a[2][2]];
    const o = this.position(0);
    const nn = n[0] * n[0] + n[1] * n[1] + n[2] * n[2] || 1;
    const k = ((p[0] - o[0]) * n[0] + (p[1] - o[1]) * n[1] + (p[2] - o[2]) * n[2]) / nn;
    return Math.max(0, Math.min(this.shape[0] - 1, Math.round(k)));
  }
}
