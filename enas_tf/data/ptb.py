"""Word-level corpora (Penn Treebank by default) as id streams and windows.

A corpus is three UTF-8 text files, train/valid/test: Mikolov's PTB
(``ptb.train.txt`` ...) by default, or any other with the same layout, such as
WikiText-2 as distributed (``wiki.train.tokens`` ...). A split is read as one
stream of word ids: every line, blank or heading lines included, gives
``line.split()`` followed by ``<eos>`` (the count behind published WikiText-2
token numbers). ``lm_dataset`` cuts a stream into the stateful truncated-BPTT
windows that a recurrent language model trains and evaluates on.
"""
import collections
import dataclasses
import math
import os

from absl import logging
import numpy as np
import tensorflow as tf

SPLITS = ("train", "valid", "test")


class PtbDataError(ValueError):
    """A corpus directory or file that cannot be read as word-level text."""


class Vocabulary:
    """Word <-> id map built from the training split."""

    UNK = "<unk>"
    EOS = "<eos>"

    def __init__(self, words):
        """Id i is words[i]; <unk> must be there so every word can be encoded."""
        self._words = tuple(words)
        self._ids = {word: i for i, word in enumerate(self._words)}
        if len(self._ids) != len(self._words):
            raise ValueError("Vocabulary words must be distinct")
        if self.UNK not in self._ids:
            raise ValueError(f"Vocabulary must contain {self.UNK}")

    @classmethod
    def from_tokens(cls, tokens):
        """Frequent words first (ties alphabetical), so ids are reproducible."""
        counts = collections.Counter(tokens)
        for special in (cls.UNK, cls.EOS):
            counts.setdefault(special, 0)
        return cls(sorted(counts, key=lambda word: (-counts[word], word)))

    @property
    def size(self):
        return len(self._words)

    @property
    def words(self):
        return self._words

    def encode(self, tokens):
        """Returns (int32 ids, how many tokens were unknown and became <unk>)."""
        unk = self._ids[self.UNK]
        ids = np.fromiter((self._ids.get(token, -1) for token in tokens), np.int32)
        unknown = ids < 0
        ids[unknown] = unk
        return ids, int(unknown.sum())

    def decode(self, ids):
        return [self._words[i] for i in np.asarray(ids).ravel()]

    def save(self, path):
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write("".join(word + "\n" for word in self._words))

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8", newline="\n") as f:
            return cls(f.read().split("\n")[:-1])


@dataclasses.dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous
class PtbData:
    """The three splits as int32 id streams, each sentence followed by <eos>."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocab: Vocabulary
    oov_counts: dict  # {"valid": n, "test": n}: tokens outside the vocabulary


def _read_tokens(path, argument):
    """Tokens of one corpus file; a one-line PtbDataError names argument and path."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PtbDataError(f"{argument} {path} is not valid UTF-8 at byte offset {e.start}; "
                           "expected UTF-8 text, one sentence per line") from None
    if not text.split():
        raise PtbDataError(f"{argument} {path} holds no words; expected one sentence per line")
    lines = text.split("\n")
    if lines[-1] == "":  # the newline that ends the last line starts no sentence
        lines.pop()
    return [token for line in lines for token in line.split() + [Vocabulary.EOS]]


def _corpus_paths(data_path, files):
    """{split: path} for {split: name}: a relative name is inside data_path."""
    for split, name in files.items():
        if not isinstance(name, (str, os.PathLike)) or not os.fspath(name):
            raise PtbDataError(f"{split}_file must be a non-empty file name or path, "
                               f"got {name!r}")
    names = ", ".join(f"{split}_file={os.fspath(name)!r}" for split, name in files.items())
    if (not all(os.path.isabs(name) for name in files.values())
            and not os.path.isdir(data_path)):
        raise PtbDataError(f"corpus directory {data_path} does not exist or is not a "
                           f"directory; expected a directory holding {names}")
    paths = {split: os.path.join(data_path, name) for split, name in files.items()}
    for split, path in paths.items():
        if not os.path.isfile(path):
            raise PtbDataError(f"{split}_file: no file {path}; pass the names of the "
                               f"corpus's files inside {data_path} (now {names})")
    return paths


