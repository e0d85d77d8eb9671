// The console: one page, views chosen by the URL's hash, every figure read from the public API.
import { ApiError, call, clearCredentials, credentials, get, onUnauthorized, post, setCredentials, stream } from "./api.js";
import { drawGraph } from "./graph.js";

const PAGE = 20; // rows per page of every list: no view loads a whole large thread or table
const MAX_EVENTS = 400; // lines kept in a live stream's event log

// ---- small DOM helpers ----------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "value") node.value = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

const short = (id) => (id ? String(id).slice(0, 8) : "—");
const pretty = (value) => JSON.stringify(value, null, 2);
const compact = (value, max = 120) => {
  const text = JSON.stringify(value) ?? "";
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
};

function jsonBlock(value, testid) {
  const text = pretty(value) ?? "null";
  const LIMIT = 20000; // a huge state shows its start, and all of it on demand
  const pre = h("pre", { class: "json", "data-testid": testid }, text.length > LIMIT ? text.slice(0, LIMIT) : text);
  if (text.length <= LIMIT) return pre;
  const more = h("button", { class: "ghost small", onclick: () => { pre.textContent = text; more.remove(); } },
    `Show all (${Math.round(text.length / 1024)} KiB)`);
  return h("div", {}, pre, more);
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return h("span", { title: date.toLocaleString() }, ago(date) + " ago");
}

function ago(date) {
  return span((Date.now() - date.getTime()) / 1000);
}

function span(seconds) {
  seconds = Math.max(0, seconds);
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d`;
}

const FINISHED = new Set(["success", "error", "timeout", "interrupted"]);
function duration(run) {
  const start = new Date(run.created_at).getTime();
  const end = FINISHED.has(run.status) ? new Date(run.updated_at).getTime() : Date.now();
  return span((end - start) / 1000) + (FINISHED.has(run.status) ? "" : " so far");
}

const badge = (status) => h("span", { class: `badge ${status}`, "data-testid": "status" }, status ?? "—");
const empty = (text) => h("div", { class: "empty" }, text);
const errorBox = (error, retry) =>
  h("div", { class: "error-box", role: "alert" }, describe(error), " ",
    retry && h("button", { class: "ghost small", onclick: retry }, "Retry"));

function describe(error) {
  if (error instanceof ApiError) {
    if (error.status === 401) return `Not signed in: ${error.detail}`;
    if (error.status === 403) return `Not allowed: ${error.detail}`;
    if (error.status === 404) return `Not found: ${error.detail}`;
    return error.status ? `The server answered ${error.status}: ${error.detail}` : `Cannot reach the server: ${error.detail}`;
  }
  return String(error?.message ?? error);
}

function parseJSON(text, field, fallback) {
  if (!text.trim()) return fallback;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${field} is not valid JSON: ${error.message}`);
  }
}

function card(title, ...children) {
  return h("section", { class: "card" }, title && h("h2", {}, title), ...children);
}

function pageHead(title, subtitle, ...actions) {
  return h("div", { class: "page-head" },
    h("div", { class: "grow" }, h("h1", {}, title), subtitle && h("div", { class: "subtitle" }, subtitle)), ...actions);
}

// A section that loads on its own: "Loading…", then what `render` makes of `load()`, or the error and a retry.
function section(load, render) {
  const box = h("div", {}, h("div", { class: "loading" }, "Loading…"));
  const run = async () => {
    box.replaceChildren(h("div", { class: "loading" }, "Loading…"));
    try {
      const data = await load();
      box.replaceChildren(render(data, run));
    } catch (error) {
      box.replaceChildren(errorBox(error, run));
    }
  };
  run();
  box.reload = run;
  return box;
}

function pager(offset, count, total, go) {
  const end = offset + count;
  const text = total !== null && total !== undefined
    ? `${count ? offset + 1 : 0}–${end} of ${total}` : `${count ? offset + 1 : 0}–${end}`;
  const more = total !== null && total !== undefined ? end < total : count === PAGE;
  if (!offset && !more) return null;
  return h("div", { class: "pager" }, text,
    h("button", { class: "ghost small", disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE)) }, "← Newer"),
    h("button", { class: "ghost small", disabled: !more, onclick: () => go(offset + PAGE), "data-testid": "next-page" }, "Older →"));
}

