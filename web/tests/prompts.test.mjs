import assert from "node:assert/strict";
import { test } from "node:test";
import {
  bestCandidate,
  isAmbiguous,
  normalizeBox,
  pointInputs,
  promptFromJson,
  promptToJson,
  sameMaskFrom,
  samePrompt,
} from "../js/prompts.js";

const candidates = { single_mask_index: 0, multimask_indices: [1, 2, 3] };

test("points only: a padding point (0,0) with label -1 is appended", () => {
  const { coords, labels, count } = pointInputs(
    {
      points: [
        { x: 451, y: 300, label: 1 },
        { x: 0, y: 0, label: 0 },
      ],
      box: null,
    },
    [300, 451],
    1024,
  );
  assert.equal(count, 3);
  assert.deepEqual(Array.from(labels), [1, 0, -1]);
  assert.deepEqual(Array.from(coords), [1024, 681, 0, 0, 0, 0]);
});

test("box: two corners labelled 2 and 3 after the points, no padding point", () => {
  const { coords, labels, count } = pointInputs(
    { points: [{ x: 100, y: 100, label: 1 }], box: { x0: 0, y0: 0, x1: 451, y1: 300 } },
    [300, 451],
    1024,
  );
  assert.equal(count, 3);
  assert.deepEqual(Array.from(labels), [1, 2, 3]);
  assert.deepEqual(Array.from(coords.slice(2)), [0, 0, 1024, 681]);
});

test("one click is ambiguous and shows the best multimask candidate; anything else the single mask", () => {
  const iou = [0.5, 0.7, 0.9, 0.8];
  const one = { points: [{ x: 1, y: 1, label: 1 }], box: null };
  assert.equal(isAmbiguous(one), true);
  assert.equal(bestCandidate(iou, one, candidates), 2);
  const two = {
    points: [
      { x: 1, y: 1, label: 1 },
      { x: 2, y: 2, label: 0 },
    ],
    box: null,
  };
  assert.equal(bestCandidate(iou, two, candidates), 0);
  const box = { points: [], box: { x0: 0, y0: 0, x1: 5, y1: 5 } };
  assert.equal(isAmbiguous(box), false);
  assert.equal(bestCandidate(iou, box, candidates), 0);
});

test("boxes are normalised whatever the drag direction; prompts round-trip through JSON", () => {
  assert.deepEqual(normalizeBox(10, 20, 2, 4), { x0: 2, y0: 4, x1: 10, y1: 20 });
  const prompt = { points: [{ x: 1.5, y: 2.5, label: 1 }], box: { x0: 1, y0: 2, x1: 3, y1: 4 } };
  assert.deepEqual(promptFromJson(JSON.parse(JSON.stringify(promptToJson(prompt)))), prompt);
  assert.deepEqual(promptFromJson(null), { points: [], box: null });
});

test("a guessed prompt fits only the same points, labels and box", () => {
  const p = (x, label = 1, box = null) => ({ points: [{ x, y: 7.25, label }], box });
  assert.equal(samePrompt(p(3.5), p(3.5)), true);
  assert.equal(samePrompt(p(3.5), p(3.5000001)), false);
  assert.equal(samePrompt(p(3.5), p(3.5, 0)), false);
  assert.equal(samePrompt(p(3.5), p(3.5, 1, { x0: 0, y0: 0, x1: 1, y1: 1 })), false);
  assert.equal(
    samePrompt(p(3.5), { points: [...p(3.5).points, ...p(4).points], box: null }),
    false,
  );
});

test("a guessed mask input fits only the same mask: none, the same logits or the same candidate", () => {
  const logits = new Float32Array(4);
  assert.equal(sameMaskFrom(null, null), true);
  assert.equal(sameMaskFrom(null, { resultId: 3, candidate: null }), false);
  assert.equal(
    sameMaskFrom({ resultId: 3, candidate: null }, { resultId: 3, candidate: null }),
    true,
  );
  assert.equal(
    sameMaskFrom({ resultId: 3, candidate: null }, { resultId: 3, candidate: 2 }),
    false,
  );
  assert.equal(sameMaskFrom({ resultId: 3, candidate: 1 }, { resultId: 4, candidate: 1 }), false);
  assert.equal(sameMaskFrom({ lowRes: logits }, { lowRes: logits }), true);
  assert.equal(sameMaskFrom({ lowRes: logits }, { lowRes: new Float32Array(4) }), false);
  assert.equal(sameMaskFrom({ lowRes: null }, { lowRes: logits }), false);
});
