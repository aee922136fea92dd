// The decoder worker's message protocol, both ways: the one place that says what the page may
// ask the worker (decoder-client.js sends, decoder-worker.js answers) and what comes back. Types
// only (JSDoc, checked by `tsc --checkJs`: web/tsconfig.json); nothing here runs.
//
// Every request but "cancel" carries an `id` and is answered once, by a reply of the same `type`
// and `id`: `{ok: true, ...}` with the fields of its `Replies` entry, or `{ok: false, error}`
// (`cancelled: true` when a "cancel" dropped it unrun). Requests run one at a time in order,
// except "embedding" and "timeline" (beside the queue). A new message is added here first; tsc
// then finds the sender and the handler that must follow.

// ------------------------------------------------------------------------------- shared shapes
/** @typedef {[number, number]} HW (height, width) in image pixels */
/** @typedef {{x: number, y: number, label: number}} Point image frame; label: 1 foreground, 0 background */
/** @typedef {{x0: number, y0: number, x1: number, y1: number}} Box image frame, x0 <= x1, y0 <= y1 */
/** @typedef {{points: Point[], box: Box | null}} Prompt image frame */
/**
 * A part of the image drawn at some resolution: image pixels [x0, x1) x [y0, y1) as an outW x
 * outH bitmap (the view's).
 * @typedef {{x0: number, y0: number, x1: number, y1: number, outW: number, outH: number}} Region
 */
/** @typedef {{size: HW, counts: string}} Rle COCO compressed RLE */
/** @typedef {import('./strokes.js').Stroke} Stroke brush / eraser stroke, image frame */
/** @typedef {{op: import('./components.js').CleanupOp, minArea: number}} Cleanup a clean-up and its size limit (px) */
/** @typedef {[number, number, number, number]} BBox COCO [x, y, w, h], image pixels */
/**
 * The mask fed back to the decoder with a prompt: a kept result's candidate (null: the one the
 * worker picked for it), or low-res logits standing for a stored mask.
 * @typedef {{resultId: number, candidate: number | null} | {lowRes: Float32Array} | null} MaskInput
 */
/**
 * The model manifest's fields the worker reads (GET /api/model adds more).
 * @typedef {object} Manifest
 * @property {number} input_size the model frame's long side (1024)
 * @property {[number, number]} low_res_mask_size
 * @property {number} mask_threshold
 * @property {string[]} inputs the decoder's input names
 * @property {{shape: number[], dtype: "float32" | "float16"}} embedding
 * @property {MaskCandidates} mask_candidates
 * @property {{prompt: {inputs: string[], optimized?: boolean}} & Record<string, any>} [prefix]
 */
/**
 * @typedef {object} MaskCandidates
 * @property {number[]} multimask_indices the three ambiguity candidates' indices
 * @property {number} single_mask_index the candidate of a prompt of several points or a box
 */

// ------------------------------------------------------------------------- requests: page -> worker
/**
 * Load a decoder (a version loaded before is reused). `prefixUrl`: the decoder is split, and
 * `decoderUrl` is its per-prompt graph. `tierUpRuns`: tier-up runs wanted (null: the default).
 * @typedef {object} InitRequest
 * @property {"init"} type
 * @property {number} id
 * @property {string} ortUrl
 * @property {string} decoderUrl
 * @property {string | null} [prefixUrl]
 * @property {Manifest} manifest
 * @property {number} numThreads
 * @property {boolean} [spinning]
 * @property {number | null} [tierUpRuns]
 */
/**
 * Load (prefetch) an image's embedding; `ahead`: its decoder prefix may run while the worker idles.
 * @typedef {{type: "embedding", id: number, imageId: number, url: string, ahead?: boolean}} EmbeddingRequest
 */
/** Run an opened image's decoder prefix (and a fresh decoder's warm-up run).
 * @typedef {{type: "prepare", id: number, imageId: number, url: string}} PrepareRequest */
