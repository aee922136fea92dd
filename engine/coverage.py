"""Coverage-aware sampling of the point grid: decode coarse to fine, skip points the coarse ones explain.

On a 2-core CPU the mask decoder is nearly all of the automatic stage's time (one two-way
transformer pass over 4096 image tokens per point), so the only large saving is to decode fewer
points. The n x n grid is visited in levels of stride 4, 2, 1 (in grid cells). A point first seen
at stride s lies between decoded (or already explained) points of stride 2s, its parents: the
corners of the coarse cell it falls in. It is skipped when its parents agree — each of their
three multimask outputs overlaps the others' at low-res IoU >= ``agreement`` — and the point lies
inside all of them: the decoder's output varies smoothly with the prompt, so a point inside a
region whose surrounding prompts all give the same masks gives those masks again, which NMS would
drop as duplicates. Near boundaries and small parts the parents disagree and the point is decoded.
All three outputs must agree, also those the quality filters drop: comparing only the outputs
some parent kept lost half the masks on a photo (a child can pass a filter its parents failed).
The parents must stand for at least two *different* decoded points (``DISTINCT_PARENTS``): parents
that were themselves skipped share the point that explained them, and one decoded point agreeing
with itself says nothing about the child. Skipping on a single one lost a 925-pixel part of
astronaut.jpg at 32x32 (grid point (28, 21), inside the 29,332-pixel mask its only representative
decoded 2 cells away); decoding those points costs 24 more of its 1024 points.
A small object can also sit between agreeing parents, too small to change their masks: the
parents' background mask covers it, but a prompt on it gives the object. With the image's tokens
(``tokens``, the embedding), a child is decoded when its token's cosine similarity to a parent's
token is under ``TOKEN_SIMILARITY``: the image differs there from where the parents stand. On
coffee.jpg at 32x32 that is how a 45-pixel object at grid point (26, 28) was lost; its similarity
was 0.40, the 2nd percentile of the skipped points, and the rule decodes ~3% more of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from maskloop.engine.lowres import LOW_RES

#: Parents' masks must overlap at least this much (low-res IoU, each of the 3 outputs) to skip a child.
AGREEMENT_IOU = 0.9
#: Decoded points that must stand for a child's parents (and agree) to skip it.
DISTINCT_PARENTS = 2
#: A child whose image token is less similar than this (cosine) to a parent's token is decoded.
TOKEN_SIMILARITY = 0.5


def strides(n: int) -> list[int]:
    """Level strides for an n x n grid, coarsest first: [4, 2, 1] from n = 16, [2, 1] from 8, else [1]."""
    if n >= 16:
        return [4, 2, 1]
    if n >= 8:
        return [2, 1]
    return [1]


def _parents(row: int, col: int, stride: int, n: int) -> list[tuple[int, int]]:
    """Corners (on the stride-2s lattice) of the coarse cell holding (row, col); only those inside the grid."""
    coarse = 2 * stride
    r0, c0 = row - row % coarse, col - col % coarse
    rows = [r0] if row == r0 else [r0, r0 + coarse]
    cols = [c0] if col == c0 else [c0, c0 + coarse]
    return [(r, c) for r in rows for c in cols if r < n and c < n]


class CoverageSampler:
    """Decides, level by level, which grid points to decode.

    Arguments:
      n: points per side (the grid is ``build_point_grid(n)``: flat index = row * n + col).
      cells: [n*n, 2] (row, col) of each point's low-res cell.
      agreement: see ``AGREEMENT_IOU``.
      tokens: [C, t, t] the image's embedding (t tokens per side over the same padded square as the
        low-res cells, so a cell's token is cell * t // ``LOW_RES``), or None to compare masks only.
      similarity: see ``TOKEN_SIMILARITY``.
    """

    def __init__(
        self,
        n: int,
        cells: np.ndarray,
        agreement: float = AGREEMENT_IOU,
        distinct: int = DISTINCT_PARENTS,
        tokens: np.ndarray | None = None,
        similarity: float = TOKEN_SIMILARITY,
    ) -> None:
        self.n = n
        self.cells = cells
        self.agreement = agreement
        self.distinct = distinct
        self.similarity = similarity
        self.unit_tokens: np.ndarray | None = None  # [n*n, C] each point's token, unit length
        if tokens is not None:
            at = np.minimum(cells * tokens.shape[-1] // LOW_RES, tokens.shape[-1] - 1)
            vectors = tokens[:, at[:, 0], at[:, 1]].T.astype(np.float32)
            self.unit_tokens = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self.masks: dict[int, torch.Tensor] = {}  # decoded point -> [3,h,w] bool low-res masks
        self.representative: dict[int, int] = {}  # every visited point -> the decoded point that stands for it
        self._pair_iou: dict[tuple[int, int], bool] = {}
        self.skipped = 0

    def levels(self) -> Iterator[tuple[int, list[int]]]:
        """(stride, flat indices first seen at that stride), coarsest first."""
        seen: set[int] = set()
        for stride in strides(self.n):
            new = [
                r * self.n + c
                for r in range(0, self.n, stride)
                for c in range(0, self.n, stride)
                if r * self.n + c not in seen
            ]
            seen.update(new)
            yield stride, new

    def to_decode(self, stride: int, points: list[int], top: bool) -> list[int]:
        """The points of a level that must be decoded; the others get a representative."""
        if top:
            return points
        decode = []
        for p in points:
            row, col = divmod(p, self.n)
            parents = _parents(row, col, stride, self.n)
            reps = sorted({self.representative[r * self.n + c] for r, c in parents})
            if len(parents) >= 2 and len(reps) >= self.distinct and self._explains(reps, p):
                self.representative[p] = reps[0]
                self.skipped += 1
            else:
                decode.append(p)
        return decode

    def decoded(self, point: int, masks: torch.Tensor) -> None:
        """Record a decoded point's [3,h,w] bool low-res masks (kept only where a finer level reads them)."""
        row, col = divmod(point, self.n)
        if row % 2 == 0 and col % 2 == 0:  # only the stride-2 lattice is ever a parent
            self.masks[point] = masks
        self.representative[point] = point

    def _explains(self, reps: list[int], point: int) -> bool:
        r, c = self.cells[point]
        if not all(bool(self.masks[rep][:, r, c].all()) for rep in reps):
            return False
        if self.unit_tokens is not None and (self.unit_tokens[reps] @ self.unit_tokens[point]).min() < self.similarity:
            return False
        return all(self._agree(a, b) for i, a in enumerate(reps) for b in reps[i + 1 :])

    def _agree(self, a: int, b: int) -> bool:
        if (a, b) not in self._pair_iou:
            ma, mb = self.masks[a], self.masks[b]
            inter = (ma & mb).flatten(1).sum(1)
            union = (ma | mb).flatten(1).sum(1).clamp(min=1)
            self._pair_iou[(a, b)] = bool(((inter / union) >= self.agreement).all())
        return self._pair_iou[(a, b)]


def visit(
    n: int,
    cells: np.ndarray,
    decode: Callable[[list[int]], list[torch.Tensor]],
    agreement: float = AGREEMENT_IOU,
    distinct: int = DISTINCT_PARENTS,
    tokens: np.ndarray | None = None,
) -> CoverageSampler:
    """Run the levels: ``decode(points)`` decodes flat indices and returns their [3,h,w] bool low-res masks
    (``agreement``, ``distinct``, ``tokens``: ``CoverageSampler``'s rule)."""
    sampler = CoverageSampler(n, cells, agreement, distinct, tokens)
    for i, (stride, points) in enumerate(sampler.levels()):
        todo = sampler.to_decode(stride, points, top=i == 0)
        for point, masks in zip(todo, decode(todo)):
            sampler.decoded(point, masks)
    return sampler
