"""Tests for enas_tf.data.ptb and the synthetic PTB files in testdata/ptb."""
import hashlib
import importlib.util
import logging
import os
import shutil

from hypothesis import assume, given, settings, strategies as st
import numpy as np
import pytest

from enas_tf.data import ptb

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TESTDATA_PTB = os.path.join(ROOT, "testdata", "ptb")
REAL_PTB = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "ptb")
FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
WIKI_FILES = ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")
PLANTED_OOV = 5  # brouhaha x2, kerfuffle x2, hullabaloo x1, see testdata/README.md


def windows(dataset):
    """Stacks the dataset into (inputs, targets, weights), each [windows, batch, bptt]."""
    return tuple(np.stack(part) for part in zip(*dataset.as_numpy_iterator()))


def rows(stacked):
    """[windows, batch, bptt] -> [batch, windows * bptt]: each row's stream in order."""
    return stacked.transpose(1, 0, 2).reshape(stacked.shape[1], -1)


def copy_testdata(tmp_path):
    for name in FILES:
        shutil.copy(os.path.join(TESTDATA_PTB, name), tmp_path)


def write_wikitext(directory):
    """A tiny corpus laid out as WikiText-2: headings, blank lines, <unk> already in."""
    directory.mkdir(parents=True, exist_ok=True)
    splits = {"train": " \n = Valkyria = \n \n the cat sat on the <unk> . \n the dog sat . \n \n",
              "valid": " = Valkyria = \n the zebra sat . \n",
              "test": " the <unk> . \n"}
    for split, text in splits.items():
        (directory / f"wiki.{split}.tokens").write_text(text, encoding="utf-8")


class VocabularyTest:

    def test_orders_by_frequency_then_alphabet_and_adds_specials(self):
        vocab = ptb.Vocabulary.from_tokens("b a c b c c <eos> d".split())
        assert vocab.words == ("c", "b", "<eos>", "a", "d", "<unk>")
        assert vocab.size == 6

    def test_encode_decode_round_trip(self):
        vocab = ptb.Vocabulary.from_tokens("the cat sat on the mat <eos>".split())
        tokens = "the mat sat <eos>".split()
        ids, unknown = vocab.encode(tokens)
        assert ids.dtype == np.int32
        assert unknown == 0
        assert vocab.decode(ids) == tokens

    def test_encode_counts_unknown_words_but_not_literal_unk(self):
        vocab = ptb.Vocabulary.from_tokens("a b <unk> <eos>".split())
        ids, unknown = vocab.encode("a zebra <unk> yak".split())
        assert unknown == 2
        assert vocab.decode(ids) == ["a", "<unk>", "<unk>", "<unk>"]

    def test_save_load_round_trip(self, tmp_path):
        vocab = ptb.Vocabulary.from_tokens("x y y café <eos>".split())
        path = tmp_path / "vocab.txt"
        vocab.save(path)
        assert path.read_text(encoding="utf-8").split("\n")[:3] == ["y", "<eos>", "café"]
        assert ptb.Vocabulary.load(path).words == vocab.words

    def test_rejects_duplicates_and_missing_unk(self):
        with pytest.raises(ValueError, match="distinct"):
            ptb.Vocabulary(["a", "a", "<unk>"])
        with pytest.raises(ValueError, match="<unk>"):
            ptb.Vocabulary(["a", "<eos>"])


