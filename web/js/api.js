// The maskloop HTTP API, with failures turned into errors that say what went wrong.

/** A failed call; `status` is the HTTP status (0: the server was not reached). */
export class ApiError extends Error {
  /** @param {string} message @param {number} [status] */
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

/**
 * Call the API. Resolves to the parsed JSON answer (null for 204). `signal` aborts the request.
 * @param {string} path
 * @param {{method?: string, body?: unknown, signal?: AbortSignal}} [options]
 * @returns {Promise<any>}
 * @throws {ApiError} with the server's {"error"} message, or a sentence saying the server is unreachable
 */
export async function api(path, { method = "GET", body, signal } = {}) {
  /** @type {Record<string, string>} */
  const headers = body === undefined ? {} : { "Content-Type": "application/json" };
  const csrf = csrfToken();
  if (csrf && method !== "GET") headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    throw new ApiError(
      `cannot reach the maskloop server (${method} ${path}): ${/** @type {Error} */ (err).message}`,
    );
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(
      `${method} ${path} answered HTTP ${response.status} with something that is not JSON`,
    );
  }
  if (!response.ok)
    throw new ApiError(
      `${method} ${path} failed: ${data?.error ?? `HTTP ${response.status}`}`,
      response.status,
    );
  return data;
}

/** The CSRF token of a logged-in session (the server's readable maskloop_csrf cookie), or null. */
function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)maskloop_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : null;
}

export const routes = {
  model: "/api/model",
  activeModel: "/api/models/active",
  models: "/api/models",
  train: "/api/train",
  trainCancel: "/api/train/cancel",
  trainCadence: "/api/train/cadence",
  cleanup: "/api/settings/cleanup",
  polygons: (/** @type {number} */ id) => `/api/annotations/${id}/polygons`,
  images: "/api/images",
  image: (/** @type {number} */ id) => `/api/images/${id}`,
  imageFile: (/** @type {number} */ id) => `/api/images/${id}/file`,
  thumbnail: (/** @type {number} */ id) => `/api/images/${id}/thumbnail`,
  embedding: (/** @type {number} */ id) => `/api/images/${id}/embedding`,
  decode: (/** @type {number} */ id) => `/api/images/${id}/decode`,
  annotations: (/** @type {number} */ id) => `/api/images/${id}/annotations`,
  annotation: (/** @type {number} */ id) => `/api/annotations/${id}`,
  rating: (/** @type {number} */ id) => `/api/annotations/${id}/rating`,
  propose: (/** @type {number} */ id) => `/api/images/${id}/propose`,
  categories: "/api/categories",
  category: (/** @type {number} */ id) => `/api/categories/${id}`,
  categoryOrder: "/api/categories/order",
  progress: "/api/progress",
  me: "/api/me",
  logout: "/api/logout",
  workNext: "/api/work/next",
  workRelease: (/** @type {number} */ id) => `/api/work/${id}/release`,
  takeReview: (/** @type {number} */ id) => `/api/work/review/${id}`,
  reviewImage: (/** @type {number} */ id) => `/api/images/${id}/review`,
  reviewMask: (/** @type {number} */ id) => `/api/annotations/${id}/review`,
  exportCoco: (/** @type {string} */ format) =>
    `/api/export/coco?download=1${format === "polygon" ? "&format=polygon" : ""}`,
  /** A data set zip (server/http/export.py): the folder formats of `maskloop export`. */
  exportDataset: (/** @type {"yolo-seg" | "voc"} */ format) => `/api/export/${format}`,
};