def load_ptb(data_path, train_file="ptb.train.txt", valid_file="ptb.valid.txt",
             test_file="ptb.test.txt"):
    """Reads a word-level corpus; the vocabulary (any size) comes from train alone.

    The defaults read Penn Treebank; e.g. WikiText-2 is
    ``load_ptb(path, "wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")``.
    A relative file name is read inside data_path, an absolute path as it is.
    Valid or test words the training file lacks become <unk>: oov_counts counts
    them and a warning is logged.
    """
    paths = _corpus_paths(data_path, dict(zip(SPLITS, (train_file, valid_file, test_file))))
    tokens = {split: _read_tokens(path, f"{split}_file") for split, path in paths.items()}
    words = sorted(set(tokens["train"]) - {Vocabulary.EOS})
    if len(words) < 2:
        raise PtbDataError(f"train_file {paths['train']} has {len(words)} distinct word(s) "
                           f"{words}; a language model needs at least 2 to choose between")
    vocab = Vocabulary.from_tokens(tokens["train"])
    train, _ = vocab.encode(tokens["train"])
    valid, valid_oov = vocab.encode(tokens["valid"])
    test, test_oov = vocab.encode(tokens["test"])
    oov_counts = {"valid": valid_oov, "test": test_oov}
    if valid_oov or test_oov:
        logging.warning("Corpus %s: %d valid and %d test tokens are outside the training "
                        "vocabulary and were mapped to %s", data_path, valid_oov,
                        test_oov, Vocabulary.UNK)
    return PtbData(train, valid, test, vocab, oov_counts)


def _layout(num_tokens, batch_size, bptt, pad_final):
    """(row length, windows): each row predicts row_length consecutive targets."""
    if batch_size < 1 or bptt < 1:
        raise ValueError(f"lm_dataset needs batch_size >= 1 and bptt >= 1, "
                         f"got batch_size={batch_size}, bptt={bptt}")
    targets = num_tokens - 1
    if pad_final:
        row_length = math.ceil(targets / batch_size)
        windows = math.ceil(row_length / bptt)
    else:
        row_length = targets // batch_size
        windows = row_length // bptt
    if windows < 1:
        needed = 2 if pad_final else batch_size * bptt + 1
        raise ValueError(f"a split of {num_tokens} tokens is too short for one window "
                         f"of batch_size={batch_size} x bptt={bptt} "
                         f"(pad_final={pad_final} needs at least {needed} tokens)")
    return row_length, windows


def num_windows(num_tokens, batch_size, bptt, *, pad_final=False):
    """How many elements lm_dataset yields for a split of num_tokens ids."""
    return _layout(num_tokens, batch_size, bptt, pad_final)[1]


def lm_dataset(ids, batch_size, bptt, *, pad_final=False):
    """Ordered (inputs, targets, weights) windows, each [batch_size, bptt].

    The n - 1 predictable tokens ids[1:] are split into batch_size contiguous
    runs of row_length targets; row r reads ids[r * row_length + c] and predicts
    the next id, so rows meet without a gap and window k of a row continues
    window k - 1 of that row (carry the recurrent state across windows).

    pad_final=False: row_length = (n - 1) // batch_size and columns beyond the
    last whole window are dropped; all weights are 1.
    pad_final=True: row_length = ceil((n - 1) / batch_size) and the rows are
    padded with id 0 up to whole windows; padded targets (past the row's run
    or past the end of the split) get weight 0, so every token of ids[1:] is a
    weight-1 target exactly once and sum(weights) == n - 1.
    """
    ids = np.asarray(ids, np.int32)
    n = len(ids)
    row_length, windows = _layout(n, batch_size, bptt, pad_final)
    columns = windows * bptt
    column = np.arange(columns + 1)
    position = np.arange(batch_size)[:, None] * row_length + column[None, :]
    real = (position < n) & (column <= row_length)
    grid = np.where(real, ids[np.minimum(position, n - 1)], 0).astype(np.int32)
    weights = real[:, 1:].astype(np.float32)

    def windowed(matrix):  # [batch, columns] -> [windows, batch, bptt]
        return matrix.reshape(batch_size, windows, bptt).transpose(1, 0, 2)

    return tf.data.Dataset.from_tensor_slices(
        (windowed(grid[:, :-1]), windowed(grid[:, 1:]), windowed(weights)))