/** Decoder runs until the wasm is optimised (stops when other work is queued).
 * @typedef {{type: "tierUp", id: number, imageId: number, url: string}} TierUpRequest */
/**
 * Decode a prompt and draw the chosen candidate over `region` (none when null). `candidate`:
 * null picks the best-scored one, or with `matchRle` the one most like that stored mask. The
 * result is kept under the request's id (a later prompt's `maskInput` may name it).
 * @typedef {object} DecodeRequest
 * @property {"decode"} type
 * @property {number} id
 * @property {number} imageId
 * @property {string} embeddingUrl
 * @property {HW} hw
 * @property {Prompt} prompt
 * @property {MaskInput} maskInput
 * @property {number | null} candidate
 * @property {Region | null} region
 * @property {string} color "#rrggbb"
 * @property {Rle | null} matchRle
 * @property {Stroke[]} [strokes] brush / eraser strokes drawn on top of the mask
 * @property {[number, number, number, number] | null} [tile] a large image's region (x0, y0, x1, y1
 *   image pixels; tile-route.js) whose embedding `embeddingUrl` is: the prompt is decoded in its frame
 */
/** Draw a kept result's candidate (and strokes on top) over a region (none: the image is not on screen; an error).
 * @typedef {{type: "render", id: number, resultId: number, candidate: number, region: Region | null, color: string, strokes?: Stroke[]}} RenderRequest */
/** A kept result's candidate, strokes on top (then `cleanups`, in order), at full resolution, as COCO RLE (and a bitmap of it to draw).
 * @typedef {{type: "encode", id: number, resultId: number, candidate: number, color: string, strokes?: Stroke[], cleanups?: Cleanup[]}} EncodeRequest */
/** A clean-up of a kept result's candidate (strokes on top) at full resolution, kept as result `newResultId` when it changed anything.
 * @typedef {{type: "clean", id: number, resultId: number, candidate: number, strokes?: Stroke[], newResultId: number} & Cleanup} CleanRequest */
/**
 * @typedef {{id: number, rle: Rle, color: string, style: "accepted" | "proposal"}} AnnotationToDraw
 * @typedef {{type: "annotationBitmaps", id: number, annotations: AnnotationToDraw[]}} AnnotationBitmapsRequest
 */
/**
 * Keep a decoder result made elsewhere (the server's decoder) under `resultId`.
 * @typedef {object} AdoptRequest
 * @property {"adopt"} type
 * @property {number} id
 * @property {number} resultId
 * @property {number} imageId
 * @property {HW} hw
 * @property {Float32Array} lowRes 4 candidates' low-res logits
 * @property {Float32Array} iou
 * @property {number} candidate
 */
/** Keep a stored mask (re-opened to be painted on) as a result under `resultId` (candidate 0).
 * @typedef {{type: "adoptMask", id: number, resultId: number, imageId: number, rle: Rle}} AdoptMaskRequest */
/** Low-res logits standing for a stored mask.
 * @typedef {{type: "maskLogits", id: number, rle: Rle}} MaskLogitsRequest */
/** The part of an image no mask covers.
 * @typedef {{type: "uncovered", id: number, hw: HW, rles: Rle[]}} UncoveredRequest */
/** When the worker's start-up steps first happened.
 * @typedef {{type: "timeline", id: number}} TimelineRequest */
/** Drop queued requests (guessed decodes no longer wanted); no answer.
 * @typedef {{type: "cancel", ids: number[]}} CancelMessage */

/**
 * @typedef {InitRequest | EmbeddingRequest | PrepareRequest | TierUpRequest | DecodeRequest |
 *   RenderRequest | EncodeRequest | CleanRequest | AnnotationBitmapsRequest | AdoptRequest | AdoptMaskRequest | MaskLogitsRequest |
 *   UncoveredRequest | TimelineRequest} WorkerRequest
 * @typedef {WorkerRequest | CancelMessage} ToWorker every message the page posts to the worker
 * @typedef {WorkerRequest["type"]} RequestType
 */
