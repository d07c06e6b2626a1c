"""Draws architectures as standalone SVG files (no graphviz needed).

``dag_svg`` lays a DAG out left to right by longest path from the inputs,
stacks nodes of the same rank, and draws edges as curves (long ones through
free slots of the columns they cross); each space turns its typed arc view
into nodes and edges, labelling ops with the names of the space that
decoded it (custom ops included).
"""

import html
from xml.etree import ElementTree

from enas_tf.search_space import macro

_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _MARGIN = 120, 36, 70, 24, 20


def _arc_height(span):
    return 10 + 9 * span


def _route_path(boxes):
    """SVG path from the first box's right side to the last box's left side.

    Boxes in between are waypoint slots, crossed by a straight line.
    """
    x1, y1 = boxes[0][0] + _BOX_W, boxes[0][1] + _BOX_H / 2
    path = f"M{x1:.0f},{y1:.0f}"
    for i, (x2, y2) in enumerate(boxes[1:], start=2):
        y2 += _BOX_H / 2
        bend = max((x2 - x1) / 2, 30)
        path += f" C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
        x1, y1 = x2 + _BOX_W, y2
        if i < len(boxes):
            path += f" L{x1:.0f},{y1:.0f}"
    return path


def dag_svg(nodes, edges, title="", over_edges=()):
    """nodes: [(id, label)] in topological order; edges: [(src, dst)].

    An edge spanning several ranks is routed through a free slot of each
    column in between, so it never runs hidden behind another node's box.
    ``over_edges`` are drawn as arcs over the boxes and do not affect the
    layout: skip connections along a chain, where slots would pile up.
    """
    rank = {}
    for node_id, _ in nodes:
        parents = [rank[s] for s, d in edges if d == node_id and s in rank]
        rank[node_id] = max(parents) + 1 if parents else 0
    columns = {}
    for node_id, _ in nodes:
        columns.setdefault(rank[node_id], []).append(node_id)
    routes = []
    for i, (src, dst) in enumerate(edges):
        via = [("_via", i, r) for r in range(rank[src] + 1, rank[dst])]
        for point in via:
            columns[point[2]].append(point)
        routes.append([src, *via, dst])
    tallest = max(len(c) for c in columns.values())
    lift = max((_arc_height(rank[d] - rank[s]) for s, d in over_edges), default=0)
    top = _MARGIN + (24 if title else 0) + lift
    pos = {}
    for r, ids in columns.items():
        offset = (tallest - len(ids)) * (_BOX_H + _GAP_Y) / 2
        for i, node_id in enumerate(ids):
            pos[node_id] = (_MARGIN + r * (_BOX_W + _GAP_X),
                            top + offset + i * (_BOX_H + _GAP_Y))
    width = 2 * _MARGIN + len(columns) * (_BOX_W + _GAP_X) - _GAP_X
    height = top + _MARGIN + tallest * (_BOX_H + _GAP_Y) - _GAP_Y
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
             f'height="{height:.0f}" font-family="sans-serif" font-size="13">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
             'markerWidth="7" markerHeight="7" orient="auto">'
             '<path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>',
             '<rect width="100%" height="100%" fill="white"/>']
    if title:
        parts.append(f'<text x="{_MARGIN}" y="{_MARGIN + 4}" font-weight="bold">'
                     f'{html.escape(title)}</text>')
    for route in routes:
        parts.append(f'<path d="{_route_path([pos[p] for p in route])}" fill="none" '
                     'stroke="#444" marker-end="url(#arrow)"/>')
    for src, dst in over_edges:
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        x1, x2 = x1 + _BOX_W / 2 + 6, x2 + _BOX_W / 2 - 6
        peak = min(y1, y2) - 4 / 3 * _arc_height(rank[dst] - rank[src])
        parts.append(f'<path d="M{x1:.0f},{y1:.0f} C{x1:.0f},{peak:.0f} '
                     f'{x2:.0f},{peak:.0f} {x2:.0f},{y2:.0f}" fill="none" '
                     'stroke="#c63" marker-end="url(#arrow)"/>')
    for node_id, label in nodes:
        x, y = pos[node_id]
        parts.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{_BOX_W}" height="{_BOX_H}" '
                     'rx="6" fill="#eef3fb" stroke="#335"/>')
        parts.append(f'<text x="{x + _BOX_W / 2:.0f}" y="{y + _BOX_H / 2 + 5:.0f}" '
                     f'text-anchor="middle">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def rnn_cell_svg(cell, title="ENAS recurrent cell"):
    """The PTB cell: x_t and h_{t-1} into node 0, loose ends averaged to h_t."""
    nodes = [("x", "x[t]"), ("h_prev", "h[t-1]")]
    edges = [("x", 0), ("h_prev", 0)]
    names = cell.activation_names()
    for node in range(cell.num_nodes):
        nodes.append((node, f"{node}: {names[node]}"))
        if node:
            edges.append((cell.prev_nodes[node - 1], node))
    nodes.append(("h", "h[t] = avg"))
    edges += [(node, "h") for node in cell.loose_ends]
    return dag_svg(nodes, edges, title)


def macro_net_svg(net, title=None):
    """A macro network: the layer chain with its reductions, skips as arcs above."""
    nodes, edges = [("input", "input: stem conv")], []
    pools = macro.MacroSpace(net.num_layers).pool_layers()
    last = "input"
    for layer, name in enumerate(net.op_names()):
        nodes.append((layer, f"{layer}: {name}"))
        edges.append((last, layer))
        last = layer
        if layer in pools:
            nodes.append((("pool", layer), "reduce (stride 2)"))
            edges.append((layer, ("pool", layer)))
            last = ("pool", layer)
    nodes.append(("output", "avg pool + fc"))
    edges.append((last, "output"))
    skips = [(prev, layer) for layer, row in enumerate(net.skips)
             for prev, bit in enumerate(row) if bit]
    if title is None:
        title = f"ENAS macro network ({net.num_layers} layers, {len(skips)} skips)"
    return dag_svg(nodes, edges, title, over_edges=skips)


def _cell_svg(cell, title):
    """One micro cell: inputs, each node's two ops and their sum, the concat."""
    def source(index):
        return ("input", index) if index < 2 else ("node", index - 2)

    nodes = [(("input", 0), "c[k-2]"), (("input", 1), "c[k-1]")]
    edges = []
    for b, (in_1, op_1, in_2, op_2) in enumerate(cell.nodes):
        for k, (index, op) in enumerate(((in_1, op_1), (in_2, op_2))):
            nodes.append((("op", b, k), cell.space_ops[op]))
            edges += [(source(index), ("op", b, k)), (("op", b, k), ("node", b))]
        nodes.append((("node", b), f"node {b + 2}: add"))
    nodes.append(("output", "c[k]: concat"))
    edges += [(source(index), "output") for index in cell.loose_ends]
    return dag_svg(nodes, edges, title)


def _stack_svgs(svgs):
    """One SVG holding the given ones one above the other."""
    roots = [ElementTree.fromstring(svg) for svg in svgs]
    sizes = [(float(r.get("width")), float(r.get("height"))) for r in roots]
    parts, y = [], 0.0
    for svg, (_, height) in zip(svgs, sizes):
        parts.append(svg.replace("<svg ", f'<svg y="{y:.0f}" ', 1))
        y += height
    width = max(w for w, _ in sizes)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
            f'height="{y:.0f}">\n' + "".join(parts) + "</svg>\n")


def micro_cells_svg(micro_arc):
    """Both micro cells, the normal one above the reduction one."""
    return _stack_svgs([
        _cell_svg(micro_arc.normal, "ENAS normal cell"),
        _cell_svg(micro_arc.reduction,
                  "ENAS reduction cell (ops on c[k-2], c[k-1] use stride 2)")])
