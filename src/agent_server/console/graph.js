// A graph's drawing (GET /assistants/{id}/graph: nodes and edges), laid out in layers top to bottom:
// a node sits one layer below the lowest of its predecessors; edges back up a layer (loops) curve aside.

const SVG = "http://www.w3.org/2000/svg";
const NODE_H = 34, LAYER_GAP = 70, NODE_GAP = 28, CHAR_W = 7.5, PAD = 20;

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Layer of each node: longest path from the roots over the edges that do not close a cycle.
function layers(ids, edges) {
  const out = new Map(ids.map((id) => [id, []]));
  for (const e of edges) if (out.has(e.source) && out.has(e.target)) out.get(e.source).push(e.target);
  const order = [], state = new Map(), back = new Set();
  const visit = (id) => {
    state.set(id, 1);
    for (const next of out.get(id)) {
      if (state.get(next) === 1) back.add(`${id}\u0000${next}`);
      else if (!state.has(next)) visit(next);
    }
    state.set(id, 2);
    order.push(id);
  };
  const start = ids.includes("__start__") ? ["__start__"] : [];
  for (const id of [...start, ...ids]) if (!state.has(id)) visit(id);
  const layer = new Map(ids.map((id) => [id, 0]));
  for (const id of order.reverse()) {
    for (const next of out.get(id)) {
      if (!back.has(`${id}\u0000${next}`)) layer.set(next, Math.max(layer.get(next), layer.get(id) + 1));
    }
  }
  if (layer.has("__end__")) layer.set("__end__", Math.max(...layer.values())); // always the bottom row
  return layer;
}

export function drawGraph({ nodes = [], edges = [] }) {
  const ids = nodes.map((n) => n.id);
  const label = (n) => String(n.data?.name ?? n.id);
  const layer = layers(ids, edges);
  const rows = [];
  for (const n of nodes) (rows[layer.get(n.id)] ??= []).push(n);
  const width = (n) => Math.max(80, label(n).length * CHAR_W + 28);
  const rowWidth = (row) => row.reduce((sum, n) => sum + width(n), 0) + NODE_GAP * (row.length - 1);
  const total = Math.max(200, ...rows.filter(Boolean).map(rowWidth)) + 2 * PAD;
  const at = new Map();
  rows.forEach((row, i) => {
    if (!row) return;
    let x = (total - rowWidth(row)) / 2;
    for (const n of row) {
      at.set(n.id, { x, y: PAD + i * (NODE_H + LAYER_GAP), w: width(n) });
      x += width(n) + NODE_GAP;
    }
  });
  const height = PAD * 2 + rows.length * (NODE_H + LAYER_GAP) - LAYER_GAP;
  const svg = el("svg", { viewBox: `0 0 ${total} ${height}`, width: total, height, class: "graph", role: "img" });
  const defs = el("defs");
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }));
  defs.append(marker);
  svg.append(defs);
  for (const e of edges) {
    const a = at.get(e.source), b = at.get(e.target);
    if (!a || !b) continue;
    const x1 = a.x + a.w / 2, x2 = b.x + b.w / 2;
    let d;
    if (b.y > a.y) {
      const y1 = a.y + NODE_H, y2 = b.y, mid = (y1 + y2) / 2;
      d = `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2}`;
    } else { // back or sideways: around the right of both
      const side = Math.max(a.x + a.w, b.x + b.w) + 30;
      d = `M${a.x + a.w},${a.y + NODE_H / 2} C${side},${a.y + NODE_H / 2} ${side},${b.y + NODE_H / 2} ${b.x + b.w},${b.y + NODE_H / 2}`;
    }
    const path = el("path", { d, class: e.conditional ? "edge conditional" : "edge", "marker-end": "url(#arrow)" });
    if (e.data) path.append(el("title", {}, String(e.data)));
    svg.append(path);
  }
  for (const n of nodes) {
    const p = at.get(n.id);
    const special = n.id === "__start__" || n.id === "__end__";
    const g = el("g", { class: special ? "node special" : "node", "data-node": n.id });
    g.append(el("rect", { x: p.x, y: p.y, width: p.w, height: NODE_H, rx: special ? NODE_H / 2 : 6 }));
    g.append(el("text", { x: p.x + p.w / 2, y: p.y + NODE_H / 2 + 4.5, "text-anchor": "middle" }, label(n)));
    svg.append(g);
  }
  return svg;
}