class LoadPtbTest:

    def test_loads_testdata(self):
        data = ptb.load_ptb(TESTDATA_PTB)
        eos = data.vocab.encode([ptb.Vocabulary.EOS])[0][0]
        for split, name in zip(ptb.SPLITS, FILES):
            with open(os.path.join(TESTDATA_PTB, name), encoding="utf-8") as f:
                text = f.read()
            ids = getattr(data, split)
            assert ids.dtype == np.int32
            assert np.sum(ids == eos) == text.count("\n")
            assert len(ids) == len(text.split()) + text.count("\n")
        assert data.vocab.size == len(set(data.vocab.decode(data.train)))
        assert data.oov_counts == {"valid": 0, "test": PLANTED_OOV}

    def test_oov_words_become_unk_with_a_warning(self, caplog):
        with caplog.at_level(logging.WARNING):
            data = ptb.load_ptb(TESTDATA_PTB)
        assert "0 valid and 5 test tokens" in caplog.text
        test_words = data.vocab.decode(data.test)
        assert not {"brouhaha", "kerfuffle", "hullabaloo"} & set(test_words)

    def test_default_names_give_the_ids_they_always_gave(self):
        # Pinned from load_ptb(TESTDATA_PTB) before the file names became arguments.
        data = ptb.load_ptb(TESTDATA_PTB)
        assert data.vocab.size == 288
        assert data.vocab.words[:8] == ("<eos>", "N", "the", "of", "a", "$", "in", "company")
        assert (len(data.train), len(data.valid), len(data.test)) == (19157, 2523, 2465)
        assert data.train[:12].tolist() == [15, 12, 4, 72, 11, 20, 14, 29, 0, 2, 39, 92]
        assert data.valid[:12].tolist() == [53, 12, 27, 7, 3, 129, 187, 20, 2, 162, 0, 18]
        assert data.test[:12].tolist() == [23, 237, 95, 5, 1, 16, 0, 27, 81, 28, 56, 90]
        digests = [hashlib.sha256(getattr(data, split).tobytes()).hexdigest()[:16]
                   for split in ptb.SPLITS]
        assert digests == ["0f010e6b69a6f5f3", "eaaca7b9c5a6dfa5", "1332fc12f16c61a4"]
        named = ptb.load_ptb(TESTDATA_PTB, *FILES)
        assert named.vocab.words == data.vocab.words
        np.testing.assert_array_equal(named.test, data.test)

    def test_loads_a_wikitext_shaped_corpus(self, tmp_path, caplog):
        write_wikitext(tmp_path)
        with caplog.at_level(logging.WARNING):
            data = ptb.load_ptb(str(tmp_path), *WIKI_FILES)
        # <eos> x6 (blank lines count), the x3, then ties alphabetically by count.
        assert data.vocab.words == ("<eos>", "the", ".", "=", "sat", "<unk>", "Valkyria",
                                    "cat", "dog", "on")
        assert data.train.tolist() == [0, 3, 6, 3, 0, 0, 1, 7, 4, 9, 1, 5, 2, 0,
                                       1, 8, 4, 2, 0, 0]
        assert data.valid.tolist() == [3, 6, 3, 0, 1, 5, 4, 2, 0]  # zebra -> <unk>
        assert data.test.tolist() == [1, 5, 2, 0]
        assert data.oov_counts == {"valid": 1, "test": 0}
        assert "1 valid and 0 test tokens" in caplog.text

    def test_names_may_be_relative_paths_or_absolute(self, tmp_path):
        write_wikitext(tmp_path / "wikitext-2")
        relative = ptb.load_ptb(tmp_path, *(f"wikitext-2/{name}" for name in WIKI_FILES))
        absolute = ptb.load_ptb(tmp_path / "not-a-dir",
                                *(tmp_path / "wikitext-2" / name for name in WIKI_FILES))
        assert relative.vocab.words == absolute.vocab.words
        np.testing.assert_array_equal(relative.train, absolute.train)

    def test_vocabulary_takes_every_training_word(self, tmp_path):
        words = [f"w{i}" for i in range(3000)]
        (tmp_path / "t.txt").write_text(" " + " ".join(words) + " \n", encoding="utf-8")
        (tmp_path / "v.txt").write_text(" w1 w2999 \n", encoding="utf-8")
        data = ptb.load_ptb(tmp_path, "t.txt", "v.txt", "v.txt")
        assert data.vocab.size == 3002  # with <eos> and <unk>
        assert data.vocab.decode(data.valid) == ["w1", "w2999", "<eos>"]

    def test_missing_directory(self, tmp_path):
        path = str(tmp_path / "nowhere")
        with pytest.raises(ptb.PtbDataError, match="does not exist") as error:
            ptb.load_ptb(path)
        assert path in str(error.value) and "ptb.train.txt" in str(error.value)

    @pytest.mark.parametrize("split", ptb.SPLITS)
    def test_missing_file_names_path_and_argument(self, tmp_path, split):
        write_wikitext(tmp_path)
        os.remove(tmp_path / f"wiki.{split}.tokens")
        with pytest.raises(ptb.PtbDataError) as error:
            ptb.load_ptb(str(tmp_path), *WIKI_FILES)
        message = str(error.value)
        assert "\n" not in message
        assert message.startswith(f"{split}_file: no file {tmp_path / f'wiki.{split}.tokens'};")
        assert all(f"_file='{name}'" in message for name in WIKI_FILES)

    def test_default_names_are_what_a_missing_ptb_file_reports(self, tmp_path):
        write_wikitext(tmp_path)
        with pytest.raises(ptb.PtbDataError, match="train_file: no file .*ptb.train.txt"):
            ptb.load_ptb(str(tmp_path))

    @pytest.mark.parametrize("name", [None, "", 3])
    def test_rejects_a_name_that_is_no_path(self, tmp_path, name):
        with pytest.raises(ptb.PtbDataError, match=f"valid_file must be .* got {name!r}"):
            ptb.load_ptb(str(tmp_path), valid_file=name)

    @pytest.mark.parametrize("split", ptb.SPLITS)
    @pytest.mark.parametrize("content", [b"", b" \n\n"])
    def test_empty_file(self, tmp_path, split, content):
        write_wikitext(tmp_path)
        path = tmp_path / f"wiki.{split}.tokens"
        path.write_bytes(content)
        with pytest.raises(ptb.PtbDataError, match="holds no words") as error:
            ptb.load_ptb(str(tmp_path), *WIKI_FILES)
        assert str(error.value).startswith(f"{split}_file {path} ")

    def test_empty_default_file(self, tmp_path):
        copy_testdata(tmp_path)
        (tmp_path / "ptb.test.txt").write_bytes(b"")
        with pytest.raises(ptb.PtbDataError, match="test_file .*ptb.test.txt holds no words"):
            ptb.load_ptb(str(tmp_path))

    def test_invalid_utf8_names_file_and_offset(self, tmp_path):
        copy_testdata(tmp_path)
        (tmp_path / "ptb.train.txt").write_bytes(b" the cat \n the \xff dog \n")
        with pytest.raises(ValueError, match="not valid UTF-8 at byte offset 15") as error:
            ptb.load_ptb(str(tmp_path))
        assert str(tmp_path / "ptb.train.txt") in str(error.value)
        assert "\n" not in str(error.value)

    def test_invalid_utf8_in_a_named_valid_file(self, tmp_path):
        write_wikitext(tmp_path)
        (tmp_path / "wiki.valid.tokens").write_bytes(" = Caf\u00e9 = \n".encode("latin-1"))
        with pytest.raises(ptb.PtbDataError) as error:
            ptb.load_ptb(str(tmp_path), *WIKI_FILES)
        assert str(error.value).startswith(
            f"valid_file {tmp_path / 'wiki.valid.tokens'} is not valid UTF-8 at byte offset 6;")

    @pytest.mark.parametrize("train, found", [
        (" the the \n the \n", "1 distinct word(s) ['the']"),
        (" <unk> \n \n", "1 distinct word(s) ['<unk>']"),
        ("<eos>", "0 distinct word(s) []")])
    def test_training_file_needs_two_distinct_words(self, tmp_path, train, found):
        write_wikitext(tmp_path)
        (tmp_path / "wiki.train.tokens").write_text(train, encoding="utf-8")
        with pytest.raises(ptb.PtbDataError) as error:
            ptb.load_ptb(str(tmp_path), *WIKI_FILES)
        message = str(error.value)
        assert message.startswith(f"train_file {tmp_path / 'wiki.train.tokens'} has {found};")
        assert "at least 2" in message and "\n" not in message


