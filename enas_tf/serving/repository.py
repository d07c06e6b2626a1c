"""The versions being served, kept current by polling each model's base path.

TF Serving's default "latest" policy: the newest integer version directory
under a base path is served. A poll that finds a newer one (or finds the
served one deleted) loads the newest and swaps it in with one assignment;
requests hold the Servable they started with, so in-flight requests finish
on their version and nothing waits for a load. A version that fails to load
is retried on the next polls (it may still be being copied) and given up
after MAX_LOAD_ATTEMPTS, while the previous version keeps serving.
"""

import os
import threading

from absl import logging
from tensorflow_serving.apis import get_model_status_pb2

from enas_tf.serving import errors
from enas_tf.serving import servable as servable_lib

MAX_LOAD_ATTEMPTS = 5

State = get_model_status_pb2.ModelVersionStatus.State


def version_dirs(base_path):
    """Integer version subdirectories of a base path, as TF Serving counts them."""
    try:
        names = os.listdir(base_path)
    except OSError:
        return []
    return sorted(int(name) for name in names
                  if name.isdigit() and os.path.isdir(os.path.join(base_path, name)))


class _Model:
    """One model: the served version and every version's state."""

    def __init__(self, base_path):
        self.base_path = base_path
        self.served = None
        self.states = {}  # version -> (State, error message or "")
        self.failures = {}  # version -> failed load attempts


class ModelRepository:
    """Served versions by model name; ``poll()`` brings them up to date."""

    def __init__(self, models, load=servable_lib.load):
        self._models = {model.name: _Model(model.base_path) for model in models}
        self._load = load
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def names(self):
        return sorted(self._models)

    def servable(self, name, version=None):
        """The Servable to answer with; NOT_FOUND names what is being served."""
        model = self._model(name, f"Servable not found for request: "
                                  f"{'Latest' if version is None else 'Specific'}({name}"
                                  f"{'' if version is None else f', {version}'})")
        served = model.served
        if served is None:
            raise errors.not_found(f"Servable not found for request: Latest({name}); "
                                   f"no version of {name} has loaded yet from {model.base_path}")
        if version is not None and version != served.version:
            raise errors.not_found(f"Servable not found for request: Specific({name}, {version}); "
                                   f"{name} serves version {served.version}")
        return served

    def version_states(self, name, version=None):
        """[(version, State, error message)], newest first, as GetModelStatus lists them."""
        model = self._model(name, f"Could not find any versions of model {name}")
        with self._lock:
            states = sorted(model.states.items(), reverse=True)
        if version is not None:
            states = [item for item in states if item[0] == version]
            if not states:
                raise errors.not_found(f"Could not find version {version} of model {name}")
        if not states:
            raise errors.not_found(f"Could not find any versions of model {name}")
        return [(v, state, message) for v, (state, message) in states]

    def poll(self):
        """Serves the newest loadable version of every model."""
        for name, model in self._models.items():
            self._poll_model(name, model)

    def start_polling(self, interval_seconds):
        """Polls every ``interval_seconds`` on a daemon thread until stop()."""
        self._thread = threading.Thread(target=self._poll_loop, args=(interval_seconds,),
                                        name="model-version-poll", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _poll_loop(self, interval_seconds):
        while not self._stop.wait(interval_seconds):
            try:
                self.poll()
            except Exception:  # pylint: disable=broad-except
                # The server keeps serving what it has; the next poll retries.
                logging.exception("polling the model base paths failed")

    def _model(self, name, message):
        if name not in self._models:
            raise errors.not_found(f"{message}; this server serves: {', '.join(self.names())}")
        return self._models[name]

    def _poll_model(self, name, model):
        candidates = [v for v in version_dirs(model.base_path)
                      if model.failures.get(v, 0) < MAX_LOAD_ATTEMPTS]
        served = model.served
        if not candidates:
            if served is not None and not os.path.isdir(os.path.join(model.base_path, str(served.version))):
                self._set(model, served.version, State.END)
                model.served = None
                logging.info("%s: version %d was removed; nothing left to serve", name, served.version)
            return
        newest = max(candidates)
        if served is not None and newest == served.version:
            return
        self._set(model, newest, State.LOADING)
        try:
            loaded = self._load(model.base_path, newest)
        except Exception as e:  # pylint: disable=broad-except
            model.failures[newest] = model.failures.get(newest, 0) + 1
            self._set(model, newest, State.END, f"{type(e).__name__}: {e}")
            logging.warning("%s: loading version %d failed (attempt %d of %d): %s", name, newest,
                            model.failures[newest], MAX_LOAD_ATTEMPTS, e)
            return
        model.served = loaded
        self._set(model, newest, State.AVAILABLE)
        if served is not None:
            self._set(model, served.version, State.END)
        logging.info("%s: serving version %d from %s", name, newest, model.base_path)

    def _set(self, model, version, state, message=""):
        with self._lock:
            model.states[version] = (state, message)
