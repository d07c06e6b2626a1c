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
