// Team mode (accounts on): keeps the lease on the open image while the page is open. The server
// hands images out with POST /api/work/next and frees an image whose lease ran out
// (MASKLOOP_WORK_LEASE_SECONDS), so the page renews it at a third of that. Single-user mode: nothing.
import { api } from "./api.js";

/**
 * Start renewing. `currentImageId()` returns the open image's id (or null); `onLost(message)` is
 * told when the server says the image is no longer held. Resolves to a function that stops it.
 * @param {{currentImageId: () => number | null, onLost?: (message: string) => void}} options
 */
export async function keepLease({ currentImageId, onLost = () => {} }) {
  const me = await api("/api/me").catch(() => ({ accounts: false }));
  if (!me.accounts) return () => {};
  let leaseSeconds = 120;
  let stopped = false;
  const tick = async () => {
    const id = currentImageId();
    if (stopped || id == null) return;
    try {
      const answer = await api(`/api/work/${id}/renew`, { method: "POST" });
      if (answer?.lease_seconds) leaseSeconds = answer.lease_seconds;
    } catch (err) {
      onLost(/** @type {Error} */ (err).message);
    }
  };
  await tick();
  const timer = setInterval(() => tick(), (leaseSeconds * 1000) / 3);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
