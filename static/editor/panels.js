/*
 * The editor's side panels: the annotations' review state and the workflow buttons (submit,
 * approve, return), the case's labelling (etiology, confirmation, note), and the revision
 * history of the active series with restore.
 *
 * ``createPanels(ed)`` binds them to the editor ``ed``: its configuration, state, series and
 * viewports, and the calls they make back into it (save, JSON requests, mask loading, the
 * status line). Nothing here holds state of its own.
 */
import { gettext, interpolate } from "./lib/i18n.js";

const $ = (sel, root) => (root || document).querySelector(sel);

const STATE_NAMES = {
  draft: gettext("Draft"), submitted: gettext("Submitted"), approved: gettext("Approved"), returned: gettext("Returned"),
};
export function stateDisplay(st) { return STATE_NAMES[st] || st; }

export function createPanels(ed) {
  const { cfg, state, series, viewports } = ed;

  function renderWorkflow() {
    const list = $("#workflow-list");
    if (!list) return;
    list.textContent = "";
    for (const vp of viewports) {
      const s = vp.s, a = s.annotation;
      const li = document.createElement("li");
      li.dataset.series = s.id;
      const kind = document.createElement("strong");
      kind.textContent = s.kind + " ";
      li.appendChild(kind);
      const badge = document.createElement("span");
      badge.className = "badge state-" + (a ? a.state : "none");
      badge.textContent = a && a.revision ? stateDisplay(a.state) : gettext("No mask");
      li.appendChild(badge);
      if (a && a.revision) {
        const rev = document.createElement("span");
        rev.className = "muted";
        rev.textContent = " " + interpolate(gettext("revision %s"), [a.revision]);
        li.appendChild(rev);
      }
      if (a && a.review_comment && (a.state === "returned" || a.state === "approved")) {
        const c = document.createElement("div");
        c.className = "review-comment";
        c.textContent = interpolate(gettext("%(who)s: %(comment)s"), { who: a.reviewer || gettext("Reviewer"), comment: a.review_comment }, true);
        li.appendChild(c);
      }
      list.appendChild(li);
      vp.updateInfo(vp.displayed ? vp.viewport() : { voi: { windowWidth: s.conf.window[1], windowCenter: s.conf.window[0] }, scale: 1 });
    }
    updateWorkflowButtons();
  }

  /**
   * After an action the page tells the truth: a button is enabled only when its action can
   * succeed now (no 409 on a second click), and the heading names the state.
   */
  function updateWorkflowButtons() {
    const all = Object.values(series);
    const anns = all.map((s) => s.annotation).filter((a) => a && a.revision);
    const submit = $("#submit-button");
    if (submit) {
      const can = all.some((s) => s.dirty) || anns.some((a) => a.state === "draft" || a.state === "returned");
      submit.disabled = !can;
      submit.title = can ? "" : gettext("Submitted: waiting for review. A change returns the mask to draft.");
    }
    const waiting = anns.some((a) => a.state === "submitted");
    for (const id of ["#approve-button", "#return-button"]) {
      const b = $(id);
      if (b) { b.disabled = !waiting; b.title = waiting ? "" : gettext("Nothing is waiting for review here."); }
    }
    const heading = $("#workflow-panel h3");
    if (heading && cfg.mode === "review") {
      heading.textContent = waiting ? gettext("Under review")
        : anns.length && anns.every((a) => a.state === "approved") ? gettext("Approved")
        : anns.some((a) => a.state === "returned") ? gettext("Returned to the annotator") : gettext("Annotations");
    } else if (heading && cfg.mode === "edit") {
      heading.textContent = anns.length && anns.every((a) => a.state === "submitted") ? gettext("My annotation: submitted")
        : anns.length && anns.every((a) => a.state === "approved") ? gettext("My annotation: approved")
        : gettext("My annotation");
    }
  }

  function bindWorkflow() {
    const status = $("#workflow-status");
    const say = (t) => { if (status) status.textContent = t; };
    const submit = $("#submit-button");
    if (submit) submit.addEventListener("click", async () => {
      await ed.save();
      if (Object.values(series).some((s) => s.dirty)) return;
      const todo = Object.values(series).filter((s) => s.annotation && s.annotation.revision &&
        (s.annotation.state === "draft" || s.annotation.state === "returned"));
      if (!todo.length) { say(gettext("Nothing to submit: save a mask first.")); return; }
      try {
        for (const s of todo) {
          await ed.jsonFetch(cfg.urls.annotation.replace("{id}", s.annotation.id) + "submit/", "POST", {});
          await ed.refreshAnnotation(s);
        }
        say(gettext("Submitted for review."));
      } catch (err) { say(err.message); }
    });
    const act = async (verb) => {
      const comment = ($("#review-comment") || {}).value || "";
      const todo = Object.values(series).filter((s) => s.annotation && s.annotation.state === "submitted");
      if (!todo.length) { say(gettext("Nothing is waiting for review here.")); return; }
      try {
        for (const s of todo) {
          await ed.jsonFetch(cfg.urls.annotation.replace("{id}", s.annotation.id) + verb + "/", "POST", { comment });
          await ed.refreshAnnotation(s);
        }
        say(verb === "approve" ? gettext("Approved.") : gettext("Returned to the annotator."));
      } catch (err) { say(err.message); }
    };
    const approve = $("#approve-button"), ret = $("#return-button");
    if (approve) approve.addEventListener("click", () => act("approve"));
    if (ret) ret.addEventListener("click", () => act("return"));
  }

  function bindLabelling() {
    const btn = $("#case-save");
    if (!btn) return;
    btn.addEventListener("click", async () => {
      const status = $("#case-status");
      try {
        await ed.jsonFetch(cfg.urls.labelling, "POST", {
          etiology: $("#case-etiology").value || null,
          confirmed: $("#case-confirmed").checked,
          note: $("#case-note").value,
        });
        cfg.case.etiology = $("#case-etiology").value || null;
        cfg.case.confirmed = $("#case-confirmed").checked;
        ed.checkEtiology();
        status.textContent = gettext("Case labelling saved.");
        status.className = "ok";
      } catch (err) {
        status.textContent = err.message;
        status.className = "error";
      }
    });
  }

  async function refreshRevisions() {
    const list = $("#revision-list");
    if (!list || !state.active) return;
    const s = state.active.s;
    $("#revisions-kind").textContent = s.kind;
    list.textContent = "";
    if (!s.annotation || !s.annotation.id) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = gettext("Not saved yet.");
      list.appendChild(li);
      return;
    }
    let revisions = [];
    try {
      revisions = await ed.jsonFetch(cfg.urls.annotation.replace("{id}", s.annotation.id) + "revisions/", "GET");
    } catch { return; }
    if (state.active.s !== s) return;
    for (const rev of revisions) {
      const li = document.createElement("li");
      li.dataset.revision = rev.number;
      // Date, time and decimal comma follow the interface language, not the browser's.
      const when = new Date(rev.created_at).toLocaleString(document.documentElement.lang);
      const decimal = (x, d) => Number(x).toFixed(d).replace(".", get_format("DECIMAL_SEPARATOR"));
      li.textContent = interpolate(gettext("r%(n)s · %(when)s · %(who)s · %(ml)s ml"),
        { n: rev.number, when, who: rev.created_by || "—", ml: decimal(rev.total_ml, 2) }, true);
      li.title = Object.entries(rev.volumes_ml).map(([v, ml]) =>
        ((ed.labelByValue[v] || {}).title || v) + ": " + interpolate(gettext("%s ml"), [decimal(ml, 2)])).join("\n");
      if (cfg.can_annotate && rev.number !== s.annotation.revision) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "restore-button";
        b.textContent = gettext("Restore");
        b.addEventListener("click", () => restoreRevision(s, rev.number));
        li.appendChild(b);
      }
      list.appendChild(li);
    }
  }

  async function restoreRevision(s, number) {
    if (s.dirty && !window.confirm(gettext("Discard your unsaved changes on this series and restore the older revision?"))) return;
    try {
      const base = cfg.urls.annotation.replace("{id}", s.annotation.id);
      await ed.jsonFetch(base + "revisions/" + number + "/restore/", "POST", undefined, s.etag ? { "If-Match": s.etag } : {});
      await ed.loadMask(s, base + "mask.raw");
      s.dirty = false;
      state.history.drop((e) => e.s === s);
      ed.updateUndoButtons();
      await ed.refreshAnnotation(s);
      ed.updateSaveStatus(interpolate(gettext("Restored revision %s"), [number]));
      viewports.forEach((v) => v.render());
      refreshRevisions();
    } catch (err) {
      if (err.status === 412) ed.showConflict({ conflict: err.data, series: s });
      else ed.setSaveStatus(err.message, "error");
    }
  }

  return { renderWorkflow, updateWorkflowButtons, bindWorkflow, bindLabelling, refreshRevisions };
}
