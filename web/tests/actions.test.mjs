import assert from "node:assert/strict";
import { test } from "node:test";
import { ACTIONS, actionForKey, actionsFor } from "../js/actions.js";

/** A KeyboardEvent's fields as the actions read them. */
const key = (k, { code = "", shift = false, ctrl = false, alt = false } = {}) => ({
  key: k,
  code,
  shiftKey: shift,
  ctrlKey: ctrl,
  metaKey: false,
  altKey: alt,
});
const ctx = (candidatesShown = false, helpShown = false) => ({ candidatesShown, helpShown });
const nameFor = (event, c = ctx()) => actionForKey(event, c)?.name ?? null;

test("every action has keys and a help line; names are unique", () => {
  const names = ACTIONS.map((a) => a.name);
  assert.equal(new Set(names).size, names.length);
  for (const a of ACTIONS) {
    assert.ok(a.keys && a.help, a.name);
    assert.equal(!a.keyTest, !a.perform, `${a.name}: keyTest and perform go together`);
  }
});

test("digits 1-3 pick a candidate while the candidates show, else (and with Shift) a category", () => {
  assert.equal(nameFor(key("2", { code: "Digit2" }), ctx(true)), "pickCandidate");
  assert.equal(nameFor(key("2", { code: "Digit2" }), ctx(false)), "pickCategory");
  assert.equal(nameFor(key("@", { code: "Digit2", shift: true }), ctx(true)), "pickCategory");
  assert.equal(nameFor(key("5", { code: "Digit5" }), ctx(true)), "pickCategory");
  assert.equal(nameFor(key("0", { code: "Digit0" })), "fit");
});

test("Tab cycles candidates only while they show (else it moves the focus)", () => {
  assert.equal(nameFor(key("Tab"), ctx(true)), "cycleCandidate");
  assert.equal(nameFor(key("Tab"), ctx(false)), null);
});

test("Ctrl+Z undoes, Ctrl+Shift+Z and Ctrl+Y redo; other Ctrl or Alt keys mean nothing", () => {
  const undoRedo = ACTIONS.find((a) => a.name === "undoRedo");
  const calls = [];
  const ops = { undo: () => calls.push("undo"), redo: () => calls.push("redo") };
  for (const e of [
    key("z", { ctrl: true }),
    key("Z", { ctrl: true, shift: true }),
    key("y", { ctrl: true }),
  ]) {
    assert.equal(nameFor(e), "undoRedo");
    undoRedo.perform(e, ops, ctx());
  }
  assert.deepEqual(calls, ["undo", "redo", "redo"]);
  assert.equal(nameFor(key("Enter", { ctrl: true })), null);
  assert.equal(nameFor(key("a", { alt: true })), null);
  assert.equal(nameFor(key("1", { code: "Digit1", ctrl: true })), null);
});

test("Esc closes the help when it shows, else clears the object", () => {
  const clear = ACTIONS.find((a) => a.name === "clear");
  const calls = [];
  const ops = {
    toggleHelp: (show) => calls.push(`help ${show}`),
    escape: () => calls.push("escape"),
  };
  clear.perform(key("Escape"), ops, ctx(false, true));
  clear.perform(key("Escape"), ops, ctx(false, false));
  assert.deepEqual(calls, ["help false", "escape"]);
  assert.equal(nameFor(key("Escape", { ctrl: true }), ctx(false, true)), "clear");
  assert.equal(nameFor(key("Escape", { ctrl: true }), ctx(false, false)), null);
});

test("letters and named keys map to their actions", () => {
  const expected = {
    Enter: "accept",
    " ": "pan",
    f: "fit",
    "+": "zoomStep",
    "-": "zoomStep",
    n: "stepImage",
    PageUp: "stepImage",
    d: "done",
    H: "toggleMasks",
    g: "propose",
    j: "moveProposalCursor",
    K: "moveProposalCursor",
    a: "acceptProposal",
    x: "rejectProposal",
    r: "refineProposal",
    u: "toggleUncovered",
    "?": "help",
    q: null,
  };
  for (const [k, name] of Object.entries(expected)) assert.equal(nameFor(key(k)), name, k);
});

test("team mode: W takes the next image, D finishes it; single-user mode: W is nothing, D toggles done", () => {
  const team = { candidatesShown: false, helpShown: false, team: true };
  assert.equal(nameFor(key("w"), team), "nextWork");
  assert.equal(nameFor(key("D", { shift: true }), team), "finish");
  assert.equal(nameFor(key("w")), null);
  assert.equal(nameFor(key("d")), "done");
});

test("the help lists each mode's actions: one D line either way, W only with accounts", () => {
  const names = (team) => actionsFor(team).map((a) => a.name);
  assert.ok(names(true).includes("nextWork") && names(true).includes("finish"));
  assert.ok(!names(true).includes("done"));
  assert.deepEqual(
    names(false),
    ACTIONS.filter((a) => a.team !== true).map((a) => a.name),
  );
  assert.ok(names(false).includes("done") && !names(false).includes("nextWork"));
});
