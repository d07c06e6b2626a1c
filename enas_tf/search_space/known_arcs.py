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