/**
 * A request's fields the caller gives (the client adds `type` and `id`).
 * @template {RequestType} T
 * @typedef {Omit<Extract<WorkerRequest, {type: T}>, "type" | "id">} Payload
 */
/**
 * @template {RequestType} T
 * @typedef {Extract<WorkerRequest, {type: T}>} RequestOf
 */

// ---------------------------------------------------------------------------- replies: worker -> page
/**
 * @typedef {object} InitReply
 * @property {number} loadMs
 * @property {boolean} reused a decoder loaded before was taken again
 * @property {number} threads
 * @property {boolean} split
 * @property {boolean} crossOriginIsolated
 * @property {number} modelBytes
 */
/** @typedef {{bytes: number | null, ms: number | null}} EmbeddingReply bytes/ms of the download (null: loaded before) */
/** @typedef {{ms: number, warmMs: number, aheadMs: number | null, tierUpLeft: number}} PrepareReply */
/** @typedef {{ms: number[], left: number}} TierUpReply each run's ms, the runs still to make */
/**
 * @typedef {object} DecodeReply
 * @property {number} resultId
 * @property {number[]} iou every candidate's predicted IoU
 * @property {number} candidate the one drawn
 * @property {number} decodeMs
 * @property {number} renderMs
 * @property {ImageBitmap | null} bitmap
 * @property {Region | null} region
 * @property {boolean} usedMaskInput
 * @property {number | null} matchIou
 */
/** @typedef {{bitmap: ImageBitmap, region: Region, renderMs: number}} RenderReply */
/**
 * @typedef {object} EncodeReply
 * @property {Rle} rle
 * @property {number} area
 * @property {BBox} bbox
 * @property {number} ms
 * @property {ImageBitmap | null} bitmap the mask drawn over `drawBox` (null when empty)
 * @property {BBox | null} drawBox
 */
/** @typedef {{id: number, bitmap: ImageBitmap | null, box: BBox}} AnnotationBitmap */
/** @typedef {{bitmaps: AnnotationBitmap[]}} AnnotationBitmapsReply */
/** @typedef {Record<string, never>} AdoptReply */
/** @typedef {{lowRes: Float32Array}} MaskLogitsReply */
/**
 * @typedef {object} UncoveredReply
 * @property {number} uncoveredPixels
 * @property {number} pixels
 * @property {number} fraction
 * @property {ImageBitmap} bitmap alpha, to draw over `box`
 * @property {BBox} box the whole image
 */
/** @typedef {{timeline: Record<string, number>}} TimelineReply step -> epoch ms */

/**
 * Each request's reply fields.
 * @typedef {object} Replies
 * @property {InitReply} init
 * @property {EmbeddingReply} embedding
 * @property {PrepareReply} prepare
 * @property {TierUpReply} tierUp
 * @property {DecodeReply} decode
 * @property {RenderReply} render
 * @property {EncodeReply} encode
 * @property {{changed: number}} clean pixels changed (0: no new result was kept)
 * @property {AnnotationBitmapsReply} annotationBitmaps
 * @property {AdoptReply} adopt
 * @property {AdoptReply} adoptMask
 * @property {MaskLogitsReply} maskLogits
 * @property {UncoveredReply} uncovered
 * @property {TimelineReply} timeline
 */
/**
 * A request's answer when it ran.
 * @template {RequestType} T
 * @typedef {{type: T, id: number, ok: true} & Replies[T]} ReplyOf
 */
/**
 * A request's answer when it failed (or was cancelled unrun).
 * @typedef {{type: RequestType, id: number, ok: false, error: string, cancelled?: boolean}} Failure
 */
/** @typedef {ReplyOf<RequestType> | Failure} FromWorker every message the worker posts */
/**
 * What a handler returns: the reply's fields and the objects whose ownership moves to the page.
 * @template {RequestType} T
 * @typedef {{reply: Replies[T], transfer?: Transferable[]}} Handled
 */

export {};
