"""Forward FLOPs of a PTB search window, counted from the matmul shapes.

Only the matmuls count (2 FLOPs per multiply-add): node 0's input part, the
N nodes' [H, 2H] matmuls and the tied softmax. A training step is 3x the
forward count (backward = 2x forward).
"""


def step_flops(batch, bptt, hidden, nodes, vocab):
    """Forward matmul FLOPs of one window: node 0's input part, N nodes, softmax."""
    tokens = batch * bptt
    cell = 2 * tokens * hidden * 2 * hidden * (nodes + 1)
    softmax = 2 * tokens * hidden * vocab
    return cell + softmax


def chained_training_flops(batch, bptt, hidden, nodes):
    """Training FLOPs of the matmuls that wait on one another through time.

    Per time step, node 0's hidden part and the other N - 1 nodes forward, and
    their input gradients backward, each a [batch, H] @ [H, 2H]-sized matmul
    that needs the previous one's result. The rest (node 0's input part, the
    weight gradients, batched over the window, and the softmax) are large
    independent matmuls.
    """
    return 2 * (2 * batch * bptt * hidden * 2 * hidden * nodes)


def floor_seconds(training_flops, chained_flops, chain_rate, large_rate):
    """A training step's matmuls alone: the chained at ``chain_rate``, the
    rest at ``large_rate`` (FLOP/s), before any elementwise op, copy or routing."""
    return chained_flops / chain_rate + (training_flops - chained_flops) / large_rate
