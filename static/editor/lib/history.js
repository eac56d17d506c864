/*
 * Undo and redo of mask edits (pure). An entry is whatever the editor records (a slice
 * before/after, or the voxel indices a fill touched); this keeps their order and limit.
 */

export class History {
  constructor(limit = 100) {
    this.limit = limit;
    this.undoStack = [];
    this.redoStack = [];
  }

  /** Records a new edit: the oldest one goes past the limit, and redo is no longer possible. */
  push(entry) {
    this.undoStack.push(entry);
    if (this.undoStack.length > this.limit) this.undoStack.shift();
    this.redoStack.length = 0;
  }

  /** The edit to undo (moved to the redo stack), or null. */
  undo() {
    const entry = this.undoStack.pop();
    if (!entry) return null;
    this.redoStack.push(entry);
    return entry;
  }

  /** The edit to redo (moved back to the undo stack), or null. */
  redo() {
    const entry = this.redoStack.pop();
    if (!entry) return null;
    this.undoStack.push(entry);
    return entry;
  }

  /** Forgets the edits ``predicate`` selects (e.g. of a series reloaded from the server). */
  drop(predicate) {
    this.undoStack = this.undoStack.filter((e) => !predicate(e));
    this.redoStack = this.redoStack.filter((e) => !predicate(e));
  }

  get canUndo() { return this.undoStack.length > 0; }

  get canRedo() { return this.redoStack.length > 0; }
}

/**
 * Puts an entry's ``snapshot`` (its ``before`` or ``after``) back into a label volume:
 * a sparse entry (``idx``: the voxels a fill touched) takes one value per voxel or one for
 * all; a slice entry takes the whole slice. Returns the changed series.
 */
export function applySnapshot(entry, snapshot) {
  if (entry.idx) {
    const labels = entry.s.labels;
    for (let k = 0; k < entry.idx.length; k++) {
      labels[entry.idx[k]] = typeof snapshot === "number" ? snapshot : snapshot[k];
    }
  } else {
    entry.s.slice(entry.z).set(snapshot);
  }
  return entry.s;
}
