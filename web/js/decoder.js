// The page's one decoder worker (decoder-worker.js): the decoder and all per-pixel work run there.
import { DecoderClient } from "./decoder-client.js";

export const decoder = new DecoderClient(new URL("./decoder-worker.js", import.meta.url));
