"""Learning-rate schedules against the official formulas."""

import math

import pytest

from enas_tf.training import schedules


class ExponentialDecayTest:

    def test_staircase_starts_after_decay_start(self):
        lrs = [schedules.exponential_decay(e, 20.0, 0.5, 2) for e in range(5)]
        assert lrs == [20.0, 20.0, 20.0, 10.0, 5.0]

    def test_decay_every_and_floor(self):
        lrs = [schedules.exponential_decay(e, 1.0, 0.1, 0, decay_every=2, min_lr=0.05)
               for e in range(6)]
        assert lrs == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.05, 0.05])


class CosineWarmRestartsTest:

    def test_restarts_at_10_30_70(self):
        lr = lambda e: schedules.cosine_warm_restarts(e, 0.05, 0.001, 10, 2)
        for restart in (0, 10, 30, 70, 150):
            assert lr(restart) == pytest.approx(0.05)
        assert lr(5) == pytest.approx(0.001 + 0.5 * 0.049 * (1 + math.cos(math.pi / 2)))
        assert lr(29) < lr(28) < lr(11)