class LmDatasetTest:

    def test_elements_have_static_shapes_and_dtypes(self):
        for pad_final in (False, True):
            spec = ptb.lm_dataset(np.arange(103), 4, 5, pad_final=pad_final).element_spec
            assert [s.shape.as_list() for s in spec] == [[4, 5]] * 3
            assert [s.dtype.name for s in spec] == ["int32", "int32", "float32"]

    @settings(max_examples=40, deadline=None, database=None)
    @given(n=st.integers(2, 200), batch_size=st.integers(1, 7), bptt=st.integers(1, 9))
    def test_padded_windows_cover_every_target_once(self, n, batch_size, bptt):
        dataset = ptb.lm_dataset(np.arange(n), batch_size, bptt, pad_final=True)
        inputs, targets, weights = map(rows, windows(dataset))
        counted = weights == 1
        assert np.all(counted | (weights == 0))
        # Rows in order, each row's windows in order: the stream itself.
        np.testing.assert_array_equal(targets[counted], np.arange(1, n))
        np.testing.assert_array_equal(inputs[counted], np.arange(n - 1))
        assert weights.size < n - 1 + batch_size * (bptt + 1)  # little padding
        assert dataset.cardinality() == ptb.num_windows(n, batch_size, bptt, pad_final=True)

    @settings(max_examples=40, deadline=None, database=None)
    @given(n=st.integers(2, 200), batch_size=st.integers(1, 7), bptt=st.integers(1, 9))
    def test_training_windows_are_contiguous_rows(self, n, batch_size, bptt):
        assume(n >= batch_size * bptt + 1)  # shorter: test_too_short_split_is_rejected
        dataset = ptb.lm_dataset(np.arange(n), batch_size, bptt)
        inputs, targets, weights = map(rows, windows(dataset))
        starts = inputs[:, :1]
        np.testing.assert_array_equal(inputs, starts + np.arange(inputs.shape[1]))
        np.testing.assert_array_equal(targets, inputs + 1)
        assert np.all(starts[1:, 0] >= starts[:-1, 0] + inputs.shape[1])
        assert np.all(weights == 1)
        assert targets[-1, -1] < n
        assert n - 1 - targets.size < batch_size * (bptt + 1)  # drops little
        assert len(list(dataset)) == ptb.num_windows(n, batch_size, bptt)

    def test_reconstructs_testdata_stream_from_padded_windows(self):
        ids = ptb.load_ptb(TESTDATA_PTB).valid
        inputs, targets, weights = windows(ptb.lm_dataset(ids, 8, 35, pad_final=True))
        assert inputs.shape == (ptb.num_windows(len(ids), 8, 35, pad_final=True), 8, 35)
        counted = rows(weights) == 1
        np.testing.assert_array_equal(rows(targets)[counted], ids[1:])
        np.testing.assert_array_equal(rows(inputs)[counted], ids[:-1])
        assert weights.sum() == len(ids) - 1

    @pytest.mark.parametrize("batch_size, bptt", [(0, 5), (4, 0), (-1, -1)])
    def test_rejects_nonpositive_sizes(self, batch_size, bptt):
        with pytest.raises(ValueError, match=f"batch_size={batch_size}, bptt={bptt}"):
            ptb.lm_dataset(np.arange(100), batch_size, bptt)
        with pytest.raises(ValueError):
            ptb.num_windows(100, batch_size, bptt)

    def test_too_short_split_is_rejected(self):
        ptb.lm_dataset(np.arange(13), 4, 3)  # exactly one window fits
        with pytest.raises(ValueError, match="12 tokens .* batch_size=4 x bptt=3") as e:
            ptb.lm_dataset(np.arange(12), 4, 3)
        assert "\n" not in str(e.value)
        with pytest.raises(ValueError, match="1 tokens"):
            ptb.num_windows(1, 4, 3, pad_final=True)


