"""Draws architectures as standalone SVG files (no graphviz needed).

``dag_svg`` lays a DAG out left to right by longest path from the inputs,
stacks nodes of the same rank, and draws edges as curves; each space turns
its typed arc view into nodes and edges.
"""

import html

_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _MARGIN = 120, 36, 70, 24, 20


def dag_svg(nodes, edges, title=""):
    """nodes: [(id, label)] in topological order; edges: [(src, dst)]."""
    rank = {}
    for node_id, _ in nodes:
        parents = [rank[s] for s, d in edges if d == node_id and s in rank]
        rank[node_id] = max(parents) + 1 if parents else 0
    columns = {}
    for node_id, _ in nodes:
        columns.setdefault(rank[node_id], []).append(node_id)
    tallest = max(len(c) for c in columns.values())
    top = _MARGIN + (24 if title else 0)
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
    for src, dst in edges:
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        x1, y1, y2 = x1 + _BOX_W, y1 + _BOX_H / 2, y2 + _BOX_H / 2
        bend = max((x2 - x1) / 2, 30)
        parts.append(f'<path d="M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} '
                     f'{x2 - bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" fill="none" '
                     'stroke="#444" marker-end="url(#arrow)"/>')
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
