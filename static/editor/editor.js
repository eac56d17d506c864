/*
 * Stroke AID slice editor: DWI / ADC / FLAIR side by side on Cornerstone, lesion masks painted
 * per series into a Uint8Array label volume (voxel value = label value, 0 = background).
 *
 * Images: a Cornerstone image loader for "strokeaid:<series id>:<z>" reads the series' whole
 * raw volume once (GET volume.raw: int16 or float32, z*y*x, C order) so window/level works on
 * the real values and scrolling never waits for the network.
 * Overlays: drawn by us after Cornerstone renders each image ("cornerstoneimagerendered"), in
 * Cornerstone's pixel coordinate system, from a small per-viewport canvas of the slice.
 * Saving: PUT mask.raw with the uint8 volume (gzip when the browser has CompressionStream) and
 * If-Match: the ETag of the revision we started from; 412 opens the conflict dialog.
 *
 * A native ES module: the pure parts (painting, flood fill, grids, undo history) live in
 * ./lib/ and are unit-tested with Node's test runner (static/editor/tests/); this file binds
 * them to Cornerstone, the page and the server.
 */
import { gather, sameGrid as sameGridOf, voxelMap } from "./lib/geometry.js";
import { History, applySnapshot as restoreSnapshot } from "./lib/history.js";
import { gettext, interpolate } from "./lib/i18n.js";
import { busiestSlice, lesionSlices, nextLesion } from "./lib/lesions.js";
import { jsonFetch as apiFetch, putMask } from "./lib/network.js";
import { paintDisc as paintDiscOn, paintSegment as paintSegmentOn, regionGrow, slicesDiffer } from "./lib/masks.js";
import { hexToRgb, labelLut, paintOverlay as paintOverlayOn } from "./lib/overlay.js";
import { createPanels, stateDisplay } from "./panels.js";
import { SeriesData } from "./series.js";

