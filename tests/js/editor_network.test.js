// The editor's requests against a real HTTP server (static/editor/lib/network.js).
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { gunzipSync } from "node:zlib";

import { ApiError, jsonFetch, putMask } from "../../static/editor/lib/network.js";

let server, base;
const seen = [];

before(async () => {
  server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let body = Buffer.concat(chunks);
      if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      const reply = (status, data, extra = {}) => {
        res.writeHead(status, { "Content-Type": "application/json", ...extra });
        res.end(JSON.stringify(data));
      };
      if (req.url === "/mask.raw") {
        if (req.headers["if-match"] !== '"v1"') return reply(412, { message: "stale", extra: { current: '"v2"' } });
        return reply(200, { etag: '"v2"', received: body.length }, { "Server-Timing": "save;dur=12.5" });
      }
      if (req.url === "/bad") return reply(400, { message: "The label is not valid.", extra: { field: "label" } });
      return reply(200, { echo: JSON.parse(body.toString() || "null") });
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => server.close());

test("a JSON call sends the body, the CSRF token and JSON headers", async () => {
  const data = await jsonFetch(`${base}/echo`, { method: "POST", body: { a: 1 }, csrf: "tok" });
  assert.deepEqual(data, { echo: { a: 1 } });
  const last = seen.at(-1);
  assert.equal(last.headers["x-csrftoken"], "tok");
  assert.equal(last.headers["content-type"], "application/json");
});

test("an error answer rejects with the API's message, status and body", async () => {
  await assert.rejects(jsonFetch(`${base}/bad`), (err) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.message, "The label is not valid.");
    assert.equal(err.status, 400);
    assert.deepEqual(err.data.extra, { field: "label" });
    return true;
  });
});

test("a mask goes up whole (gzip-compressed) with its ETag and comes back with the server's time", async () => {
  const labels = new Uint8Array(4096);
  labels[100] = 2;
  const result = await putMask(`${base}/mask.raw`, labels, { etag: '"v1"', csrf: "tok" });
  assert.deepEqual(result, { data: { etag: '"v2"', received: 4096 }, serverMs: 12.5 });
  const last = seen.at(-1);
  assert.equal(last.headers["content-encoding"], "gzip");
  assert.equal(last.headers["if-match"], '"v1"');
  assert.deepEqual(new Uint8Array(last.body), labels);
});

test("a stale ETag is a conflict to resolve, not an error", async () => {
  const result = await putMask(`${base}/mask.raw`, new Uint8Array(8), { etag: '"v0"' });
  assert.deepEqual(result, { conflict: { message: "stale", extra: { current: '"v2"' } } });
});
