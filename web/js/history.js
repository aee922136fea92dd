// Undo/redo of the prompts of the object being annotated. Each state is immutable:
// {prompt: {points, box}, result: decoder result reference or null, candidate}.

export class PromptHistory {
  constructor() {
    this.clear();
  }

  clear() {
    this.states = [];
    this.index = -1;
  }

  get current() {
    return this.index >= 0 ? this.states[this.index] : null;
  }

  /** Add a state after the current one; redo states beyond it are dropped. */
  push(state) {
    this.states = this.states.slice(0, this.index + 1);
    this.states.push(state);
    this.index = this.states.length - 1;
    return state;
  }

  /** Replace the current state (e.g. when its decoder result or chosen candidate arrives). */
  replace(state) {
    if (this.index < 0) return this.push(state);
    this.states[this.index] = state;
    return state;
  }

  get canUndo() {
    return this.index >= 0;
  }

  get canRedo() {
    return this.index < this.states.length - 1;
  }

  /** Step back; returns the new current state (null: the empty object). */
  undo() {
    if (this.canUndo) this.index--;
    return this.current;
  }

  redo() {
    if (this.canRedo) this.index++;
    return this.current;
  }
}