(function () {

  const cs = window.cornerstone;
  const cfgEl = document.getElementById("editor-config");
  if (!cs || !cfgEl) return;
  const cfg = JSON.parse(cfgEl.textContent);
  const csrfInput = document.querySelector("input[name=csrfmiddlewaretoken]");
  const csrf = csrfInput ? csrfInput.value : "";
  const AUTOSAVE_MS = window.STROKEAID_AUTOSAVE_MS !== undefined ? window.STROKEAID_AUTOSAVE_MS : 30000;
  const UNDO_LIMIT = 100;
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // ---- label colours ----------------------------------------------------------------------
  const labelByValue = {};
  cfg.labels.forEach((l) => { labelByValue[l.value] = l; });
  const rgbOf = new Array(256).fill(null);
  cfg.labels.forEach((l) => { rgbOf[l.value] = hexToRgb(l.color); });
  const lutFor = (alpha) => labelLut(rgbOf, alpha);

  // ---- state ----------------------------------------------------------------------------------
  // One etiology per case: the brush starts on the case's etiology label when it is set.
  function caseLabelValue() {
    const l = cfg.labels.find((x) => x.name === cfg.case.etiology);
    return l ? l.value : null;
  }
  const state = {
    tool: cfg.can_annotate ? "brush" : "wl",
    label: caseLabelValue() || (cfg.labels.length ? cfg.labels[0].value : 1),
    radius: 4,
    opacity: 0.45,
    outline: false,
    showMask: true,
    showPrediction: false,
    fillTolerance: 10,
    crossMask: "show",
    fill3d: false,
    sync: true,
    history: new History(UNDO_LIMIT),
    active: null,
    ready: false,
    saving: false,
    autosaveTimer: null,
  };
  const series = {};       // id -> SeriesData
  const viewports = [];    // Viewport objects in page order

  // ---- one mask across sequences ---------------------------------------------------------------
  /** The sequence whose mask the others show: DWI when the case has it. */
  function primarySeries() {
    const all = Object.values(series);
    return all.find((x) => x.kind === "DWI") || all[0] || null;
  }

  /** The grid of a series as ./lib/geometry.js takes it. */
  function gridOf(x) { return { shape: x.shape, affine: x.conf.affine }; }

  function sameGrid(a, b) { return a === b || sameGridOf(gridOf(a), gridOf(b)); }

  /**
   * Slice ``z`` of ``target``'s grid filled with ``source``'s labels: a view when the grids
   * match, else nearest-neighbour through the affines (the voxel map is cached per slice).
   */
  function crossSlice(source, target, z) {
    if (sameGrid(source, target)) return source.slice(z);
    target.crossMaps = target.crossMaps || {};
    const key = source.id + ":" + z;
    const map = target.crossMaps[key] || (target.crossMaps[key] = voxelMap(gridOf(source), gridOf(target), z));
    const out = target.crossOut || (target.crossOut = new Uint8Array(map.length));
    return gather(source.labels, map, out);
  }

  /** The series whose labels an edit on ``vp`` changes: the primary's in "edit" mode on a
   * shared grid (one mask for all sequences), else the viewport's own. */
  function editSeries(vp) {
    const primary = primarySeries();
    if (state.crossMask === "edit" && primary && primary !== vp.s && sameGrid(primary, vp.s)) return primary;
    return vp.s;
  }

  cs.registerImageLoader("strokeaid", (imageId) => {
    const [, sid, z] = imageId.split(":");
    const s = series[sid];
    return { promise: s.imageFor(Number(z), imageId), cancelFn: undefined };
  });

  // ---- viewports ------------------------------------------------------------------------------
  class Viewport {
    constructor(root, s) {
      this.root = root;
      this.el = $(".cs-element", root);
      // Right-drag is a tool gesture, not the browser's menu (a listener: the CSP forbids
      // inline handlers).
      this.el.addEventListener("contextmenu", (e) => e.preventDefault());
      this.s = s;
      this.z = s.firstZ;
      this.displayed = false;
      this.slider = $(".vp-slider", root);
      this.ov = document.createElement("canvas");
      this.ov.width = s.shape[2]; this.ov.height = s.shape[1];
      this.ovCtx = this.ov.getContext("2d");
      this.ovData = this.ovCtx.createImageData(s.shape[2], s.shape[1]);
      this.ov32 = new Uint32Array(this.ovData.data.buffer);
      this.pred = null;
      this.poly = null;      // freehand polygon being drawn, in pixel coordinates
      this.cursor = null;    // brush cursor position
      this.renderQueued = false;
      cs.enable(this.el);
      this.el.addEventListener("cornerstoneimagerendered", (e) => this.onRendered(e.detail));
      this.slider.addEventListener("input", () => this.setSlice(Number(this.slider.value), true));
    }

    imageId(z) { return "strokeaid:" + this.s.id + ":" + z; }

    async setSlice(z, sync) {
      z = Math.max(0, Math.min(this.s.shape[0] - 1, z));
      this.z = z;
      this.slider.value = String(z);
      const image = await cs.loadAndCacheImage(this.imageId(z));
      if (this.z !== z) return;  // a newer scroll won
      if (!this.displayed) {
        const vp = cs.getDefaultViewportForImage(this.el, image);
        vp.voi = { windowCenter: this.s.conf.window[0], windowWidth: this.s.conf.window[1] };
        this.orient(vp);
        cs.displayImage(this.el, image, vp);
        this.displayed = true;
      } else {
        cs.displayImage(this.el, image);
      }
      if (sync && state.sync) syncFrom(this);
    }

    render() {
      if (this.renderQueued || !this.displayed) return;
      this.renderQueued = true;
      requestAnimationFrame(() => { this.renderQueued = false; cs.updateImage(this.el); });
    }

    viewport() { return cs.getViewport(this.el); }

    paintOverlay(labels, out, lut, outline, dotted) {
      paintOverlayOn(labels, out, lut, this.s.shape[2], this.s.shape[1], outline, dotted);
    }

    onRendered(detail) {
      const ctx = detail.canvasContext;
      const ee = detail.enabledElement;
      ctx.save();
      cs.setToPixelCoordinateSystem(ee, ctx);
      ctx.imageSmoothingEnabled = false;
      const alpha = Math.round(state.opacity * 255);
      if (state.showPrediction && this.s.prediction) {
        // The model's answer: filled at the mask opacity in its label colours (outlined
        // with the mask when "Outline" is on); the mask is drawn over it.
        this.paintOverlay(this.s.prediction.subarray(this.z * this.s.sliceSize, (this.z + 1) * this.s.sliceSize),
          this.ov32, state.outline ? lutFor(230) : lutFor(alpha), state.outline, state.outline);
        this.ovCtx.putImageData(this.ovData, 0, 0);
        ctx.drawImage(this.ov, 0, 0);
      }
      const primary = primarySeries();
      if (state.showMask && state.crossMask !== "off" && primary && primary !== this.s) {
        // The primary sequence's mask (DWI) on this viewport: the same voxels when the grids
        // match, else resampled through both affines (nearest neighbour). Editable here in
        // "edit" mode on a shared grid (drawn filled); read-only otherwise (dotted outline).
        const shown = crossSlice(primary, this.s, this.z);
        if (shown) {
          const editable = state.crossMask === "edit" && sameGrid(primary, this.s);
          const outline = state.outline || !editable;
          this.paintOverlay(shown, this.ov32, outline ? lutFor(Math.max(alpha, 200)) : lutFor(alpha),
            outline, !editable);
          this.ovCtx.putImageData(this.ovData, 0, 0);
          ctx.drawImage(this.ov, 0, 0);
        }
      }
      if (state.showMask) {
        this.paintOverlay(this.s.slice(this.z), this.ov32,
          state.outline ? lutFor(Math.max(alpha, 200)) : lutFor(alpha), state.outline, false);
        this.ovCtx.putImageData(this.ovData, 0, 0);
        ctx.drawImage(this.ov, 0, 0);
      }
      const scale = detail.viewport.scale || 1;
      if (this.poly && this.poly.length > 1) {
        ctx.lineWidth = 1.5 / scale;
        ctx.strokeStyle = this.poly.erase ? "#ffffff" : (labelByValue[state.label] || {}).color || "#ffff00";
        ctx.setLineDash([4 / scale, 3 / scale]);
        ctx.beginPath();
        ctx.moveTo(this.poly[0].x, this.poly[0].y);
        for (const p of this.poly) ctx.lineTo(p.x, p.y);
        ctx.closePath();
        ctx.stroke();
      }
      if (this.cursor && (state.tool === "brush" || state.tool === "eraser") && cfg.can_annotate) {
        ctx.setLineDash([]);
        ctx.lineWidth = 1 / scale;
        ctx.strokeStyle = state.tool === "eraser" ? "#ffffff" : (labelByValue[state.label] || {}).color || "#ffff00";
        ctx.beginPath();
        ctx.arc(this.cursor.x, this.cursor.y, state.radius, 0, 2 * Math.PI);
        ctx.stroke();
      }
      ctx.restore();
      this.updateInfo(detail.viewport);
      if (!window.__strokeaid_first_render_ms) {
        window.__strokeaid_first_render_ms = performance.now();
        try { performance.mark("strokeaid-first-render"); } catch { /* old browsers */ }
        document.body.dataset.firstRender = "1";
      }
    }

    updateInfo(vp) {
      $(".vp-slice", this.root).textContent = interpolate(gettext("slice %(z)s / %(n)s"),
        { z: this.z + 1, n: this.s.shape[0] }, true);
      $(".vp-wl", this.root).textContent = interpolate(gettext("W %(w)s  L %(c)s"),
        { w: fmt(vp.voi.windowWidth), c: fmt(vp.voi.windowCenter) }, true);
      $(".vp-zoom", this.root).textContent = interpolate(gettext("zoom %(z)s×"), { z: vp.scale.toFixed(2) }, true);
      const a = this.s.annotation;
      $(".vp-annot", this.root).textContent = a ? a.state_display || a.state : "";
    }

    reset() {
      cs.reset(this.el);
      const vp = this.viewport();
      vp.voi = { windowCenter: this.s.conf.window[0], windowWidth: this.s.conf.window[1] };
      this.orient(vp);
      cs.setViewport(this.el, vp);
    }

    /**
     * Radiological display (cases.orientation): the stored slice is flipped, then turned, by
     * Cornerstone's own viewport transform, so overlays (drawn in pixel coordinates) and the
     * pointer (pageToPixel) follow and a stroke lands on the voxel under it.
     */
    orient(vp) {
      const d = this.s.conf.display || {};
      vp.hflip = !!d.hflip;
      vp.vflip = !!d.vflip;
      vp.rotation = d.rotation || 0;
    }

    resize() { if (this.displayed) cs.resize(this.el, true); else cs.resize(this.el); }
  }

  function fmt(v) {
    const a = Math.abs(v);
    return a >= 100 ? String(Math.round(v)) : a >= 1 ? v.toFixed(1) : v.toPrecision(3);
  }

  function syncFrom(src) {
    const p = src.s.position(src.z);
    for (const vp of viewports) {
      if (vp === src) continue;
      const z = vp.s.sliceAt(p);
      if (z !== vp.z) vp.setSlice(z, false);
    }
  }

  function setActive(vp) {
    if (state.active === vp) return;
    state.active = vp;
    viewports.forEach((v) => v.root.classList.toggle("active", v === vp));
    refreshRevisions();
  }

  // ---- editing ----------------------------------------------------------------------------------
  function markDirty(s) {
    s.dirty = true;
    s.version++;
    updateWorkflowButtons();
    if (state.crossMask !== "off") renderAll();  // other sequences show this mask too
    updateSaveStatus();
    scheduleAutosave();
    scheduleEtiologyCheck();
  }

  // ---- one etiology per case ------------------------------------------------------------------
  // A confirmed case's lesions all carry its etiology; the server refuses to submit or approve
  // a mask that mixes labels, so say it here, while drawing.
  let etiologyTimer = null;
  function scheduleEtiologyCheck() {
    clearTimeout(etiologyTimer);
    etiologyTimer = setTimeout(checkEtiology, 250);
  }

  function checkEtiology() {
    const box = $("#etiology-warning");
    if (!box) return;
    const expected = caseLabelValue();
    const found = new Set();
    if (expected !== null) {
      for (const s of Object.values(series)) {
        const seen = new Uint8Array(256);
        const arr = s.labels;
        for (let i = 0; i < arr.length; i++) seen[arr[i]] = 1;
        for (let v = 1; v < 256; v++) if (seen[v] && v !== expected) found.add(v);
      }
    }
    if (!found.size) { box.hidden = true; box.textContent = ""; return; }
    const names = Array.from(found).sort((a, b) => a - b)
      .map((v) => (labelByValue[v] || {}).title || String(v)).join(", ");
    const etiology = (labelByValue[expected] || {}).title || cfg.case.etiology;
    box.textContent = interpolate(cfg.case.confirmed
      ? gettext("One etiology per case: this mask has lesions labelled %(found)s, but the confirmed etiology is %(etiology)s. Relabel them or correct the etiology; submitting and approving are refused until then.")
      : gettext("One etiology per case: this mask has lesions labelled %(found)s, but the case's etiology is %(etiology)s."),
    { found: names, etiology }, true);
    box.hidden = false;
  }

  // ---- editing a reviewed mask -------------------------------------------------------------------
  // Editing a submitted or approved mask sends it back to draft (the reviewer did not see the
  // new voxels): ask once per series before the first change.
  function mayEdit(s) {
    const a = s.annotation;
    if (!a || s.editAcknowledged || (a.state !== "submitted" && a.state !== "approved")) return true;
    const ok = window.confirm(a.state === "approved"
      ? gettext("This mask is approved. Editing will return this mask to draft and it will need review again. Edit it?")
      : gettext("This mask is waiting for review. Editing will return this mask to draft and it will need review again. Edit it?"));
    if (ok) s.editAcknowledged = true;
    return ok;
  }

  // ---- lesion navigation ---------------------------------------------------------------------------
  /** Moves the active view to the next (dir = 1) or previous (-1) slice with a lesion. */
  function jumpLesion(dir) {
    const vp = state.active;
    if (!vp) return;
    const s = vp.s;
    const zs = lesionSlices(s.labels, s.sliceSize, state.showPrediction ? s.prediction : null);
    if (!zs.length) { setSaveStatus(gettext("No lesion in this series"), "clean"); return; }
    vp.setSlice(nextLesion(zs, vp.z, dir), true);
  }

  function pushUndo(entry) {
    state.history.push(entry);
    updateUndoButtons();
  }

  function beginEdit(vp) {
    const s = editSeries(vp);
    return { vp, s, z: vp.z, before: s.slice(vp.z).slice() };
  }

  function commitEdit(edit) {
    const after = edit.s.slice(edit.z);
    if (!slicesDiffer(after, edit.before)) return;
    pushUndo({ vp: edit.vp, s: edit.s, z: edit.z, before: edit.before, after: after.slice() });
    markDirty(edit.s);
  }

  function applySnapshot(entry, snapshot) {
    markDirty(restoreSnapshot(entry, snapshot));
    if (entry.vp.z !== entry.z) entry.vp.setSlice(entry.z, true); else entry.vp.render();
  }

  function undo() {
    const e = state.history.undo();
    if (!e) return;
    applySnapshot(e, e.before);
    updateUndoButtons();
  }

  function redo() {
    const e = state.history.redo();
    if (!e) return;
    applySnapshot(e, e.after);
    updateUndoButtons();
  }

  function updateUndoButtons() {
    const u = $("#undo"), r = $("#redo");
    if (u) u.disabled = !state.history.canUndo;
    if (r) r.disabled = !state.history.canRedo;
  }

  function paintDisc(s, z, cx, cy, r, value) {
    paintDiscOn(s.slice(z), s.shape[2], s.shape[1], cx, cy, r, value);
  }

  function paintSegment(s, z, a, b, r, value) {
    paintSegmentOn(s.slice(z), s.shape[2], s.shape[1], a, b, r, value);
  }

  function fillPolygon(s, z, pts, value) {
    const w = s.shape[2], h = s.shape[1];
    const c = document.createElement("canvas");
    c.width = w; c.height = h;
    const ctx = c.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.beginPath();
    ctx.moveTo(pts[0].x, pts[0].y);
    for (const p of pts) ctx.lineTo(p.x, p.y);
    ctx.closePath();
    ctx.fill();
    const alpha = ctx.getImageData(0, 0, w, h).data;
    const sl = s.slice(z);
    for (let i = 0; i < sl.length; i++) if (alpha[i * 4 + 3] >= 128) sl[i] = value;
  }

  /**
   * The flood fill's region from (x, y) on ``vp``'s slice (./lib/masks.js regionGrow): the
   * tolerance is a % of the viewport's window width, so it follows what the user sees.
   */
  function growFrom(vp, x, y) {
    const s = vp.s;
    if (!s.pixels) return { filled: 0, idx: null };
    return regionGrow({
      pixels: s.pixels,
      labels: editSeries(vp).labels,
      shape: s.shape,
      seed: { x, y, z: vp.z },
      tolerance: (state.fillTolerance / 100) * vp.viewport().voi.windowWidth / (s.slope || 1),
      threeD: state.fill3d,
    });
  }

  async function floodFill(vp, x, y, value) {
    if (!vp.s.pixels) await vp.s.loadVolume();
    const s = editSeries(vp);
    const status = $("#fill-status");
    const seedLabel = s.labels[vp.z * s.sliceSize + y * s.shape[2] + x];
    if (seedLabel === value) return;
    const found = growFrom(vp, x, y);
    if (found.tooLarge) {
      if (status) {
        status.textContent = interpolate(gettext("Not filled: the region grows past %(n)s voxels (a gap in the edge?). Lower the tolerance or close the outline."),
          { n: found.limit }, true);
      }
      return;
    }
    if (!found.idx || !found.idx.length) return;
    const before = new Uint8Array(found.idx.length);
    for (let k = 0; k < found.idx.length; k++) { before[k] = s.labels[found.idx[k]]; s.labels[found.idx[k]] = value; }
    pushUndo({ vp, s, z: vp.z, idx: found.idx, before, after: value });
    markDirty(s);
    if (status) status.textContent = interpolate(gettext("Filled %(n)s voxels."), { n: found.filled }, true);
    vp.render();
  }

  function clearSlice(vp) {
    if (!vp || !cfg.can_annotate || !state.ready || !mayEdit(editSeries(vp))) return;
    const edit = beginEdit(vp);
    edit.s.slice(vp.z).fill(0);
    commitEdit(edit);
    vp.render();
  }

  // ---- mouse ---------------------------------------------------------------------------------------
  function bindMouse(vp) {
    const el = vp.el;
    let drag = null;

    function pixel(e) { return cs.pageToPixel(el, e.pageX, e.pageY); }

    el.addEventListener("mousedown", (e) => {
      setActive(vp);
      el.focus({ preventScroll: true });
      e.preventDefault();
      const p = pixel(e);
      let mode;
      if (e.button === 2) mode = "wl";
      else if (e.button === 1 || (e.button === 0 && e.shiftKey && state.tool !== "scissors")) mode = "pan";
      else mode = state.tool;
      const editing = ["brush", "eraser", "scissors", "fill"].includes(mode);
      if (editing && (!cfg.can_annotate || !state.ready)) return;
      if (editing && !mayEdit(editSeries(vp))) return;
      drag = { mode, start: { x: e.pageX, y: e.pageY }, last: { x: e.pageX, y: e.pageY }, lastPixel: p };
      if (mode === "brush" || mode === "eraser") {
        drag.edit = beginEdit(vp);
        const value = mode === "eraser" ? 0 : state.label;
        drag.value = value;
        paintDisc(drag.edit.s, vp.z, p.x, p.y, state.radius, value);
        vp.render();
      } else if (mode === "scissors") {
        vp.poly = [p];
        vp.poly.erase = e.shiftKey || state.label === 0;
      } else if (mode === "fill") {
        floodFill(vp, Math.floor(p.x), Math.floor(p.y), state.label);
        drag = null;
      }
    });

    el.addEventListener("mousemove", (e) => {
      if (!drag) {
        vp.cursor = pixel(e);
        if (state.tool === "brush" || state.tool === "eraser") vp.render();
      }
    });
    el.addEventListener("mouseleave", () => { vp.cursor = null; vp.render(); });

    window.addEventListener("mousemove", (e) => {
      if (!drag) return;
      const dx = e.pageX - drag.last.x, dy = e.pageY - drag.last.y;
      drag.last = { x: e.pageX, y: e.pageY };
      const view = vp.viewport();
      if (drag.mode === "wl") {
        const step = Math.max(vp.s.conf.window[1], 1e-6) / 300;
        view.voi.windowWidth = Math.max(step, view.voi.windowWidth + dx * step);
        view.voi.windowCenter += dy * step;
        cs.setViewport(el, view);
      } else if (drag.mode === "pan") {
        view.translation.x += dx / view.scale;
        view.translation.y += dy / view.scale;
        cs.setViewport(el, view);
      } else if (drag.mode === "zoom") {
        view.scale = Math.max(0.1, Math.min(20, view.scale * Math.exp(-dy / 150)));
        cs.setViewport(el, view);
      } else if (drag.mode === "brush" || drag.mode === "eraser") {
        const p = pixel(e);
        paintSegment(drag.edit.s, vp.z, drag.lastPixel, p, state.radius, drag.value);
        drag.lastPixel = p;
        vp.cursor = p;
        vp.render();
      } else if (drag.mode === "scissors") {
        vp.poly.push(pixel(e));
        vp.render();
      }
    });

    window.addEventListener("mouseup", () => {
      if (!drag) return;
      if (drag.edit) commitEdit(drag.edit);
      if (drag.mode === "scissors" && vp.poly) {
        if (vp.poly.length > 2) {
          const edit = beginEdit(vp);
          fillPolygon(editSeries(vp), vp.z, vp.poly, vp.poly.erase ? 0 : state.label);
          commitEdit(edit);
        }
        vp.poly = null;
        vp.render();
      }
      drag = null;
    });

    el.addEventListener("wheel", (e) => {
      e.preventDefault();
      setActive(vp);
      if (e.ctrlKey || e.metaKey) {
        const view = vp.viewport();
        view.scale = Math.max(0.1, Math.min(20, view.scale * (e.deltaY < 0 ? 1.1 : 1 / 1.1)));
        cs.setViewport(el, view);
        return;
      }
      vp.setSlice(vp.z + (e.deltaY > 0 ? 1 : -1), true);
    }, { passive: false });
  }

  // ---- network ---------------------------------------------------------------------------------------
  async function loadMask(s, url, pending) {
    const r = await (pending || fetch(url, { credentials: "same-origin" }));
    if (!r.ok) throw new Error(gettext("Could not load the mask"));
    const buf = new Uint8Array(await r.arrayBuffer());
    if (buf.length !== s.labels.length) throw new Error(gettext("The stored mask has another shape"));
    s.labels.set(buf);
    const etag = r.headers.get("ETag");
    if (etag) s.etag = etag;
    scheduleEtiologyCheck();
    return s;
  }

  /** Opened from a prediction: show it and go to the slice where it is largest. */
  async function showPredictionAtLargest() {
    const pred = $("#toggle-prediction");
    pred.checked = true;
    state.showPrediction = true;
    await Promise.all(viewports.map((v) => loadPrediction(v.s)));
    const vp = viewports.find((v) => v.s.prediction);
    if (!vp) { renderAll(); return; }
    const best = busiestSlice(vp.s.prediction, vp.s.sliceSize);
    if (best !== null) await vp.setSlice(best, true);
    renderAll();
    document.body.dataset.predictionShown = "1";
  }

  async function loadPrediction(s) {
    if (s.prediction || !s.conf.prediction_url) return;
    const r = await fetch(s.conf.prediction_url, { credentials: "same-origin" });
    if (!r.ok) return;
    const buf = new Uint8Array(await r.arrayBuffer());
    if (buf.length === s.labels.length) s.prediction = buf;
    else console.warn("prediction of series", s.id, "has another shape: not shown");
  }

  function jsonFetch(url, method, body, extraHeaders) {
    return apiFetch(url, { method, body, headers: extraHeaders || {}, csrf });
  }

  async function saveSeries(s, etagOverride) {
    const version = s.version;
    const result = await putMask(s.conf.save_url, s.labels, { etag: etagOverride || s.etag, csrf });
    if (result.conflict) return { conflict: result.conflict, series: s };
    const data = result.data;
    window.__strokeaid_last_save_server_ms = result.serverMs;
    s.etag = data.etag;
    s.annotation = Object.assign({}, s.annotation || {}, {
      id: data.annotation, state: data.state, etag: data.etag, revision: data.revision.number,
      state_display: stateDisplay(data.state),
    });
    if (s.version === version) s.dirty = false;
    return { ok: true, data };
  }

  async function save(reason) {
    if (!cfg.can_annotate || !state.ready || state.saving) return;
    clearTimeout(state.autosaveTimer);
    const dirty = Object.values(series).filter((s) => s.dirty);
    if (!dirty.length) { updateSaveStatus(); return; }
    state.saving = true;
    setSaveStatus(gettext("Saving…"), "saving");
    const t0 = performance.now();
    try {
      for (const s of dirty) {
        const result = await saveSeries(s);
        if (result.conflict) { state.saving = false; showConflict(result); return; }
      }
      window.__strokeaid_last_save_ms = performance.now() - t0;
      state.saving = false;
      updateSaveStatus(reason === "auto" ? gettext("Autosaved") : gettext("Saved"));
      renderWorkflow();
      refreshRevisions();
      viewports.forEach((v) => v.render());
    } catch (err) {
      state.saving = false;
      setSaveStatus(interpolate(gettext("Not saved: %s"), [err.message]), "error");
    }
  }

  function scheduleAutosave() {
    clearTimeout(state.autosaveTimer);
    if (AUTOSAVE_MS > 0) state.autosaveTimer = setTimeout(() => save("auto"), AUTOSAVE_MS);
  }

  function setSaveStatus(text, cls) {
    const el = $("#save-status");
    if (!el) return;
    el.textContent = text;
    el.className = "save-status " + (cls || "");
  }

  function updateSaveStatus(savedText) {
    const dirty = Object.values(series).some((s) => s.dirty);
    updateWorkflowButtons();
    document.body.classList.toggle("has-unsaved", dirty);
    if (dirty) setSaveStatus(gettext("Unsaved changes"), "dirty");
    else setSaveStatus(savedText || gettext("All changes saved"), "clean");
  }

  // ---- conflict ------------------------------------------------------------------------------------
  let pendingConflict = null;
  function showConflict(result) {
    pendingConflict = result;
    setSaveStatus(gettext("Conflict: not saved"), "error");
    $("#conflict-text").textContent = interpolate(gettext(
      "A newer version of your %(kind)s mask (revision %(rev)s) was saved in another tab or by another client after you opened it. Nothing was overwritten."),
      { kind: result.series.kind, rev: (result.conflict.extra || {}).revision || "?" }, true);
    $("#conflict-dialog").hidden = false;
  }

  function bindConflict() {
    const dlg = $("#conflict-dialog");
    if (!dlg) return;
    $("#conflict-cancel").addEventListener("click", () => { dlg.hidden = true; updateSaveStatus(); });
    $("#conflict-reload").addEventListener("click", async () => {
      dlg.hidden = true;
      const s = pendingConflict.series;
      const a = s.annotation;
      await loadMask(s, cfg.urls.annotation.replace("{id}", a.id) + "mask.raw");
      s.dirty = false;
      state.history.drop((e) => e.s === s);
      updateUndoButtons();
      await refreshAnnotation(s);
      viewports.forEach((v) => v.render());
      updateSaveStatus(gettext("Reloaded the newer version"));
    });
    $("#conflict-copy").addEventListener("click", async () => {
      dlg.hidden = true;
      const s = pendingConflict.series;
      const current = (pendingConflict.conflict.extra || {}).current_etag;
      setSaveStatus(gettext("Saving…"), "saving");
      try {
        const result = await saveSeries(s, current || "*");
        if (result.conflict) { showConflict(result); return; }
      } catch (err) {
        setSaveStatus(interpolate(gettext("Not saved: %s"), [err.message]), "error");
        return;
      }
      renderWorkflow();
      refreshRevisions();
      if (Object.values(series).some((x) => x.dirty)) save(); else updateSaveStatus(gettext("Saved"));
    });
  }

  async function refreshAnnotation(s) {
    if (!s.annotation || !s.annotation.id) return;
    const a = await jsonFetch(cfg.urls.annotation.replace("{id}", s.annotation.id), "GET");
    s.annotation = Object.assign({}, s.annotation, { state: a.state, etag: a.etag, review_comment: a.review_comment,
      revision: a.revision_count, state_display: stateDisplay(a.state), reviewer: a.reviewer });
    if (cfg.mode === "edit" && !s.dirty) s.etag = a.etag;
    // A mask that went (back) to review asks again before the next change.
    if (a.state === "submitted" || a.state === "approved") s.editAcknowledged = false;
    renderWorkflow();
  }

  // ---- side panels (./panels.js) ------------------------------------------------------------------
  const { renderWorkflow, updateWorkflowButtons, bindWorkflow, bindLabelling, refreshRevisions } = createPanels({
    cfg, state, series, viewports, labelByValue,
    jsonFetch, save, refreshAnnotation, checkEtiology, loadMask,
    updateUndoButtons, updateSaveStatus, showConflict, setSaveStatus,
  });

  // ---- toolbar and keyboard ------------------------------------------------------------------------
  function setTool(tool) {
    if (!$('.tool[data-tool="' + tool + '"]')) return;
    state.tool = tool;
    $$(".tool").forEach((b) => b.classList.toggle("active", b.dataset.tool === tool));
    viewports.forEach((v) => { v.el.dataset.tool = tool; v.render(); });
  }

  function setLabel(value) {
    if (value !== 0 && !labelByValue[value]) return;
    state.label = value;
    $$(".label-button").forEach((b) => b.classList.toggle("active", Number(b.dataset.value) === value));
    if (value === 0 && state.tool === "brush") setTool("eraser");
    else if (value !== 0 && state.tool === "eraser") setTool("brush");
  }

  function setRadius(r) {
    state.radius = Math.max(1, Math.min(40, r));
    const input = $("#brush-radius");
    if (input) { input.value = String(state.radius); $("#brush-radius-value").textContent = String(state.radius); }
    viewports.forEach((v) => v.render());
  }

  function applyPreset(name, vp) {
    if (!vp) return;
    const [c, w] = vp.s.conf.window;
    const view = vp.viewport();
    if (name === "default") view.voi = { windowCenter: c, windowWidth: w };
    else if (name === "narrow") view.voi = { windowCenter: c + w * 0.15, windowWidth: w * 0.5 };
    else if (name === "wide") view.voi = { windowCenter: c, windowWidth: w * 2 };
    else if (name === "full") {
      const lo = vp.s.lo, hi = vp.s.hi;
      view.voi = { windowCenter: (lo + hi) / 2, windowWidth: Math.max(hi - lo, 1e-6) };
    }
    cs.setViewport(vp.el, view);
  }

  function toggleHelp(show) {
    const h = $("#help-overlay");
    h.hidden = show === undefined ? !h.hidden : !show;
  }

  function bindToolbar() {
    $$(".tool").forEach((b) => b.addEventListener("click", () => setTool(b.dataset.tool)));
    $$(".label-button").forEach((b) => b.addEventListener("click", () => setLabel(Number(b.dataset.value))));
    const tolerance = $("#fill-tolerance");
    const cross = $("#cross-mask");
    if (cross) cross.addEventListener("change", () => { state.crossMask = cross.value; renderAll(); });
    if (tolerance) {
      tolerance.addEventListener("input", () => {
        state.fillTolerance = Number(tolerance.value);
        $("#fill-tolerance-value").textContent = tolerance.value + " %";
      });
    }
    const fill3d = $("#fill-3d");
    if (fill3d) fill3d.addEventListener("change", () => { state.fill3d = fill3d.checked; });
    const radius = $("#brush-radius");
    if (radius) radius.addEventListener("input", () => setRadius(Number(radius.value)));
    $("#overlay-opacity").addEventListener("input", (e) => { state.opacity = Number(e.target.value) / 100; renderAll(); });
    $("#toggle-outline").addEventListener("change", (e) => { state.outline = e.target.checked; renderAll(); });
    $("#toggle-mask").addEventListener("change", (e) => { state.showMask = e.target.checked; renderAll(); });
    $("#sync-scroll").addEventListener("change", (e) => { state.sync = e.target.checked; });
    $("#wl-preset").addEventListener("change", (e) => applyPreset(e.target.value, state.active));
    const pred = $("#toggle-prediction");
    if (viewports.some((v) => v.s.conf.prediction_url)) {
      $("#prediction-toggle-wrap").hidden = false;
      pred.addEventListener("change", async () => {
        state.showPrediction = pred.checked;
        if (pred.checked) await Promise.all(viewports.map((v) => loadPrediction(v.s)));
        renderAll();
      });
      if (cfg.show_prediction) showPredictionAtLargest();
    }
    const on = (id, fn) => { const el = $(id); if (el) el.addEventListener("click", fn); };
    on("#undo", undo);
    on("#redo", redo);
    on("#clear-slice", () => clearSlice(state.active));
    on("#save-button", () => save());
    on("#help-button", () => toggleHelp());
    on("#lesion-prev", () => jumpLesion(-1));
    on("#lesion-next", () => jumpLesion(1));
    $$(".dialog-close").forEach((b) => b.addEventListener("click", () => toggleHelp(false)));
  }

  function renderAll() { viewports.forEach((v) => v.render()); }

  function bindKeyboard() {
    document.addEventListener("keydown", (e) => {
      const tag = (e.target.tagName || "").toLowerCase();
      const typing = tag === "textarea" || tag === "select" || (tag === "input" && !["range", "checkbox"].includes(e.target.type));
      const ctrl = e.ctrlKey || e.metaKey;
      if (ctrl && e.key.toLowerCase() === "s") { e.preventDefault(); save(); return; }
      if (typing) return;
      if (e.key === "Escape") {
        toggleHelp(false);
        viewports.forEach((v) => { v.poly = null; v.render(); });
        return;
      }
      if (e.key === "?") { e.preventDefault(); toggleHelp(); return; }
      const vp = state.active;
      if (ctrl && e.key.toLowerCase() === "z") { e.preventDefault(); if (e.shiftKey) redo(); else undo(); return; }
      if (ctrl && e.key.toLowerCase() === "y") { e.preventDefault(); redo(); return; }
      if (ctrl || e.altKey) return;
      const step = { ArrowUp: -1, ArrowDown: 1, PageUp: -5, PageDown: 5, ArrowLeft: -1, ArrowRight: 1 }[e.key];
      if (step !== undefined && vp) { e.preventDefault(); vp.setSlice(vp.z + step, true); return; }
      if (e.key === "Home" && vp) { e.preventDefault(); vp.setSlice(0, true); return; }
      if (e.key === "End" && vp) { e.preventDefault(); vp.setSlice(vp.s.shape[0] - 1, true); return; }
      if (/^[0-9]$/.test(e.key) && cfg.can_annotate) {
        const n = Number(e.key);
        if (n === 0) setLabel(0);
        else if (cfg.labels[n - 1]) setLabel(cfg.labels[n - 1].value);
        return;
      }
      const k = e.key.toLowerCase();
      if (k === "n") { e.preventDefault(); jumpLesion(e.shiftKey ? -1 : 1); return; }
      const tools = { b: "brush", e: "eraser", p: "scissors", f: "fill", w: "wl", m: "pan", z: "zoom" };
      if (tools[k]) { setTool(tools[k]); return; }
      if (e.key === "[") setRadius(state.radius - 1);
      else if (e.key === "]") setRadius(state.radius + 1);
      else if (k === "o") { const c = $("#toggle-outline"); c.checked = !c.checked; c.dispatchEvent(new Event("change")); }
      else if (k === "h") { const c = $("#toggle-mask"); c.checked = !c.checked; c.dispatchEvent(new Event("change")); }
      else if (k === "t") { const c = $("#toggle-prediction"); if (!$("#prediction-toggle-wrap").hidden) { c.checked = !c.checked; c.dispatchEvent(new Event("change")); } }
      else if (k === "r" && vp) vp.reset();
      else if ((e.key === "+" || e.key === "=") && vp) { const v = vp.viewport(); v.scale *= 1.2; cs.setViewport(vp.el, v); }
      else if (e.key === "-" && vp) { const v = vp.viewport(); v.scale /= 1.2; cs.setViewport(vp.el, v); }
      else if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); clearSlice(vp); }
    });
  }

  // ---- start ----------------------------------------------------------------------------------------
  function start() {
    for (const conf of cfg.series) series[conf.id] = new SeriesData(conf);
    $$(".viewport").forEach((root) => {
      const vp = new Viewport(root, series[root.dataset.series]);
      viewports.push(vp);
      bindMouse(vp);
    });
    if (!viewports.length) return;
    // The middle slice first; the busiest lesion slice once the masks are in (below).
    viewports.forEach((vp) => vp.setSlice(vp.z, false).catch((err) => setSaveStatus(err.message, "error")));
    setActive(viewports[0]);
    bindToolbar();
    bindKeyboard();
    bindConflict();
    bindWorkflow();
    bindLabelling();
    setTool(state.tool);
    if (cfg.can_annotate) setLabel(state.label);
    setRadius(state.radius);
    updateUndoButtons();
    Object.values(series).forEach((s) => s.first.then(() => s.loadVolume()).catch(() => null));
    const masks = Object.values(series).filter((s) => s.conf.mask_url)
      .map((s) => loadMask(s, s.conf.mask_url, s.prefetchedMask));
    const startZ = viewports[0].z;
    Promise.all(masks).then(() => {
      // The first question is "where is the stroke?": open on the slice with the most lesion
      // voxels (synchronised), unless the user scrolled while the masks were loading.
      const lead = viewports[0];
      const z = busiestSlice(lead.s.labels, lead.s.sliceSize);
      if (lead.z === startZ && z !== null && z !== lead.z) lead.setSlice(z, true);
      state.ready = true;
      document.body.dataset.editorReady = "1";
      updateSaveStatus(gettext("Ready"));
      renderWorkflow();
      renderAll();
      checkEtiology();
    }).catch((err) => setSaveStatus(err.message, "error"));
    window.addEventListener("resize", () => viewports.forEach((v) => v.resize()));
    window.addEventListener("beforeunload", (e) => {
      if (Object.values(series).some((s) => s.dirty)) { e.preventDefault(); e.returnValue = ""; return ""; }
      return undefined;
    });
  }

  // A small read-only handle for tests, the benchmark and debugging from the console.
  window.strokeaidEditor = {
    state,
    series,
    viewports,
    save,
    undo,
    redo,
    setTool,
    setLabel,
    setRadius,
    jumpLesion,
    viewport: (kind) => viewports.find((v) => v.s.kind === kind),
    /** What a viewport shows of the primary (DWI) mask on its slice ``z`` (a copy). */
    crossShown: (kind, z) => {
      const vp = viewports.find((v) => v.s.kind === kind);
      const primary = primarySeries();
      return Array.from(crossSlice(primary, vp.s, z));
    },
    countLabel: (kind, value, z) => {
      const vp = viewports.find((v) => v.s.kind === kind);
      const arr = z === undefined ? vp.s.labels : vp.s.slice(z);
      let n = 0;
      for (let i = 0; i < arr.length; i++) if (arr[i] === value) n++;
      return n;
    },
  };

  start();
}());
