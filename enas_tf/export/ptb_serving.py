"""PTB language-model exports: the serving signatures and the fixed child.

Two signatures, ``serving_default`` (token ids -> next-token
log-probabilities and the final state, from a zero state) and
``serve_with_state`` (the same from a given state, for streaming). A search
model exports one arc as that arc's fixed child (its weights copied out of
the shared ones, so the export is as small and fast as a fixed run's), or
as a supernet that takes the arc as an input. The vocabulary travels as
``assets/vocab.txt``.
"""

import tensorflow as tf

from enas_tf.export import arc_input
from enas_tf.export import saved_model
from enas_tf.models import ptb_child


def export(model, vocab, arcs, export_base, model_name, metadata):
    """Writes ``model`` (with the arc input ``arcs``) as the next version of
    ``<export_base>/<model_name>``; returns its directory."""
    if arcs.pinned is not None:
        model, arcs = fixed_child(model, arcs.pinned), arc_input.ArcInput()
    module = PtbServingModule(model, vocab, arcs)
    return saved_model.export(
        module, export_base, model_name,
        signatures={"serving_default": module.serve,
                    "serve_with_state": module.serve_with_state},
        metadata=dict(metadata, **arcs.metadata()),
        assets={"vocab.txt": "\n".join(vocab.decode(range(vocab.size))) + "\n"})


def fixed_child(search_model, arc):
    """The fixed-arc child of ``arc`` with the search model's weights.

    The fixed cell creates only the chosen edges (row l-1 = node l's edge);
    every other weight is the shared one as it is.
    """
    child = ptb_child.PtbChild(
        search_model.vocab_size, search_model.hidden_size, search_model.num_nodes,
        fixed_arc=arc, keep_probs=search_model.keep_probs,
        init_range=search_model.init_range, activations=search_model.activations,
        dtype=search_model.dtype_policy)
    child(tf.zeros([1, 1], tf.int32), child.initial_state(1))
    source, cell = search_model, search_model.cell
    pairs = [(child.embedding.embeddings, source.embedding.embeddings),
             (child.softmax_bias, source.softmax_bias),
             (child.cell.w_input, cell.w_input), (child.cell.w_state, cell.w_state),
             (child.cell.w_edges, cell.edge_weights_for(tf.constant(arc, tf.int32)))]
    assert len(pairs) == len(child.variables), "a PtbChild weight is not copied"
    for target, value in pairs:
        target.assign(value)
    return child


class PtbServingModule(tf.Module):
    """Serving signatures: token ids [+ arc] -> next-token log-probabilities."""

    def __init__(self, model, vocab, arcs=None):
        super().__init__()
        # Track the variables, not the Keras model: saving would otherwise
        # try to trace the model's own call signature.
        self.model_variables = saved_model.tf_variables(model)
        self._model = lambda *args, **kwargs: model(*args, **kwargs)
        self._initial_state = model.initial_state
        self._arcs = arcs or arc_input.ArcInput()
        self.vocab_size = vocab.size
        tokens = tf.TensorSpec([None, None], tf.int64, name="tokens")
        state = tf.TensorSpec([None, None], tf.float32, name="initial_state")
        self.serve = tf.function(self._serve, input_signature=[tokens] + self._arcs.specs)
        self.serve_with_state = tf.function(
            self._serve_with_state, input_signature=[tokens, state] + self._arcs.specs)

    def _run(self, tokens, state, arc):
        tokens = tf.cast(tokens, tf.int32)
        checks = [tf.debugging.assert_non_negative(tokens, message="token ids must be >= 0"),
                  tf.debugging.assert_less(
                      tokens, self.vocab_size,
                      message=f"token ids must be < the vocabulary size {self.vocab_size}")]
        with tf.control_dependencies(checks):  # the checks run before the lookup
            tokens = tf.identity(tokens)
        logits, state, _ = self._model(tokens, state, self._arcs.tensor(arc), training=False)
        return {"log_probs": tf.nn.log_softmax(tf.cast(logits, tf.float32)),
                "final_state": tf.cast(state, tf.float32)}

    def _serve(self, tokens, arc=None):
        return self._run(tokens, self._initial_state(tf.shape(tokens)[0]), arc)

    def _serve_with_state(self, tokens, initial_state, arc=None):
        return self._run(tokens, initial_state, arc)
