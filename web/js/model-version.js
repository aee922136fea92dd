// Follows the server's active model version (a fine-tuned decoder the data engine trained) so
// the page switches decoders without a reload: it polls GET /api/models/active, and when the
// version changes it fetches the new manifest and hands it to `onChange`. One switch at a time;
// a version that changes again meanwhile is picked up by the next poll.
import { api, routes } from "./api.js";

/**
 * Start polling. `current()` returns the version the page uses now; `onChange(manifest)` loads
 * the new one (and resolves when it is in use). Returns a function that stops the polling.
 * @param {{current: () => string, onChange: (manifest: any) => Promise<unknown>, onError?: (err: unknown) => void, intervalMs?: number}} options
 */
export function watchModelVersion({ current, onChange, onError = () => {}, intervalMs = 500 }) {
  let busy = false;
  const tick = async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const active = await api(routes.activeModel);
      if (active.version !== current()) {
        const manifest = await api(routes.model);
        if (manifest.model_version !== current()) await onChange(manifest);
      }
    } catch (err) {
      onError(err);
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(tick, intervalMs);
  return () => clearInterval(timer);
}
