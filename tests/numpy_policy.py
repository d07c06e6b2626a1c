"""NumPy reference pieces for walking the controllers' policies by hand."""

import numpy as np


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def log_softmax(v):
    v = v - v.max()
    return v - np.log(np.exp(v).sum())


def weights(controller):
    """The controller's variables by name, as numpy arrays."""
    return {v.name: v.numpy() for v in controller.weights}


def lstm(w_lstm, x, c, h):
    """The official bias-free LSTM step."""
    i, f, o, g = np.split(np.concatenate([x, h], 1) @ w_lstm, 4, axis=1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return c, sigmoid(o) * np.tanh(c)


class Tally:
    """Sums the log-probability of each choice and its distribution's entropy."""

    def __init__(self):
        self.log_prob = 0.0
        self.entropy = 0.0

    def decide(self, logits, choice):
        lp = log_softmax(np.asarray(logits, np.float64))
        self.log_prob += lp[choice]
        self.entropy -= (np.exp(lp) * lp).sum()
