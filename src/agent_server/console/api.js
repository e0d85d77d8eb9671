// The public HTTP API, as the SDKs call it: JSON requests and server-sent events read from a POST
// (EventSource cannot POST). Credentials, when the server's auth asks for them, live in sessionStorage.

// The API's root: where /console is served, less /console (a mount_prefix stays in front of it).
export const ROOT = location.pathname.replace(/\/console(\/.*)?$/, "");

const KEY = "agent-server-console.credentials";

export class ApiError extends Error {
  constructor(status, detail, path) {
    super(status ? `${status}: ${detail}` : detail);
    this.status = status;
    this.detail = detail;
    this.path = path;
  }
}

export function credentials() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) || { header: "Authorization", value: "" };
  } catch {
    return { header: "Authorization", value: "" };
  }
}

export function setCredentials(header, value) {
  sessionStorage.setItem(KEY, JSON.stringify({ header: header || "Authorization", value }));
}

export function clearCredentials() {
  sessionStorage.removeItem(KEY);
}

// Set by the app: asked for credentials when a call answers 401, resolves once they are given.
let askCredentials = null;
export function onUnauthorized(ask) {
  askCredentials = ask;
}

function headers(extra = {}) {
  const out = { ...extra };
  const { header, value } = credentials();
  if (value) out[header] = value;
  return out;
}

async function detailOf(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
  } catch {
    return text || response.statusText;
  }
}

// One call; a 401 asks for credentials and tries again with them (the user may cancel: then it throws).
async function send(method, path, body, init = {}) {
  for (;;) {
    let response;
    try {
      response = await fetch(ROOT + path, {
        method,
        headers: headers(body === undefined ? {} : { "content-type": "application/json" }),
        body: body === undefined ? undefined : JSON.stringify(body),
        ...init,
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError(0, `the server did not answer (${error.message})`, path);
    }
    if (response.status === 401 && askCredentials) {
      const detail = await detailOf(response);
      if (await askCredentials(detail)) continue;
      throw new ApiError(401, detail, path);
    }
    if (!response.ok) throw new ApiError(response.status, await detailOf(response), path);
    return response;
  }
}

// JSON in, JSON out; `total` from X-Pagination-Total where the server gives it.
export async function call(method, path, body) {
  const response = await send(method, path, body);
  const total = response.headers.get("x-pagination-total");
  const text = await response.text();
  return { data: text ? JSON.parse(text) : null, total: total === null ? null : Number(total) };
}

export const get = async (path) => (await call("GET", path)).data;
export const post = async (path, body) => (await call("POST", path, body ?? {})).data;

// Server-sent events of a POST: onEvent(name, data) for each, as it arrives. Resolves at the stream's end.
export async function stream(path, body, onEvent, signal) {
  const response = await send("POST", path, body, { signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith(":")) continue; // a heartbeat
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = text;
        else if (field === "data") data.push(text);
      }
      if (!data.length) continue;
      let parsed = data.join("\n");
      try {
        parsed = JSON.parse(parsed);
      } catch {
        /* not JSON: the text as it came */
      }
      onEvent(event, parsed);
    }
  }
}
