"""What a search's controller is doing: policy statistics and a collapse warning.

A user watching a search should see whether the policy is learning or
collapsing onto a few ops (the failure NAS-Bench-201 measured for ENAS:
parameter-free ops everywhere, at low accuracy). Per controller epoch this
module turns the epoch's sampled arcs into statistics for TensorBoard and
``summary.json``:

- the mean entropy of an arc's decisions, as a fraction of the uniform
  policy's (``sum(log bounds)``); a tanh-shaped policy cannot reach 0 (with
  tanh constant 1.5 an op decision keeps about half of its maximum), so the
  collapse test compares with the search's own first epoch instead;
- the mean entropy of the op decisions and of the wiring decisions;
- how often each op was sampled at the op positions, and per op position
  (the picture ``policy.png``);
- for the macro space, the skip density (the fraction of skip bits set).

``PolicyWatch.observe`` warns when the entropy has fallen below
``collapse_ratio`` of the first epoch's while the epochs' mean reward has not
improved for ``stall_epochs`` epochs, and when after ``stall_epochs``
epochs the policy has not moved at all (mean entropy within 0.1% of the
first epoch's: measured on a small PTB search whose rewards, 80 / ppl near
0.1-0.2, spread by about 0.015, so the policy gradient stayed far below
Adam's epsilon of 1e-3 and 100 updates left the policy as it started, at
10x the learning rate or 10x the reward alike). Its
history is rebuilt from ``arcs.jsonl`` on resume, so a resumed search warns
as an unbroken one would.
"""

import collections

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only, no display
from matplotlib import pyplot  # noqa: E402  (after the backend)


def op_frequency_table(space, arcs):
    """[op positions, ops]: how often each op was sampled at each op position."""
    positions = space.op_positions()
    arcs = np.asarray(arcs).reshape(-1, space.arc_length)
    table = np.zeros((len(positions), len(space.op_names)))
    for row, position in enumerate(positions):
        table[row] = np.bincount(arcs[:, position], minlength=len(space.op_names))
    return table / max(len(arcs), 1)


def epoch_statistics(space, arcs, decision_entropies):
    """Scalars of one controller epoch: ``arcs`` [N, L], ``decision_entropies`` [N, L]."""
    arcs = np.asarray(arcs).reshape(-1, space.arc_length)
    entropies = np.asarray(decision_entropies, np.float64).reshape(-1, space.arc_length)
    per_arc = entropies.sum(axis=1).mean()
    ops = space.op_positions()
    wiring = sorted(set(range(space.arc_length)) - set(ops))
    stats = {"entropy": float(per_arc),
             "entropy_fraction": float(per_arc / np.sum(np.log(space.bounds)))}
    if ops:
        stats["op_decision_entropy"] = float(entropies[:, ops].mean())
        frequencies = op_frequency_table(space, arcs).mean(axis=0)
        stats.update({f"op_frequency/{name}": float(f)
                      for name, f in zip(space.op_names, frequencies)})
    if wiring:
        stats["wiring_decision_entropy"] = float(entropies[:, wiring].mean())
    if space.name == "macro" and wiring:
        stats["skip_density"] = float(arcs[:, wiring].mean())
    return stats


def write_picture(space, arcs, path, title):
    """``policy.png``: the op frequencies per op position, as a heat map."""
    table = op_frequency_table(space, arcs)
    names = [space.position_name(p) for p in space.op_positions()]
    figure, axes = pyplot.subplots(figsize=(1.2 * len(space.op_names) + 3,
                                            0.28 * len(names) + 1.5))
    image = axes.imshow(table, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(space.op_names)), space.op_names, rotation=30, ha="right")
    axes.set_yticks(range(len(names)), names, fontsize=7)
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="fraction of sampled arcs")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path


class PolicyWatch:
    """The controller epochs' (mean reward, entropy) history, and the collapse test."""

    FROZEN_TOLERANCE = 1e-3  # relative entropy change below which the policy has not moved

    def __init__(self, collapse_ratio=0.5, stall_epochs=5):
        self.collapse_ratio, self.stall_epochs = collapse_ratio, stall_epochs
        self.history = []  # (epoch, mean reward, mean entropy), oldest first

    def rebuild(self, records):
        """The history of the controller records of ``arcs.jsonl`` (any order)."""
        by_epoch = collections.defaultdict(list)
        for record in records:
            if record.get("phase") == "controller" and "entropy" in record:
                by_epoch[record["epoch"]].append((record["reward"], record["entropy"]))
        self.history = [(epoch, float(np.mean([r for r, _ in pairs])),
                         float(np.mean([e for _, e in pairs])))
                        for epoch, pairs in sorted(by_epoch.items())]

    def observe(self, epoch, rewards, entropies):
        """Adds an epoch; returns a one-line warning if the policy collapsed or has
        not moved, else None."""
        self.history.append((epoch, float(np.mean(rewards)), float(np.mean(entropies))))
        if len(self.history) <= self.stall_epochs:
            return None
        first_entropy = self.history[0][2]
        entropy = self.history[-1][2]
        if abs(entropy - first_entropy) <= self.FROZEN_TOLERANCE * abs(first_entropy):
            return (f"the controller's policy has not moved in {len(self.history)} epochs "
                    f"(mean entropy {entropy:.4g}, first {first_entropy:.4g}): its updates are "
                    f"too small to learn (this epoch's rewards spread by {np.std(rewards):.3g}); "
                    "with gradients far below the controller Adam's epsilon, a larger learning "
                    "rate or reward changes nothing: try adam_epsilon=1e-8, or compare with a "
                    "random search")
        best_before = max(r for _, r, _ in self.history[:-self.stall_epochs])
        best_recent = max(r for _, r, _ in self.history[-self.stall_epochs:])
        if first_entropy <= 0 or entropy >= self.collapse_ratio * first_entropy:
            return None
        if best_recent > best_before:
            return None
        return (f"the controller's entropy fell to {entropy / first_entropy:.0%} of its "
                f"first epoch's while the mean reward has not improved for "
                f"{self.stall_epochs} epochs: the policy may have collapsed (see policy/* "
                "in TensorBoard and policy.png; try a larger entropy weight or temperature, "
                "a lower tanh constant, or compare with a random search)")
