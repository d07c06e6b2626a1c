"""The child's numeric precision: float32, or Keras' mixed_bfloat16 policy.

Under ``mixed_bfloat16`` every variable stays float32 (the optimizer updates
float32 weights) while matmuls and convolutions compute in bfloat16, which
CPUs with AVX-512 BF16 / AMX (and TPUs, recent GPUs) run about twice as fast
as float32. The tasks keep the softmax, the losses, the rewards and the
batch-norm statistics in float32. The policy is passed to each layer of the
child, never set globally, so every other model in the process (the
controller, other tasks, tests) keeps float32. bfloat16 has float32's
exponent range, so no loss scaling is needed.
"""

import keras

PRECISIONS = ("float32", "mixed_bfloat16")


def policy(precision):
    """The Keras dtype policy of a precision name; one-line error for another name."""
    if precision not in PRECISIONS:
        raise ValueError(f"child precision must be one of {', '.join(PRECISIONS)}. "
                         f"Received: {precision!r}")
    return keras.DTypePolicy(precision)
