"""Published ENAS architectures, as strings in each space's official format."""

# The PTB cell of the paper (official README at commit d1a90ac, and
# scripts/ptb_final.sh): 12 nodes, activations 0 tanh 1 ReLU 2 identity
# 3 sigmoid.
PTB_PAPER = "0 0 0 1 1 2 1 2 0 2 0 5 1 1 0 6 1 8 1 8 1 8 1"

# The cell of google-research enas_lm's README, in ITS OWN format: 8
# (previous node, activation) pairs after a fixed tanh node 0, activations
# ordered tanh, ReLU, sigmoid, identity. Convert with
# rnn.from_enas_lm_string() before use; the result has 9 nodes.
PTB_ENAS_LM = "0 2 1 0 2 1 2 2 4 0 5 0 3 2 6 2"

# The final macro network of scripts/cifar10_macro_final.sh: 24 layers,
# line i is layer i's op (0 conv3x3, 1 sep3x3, 2 conv5x5, 3 sep5x5) then its
# i skip bits for layers 0..i-1. Parse with macro.MacroSpace(24, num_branches=4).
CIFAR_MACRO_FINAL = """\
0
3 0
0 1 0
2 0 0 1
2 0 0 0 0
3 1 1 0 1 0
2 0 0 0 0 0 1
2 0 1 1 0 1 1 1
1 0 1 1 1 0 1 0 1
0 0 0 0 0 0 0 0 0 0
2 0 0 0 0 0 1 0 0 0 0
0 1 0 0 1 1 0 0 0 0 1 1
2 0 1 0 0 0 0 0 1 0 1 1 0
1 0 0 1 0 0 0 1 1 1 0 1 0 1
0 1 1 0 1 0 1 0 0 0 0 0 1 0 0
2 0 0 1 0 0 0 0 0 0 0 1 0 1 0 1
2 0 1 0 0 0 1 0 0 1 1 1 1 0 0 1 0
2 0 0 0 0 1 0 1 0 1 0 0 1 0 1 0 0 1
3 0 1 1 0 1 0 0 0 0 0 1 0 1 0 1 0 0 0
3 0 1 1 0 0 0 0 0 0 0 0 0 1 1 0 0 0 0 1
0 1 0 0 1 0 1 1 0 0 0 1 0 0 0 0 0 1 1 0 0
3 0 1 0 1 1 0 0 1 0 1 1 0 1 1 0 1 0 0 1 0 0
0 1 0 1 0 1 0 0 0 0 0 0 0 0 1 0 1 0 0 1 0 0 0
0 1 1 0 0 0 1 1 1 0 1 0 0 0 1 0 1 0 0 1 1 0 0 0
"""

# The final micro cells of scripts/cifar10_micro_final.sh: the normal cell's
# 5 nodes then the reduction cell's, each (input 1, op 1, input 2, op 2);
# ops 0 sep3x3, 1 sep5x5, 2 avg pool, 3 max pool, 4 identity.
CIFAR_MICRO_FINAL = ("0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1 "
                     "1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1")