function table(columns, rows, onclick) {
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map(([name]) => h("th", {}, name)))),
    h("tbody", {}, rows.map((row) =>
      h("tr", { class: onclick ? "clickable" : "", onclick: onclick && (() => onclick(row)) },
        columns.map(([, cell]) => h("td", {}, cell(row)))))));
}

// ---- navigation -----------------------------------------------------------------------------------

const view = document.getElementById("view");
let leave = []; // what the current view stops when the user goes elsewhere (timers, streams)

function query(hash) {
  return Object.fromEntries(new URLSearchParams(hash.split("?")[1] || ""));
}

function go(path, params = {}) {
  const search = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== undefined && v !== null));
  location.hash = path + (search.toString() ? "?" + search : "");
}

const ROUTES = [
  [/^#\/assistants\/([^/?]+)/, assistantView, "assistants"],
  [/^#\/assistants/, assistantsView, "assistants"],
  [/^#\/threads\/([^/?]+)/, threadView, "threads"],
  [/^#\/threads/, threadsView, "threads"],
  [/^#\/queue/, queueView, "queue"],
  [/^#\/crons/, cronsView, "crons"],
  [/^#\/store/, storeView, "store"],
];

function route() {
  for (const stop of leave) stop();
  leave = [];
  const hash = location.hash || "#/assistants";
  const [pattern, render, name] = ROUTES.find(([p]) => p.test(hash)) || ROUTES[1];
  const match = hash.match(pattern);
  for (const link of document.querySelectorAll(".sidebar a[data-section]")) {
    link.classList.toggle("active", link.dataset.section === name);
  }
  view.replaceChildren();
  render(view, decodeURIComponent(match[1] ?? ""), query(hash));
  view.focus();
}

// ---- credentials ----------------------------------------------------------------------------------

const dialog = document.getElementById("auth-dialog");
const authForm = document.getElementById("auth-form");
const credentialsButton = document.getElementById("credentials-button");
let asking = null; // one dialog for all the calls that meet a 401 at once

function askCredentials(reason) {
  asking ??= new Promise((resolve) => {
    document.getElementById("auth-reason").textContent = `This server asks for credentials (${reason}).`;
    const { header, value } = credentials();
    authForm.header.value = header;
    authForm.value.value = value;
    const done = (ok) => {
      dialog.close();
      asking = null;
      resolve(ok);
    };
    authForm.onsubmit = (event) => {
      event.preventDefault();
      setCredentials(authForm.header.value.trim(), authForm.value.value.trim());
      credentialsButton.hidden = false;
      done(true);
    };
    document.getElementById("auth-cancel").onclick = () => done(false);
    dialog.oncancel = (event) => { event.preventDefault(); done(false); };
    dialog.showModal();
    authForm.value.focus();
  });
  return asking;
}

credentialsButton.onclick = () => {
  clearCredentials();
  credentialsButton.hidden = true;
  route();
};

// ---- assistants -----------------------------------------------------------------------------------

function assistantsView(root, _, q) {
  const offset = Number(q.offset || 0);
  root.append(pageHead("Assistants", "The graphs this server serves, with their assistants."),
    section(() => call("POST", "/assistants/search", { limit: PAGE, offset, sort_by: "graph_id", sort_order: "asc" }), ({ data, total }) => {
      if (!data.length) return empty("No assistants. Graphs listed in langgraph.json get one each when the server starts.");
      return card(null,
        table([
          ["Graph", (a) => h("code", {}, a.graph_id)],
          ["Assistant", (a) => h("a", { href: `#/assistants/${a.assistant_id}`, "data-testid": "assistant-link" }, a.name || "(unnamed)")],
          ["Id", (a) => h("code", { title: a.assistant_id, class: "muted" }, short(a.assistant_id))],
          ["Version", (a) => String(a.version ?? "—")],
          ["Description", (a) => a.description || h("span", { class: "muted" }, "—")],
          ["Updated", (a) => when(a.updated_at)],
        ], data, (a) => go(`#/assistants/${a.assistant_id}`)),
        pager(offset, data.length, total, (o) => go("#/assistants", { offset: o })));
    }));
}

function assistantView(root, id) {
  root.append(section(() => get(`/assistants/${id}`), (a) => h("div", {},
    pageHead(a.name || a.graph_id, h("span", {}, "Graph ", h("code", {}, a.graph_id), " · assistant ", h("code", {}, a.assistant_id),
      ` · version ${a.version}`),
      h("button", { onclick: () => newThread(a.assistant_id), "data-testid": "run-new-thread" }, "Run on a new thread")),
    h("div", { class: "grid" },
      card("Graph", section(() => get(`/assistants/${id}/graph`), (graph) =>
        graph.nodes?.length ? h("div", { class: "graph-wrap", "data-testid": "graph" }, drawGraph(graph)) : empty("This graph has no nodes."))),
      h("div", { class: "stack" },
        card("Config", jsonBlock(a.config ?? {}, "assistant-config")),
        card("Context", jsonBlock(a.context ?? {})),
        card("Metadata", jsonBlock(a.metadata ?? {})))))));
}

async function newThread(assistantId) {
  try {
    const thread = await post("/threads", {});
    go(`#/threads/${thread.thread_id}`, { assistant: assistantId });
  } catch (error) {
    view.prepend(errorBox(error));
  }
}

// ---- threads --------------------------------------------------------------------------------------

const STATUSES = ["", "idle", "busy", "interrupted", "error"];

function threadsView(root, _, q) {
  const offset = Number(q.offset || 0);
  const status = h("select", { name: "status", "data-testid": "status-filter" },
    STATUSES.map((s) => h("option", { value: s, selected: s === (q.status || "") }, s || "any status")));
  const metadata = h("input", { name: "metadata", placeholder: '{"user": "alice"}', value: q.metadata || "", size: 28 });
  const problem = h("div");
  const search = (event) => {
    event.preventDefault();
    try {
      parseJSON(metadata.value, "Metadata", null);
      go("#/threads", { status: status.value, metadata: metadata.value.trim() });
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
  };
  const body = { limit: PAGE, offset, sort_by: "updated_at", sort_order: "desc" };
  if (q.status) body.status = q.status;
  if (q.metadata) body.metadata = parseJSON(q.metadata, "Metadata", undefined);
  root.append(
    pageHead("Threads", "Conversations and their state; newest activity first.",
      h("button", { onclick: () => newThread(""), "data-testid": "new-thread" }, "New thread")),
    h("form", { class: "card row", onsubmit: search },
      h("label", {}, "Status", status), h("label", {}, "Metadata contains (JSON)", metadata),
      h("button", { type: "submit", class: "ghost", style: "align-self: flex-end" }, "Search")),
    problem,
    section(() => call("POST", "/threads/search", body), ({ data, total }) => {
      if (!data.length) {
        return empty(q.status || q.metadata ? "No thread matches these filters." : "No threads yet: create one to start a run.");
      }
      return card(null,
        table([
          ["Thread", (t) => h("a", { href: `#/threads/${t.thread_id}`, "data-testid": "thread-link" }, h("code", { title: t.thread_id }, short(t.thread_id)))],
          ["Status", (t) => badge(t.status)],
          ["Updated", (t) => when(t.updated_at)],
          ["Metadata", (t) => h("code", {}, compact(t.metadata ?? {}))],
        ], data, (t) => go(`#/threads/${t.thread_id}`)),
        pager(offset, data.length, total, (o) => go("#/threads", { ...q, offset: o })));
    }));
}

function interruptsOf(state) {
  if (state.interrupts?.length) return state.interrupts;
  return (state.tasks || []).flatMap((task) => task.interrupts || []);
}

function threadView(root, id, q) {
  const controller = { abort: null };
  leave.push(() => controller.abort?.());
  const head = h("div");
  const form = runForm(id, q.assistant, controller, () => refresh());
  const live = h("div");
  form.liveBox = live;
  const interrupts = h("div");
  const state = h("div");
  const runs = runsCard(id, () => refresh());
  const history = historyCard(id, (checkpoint) => form.forkFrom(checkpoint));

  async function refresh() {
    try {
      const [thread, current] = await Promise.all([get(`/threads/${id}`), get(`/threads/${id}/state`)]);
      head.replaceChildren(pageHead("Thread", h("span", {}, h("code", { "data-testid": "thread-id" }, id), " "),
        h("span", { "data-testid": "thread-status" }, badge(thread.status)),
        h("button", { class: "ghost", onclick: () => refresh() }, "Refresh")));
      form.useThread(thread);
      const pending = interruptsOf(current);
      interrupts.replaceChildren(pending.length ? card("Pending interrupts", pending.map((i) => interruptBox(i, pending.length, form))) : "");
      state.replaceChildren(card("State",
        current.next?.length ? h("p", { class: "hint" }, "Next: ", current.next.map((n) => h("code", {}, n + " "))) : null,
        Object.keys(current.values ?? {}).length ? jsonBlock(current.values, "state-values") : empty("No state yet: start a run.")));
      runs.reload();
      history.reload();
    } catch (error) {
      head.replaceChildren(pageHead("Thread", h("code", {}, id)), errorBox(error, refresh));
    }
  }
  root.append(head, h("div", { class: "grid" },
    h("div", { class: "stack" }, form, live, interrupts, state),
    h("div", { class: "stack" }, runs, history)));
  refresh();
}

function interruptBox(interrupt, count, form) {
  const value = h("textarea", { "data-testid": "resume-value", rows: 2 }, "true");
  const problem = h("div");
  return h("div", { class: "interrupt", "data-testid": "interrupt" },
    jsonBlock(interrupt.value),
    h("label", { style: "margin-top: 8px" }, "Resume with (JSON)", value),
    problem,
    h("div", { class: "row", style: "margin-top: 8px" },
      h("button", {
        "data-testid": "resume",
        onclick: () => {
          try {
            const answer = parseJSON(value.value, "The resume value", null);
            // several interrupts pending: each answer names the interrupt it is for
            form.start({ command: { resume: count > 1 ? { [interrupt.id]: answer } : answer } });
          } catch (error) {
            problem.replaceChildren(errorBox(error));
          }
        },
      }, "Resume")));
}

function runsCard(threadId, refresh) {
  let offset = 0;
  const box = h("div");
  const load = () => section(() => get(`/threads/${threadId}/runs?limit=${PAGE}&offset=${offset}`), (runs) => {
    if (!runs.length) return empty("No runs on this thread yet.");
    return h("div", {},
      table([
        ["Run", (r) => h("code", { title: r.run_id }, short(r.run_id))],
        ["Status", (r) => badge(r.status)],
        ["Started", (r) => when(r.created_at)],
        ["Duration", (r) => duration(r)],
        ["", (r) => FINISHED.has(r.status) ? "" : h("button", {
          class: "danger small",
          onclick: async () => {
            try {
              await post(`/threads/${threadId}/runs/${r.run_id}/cancel`);
            } catch (error) {
              box.prepend(errorBox(error));
            }
            refresh();
          },
        }, "Cancel")],
      ], runs),
      pager(offset, runs.length, null, (o) => { offset = o; box.reload(); }));
  });
  const wrapper = card("Runs", box);
  wrapper.reload = box.reload = () => box.replaceChildren(load());
  return wrapper;
}

function historyCard(threadId, fork) {
  const list = h("ol", { class: "timeline", "data-testid": "history" });
  const more = h("div");
  let last = null;
  const page = async () => {
    more.replaceChildren(h("div", { class: "loading" }, "Loading…"));
    try {
      const checkpoints = await post(`/threads/${threadId}/history`, { limit: 10, ...(last ? { before: last } : {}) });
      for (const c of checkpoints) list.append(checkpointItem(c, fork));
      if (checkpoints.length) last = checkpoints.at(-1).checkpoint;
      if (!list.children.length) more.replaceChildren(empty("No checkpoints yet."));
      else more.replaceChildren(checkpoints.length === 10 ? h("button", { class: "ghost small", onclick: page }, "Load older checkpoints") : "");
    } catch (error) {
      more.replaceChildren(errorBox(error, page));
    }
  };
  const wrapper = card("History", h("p", { class: "hint" }, "Checkpoints, newest first. Fork one to run again from there."), list, more);
  wrapper.reload = () => { list.replaceChildren(); last = null; page(); };
  return wrapper;
}

function checkpointItem(c, fork) {
  const m = c.metadata || {};
  return h("li", { "data-testid": "checkpoint" },
    h("div", { class: "meta" },
      h("strong", { title: `checkpoint ${c.checkpoint?.checkpoint_id}` }, `Step ${m.step ?? "?"}`),
      h("span", { class: "badge" }, m.source ?? "?"),
      c.next?.length ? h("span", { class: "muted" }, "next: ", c.next.join(", ")) : h("span", { class: "muted" }, "end"),
      h("span", { class: "muted" }, when(c.created_at)),
      h("button", { class: "ghost small push", onclick: () => fork(c.checkpoint), "data-testid": "fork" }, "Fork from here")),
    h("details", {}, h("summary", {}, "Values"), jsonBlock(c.values ?? {})));
}

// ---- runs: the form and the live stream -----------------------------------------------------------

const MODES = [["values", "values"], ["updates", "updates"], ["messages-tuple", "messages"], ["custom", "custom"]];

function runForm(threadId, assistantPreset, controller, refresh) {
  const assistant = h("select", { "data-testid": "assistant" });
  const input = h("textarea", { "data-testid": "run-input", rows: 4, placeholder: '{"messages": [{"role": "user", "content": "Hello"}]}' });
  const config = h("textarea", { "data-testid": "run-config", rows: 2, placeholder: '{"configurable": {"delay": 1}}' });
  const modes = MODES.map(([mode, name]) => h("input", { type: "checkbox", value: mode, checked: mode !== "custom" }));
  const forkChip = h("span");
  const problem = h("div");
  const startButton = h("button", { type: "submit", "data-testid": "start-run" }, "Start run");
  const cancelButton = h("button", { type: "button", class: "danger", hidden: true, "data-testid": "cancel-run" }, "Cancel run");
  let checkpoint = null;
  let chosen = assistantPreset || "";

  const form = h("form", { class: "card", "data-testid": "run-form" },
    h("h2", {}, "Start a run"),
    h("div", { class: "row" }, h("label", { style: "flex: 1" }, "Assistant", assistant), forkChip),
    h("label", { style: "margin-top: 10px" }, "Input (JSON; empty for none)", input),
    h("details", { style: "margin-top: 8px" }, h("summary", {}, "Config (JSON)"), config),
    h("div", { class: "row", style: "margin-top: 10px; justify-content: space-between" },
      h("div", { class: "checks" }, modes.map((box, i) => h("label", {}, box, MODES[i][1]))),
      h("div", { class: "row" }, cancelButton, startButton)),
    problem);

  call("POST", "/assistants/search", { limit: 100 }).then(({ data }) => {
    assistant.replaceChildren(...data.map((a) => h("option", { value: a.assistant_id }, `${a.name || a.graph_id} (${a.graph_id})`)));
    if (chosen) assistant.value = data.find((a) => a.assistant_id === chosen || a.graph_id === chosen)?.assistant_id ?? assistant.value;
  }).catch((error) => problem.replaceChildren(errorBox(error)));

  form.useThread = (thread) => {
    const used = thread.metadata?.assistant_id;
    if (!assistantPreset && used && !chosen) {
      chosen = used;
      if ([...assistant.options].some((o) => o.value === used)) assistant.value = used;
    }
  };

  form.forkFrom = (cp) => {
    checkpoint = cp;
    forkChip.replaceChildren(h("span", { class: "chip", "data-testid": "fork-chip" }, `from checkpoint ${short(cp.checkpoint_id)}`,
      h("button", { type: "button", class: "ghost small", onclick: () => { checkpoint = null; forkChip.replaceChildren(); } }, "✕")));
    form.scrollIntoView({ behavior: "smooth" });
    input.focus();
  };

  form.start = async (extra = {}) => {
    problem.replaceChildren();
    let body;
    try {
      body = {
        assistant_id: assistant.value,
        stream_mode: modes.filter((m) => m.checked).map((m) => m.value),
        on_disconnect: "continue", // leaving the page stops watching, not the run
        ...(extra.command ? {} : { input: parseJSON(input.value, "Input", null) }),
        ...extra,
      };
      const cfg = parseJSON(config.value, "Config", null);
      if (cfg) body.config = cfg;
      if (checkpoint && !extra.command) body.checkpoint = checkpoint;
    } catch (error) {
      problem.replaceChildren(errorBox(error));
      return;
    }
    if (!body.assistant_id) {
      problem.replaceChildren(errorBox("Choose an assistant first."));
      return;
    }
    startButton.disabled = true;
    cancelButton.hidden = false;
    const watch = liveStream();
    form.liveBox.replaceChildren(watch.card);
    const abort = new AbortController();
    controller.abort = () => abort.abort();
    let runId = null;
    cancelButton.onclick = async () => {
      cancelButton.disabled = true;
      watch.status("Cancelling…");
      try {
        if (runId) await post(`/threads/${threadId}/runs/${runId}/cancel`);
        else abort.abort();
      } catch (error) {
        watch.fail(error);
      }
      setTimeout(() => abort.abort(), 10000); // the stream should end by itself; never hang on it
    };
    try {
      await stream(`/threads/${threadId}/runs/stream`, body, (event, data) => {
        if (event === "metadata" && data?.run_id) runId = data.run_id;
        watch.event(event, data);
      }, abort.signal);
      watch.done(cancelButton.disabled ? "Cancelled" : "Finished");
    } catch (error) {
      if (error.name === "AbortError") watch.done(cancelButton.disabled ? "Cancelled" : "Stopped watching");
      else watch.fail(error);
    } finally {
      controller.abort = null;
      startButton.disabled = false;
      cancelButton.hidden = true;
      cancelButton.disabled = false;
      if (form.isConnected) refresh();
    }
  };
  form.onsubmit = (event) => {
    event.preventDefault();
    form.start();
  };
  return form;
}

// What a run streams, shown as it arrives: the messages token by token, the latest values, every event.
function liveStream() {
  const status = h("span", { class: "badge running", "data-testid": "stream-status" }, "starting");
  const output = h("div", { class: "stream-output", "data-testid": "stream-output" });
  const values = h("div", { "data-testid": "stream-values" }, h("p", { class: "hint" }, "No values yet."));
  const events = h("div", { class: "events", "data-testid": "stream-events" });
  const messages = new Map(); // message id → its element in `output`
  const problem = h("div");
  const card = h("section", { class: "card", "data-testid": "live" },
    h("div", { class: "row", style: "justify-content: space-between" }, h("h2", { style: "margin: 0" }, "Live run"), status),
    problem,
    h("h3", {}, "Messages"), output,
    h("h3", {}, "Values"), values,
    h("h3", {}, "Events"), events);

  const text = (content) => typeof content === "string" ? content
    : Array.isArray(content) ? content.map((part) => typeof part === "string" ? part : part?.text ?? "").join("") : "";
  const message = (id) => {
    if (!messages.has(id)) messages.set(id, output.appendChild(h("div", { class: "message" })));
    return messages.get(id);
  };
  return {
    card,
    status(text) {
      status.textContent = text;
    },
    event(name, data) {
      if (name === "metadata") status.textContent = `running ${short(data?.run_id)}`;
      if (name === "values") values.replaceChildren(jsonBlock(data));
      if (name === "messages" && Array.isArray(data)) { // messages-tuple: [chunk, metadata]
        const [chunk] = data;
        message(chunk?.id ?? "").textContent += text(chunk?.content);
      }
      if (name === "messages/partial" || name === "messages/complete") {
        for (const m of data || []) message(m.id ?? "").textContent = text(m.content);
      }
      if (name === "error") problem.replaceChildren(errorBox(typeof data === "string" ? data : data?.message ?? compact(data)));
      events.append(h("div", {}, h("b", {}, name), compact(data, 400)));
      while (events.children.length > MAX_EVENTS) events.firstChild.remove();
      events.scrollTop = events.scrollHeight;
    },
    done(text) {
      status.textContent = text.toLowerCase();
      status.className = `badge ${text === "Finished" ? "success" : "interrupted"}`;
    },
    fail(error) {
      status.textContent = "failed";
      status.className = "badge error";
      problem.replaceChildren(errorBox(error));
    },
  };
}

// ---- queue ----------------------------------------------------------------------------------------

const QUEUE_PAGE = 50; // queue rows shown at first, and added by "Show more"
const MAX_QUEUE = 1000; // the most GET /queue answers at once

function queueView(root) {
  const stats = h("div");
  const runs = h("div");
  const updated = h("span", { class: "muted" });
  let shown = QUEUE_PAGE;
  async function load() {
    try {
      const m = await get("/metrics?format=json");
      stats.replaceChildren(h("div", { class: "stats", "data-testid": "queue-stats" },
        [["Queued now", m.queue_depth], ["Oldest waiting", span(m.queue_oldest_pending_seconds || 0)],
          ["Pending", m.runs_pending], ["Running", m.runs_running],
          [`Worker slots in use here (of ${m.worker_capacity})`, m.worker_active_runs],
          ["Succeeded", m.runs_success], ["Failed", (m.runs_error || 0) + (m.runs_timeout || 0)],
          ["Interrupted", m.runs_interrupted]]
          .map(([name, value]) => h("div", { class: "stat" }, h("div", { class: "value" }, String(value ?? "—")), h("div", { class: "name" }, name)))));
    } catch (error) {
      stats.replaceChildren(errorBox(error, load));
    }
    try {
      // GET /queue (ours): every thread's runs in flight that the caller may read, in queue order
      const q = await get(`/queue?limit=${shown}`);
      const total = q.pending + q.running;
      const more = total - q.runs.length;
      runs.replaceChildren(q.runs.length ? card(null,
        h("p", { class: "hint", "data-testid": "queue-counts" }, `${q.running} running, ${q.pending} pending`,
          " — running runs first, then pending ones in the order workers take them."),
        table([
          ["Run", (r) => h("code", { title: r.run_id }, short(r.run_id))],
          ["Thread", (r) => h("a", { href: `#/threads/${r.thread_id}` }, h("code", {}, short(r.thread_id)))],
          ["Graph", (r) => r.graph_id ?? h("code", { title: r.assistant_id }, short(r.assistant_id))],
          ["Status", (r) => badge(r.status)],
          ["Age", (r) => h("span", { title: new Date(r.created_at).toLocaleString() }, span(r.age_seconds))],
          ["Started", (r) => r.status === "running" ? `${span(r.running_seconds)} ago`
            : r.due_in_seconds > 0 ? `due in ${span(r.due_in_seconds)}` : h("span", { class: "muted" }, "waiting")],
          ["Attempt", (r) => String(r.attempt)],
          ["Worker", (r) => r.worker ? h("code", { "data-testid": "worker" }, r.worker) : h("span", { class: "muted" }, "—")],
        ], q.runs),
        more > 0 && h("div", { class: "pager" }, `${more} more not shown`,
          shown < MAX_QUEUE && h("button", { class: "ghost small", "data-testid": "queue-more",
            onclick: () => { shown = Math.min(MAX_QUEUE, shown + QUEUE_PAGE); load(); } }, `Show ${QUEUE_PAGE} more`)))
        : empty("No run is pending or running."));
    } catch (error) {
      runs.replaceChildren(errorBox(error, load));
    }
    updated.textContent = `updated ${new Date().toLocaleTimeString()}, every 3 s`;
  }
  root.append(pageHead("Queue", "Runs waiting and running, refreshed while this page is open.", updated), stats,
    h("h2", {}, "Pending and running runs"), runs);
  load();
  const timer = setInterval(load, 3000);
  leave.push(() => clearInterval(timer));
}

// ---- crons and store (read-only) ------------------------------------------------------------------

function cronsView(root, _, q) {
  const offset = Number(q.offset || 0);
  root.append(pageHead("Crons", "Scheduled runs."),
    section(async () => {
      const [data, total] = await Promise.all([
        post("/runs/crons/search", { limit: PAGE, offset }), post("/runs/crons/count", {}).catch(() => null)]);
      return { data, total };
    }, ({ data, total }) => data.length ? card(null, table([
      ["Cron", (c) => h("code", { title: c.cron_id }, short(c.cron_id))],
      ["Schedule", (c) => h("code", {}, c.schedule)],
      ["Assistant", (c) => h("a", { href: `#/assistants/${c.assistant_id}` }, h("code", {}, short(c.assistant_id)))],
      ["Thread", (c) => c.thread_id ? h("a", { href: `#/threads/${c.thread_id}` }, h("code", {}, short(c.thread_id))) : h("span", { class: "muted" }, "new each time")],
      ["Next run", (c) => c.next_run_date ? new Date(c.next_run_date).toLocaleString() : "—"],
      ["Enabled", (c) => c.enabled === false ? "no" : "yes"],
      ["Input", (c) => h("code", {}, compact(c.payload?.input ?? null, 60))],
    ], data), pager(offset, data.length, total, (o) => go("#/crons", { offset: o })))
      : empty("No crons. Create one with the SDK: client.crons.create(...).")));
}

function storeView(root, _, q) {
  const namespace = q.ns ? JSON.parse(q.ns) : null;
  const offset = Number(q.offset || 0);
  const namespaces = section(() => post("/store/namespaces", { limit: 100 }), ({ namespaces: list }) => list.length
    ? h("div", {}, list.map((ns) => h("div", {}, h("a", {
      href: "#/store?" + new URLSearchParams({ ns: JSON.stringify(ns) }), class: JSON.stringify(ns) === q.ns ? "active" : "",
    }, h("code", {}, ns.join(" / "))))))
    : empty("The store is empty."));
  const items = namespace ? section(() => post("/store/items/search", { namespace_prefix: namespace, limit: PAGE, offset }),
    ({ items: list }) => list.length ? h("div", {}, table([
      ["Key", (i) => h("code", {}, i.key)],
      ["Value", (i) => h("details", {}, h("summary", {}, compact(i.value, 80)), jsonBlock(i.value))],
      ["Updated", (i) => when(i.updated_at)],
    ], list), pager(offset, list.length, null, (o) => go("#/store", { ns: q.ns, offset: o })))
      : empty("No items under this namespace."))
    : empty("Choose a namespace.");
  root.append(pageHead("Store", "Long-term memory: namespaces and their items."),
    h("div", { class: "grid", style: "grid-template-columns: 280px minmax(0, 1fr)" },
      card("Namespaces", namespaces), card(namespace ? namespace.join(" / ") : "Items", items)));
}

// ---- start ----------------------------------------------------------------------------------------

onUnauthorized(askCredentials);
if (credentials().value) credentialsButton.hidden = false;
credentialsButton.textContent = "Sign out";
get("/info").then((info) => {
  document.getElementById("server").textContent = `v${info.version} · LangGraph ${info.langgraph_py_version ?? "?"}`;
}).catch(() => {});
window.addEventListener("hashchange", route);
route();
