/*
 * The editor's requests (no DOM): JSON calls with the CSRF token and the API's error shape,
 * and the PUT of a whole label volume with its ETag (gzip where the runtime can).
 */

/** An Error carrying the HTTP status and the API's {"message", "extra"} body. */
export class ApiError extends Error {
  constructor(message, status, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

/** A JSON request; resolves to the parsed body, rejects with ApiError on a non-2xx answer. */
export async function jsonFetch(url, { method = "GET", body, headers = {}, csrf = "" } = {}) {
  const r = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: Object.assign({ "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" }, headers),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(data.message || r.statusText, r.status, data);
  return data;
}

/** ``bytes`` gzip-compressed, or null where the runtime has no CompressionStream. */
export async function gzip(bytes) {
  if (typeof CompressionStream === "undefined") return null;
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * PUTs a label volume to ``url`` with ``If-Match: etag`` (when given). Resolves to
 * ``{conflict: data}`` on 412/428 (someone saved in between / no ETag sent), else
 * ``{data, serverMs}`` (the server's own time from Server-Timing); rejects with ApiError.
 */
export async function putMask(url, labels, { etag = "", csrf = "" } = {}) {
  const headers = { "Content-Type": "application/octet-stream", "X-CSRFToken": csrf, Accept: "application/json" };
  let body = await gzip(labels);
  if (body) headers["Content-Encoding"] = "gzip"; else body = labels;
  if (etag) headers["If-Match"] = etag;
  const r = await fetch(url, { method: "PUT", body, headers, credentials: "same-origin" });
  const data = await r.json().catch(() => ({}));
  if (r.status === 412 || r.status === 428) return { conflict: data };
  if (!r.ok) throw new ApiError(data.message || r.statusText, r.status, data);
  const timing = /dur=([\d.]+)/.exec(r.headers.get("Server-Timing") || "");
  return { data, serverMs: timing ? Number(timing[1]) : null };
}
