// Every command of the page in one table: its keys and help line (the "?" overlay lists them in
// this order), when a key press means it (`keyTest`) and what it does (`perform`). The key handler
// runs the first action whose keyTest passes; pointer commands have help but no keyTest.
//
// keyTest(event, ctx) sees the KeyboardEvent and ctx = {candidatesShown, helpShown, team}; perform(event,
// ops) calls the page's operations (ops, assembled in app.js), so this table stays pure. `team:
// true` marks an action of team mode (accounts on; ctx.team), `team: false` one that team mode
// replaces: the help lists only the actions of the mode the page is in.

/** @typedef {{candidatesShown: boolean, helpShown: boolean, team: boolean, ratingTarget?: boolean}} KeyContext */
/** @typedef {Record<string, (...args: any[]) => unknown>} Ops the page's operations (app.js) */
/**
 * @typedef {object} Action
 * @property {string} name
 * @property {string} keys
 * @property {string} help
 * @property {(e: KeyboardEvent, ctx: KeyContext) => boolean} [keyTest]
 * @property {(e: KeyboardEvent, ops: Ops, ctx: KeyContext) => unknown} [perform]
 * @property {boolean} [preventDefault]
 * @property {boolean} [team]
 */

const plain = (/** @type {KeyboardEvent} */ e) => !(e.ctrlKey || e.metaKey || e.altKey);
const ctrl = (/** @type {KeyboardEvent} */ e) => e.ctrlKey || e.metaKey;
const keyIn = (/** @type {KeyboardEvent} */ e, /** @type {string[]} */ keys) =>
  keys.includes(e.key);
/**
 * The digit 1..9 of a key by its position (Shift+1 is still 1), or null.
 * @param {KeyboardEvent} e
 * @returns {number | null}
 */
export const digitOf = (e) => {
  const m = /^Digit([1-9])$/.exec(e.code);
  return m ? Number(m[1]) : null;
};

