// Walks over a plain description of the graph ({id, type} nodes and [from, to] edges), so the logic can be tested
// without the frontend; js/adlightning.js builds the description from the live graph.

function adjacency(edges, reverse) {
  const next = new Map();
  for (const [from, to] of edges) {
    const [a, b] = reverse ? [to, from] : [from, to];
    if (!next.has(a)) next.set(a, []);
    next.get(a).push(b);
  }
  return next;
}

function reach(startId, edges, reverse) {
  const next = adjacency(edges, reverse);
  const seen = new Set([startId]);
  const todo = [startId];
  while (todo.length) {
    for (const id of next.get(todo.pop()) ?? []) {
      if (!seen.has(id)) {
        seen.add(id);
        todo.push(id);
      }
    }
  }
  seen.delete(startId);
  return seen;
}

/** Ids of the nodes of one of `types` that `startId` feeds, directly or through other nodes. */
export function downstreamOfType(startId, types, nodes, edges) {
  const hit = reach(startId, edges, false);
  return nodes.filter((n) => hit.has(n.id) && types.includes(n.type)).map((n) => n.id);
}

/** Ids of the nodes of one of `types` that feed `startId`, directly or through other nodes. */
export function upstreamOfType(startId, types, nodes, edges) {
  const hit = reach(startId, edges, true);
  return nodes.filter((n) => hit.has(n.id) && types.includes(n.type)).map((n) => n.id);
}
