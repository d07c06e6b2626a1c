"""The CIFAR-10 child networks of ENAS: the macro and the micro search spaces.

Each class is both the shared-weight search model (``fixed_arc=None``; pass
the int32 arc tensor to ``call``, one trace serves every architecture) and
the static fixed-arc network for final training and export (only the chosen
ops exist). The two are different networks layer by layer, so each child
builds its layers from the search or the fixed class of ``macro_layer`` and
``micro_cell``; what stays in the child (stem, pooling, classifier, the arc
check) is the same in both. Constructor arguments mirror the official
``child_*`` flags.
Images are NHWC float32, already normalised. l2 regularisation belongs to
the trainer. A ``dtype`` policy given to a child is passed to every layer
in it (under ``mixed_bfloat16`` the logits come out in bfloat16; the
trainer's softmax and losses cast them to float32).
"""

import keras
import tensorflow as tf

from enas_tf.layers import candidate_ops
from enas_tf.layers import macro_layer
from enas_tf.layers import micro_cell
from enas_tf.search_space import macro
from enas_tf.search_space import micro


class _CifarChild(keras.Model):
    """What both children share: the arc in both modes and the classifier."""

    def __init__(self, space, fixed_arc, keep_prob, num_classes, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(f"keep_prob must be in (0, 1]. Received: keep_prob={keep_prob}")
        self.space = space
        self.keep_prob = keep_prob
        self.num_classes = num_classes
        if isinstance(fixed_arc, str):
            fixed_arc = space.from_string(fixed_arc)
        self.fixed_arc = None if fixed_arc is None else space.to_string(fixed_arc)
        self.dropout = keras.layers.Dropout(1.0 - keep_prob, name="dropout",
                                            dtype=self.dtype_policy)
        self.classifier = keras.layers.Dense(
            num_classes, use_bias=False, kernel_initializer=candidate_ops.he_normal(),
            name="fc", dtype=self.dtype_policy)

    @property
    def searching(self):
        return self.fixed_arc is None

    def fixed_view(self):
        """The typed view of the fixed arc (None in search mode)."""
        return None if self.searching else self.space.decode(
            self.space.from_string(self.fixed_arc))

    def _checked_arc(self, arc):
        """The arc tensor in search mode (``SearchSpace.check_tensor``), None in fixed mode.

        Checked once here, the layers are told so (``arc_checked``) and do not
        check it again.
        """
        if not self.searching:
            return None
        if arc is None:
            raise ValueError(f"A {self.space.name} search model needs the arc tensor. "
                             "Received: arc=None")
        return self.space.check_tensor(arc)

    def _classify(self, x, training):
        """Global average pooling -> dropout -> dense logits."""
        x = tf.reduce_mean(x, axis=[1, 2])
        return self.classifier(self.dropout(x, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(keep_prob=self.keep_prob, fixed_arc=self.fixed_arc,
                      num_classes=self.num_classes, ops=list(self.space.op_names))
        return config


@keras.saving.register_keras_serializable(package="enas_tf")
class MacroChild(_CifarChild):
    """The macro child (official ``general_child``, whole channels).

    Stem 3x3 conv-BN, then ``num_layers`` macro layers (``MacroSearchLayer``
    or ``MacroFixedLayer``); after each pool layer every layer output so far
    is factorized-reduced, with doubled channels in fixed mode only (as the
    official code, which also reduced the stem output that no later layer
    reads). Then global average pooling, dropout and a dense layer without
    bias.

    ``ops`` names the space's registered macro ops (default: the official
    six; ``num_branches`` alone, the first num_branches of them).

    Call: ``model(images, arc=None, training=False)`` -> logits [B, classes].
    """

    def __init__(self, num_layers=12, out_filters=36, num_branches=None,
                 keep_prob=1.0, fixed_arc=None, num_classes=10, ops=None, **kwargs):
        space = macro.MacroSpace(num_layers, num_branches, ops)
        super().__init__(space, fixed_arc, keep_prob, num_classes, **kwargs)
        self.num_layers = num_layers
        self.out_filters = out_filters
        self.num_branches = space.num_branches
        self.pool_layers = space.pool_layers()
        net = self.fixed_view()
        self.stem = candidate_ops.ConvBn(out_filters, 3, name="stem", dtype=self.dtype_policy)
        macro_layers, reductions = [], []
        filters = out_filters
        for i in range(num_layers):
            macro_layers.append(self._layer(i, filters, net))
            if i in self.pool_layers:
                filters *= 1 if self.searching else 2
                reductions.append(tuple(
                    candidate_ops.FactorizedReduce(filters, name=f"pool_at_{i}_from_{j}",
                                                   dtype=self.dtype_policy)
                    for j in range(i + 1)))
        # Tuples, not lists: see candidate_ops.
        self.macro_layers, self.reductions = tuple(macro_layers), tuple(reductions)

    def _layer(self, i, filters, net):
        """Layer i: the search layer, or the fixed one with its op and skips in ``net``."""
        kwargs = dict(ops=self.space.op_names, name=f"layer_{i}", dtype=self.dtype_policy)
        if net is None:
            return macro_layer.MacroSearchLayer(i, filters, **kwargs)
        return macro_layer.MacroFixedLayer(i, filters, net.ops[i], net.skips[i], **kwargs)

    def build(self, images_shape):
        stem = _built_output_shape(self.stem, images_shape)
        shapes = []
        reductions = iter(self.reductions)
        for i, layer in enumerate(self.macro_layers):
            shapes.append(_built_output_shape(layer, shapes or [stem]))
            if i in self.pool_layers:
                shapes = [_built_output_shape(reduce, shape)
                          for reduce, shape in zip(next(reductions), shapes)]
        self.classifier.build((images_shape[0], shapes[-1][-1]))

    def call(self, images, arc=None, training=False):
        arc = self._checked_arc(arc)
        stem = self.stem(images, training=training)
        outputs = []
        reductions = iter(self.reductions)
        for i, layer in enumerate(self.macro_layers):
            outputs.append(layer(outputs or [stem], arc, training=training,
                                 arc_checked=True))
            if i in self.pool_layers:
                outputs = [reduce(x, training=training)
                           for reduce, x in zip(next(reductions), outputs)]
        return self._classify(outputs[-1], training)

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, out_filters=self.out_filters,
                      num_branches=self.num_branches)
        return config


@keras.saving.register_keras_serializable(package="enas_tf")
class AuxHead(keras.layers.Layer):
    """Auxiliary classifier of the micro child (official ``aux_head``).

    ReLU, 5x5 average pooling with stride 3 (VALID), 1x1 conv 128-BN-ReLU,
    a conv covering the pooled map (SAME) 768-BN-ReLU, global average
    pooling, dense without bias. On maps smaller than 5x5 (images below
    20x20) the pooling window shrinks to the map, so any image size works.
    """

    def __init__(self, num_classes=10, batch_stats_only=False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.batch_stats_only = batch_stats_only

    def build(self, input_shape):
        self.pool_size = (min(5, input_shape[1]), min(5, input_shape[2]))
        pooled = (input_shape[0], (input_shape[1] - self.pool_size[0]) // 3 + 1,
                  (input_shape[2] - self.pool_size[1]) // 3 + 1, input_shape[3])
        self.project = candidate_ops.ConvBn(
            128, post_relu=True, batch_stats_only=self.batch_stats_only, name="proj",
            dtype=self.dtype_policy)
        self.conv = candidate_ops.ConvBn(
            768, pooled[1], post_relu=True, batch_stats_only=self.batch_stats_only,
            name="conv", dtype=self.dtype_policy)
        self.project.build(pooled)
        self.conv.build(self.project.compute_output_shape(pooled))
        self.classifier = keras.layers.Dense(
            self.num_classes, use_bias=False, kernel_initializer=candidate_ops.he_normal(),
            name="fc", dtype=self.dtype_policy)
        self.classifier.build((input_shape[0], 768))

    def call(self, x, training=False):
        x = tf.nn.avg_pool2d(tf.nn.relu(x), self.pool_size, 3, "VALID")
        x = self.conv(self.project(x, training=training), training=training)
        return self.classifier(tf.reduce_mean(x, axis=[1, 2]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, batch_stats_only=self.batch_stats_only)
        return config


@keras.saving.register_keras_serializable(package="enas_tf")
class MicroChild(_CifarChild):
    """The micro child (official ``micro_child``).

    Stem 3x3 conv (3 * out_filters)-BN, then ``num_layers + 2`` micro cells
    (``MicroSearchCell`` or ``MicroFixedCell``), each reading the two
    previous cells' outputs, with reduction cells (and doubled filters) at
    ``MicroSpace.reduction_layers(num_layers)``. Then ReLU, global average
    pooling, dropout and a dense layer without bias.
    In search mode every BN uses batch statistics, also at evaluation (as the
    official search model).

    With ``use_aux_heads`` an ``AuxHead`` reads the output of the cell after
    the second reduction cell (official ``aux_head_indices``); the trainer
    weights its loss (0.4 officially) and decides whether its variables
    train (the official code excluded them). Drop-path (fixed mode,
    ``drop_path_keep_prob < 1``) follows the official schedule: cell c keeps
    a path with ``1 - p * (c + 1) / (num_layers + 2) * (1 - drop_path_keep_prob)``
    where p is ``drop_path_progress``, a variable the trainer sets to the
    fraction of training done (official: (step + 1) / total steps, at most 1).

    ``ops`` names the space's registered micro ops (default: the official five).

    Call: ``model(images, arc=None, training=False)`` -> logits [B, classes],
    or ``(logits, aux_logits)`` when built with the aux head and training.
    """

    def __init__(self, num_layers=6, out_filters=20, num_nodes=5, keep_prob=1.0,
                 drop_path_keep_prob=1.0, use_aux_heads=False, fixed_arc=None,
                 num_classes=10, ops=None, **kwargs):
        space = micro.MicroSpace(num_nodes, ops=ops)
        super().__init__(space, fixed_arc, keep_prob, num_classes, **kwargs)
        if not 0.0 < drop_path_keep_prob <= 1.0:
            raise ValueError(f"drop_path_keep_prob must be in (0, 1]. "
                             f"Received: drop_path_keep_prob={drop_path_keep_prob}")
        self.num_layers = num_layers
        self.out_filters = out_filters
        self.num_nodes = num_nodes
        self.drop_path_keep_prob = drop_path_keep_prob
        self.use_aux_heads = use_aux_heads
        reduction_layers = space.reduction_layers(num_layers)
        arc = self.fixed_view()
        self.stem = candidate_ops.ConvBn(3 * out_filters, 3, batch_stats_only=self.searching,
                                         name="stem", dtype=self.dtype_policy)
        cells = []
        filters = out_filters
        for c in range(num_layers + 2):
            reduction = c in reduction_layers
            filters *= 2 if reduction else 1
            cells.append(self._cell(c, filters, reduction, arc))
        self.cells = tuple(cells)  # not a list: see candidate_ops
        self.aux_index = reduction_layers[-1] + 1 if use_aux_heads else None
        self.aux_head = (AuxHead(num_classes, batch_stats_only=self.searching, name="aux_head",
                                 dtype=self.dtype_policy) if use_aux_heads else None)
        self.drop_path_progress = None
        if not self.searching and drop_path_keep_prob < 1.0:
            self.drop_path_progress = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="drop_path_progress")

    def _cell(self, c, filters, reduction, arc):
        """Cell c: the search cell, or the fixed one with its nodes in ``arc``."""
        kwargs = dict(ops=self.space.op_names, name=f"cell_{c}", dtype=self.dtype_policy)
        if arc is None:
            return micro_cell.MicroSearchCell(filters, self.num_nodes, reduction, **kwargs)
        nodes = (arc.reduction if reduction else arc.normal).nodes
        return micro_cell.MicroFixedCell(filters, self.num_nodes, reduction, nodes=nodes,
                                         **kwargs)

    def build(self, images_shape):
        stem = _built_output_shape(self.stem, images_shape)
        shapes = [stem, stem]
        for c, cell in enumerate(self.cells):
            shapes = [shapes[1], _built_output_shape(cell, shapes)]
            if c == self.aux_index:
                self.aux_head.build(shapes[1])
        self.classifier.build((images_shape[0], shapes[1][-1]))

    def call(self, images, arc=None, training=False):
        arc = self._checked_arc(arc)
        x = self.stem(images, training=training)
        states, aux_logits = [x, x], None
        for c, cell in enumerate(self.cells):
            x = cell(states, arc, training=training, drop_path_keep=self.drop_path_keep(c),
                     arc_checked=True)
            states = [states[1], x]
            if c == self.aux_index and training:
                aux_logits = self.aux_head(x, training=training)
        logits = self._classify(tf.nn.relu(x), training)
        return logits if aux_logits is None else (logits, aux_logits)

    def drop_path_keep(self, cell_index):
        """Drop-path keep probability of a cell now (None: no drop-path)."""
        if self.drop_path_progress is None:
            return None
        layer_ratio = (cell_index + 1) / (self.num_layers + 2)
        return 1.0 - self.drop_path_progress * layer_ratio * (1.0 - self.drop_path_keep_prob)

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, out_filters=self.out_filters,
                      num_nodes=self.num_nodes, drop_path_keep_prob=self.drop_path_keep_prob,
                      use_aux_heads=self.use_aux_heads)
        return config


def _built_output_shape(layer, input_shape):
    """Builds ``layer`` for ``input_shape`` and returns its output shape."""
    layer.build(input_shape)
    return layer.compute_output_shape(input_shape)