class TestdataTest:

    def test_generator_reproduces_committed_files(self, tmp_path):
        spec = importlib.util.spec_from_file_location(
            "make_testdata", os.path.join(ROOT, "testdata", "make_testdata.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.make_ptb(str(tmp_path), module.PTB_SEED)
        for name in FILES:
            with open(os.path.join(TESTDATA_PTB, name), "rb") as f:
                assert (tmp_path / name).read_bytes() == f.read(), name

    def test_lines_look_like_mikolov_ptb(self):
        with open(os.path.join(TESTDATA_PTB, "ptb.train.txt"), encoding="utf-8") as f:
            lines = f.read().split("\n")
        assert lines.pop() == ""
        for line in lines:
            assert line.startswith(" ") and line.endswith(" ") and "  " not in line
            for word in line.split():
                assert word == "N" or word == word.lower(), word
                assert word != "<eos>" and not any(ch.isdigit() for ch in word), word


@pytest.mark.skipif(not os.path.isdir(REAL_PTB), reason="real PTB not available")
class RealPtbTest:

    def test_loads_real_ptb(self):
        data = ptb.load_ptb(REAL_PTB)
        assert data.vocab.size == 10000
        assert (len(data.train), len(data.valid), len(data.test)) == (929589, 73760, 82430)
        assert data.oov_counts == {"valid": 0, "test": 0}
        assert ptb.num_windows(len(data.train), 64, 35) == 414  # as ENAS's own reader