/** @type {Action[]} */
export const ACTIONS = [
  { name: "point", keys: "Left click", help: "add a foreground point" },
  { name: "backgroundPoint", keys: "Right click / Shift+click", help: "add a background point" },
  { name: "box", keys: "Drag", help: "draw a box (combines with points)" },
  {
    name: "cycleCandidate",
    keys: "Tab / Shift+Tab",
    help: "next / previous mask candidate after one click",
    keyTest: (e, ctx) => plain(e) && e.key === "Tab" && ctx.candidatesShown, // else: ordinary focus navigation
    preventDefault: true,
    perform: (e, ops) => ops.cycleCandidate(e.shiftKey ? -1 : 1),
  },
  {
    name: "rateMask",
    keys: "1 … 9, 0",
    help: "rate the mask whose row the pointer is over (masks panel): 1 nonsense … 0 = 10 pixel-perfect",
    keyTest: (e, ctx) => plain(e) && !!ctx.ratingTarget && /^Digit[0-9]$/.test(e.code),
    perform: (e, ops) => ops.rateHovered(e.code === "Digit0" ? 10 : digitOf(e)),
  },
  {
    name: "pickCandidate",
    keys: "1 2 3",
    help: "pick a mask candidate (while the candidates show)",
    keyTest: (e, ctx) => plain(e) && !e.shiftKey && ctx.candidatesShown && (digitOf(e) ?? 4) <= 3,
    perform: (e, ops) => ops.pickCandidateKey(digitOf(e)),
  },
  {
    name: "pickCategory",
    keys: "1 … 9",
    help: "pick a category (Shift+digit: always the category)",
    keyTest: (e) => plain(e) && digitOf(e) !== null,
    perform: (e, ops) => ops.selectCategoryKey(digitOf(e)),
  },
  {
    name: "accept",
    keys: "Enter",
    help: "accept the mask with the current category",
    keyTest: (e) => plain(e) && e.key === "Enter",
    preventDefault: true,
    perform: (e, ops) => ops.accept(),
  },
  {
    name: "clear",
    keys: "Esc",
    help: "clear the current object (or leave editing; with the brush or eraser: back to clicking)",
    // With the help open, Esc closes it (whatever the modifiers).
    keyTest: (e, ctx) => e.key === "Escape" && (ctx.helpShown || plain(e)),
    perform: (e, ops, ctx) => (ctx.helpShown ? ops.toggleHelp(false) : ops.escape()),
  },
  {
    name: "brush",
    keys: "B",
    help: "brush: a left drag paints into the current mask (again, or Esc: back to clicking)",
    keyTest: (e) => plain(e) && keyIn(e, ["b", "B"]),
    perform: (e, ops) => ops.setTool("brush"),
  },
  {
    name: "eraser",
    keys: "E",
    help: "eraser: a left drag cuts out of the current mask (again, or Esc: back to clicking)",
    keyTest: (e) => plain(e) && keyIn(e, ["e", "E"]),
    perform: (e, ops) => ops.setTool("erase"),
  },
  {
    name: "brushSize",
    keys: "[ / ]",
    help: "smaller / larger brush and eraser (the ring shows its size)",
    keyTest: (e) => plain(e) && keyIn(e, ["[", "]"]),
    perform: (e, ops) => ops.resizeBrush(e.key === "]" ? 1.25 : 0.8),
  },
  {
    name: "fillHoles",
    keys: "O",
    help: "fill the current mask's holes smaller than the project's limit (masks panel)",
    keyTest: (e) => plain(e) && keyIn(e, ["o", "O"]),
    perform: (e, ops) => ops.clean("fillHoles"),
  },
  {
    name: "dropIslands",
    keys: "I",
    help: "drop the current mask's separate parts smaller than the project's limit",
    keyTest: (e) => plain(e) && keyIn(e, ["i", "I"]),
    perform: (e, ops) => ops.clean("dropIslands"),
  },
  {
    name: "keepLargest",
    keys: "L",
    help: "keep only the current mask's largest part",
    keyTest: (e) => plain(e) && keyIn(e, ["l", "L"]),
    perform: (e, ops) => ops.clean("keepLargest"),
  },
  {
    name: "undoRedo",
    keys: "Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y)",
    help: "undo / redo a prompt, a brush / eraser stroke, or (with no object in progress) an accept, deletion or category change of a mask",
    keyTest: (e) => ctrl(e) && keyIn(e, ["z", "Z", "y", "Y"]),
    preventDefault: true,
    perform: (e, ops) => (e.shiftKey || keyIn(e, ["y", "Y"]) ? ops.redo() : ops.undo()),
  },
  { name: "zoom", keys: "Wheel", help: "zoom at the cursor" },
  {
    name: "pan",
    keys: "Space+drag / middle drag",
    help: "pan",
    keyTest: (e) => plain(e) && e.key === " ",
    preventDefault: true,
    perform: (e, ops) => ops.startPanKey(),
  },
  {
    name: "fit",
    keys: "F or 0",
    help: "fit the image",
    keyTest: (e) => plain(e) && keyIn(e, ["f", "F", "0"]),
    perform: (e, ops) => ops.fit(),
  },
  {
    name: "actualSize",
    keys: "Z",
    help: "zoom to 1:1 (one image pixel per screen pixel)",
    keyTest: (e) => plain(e) && keyIn(e, ["z", "Z"]),
    perform: (e, ops) => ops.actualSize(),
  },
  {
    name: "minimap",
    keys: "M",
    help: "show / hide the minimap of a large image (click or drag in it to move the view)",
    keyTest: (e) => plain(e) && keyIn(e, ["m", "M"]),
    perform: (e, ops) => ops.toggleMinimap(),
  },
  {
    name: "zoomStep",
    keys: "+ / -",
    help: "zoom in / out",
    keyTest: (e) => plain(e) && keyIn(e, ["+", "=", "-", "_"]),
    perform: (e, ops) => ops.zoomBy(keyIn(e, ["+", "="]) ? 1.25 : 0.8),
  },
  {
    name: "stepImage",
    keys: "N / PageDown, P / PageUp",
    help: "next / previous image",
    keyTest: (e) => plain(e) && keyIn(e, ["n", "N", "PageDown", "p", "P", "PageUp"]),
    preventDefault: true,
    perform: (e, ops) => ops.step(keyIn(e, ["n", "N", "PageDown"]) ? 1 : -1),
  },
  {
    name: "nextWork",
    keys: "W",
    help: "next image: the server hands you one no one else holds",
    team: true,
    keyTest: (e, ctx) => plain(e) && ctx.team && keyIn(e, ["w", "W"]),
    perform: (e, ops) => ops.nextWork(),
  },
  {
    name: "finish",
    keys: "D",
    help: "finish the image (done, ready for review) and take the next one",
    team: true,
    keyTest: (e, ctx) => plain(e) && ctx.team && keyIn(e, ["d", "D"]),
    perform: (e, ops) => ops.finish(),
  },
  {
    name: "done",
    keys: "D",
    help: "mark the image done (again: not done)",
    team: false,
    keyTest: (e) => plain(e) && keyIn(e, ["d", "D"]),
    perform: (e, ops) => ops.toggleDone(),
  },
  {
    name: "toggleMasks",
    keys: "H",
    help: "hide / show the accepted masks",
    keyTest: (e) => plain(e) && keyIn(e, ["h", "H"]),
    perform: (e, ops) => ops.toggleAnnotations(),
  },
  {
    name: "propose",
    keys: "G",
    help: "propose: automatic masks for this image (stage 2, semi-automatic)",
    keyTest: (e) => plain(e) && keyIn(e, ["g", "G"]),
    perform: (e, ops) => ops.propose(),
  },
  {
    name: "moveProposalCursor",
    keys: "J / K",
    help: "next / previous proposal",
    keyTest: (e) => plain(e) && keyIn(e, ["j", "J", "k", "K"]),
    perform: (e, ops) => ops.moveProposalCursor(keyIn(e, ["j", "J"]) ? 1 : -1),
  },
  {
    name: "acceptProposal",
    keys: "A",
    help: "accept the highlighted proposal with the current category (while refining it: as Enter)",
    keyTest: (e) => plain(e) && keyIn(e, ["a", "A"]),
    perform: (e, ops) => ops.acceptTarget(),
  },
  {
    name: "rejectProposal",
    keys: "X",
    help: "reject the highlighted proposal",
    keyTest: (e) => plain(e) && keyIn(e, ["x", "X"]),
    perform: (e, ops) => ops.rejectTarget(),
  },
  {
    name: "refineProposal",
    keys: "R",
    help: "refine the highlighted proposal with points (Enter saves, Esc leaves it)",
    keyTest: (e) => plain(e) && keyIn(e, ["r", "R"]),
    perform: (e, ops) => ops.refineTarget(),
  },
  {
    name: "toggleUncovered",
    keys: "U",
    help: "show / hide the area no accepted mask covers",
    keyTest: (e) => plain(e) && keyIn(e, ["u", "U"]),
    perform: (e, ops) => ops.toggleUncovered(),
  },
  {
    name: "hoverPreview",
    keys: "V",
    help: "hover preview on / off: the mask a click would give, shown faintly where the pointer rests",
    keyTest: (e) => plain(e) && keyIn(e, ["v", "V"]),
    perform: (e, ops) => ops.toggleHoverPreview(),
  },
  {
    name: "help",
    keys: "?",
    help: "show / hide this help",
    keyTest: (e) => e.key === "?",
    perform: (e, ops) => ops.toggleHelp(),
  },
];

/**
 * The actions the help lists: those of team mode (accounts on) or of single-user mode.
 * @param {unknown} team
 */
export function actionsFor(team, actions = ACTIONS) {
  return actions.filter((a) => a.team === undefined || a.team === !!team);
}

/**
 * The action a key press means, or null.
 * @param {KeyboardEvent} event
 * @param {KeyContext} ctx
 */
export function actionForKey(event, ctx, actions = ACTIONS) {
  return actions.find((a) => a.keyTest?.(event, ctx)) ?? null;
}
