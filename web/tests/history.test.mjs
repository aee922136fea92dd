import assert from "node:assert/strict";
import { test } from "node:test";
import { PromptHistory } from "../js/history.js";

test("undo, redo and a new prompt after undo", () => {
  const h = new PromptHistory();
  assert.equal(h.current, null);
  h.push("a");
  h.push("b");
  h.push("c");
  assert.equal(h.undo(), "b");
  assert.equal(h.undo(), "a");
  assert.equal(h.undo(), null);
  assert.equal(h.canUndo, false);
  assert.equal(h.redo(), "a");
  assert.equal(h.redo(), "b");
  h.push("d"); // drops "c"
  assert.equal(h.canRedo, false);
  assert.deepEqual(h.states, ["a", "b", "d"]);
  h.replace("e");
  assert.equal(h.current, "e");
  h.clear();
  assert.equal(h.current, null);
});
