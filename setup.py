"""Installs enas_tf: Efficient Neural Architecture Search for Keras 3 / TF 2."""
import setuptools

setuptools.setup(
    name="enas_tf",
    version="0.1.0",
    description=("Efficient Neural Architecture Search (Pham et al., 2018) "
                 "with Keras 3 and TensorFlow 2."),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",  # keras 3.15 requires it
    packages=setuptools.find_packages(include=["enas_tf", "enas_tf.*"]),
    install_requires=[
        # The one minor of each that the suite passed on (TF 2.21.0, Keras
        # 3.15.1). The child optimizers override Keras' private
        # _all_reduce_sum_gradients and call _get_variable_index: a release
        # that renames or bypasses either trains silently differently (under
        # mirrored, gradients summed twice). Before widening a bound, run
        # tests/optimizer_internals_test.py (seconds) and the suite on it.
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "tensorboard",  # tf.summary writers; TF 2.21 no longer pulls it in
        "tensorflow-datasets",
        "importlib_resources",  # tensorflow-datasets 4.9 imports it
        "absl-py",
        "numpy",
        # bin/study_search: its statistics (scipy.stats) and pictures (matplotlib).
        "scipy",
        "matplotlib",
        # bin/serve_child: TF Serving's protos and gRPC stubs (30 kB). Release
        # X.Y requires tensorflow>=X.Y,<3, grpcio and protobuf, all of which
        # tensorflow X.Y already brings: installing it changes nothing else.
        "tensorflow-serving-api>=2.16",
    ],
    extras_require={"test": ["pytest", "pytest-xdist", "hypothesis"]},
    entry_points={
        "console_scripts": [
            "enas-search-ptb=enas_tf.cli.search_ptb:run",
            "enas-search-cifar=enas_tf.cli.search_cifar:run",
            "enas-serve-child=enas_tf.cli.serve_child:run",
            "enas-export-child=enas_tf.cli.export_child:run",
            "enas-study-search=enas_tf.cli.study_search:run",
        ],
    },
    scripts=["bin/search_ptb", "bin/search_cifar", "bin/serve_child", "bin/export_child",
             "bin/study_search"],
)
