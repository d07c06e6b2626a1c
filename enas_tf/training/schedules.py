"""Learning-rate schedules of the paper, as functions of the epoch."""

import math


def exponential_decay(epoch, base_lr, decay_rate, decay_start, decay_every=1,
                      min_lr=0.0):
    """PTB: the official staircase ``lr * rate^floor((epoch - start) / every)``.

    Epochs count from 0; the first decayed epoch is ``decay_start + every``.
    """
    num_decays = max(epoch - decay_start, 0) // decay_every
    return max(base_lr * decay_rate ** num_decays, min_lr)


def cosine_warm_restarts(epoch, lr_max, lr_min, t_0, t_mul):
    """CIFAR: SGDR, restarting at epochs t_0, t_0(1+t_mul), ... (10, 30, 70...)."""
    period, start = t_0, 0
    while epoch >= start + period:
        start += period
        period *= t_mul
    progress = (epoch - start) / period
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(math.pi * progress))
