// A graph's drawing (GET /assistants/{id}/graph: nodes and edges), laid out in layers top to bottom:
// a node sits one layer below the lowest of its predecessors; edges that skip layers go down the left,
// edges back up (loops) up the right, each through the gaps between layers.

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
  const SIDE = 60; // room on the left for edges that skip layers, on the right for edges back up
  const total = Math.max(200, ...rows.filter(Boolean).map(rowWidth)) + 2 * PAD + 2 * SIDE;
  const at = new Map();
  rows.forEach((row, i) => {
    if (!row) return;
    let x = (total - rowWidth(row)) / 2;
    for (const n of row) {
      at.set(n.id, { x, y: PAD + i * (NODE_H + LAYER_GAP), w: width(n) });
      x += width(n) + NODE_GAP;
    }
  });
  const placed = [...at.values()];
  const left = Math.min(...placed.map((p) => p.x)), right = Math.max(...placed.map((p) => p.x + p.w));
  const height = PAD * 2 + rows.length * (NODE_H + LAYER_GAP) - LAYER_GAP;
  const svg = el("svg", { viewBox: `0 0 ${total} ${height}`, width: total, height, class: "graph", role: "img" });
  const defs = el("defs");
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }));
  defs.append(marker);
  svg.append(defs);
  let skips = 0, backs = 0;
  for (const e of edges) {
    const a = at.get(e.source), b = at.get(e.target);
    if (!a || !b) continue;
    const x1 = a.x + a.w / 2, x2 = b.x + b.w / 2, mid1 = a.y + NODE_H / 2, mid2 = b.y + NODE_H / 2;
    let d;
    if (b.y - a.y === NODE_H + LAYER_GAP) { // to the next layer: a plain curve down
      const y1 = a.y + NODE_H, y2 = b.y, mid = (y1 + y2) / 2;
      d = `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2}`;
    } else { // skipping layers (down the left) or back up (a loop, up the right): through the empty
      // gaps between layers and beside them, so it crosses no node
      const down = b.y > a.y;
      const shift = 8 * ((down ? skips++ : backs++) % 4);
      const side = down ? left - 20 - shift : right + 20 + shift;
      const below = a.y + NODE_H + LAYER_GAP / 2 - 8 + shift, above = b.y - LAYER_GAP / 2 + 8 - shift;
      d = `M${x1},${a.y + NODE_H} V${below} H${side} V${above} H${x2} V${b.y}`;
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
