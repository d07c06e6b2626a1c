"""The ENAS search loop: child phase, controller phase, derive, repeat.

Per epoch, as the official code: the shared weights train for one pass with
a fresh sampled arc for every minibatch (controller frozen), then the
controller trains for ``controller_train_steps`` updates of
``controller_num_aggregate`` sampled arcs each (shared weights frozen).
After the last epoch the final arc is derived as the paper describes:
sample K arcs, score each on the same validation batches, keep the best.

With ``search_strategy="random"`` (random search with weight sharing) the
shared weights train on uniformly sampled arcs, there is no controller and
no controller phase, and the derivation scores more uniform arcs, spending
the validation batches the controller phases would have (see LoopConfig).

In fixed mode (``task.fixed_arc`` set) the same loop trains that one arc
from scratch, then reports valid and test metrics and exports the model.
"""

import dataclasses
import math
import os
import statistics
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from enas_tf.training import batched_scoring
from enas_tf.training import errors
from enas_tf.training import policy_watch
from enas_tf.training import run_dir


class CheckpointMismatchError(errors.NamesParameters, ValueError):
    """The output directory holds a checkpoint of a different model."""


class LoopConfigError(errors.NamesParameters, ValueError):
    """Inconsistent loop settings; the message names the parameters."""


SEARCH_STRATEGIES = ("enas", "random")


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """The loop's settings; ``search_strategy`` picks how a search samples arcs.

    ``"enas"``: a controller samples them and trains by REINFORCE. Each
    controller epoch (an epoch with ``epoch % controller_train_every == 0``)
    scores ``controller_train_steps x controller_num_aggregate`` arcs, each
    on one validation batch; the derivation then scores
    ``derive_num_samples`` arcs, each on the same ``derive_num_batches``
    batches. ``"random"``: every arc position is uniform over its bound and
    there is no controller. For an equal budget of validation-batch
    evaluations the derivation scores ``derive_num_samples + ceil(C x
    controller_train_steps x controller_num_aggregate / derive_num_batches)``
    arcs, C the number of controller epochs, each on the same
    ``derive_num_batches`` batches (see ``derive_arcs``).
    """

    num_epochs: int = 1
    controller_training: bool = True
    controller_train_every: int = 1
    controller_train_steps: int = 1
    controller_num_aggregate: int = 1
    controller_batch_arcs: int = 1  # arcs scored per compiled call; divides the above
    eval_every_epochs: int = 1
    derive_num_samples: int = 10
    derive_num_batches: int = 1
    log_every: int = 50
    max_checkpoints: int = 3
    max_consecutive_bad_steps: int = 10  # then roll back; 0 never rolls back
    rollback_lr_factor: float = 0.5
    export_dir: str = ""
    model_name: str = "enas"
    verbose: bool = True
    search_strategy: str = "enas"  # one of SEARCH_STRATEGIES
    # Warn when the controller's entropy falls below this fraction of its first
    # epoch's while the mean reward has not improved for reward_stall_epochs.
    entropy_collapse_ratio: float = 0.5
    reward_stall_epochs: int = 5

    def __post_init__(self):
        if self.search_strategy not in SEARCH_STRATEGIES:
            raise LoopConfigError(f"{{search_strategy}} must be one of "
                                  f"{', '.join(SEARCH_STRATEGIES)}. "
                                  f"Received: {self.search_strategy!r}")
        if not 0.0 < self.entropy_collapse_ratio <= 1.0:
            raise LoopConfigError(f"{{entropy_collapse_ratio}} must be in (0, 1]. "
                                  f"Received: {self.entropy_collapse_ratio}")
        if self.reward_stall_epochs < 1:
            raise LoopConfigError(f"{{reward_stall_epochs}} must be at least 1. "
                                  f"Received: {self.reward_stall_epochs}")
        k, n = self.controller_batch_arcs, self.controller_num_aggregate
        if k < 1 or n % k:
            divisors = [d for d in range(1, n + 1) if n % d == 0]
            raise LoopConfigError(f"{{controller_batch_arcs}}={k} must divide "
                                  f"{{controller_num_aggregate}}={n} (allowed: {divisors})")

    def controller_arcs(self):
        """Arcs an ENAS search's controller phases score, one validation batch each."""
        controller_epochs = -(-self.num_epochs // self.controller_train_every)
        return (controller_epochs * self.controller_train_steps
                * self.controller_num_aggregate)

    def derive_arcs(self):
        """Arcs the derivation scores: random search adds the controller's budget."""
        if self.search_strategy == "enas":
            return self.derive_num_samples
        return self.derive_num_samples + math.ceil(
            self.controller_arcs() / self.derive_num_batches)


class SearchLoop:
    """Runs a search (or a fixed-arc training) into ``output_dir``."""

    def __init__(self, task, config, output_dir, rng, controller=None,
                 reinforce=None, run_metadata=None):
        self.task, self.config, self.output_dir = task, config, output_dir
        self.rng = rng
        self.controller, self.reinforce = controller, reinforce
        self.mode = "fixed" if task.fixed_arc is not None else "search"
        self.random_search = self.mode == "search" and config.search_strategy == "random"
        if self.random_search and (controller is not None or reinforce is not None):
            raise LoopConfigError("a {search_strategy}='random' search has no controller: "
                                  "pass controller=None and reinforce=None")
        self.run_metadata = run_metadata or {}
        self.arc_log = run_dir.ArcLog(output_dir)
        self.policy_watch = policy_watch.PolicyWatch(config.entropy_collapse_ratio,
                                                     config.reward_stall_epochs)
        self.epoch = tf.Variable(0, dtype=tf.int64, name="epoch")
        self.child_steps = tf.Variable(0, dtype=tf.int64, name="child_steps")
        self.controller_steps = tf.Variable(0, dtype=tf.int64, name="controller_steps")
        self.skipped_steps = tf.Variable(0, dtype=tf.int64, name="skipped_steps")
        self.rollbacks = tf.Variable(0, dtype=tf.int64, name="rollbacks")
        self.lr_scale = tf.Variable(1.0, dtype=tf.float64, name="lr_scale")
        self.child_seconds, self.controller_seconds = [], []
        self.results = {"best_arc": None, "best_reward": None}
        self._restored = None  # whether restore() found a checkpoint
        items = dict(task.checkpoint_items(), rng=rng, epoch=self.epoch,
                     child_steps=self.child_steps,
                     controller_steps=self.controller_steps,
                     skipped_steps=self.skipped_steps, rollbacks=self.rollbacks,
                     lr_scale=self.lr_scale)
        if reinforce is not None:
            items.update(controller=controller, reinforce=reinforce,
                         controller_optimizer=reinforce.optimizer)
        self.checkpoint = tf.train.Checkpoint(**items)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(output_dir, run_dir.CHECKPOINTS),
            max_to_keep=config.max_checkpoints)
        self._writer = None  # made on first use: restore() must find the directory untouched
        if self.random_search:
            self._sample_arc = tf.function(self._uniform_arc_fn)
        elif self.mode == "search":
            self._sample_arc = tf.function(self._sample_arc_fn)
            self._score = tf.function(self._score_fn)
            self._score_batch = tf.function(self._score_batch_fn)
            self._apply = tf.function(reinforce.apply)
        if self.mode == "search":
            self._reward = tf.function(task.reward)
        self.started = time.time()

    # Compiled sampling and controller pieces ---------------------------------
    def _sample_arc_fn(self):
        return self.controller.sample(self.rng.make_seeds(1)[:, 0]).arc

    def _uniform_arc_fn(self):
        """Every position uniform over ``[0, bound)``, from the checkpointed generator
        (full-range int64 draws modulo the bound: a bias below 2**-40)."""
        bounds = tf.constant(self.task.space.bounds, tf.int64)
        draws = self.rng.uniform_full_int(bounds.shape, tf.int64)
        return tf.cast(tf.math.floormod(draws, bounds), tf.int32)

    def _score_fn(self, batch):
        return self.reinforce.score(self.rng.make_seeds(1)[:, 0],
                                    lambda arc: self.task.reward(arc, batch))

    def _score_batch_fn(self, batches):
        # K draws of one seed each, in order: the seeds K _score calls would use.
        seeds = tf.stack([self.rng.make_seeds(1)[:, 0]
                          for _ in range(self.config.controller_batch_arcs)])
        return self.reinforce.score_batch(
            seeds, lambda arcs: batched_scoring.rewards(self.task, arcs, batches))

    def _score_arcs(self, shared_batch=None):
        """Scores the next ``controller_batch_arcs`` arcs, each on its own validation
        batch or all on ``shared_batch``; every output has a leading K axis."""
        k = self.config.controller_batch_arcs

        def batch():
            return self.task.reward_batch() if shared_batch is None else shared_batch

        if k == 1:
            out = self._score(batch())
            return {name: value.numpy()[np.newaxis] for name, value in out.items()}
        batches = batched_scoring.stack_batches([batch() for _ in range(k)])
        return {name: value.numpy() for name, value in self._score_batch(batches).items()}

    # The run ---------------------------------------------------------------
    def run(self):
        restored = self._restored if self._restored is not None else self.restore()
        if not restored:
            self.manager.save(checkpoint_number=0)  # a rollback target from the start
        epoch = int(self.epoch.numpy())
        finished = self._finished_summary(epoch)
        if finished is not None:
            return finished  # derived or evaluated and exported already: nothing to redo
        self.arc_log.truncate_to_epoch(epoch)
        self.policy_watch.rebuild(self.arc_log.read())
        while epoch < self.config.num_epochs:
            try:
                self._run_epoch(epoch)
            except _TooManyBadSteps:
                self._roll_back()
            epoch = int(self.epoch.numpy())
        if self.mode == "search":
            self.results.update(self._derive())
        else:
            self.results.update(self._finish_fixed())
        return self._write_summary()

    def restore(self):
        """Restores the latest checkpoint, if any; says whether there was one.

        Call it before writing anything into the output directory: a
        checkpoint of another model fails here, with nothing changed.
        """
        path = self.manager.latest_checkpoint
        self._restored = bool(path)
        if not path:
            return False
        try:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            reason = " ".join(str(e).split())[:300]
            raise CheckpointMismatchError(
                f"{{output_dir}}={self.output_dir} holds a checkpoint of a different "
                f"model ({reason}); use another {{output_dir}}, or {{reset_output_dir}} "
                "to discard it") from None
        logging.info("Restored %s (epoch %d)", path, int(self.epoch.numpy()))
        return True

    def _roll_back(self):
        """Back to the last checkpoint, with a lower learning rate from now on."""
        scale = float(self.lr_scale.numpy()) * self.config.rollback_lr_factor
        rollbacks = int(self.rollbacks.numpy()) + 1
        skipped = int(self.skipped_steps.numpy())  # every skip stays counted
        self.restore()
        self.lr_scale.assign(scale)
        self.rollbacks.assign(rollbacks)
        self.skipped_steps.assign(skipped)
        self.arc_log.truncate_to_epoch(int(self.epoch.numpy()))
        logging.warning("%d consecutive non-finite steps: rolled back to epoch %d; "
                        "learning rate scaled by %g", self.config.max_consecutive_bad_steps,
                        int(self.epoch.numpy()), scale)

    def _run_epoch(self, epoch):
        lr = self.task.begin_epoch(epoch, lr_scale=float(self.lr_scale.numpy()))
        metrics = {"lr": lr}
        metrics.update(self._child_phase())
        cfg = self.config
        if (self.mode == "search" and not self.random_search and cfg.controller_training
                and epoch % cfg.controller_train_every == 0):
            metrics.update(self._controller_phase(epoch))
        if (epoch + 1) % cfg.eval_every_epochs == 0 or epoch + 1 == cfg.num_epochs:
            metrics.update(self._evaluate_epoch(epoch))
        self._write_scalars(metrics, "epoch", step=epoch)
        self.epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)
        self.results.update(metrics)
        self._write_summary()
        logging.info("epoch %d: %s", epoch, _format(metrics))

    def _child_phase(self):
        steps = self.task.child_steps_per_epoch()
        bar = keras.utils.Progbar(steps, verbose=1 if self.config.verbose else 0,
                                  stateful_metrics=["loss", "ppl", "acc"])
        totals, last, bad_in_a_row = {}, {}, 0
        for step in range(steps):
            started = time.perf_counter()
            arc = self._sample_arc() if self.mode == "search" else self.task.fixed_arc
            last = self.task.train_step(arc)
            self.child_seconds.append(time.perf_counter() - started)
            self.child_steps.assign_add(1)
            self.skipped_steps.assign_add(last.get("skipped", 0))
            bad_in_a_row = bad_in_a_row + 1 if last.get("skipped") else 0
            if bad_in_a_row == self.config.max_consecutive_bad_steps:
                raise _TooManyBadSteps()
            global_step = int(self.child_steps.numpy())
            if global_step % self.config.log_every == 0 or step + 1 == steps:
                self._write_scalars(last, "child", step=global_step)
            bar.update(step + 1, [(k, v) for k, v in last.items()])
            for name, value in last.items():
                totals[name] = totals.get(name, 0.0) + value
        # Epoch means; "skipped" stays a count.
        return {f"child_{k}": v if k == "skipped" else v / steps for k, v in totals.items()}

    def _controller_phase(self, epoch):
        cfg = self.config
        records, rewards, arcs, entropies, decision_entropies = [], [], [], [], []
        for _ in range(cfg.controller_train_steps):
            # A centred update scores all its arcs on one batch (ControllerConfig.shared_batch).
            shared = self.task.reward_batch() if self.reinforce.centered else None
            for _ in range(cfg.controller_num_aggregate // cfg.controller_batch_arcs):
                started = time.perf_counter()
                outs = self._score_arcs(shared)
                # Seconds per scored arc.
                self.controller_seconds.append(
                    (time.perf_counter() - started) / cfg.controller_batch_arcs)
                rewards.extend(float(r) for r in outs["reward"])
                arcs.extend(outs["arc"])
                entropies.extend(float(e) for e in outs["entropy"])
                decision_entropies.extend(outs["decision_entropies"])
                records.extend(dict(self._arc_record(epoch, "controller", arc, reward, metric),
                                    entropy=float(entropy))
                               for arc, reward, metric, entropy in zip(
                                   outs["arc"], outs["reward"], outs["metric"],
                                   outs["entropy"]))
            grad_norm = float(self._apply().numpy())
            self.controller_steps.assign_add(1)
            out = {name: value[-1] for name, value in outs.items()}  # the last arc's
            self._write_scalars(
                {"reward": out["reward"], "baseline": out["baseline"],
                 "entropy": out["entropy"], "loss": out["loss"],
                 "grad_norm": grad_norm, self.task.metric_name: out["metric"]},
                "controller", step=int(self.controller_steps.numpy()))
        self.arc_log.append(records)
        return dict(self._watch_policy(epoch, arcs, rewards, entropies, decision_entropies),
                    controller_mean_reward=float(np.mean(rewards)),
                    controller_baseline=float(out["baseline"]))

    def _watch_policy(self, epoch, arcs, rewards, entropies, decision_entropies):
        """The epoch's policy statistics (TensorBoard ``policy/*``, ``policy.png``),
        and a warning if the policy collapsed; returns the summary's entropy figures."""
        space = self.task.space
        stats = policy_watch.epoch_statistics(space, arcs, decision_entropies)
        self._write_scalars(stats, "policy", step=epoch)
        with self._summary_writer().as_default(step=epoch):
            tf.summary.histogram("policy/decision_entropy",
                                 np.mean(decision_entropies, axis=0))
        if space.op_positions():
            policy_watch.write_picture(
                space, arcs, os.path.join(self.output_dir, run_dir.POLICY_PICTURE),
                f"ops sampled by the controller, epoch {epoch}")
        warning = self.policy_watch.observe(epoch, rewards, entropies)
        if warning:
            logging.warning("epoch %d: %s", epoch, warning)
        return {"controller_entropy": stats["entropy"],
                "policy_entropy_fraction": stats["entropy_fraction"]}

    def _evaluate_epoch(self, epoch):
        if self.mode == "fixed":
            return self.task.evaluate(self.task.fixed_arc, "valid")
        arc = self._sample_arc().numpy()
        metrics = self.task.evaluate(arc, "valid")
        logging.info("epoch %d sampled arc %s: %s", epoch,
                     self.task.space.to_string(arc), _format(metrics))
        return metrics

    def _derive(self):
        """Samples K arcs (``LoopConfig.derive_arcs``), scores each on the same
        validation batches, keeps the best; counts the validation batches spent."""
        cfg = self.config
        batches = [self.task.reward_batch() for _ in range(cfg.derive_num_batches)]
        epoch = int(self.epoch.numpy())
        records, best = [], None
        num_arcs = cfg.derive_arcs()
        for _ in range(num_arcs):
            arc = self._sample_arc()
            scores = np.array([[v.numpy() for v in self._reward(arc, b)] for b in batches])
            value, metric = scores.mean(axis=0).tolist()
            records.append(self._arc_record(epoch, "derive", arc.numpy(), value, metric))
            if best is None or value > best[1]:
                best = (arc.numpy(), value)
        self.arc_log.append(records)
        arc_string = self.task.space.to_string(best[0])
        run_dir.write_text(os.path.join(self.output_dir, run_dir.BEST_ARC), arc_string + "\n")
        diagram = self.task.write_diagram(best[0], os.path.join(self.output_dir, "best_arc"))
        result = {"best_arc": arc_string, "best_reward": best[1], "diagram": diagram,
                  "derive_num_samples_used": num_arcs,
                  "validation_batches_evaluated": (
                      int(self.controller_steps.numpy()) * cfg.controller_num_aggregate
                      + num_arcs * cfg.derive_num_batches)}
        result.update(self.task.evaluate(best[0], "valid"))
        logging.info("Derived best arc %s (reward %.4f)", arc_string, best[1])
        return result

    def _finish_fixed(self):
        arc = self.task.fixed_arc
        arc_string = self.task.space.to_string(arc)
        run_dir.write_text(os.path.join(self.output_dir, run_dir.BEST_ARC), arc_string + "\n")
        result = {"best_arc": arc_string, "best_reward": None,
                  "diagram": self.task.write_diagram(arc, os.path.join(self.output_dir, "best_arc"))}
        result.update(self.task.evaluate(arc, "valid"))
        result.update(self.task.evaluate(arc, "test"))
        if self.config.export_dir:
            metadata = dict(self.run_metadata, arc=arc_string, metrics=_jsonable(result))
            result["export_path"] = self.task.export(
                self.config.export_dir, self.config.model_name, metadata)
        return result

    # Files -----------------------------------------------------------------
    def _arc_record(self, epoch, phase, arc, reward, metric):
        return {"epoch": epoch, "phase": phase, "arc": self.task.space.to_string(arc),
                "reward": float(reward), self.task.metric_name: float(metric)}

    def _finished_summary(self, epoch):
        """summary.json of a run that ended (every epoch, then its derivation or
        final evaluation), or None: a run stopped before its last summary resumes."""
        path = os.path.join(self.output_dir, run_dir.SUMMARY)
        if epoch < self.config.num_epochs or not os.path.exists(path):
            return None
        summary = run_dir.read_json(path)
        done = (summary.get("epochs_done") == self.config.num_epochs
                and summary.get("best_arc") is not None)
        return summary if done else None

    def _write_summary(self):
        """Writes summary.json: run counters, timings, then the results."""
        summary = {
            "mode": self.mode,
            "epochs_done": int(self.epoch.numpy()),
            "child_steps": int(self.child_steps.numpy()),
            "controller_steps": int(self.controller_steps.numpy()),
            "skipped_steps": int(self.skipped_steps.numpy()),
            "rollbacks": int(self.rollbacks.numpy()),
            "lr_scale": float(self.lr_scale.numpy()),
            "traces": self._traces(),
            "num_params": self.task.num_params(),
            "wall_seconds": time.time() - self.started,
            "child_step_seconds": _median(self.child_seconds),
            "controller_step_seconds": _median(self.controller_seconds),
        }
        if self.mode == "search":
            summary["search_strategy"] = self.config.search_strategy
        summary.update(_jsonable(self.results))
        run_dir.write_json(os.path.join(self.output_dir, run_dir.SUMMARY), summary)
        return summary

    def _traces(self):
        traces = dict(self.task.traces())
        if self.mode == "search":
            traces.update(sample_arc=self._sample_arc.experimental_get_tracing_count(),
                          derive_reward=self._reward.experimental_get_tracing_count())
        if self.mode == "search" and not self.random_search:
            traces.update(controller_update=self._apply.experimental_get_tracing_count())
            if self.config.controller_batch_arcs == 1:
                traces.update(controller_score=self._score.experimental_get_tracing_count())
            else:
                traces.update(
                    controller_score_batch=self._score_batch.experimental_get_tracing_count())
        return traces

    def _summary_writer(self):
        """The TensorBoard writer, made on first use (see ``restore``)."""
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.output_dir, run_dir.TENSORBOARD))
        return self._writer

    def _write_scalars(self, metrics, prefix, step):
        with self._summary_writer().as_default(step=step):
            for name, value in metrics.items():
                if value is not None and np.ndim(value) == 0:
                    tf.summary.scalar(f"{prefix}/{name}", float(value))
        self._writer.flush()


class _TooManyBadSteps(Exception):
    """Raised inside an epoch to roll the run back to its last checkpoint."""


def _median(values):
    return statistics.median(values) if values else None


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    return obj


def _format(metrics):
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in metrics.items())
