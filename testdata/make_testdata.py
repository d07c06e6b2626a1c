"""Writes the project's synthetic test data into testdata/, deterministically.

Nothing here is copied from a real data set, so the output may live in the
repository. Re-running the script reproduces the committed files byte for
byte: randomness comes only from random.Random(seed).random(), whose sequence
Python guarantees across versions.

Usage: python testdata/make_testdata.py [--out_dir DIR]  (default: testdata/)
"""
import argparse
import os
import random

PTB_SEED = 20180209  # the ENAS paper's arXiv date: any fixed value would do
PTB_SENTENCES = {"train": 1500, "valid": 200, "test": 200}
# Words that appear in ptb.test.txt only, with how often, to exercise the
# out-of-vocabulary path of the PTB loader.
PTB_TEST_OOV = {"brouhaha": 2, "kerfuffle": 2, "hullabaloo": 1}

# A small financial-news grammar in the style of the Wall Street Journal text
# of PTB. Earlier entries of each list are drawn more often (Zipf-like).
_NOUNS = (
    "company market price share stock bank investor year month week analyst "
    "trader official group unit plan deal bond rate fund sale profit loss "
    "industry economy government president director chairman executive firm "
    "business contract offer bid debt issue yield index dollar report quarter "
    "client customer dealer broker manager partner lawyer court agency "
    "committee program product factory plant network system computer").split()
_ADJECTIVES = (
    "new big major federal financial japanese foreign small large recent "
    "strong weak early late higher lower chief senior public private "
    "american british local national international common current annual "
    "quarterly real total net further key serious modest sharp steady").split()
_TRANSITIVE = (
    "bought sold acquired reported posted expected approved rejected "
    "announced completed offered raised cut reduced increased boosted "
    "lowered signed filed proposed received issued paid launched "
    "closed opened changed delayed won lost").split()
_INTRANSITIVE = (
    "rose fell declined climbed gained slipped dropped jumped eased "
    "surged plunged recovered edged tumbled rallied").split()
_ADVERBS = (
    "also recently sharply slightly again still already quickly "
    "currently previously").split()
_PREPOSITIONS = "in for on at from with by under after before during".split()
_COMPANIES = (
    "ibm ford chrysler sony texaco boeing exxon citicorp merrill nissan "
    "honda xerox kodak pepsico nestle unisys compaq polaroid "
    "<unk>").split()
_TITLES = "president chairman director executive officer manager".split()
_MONTHS = "january february march april may june july august".split()
_CONNECTIVES = "but and while because although".split()


def _pick(rng, items):
    """One item, earlier ones likelier (weight 1 / (rank + 1))."""
    weights = [1.0 / (rank + 1) for rank in range(len(items))]
    point = rng.random() * sum(weights)
    for item, weight in zip(items, weights):
        point -= weight
        if point < 0:
            return item
    return items[-1]


def _chance(rng, p):
    return rng.random() < p


def _plural(noun):
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def _noun_phrase(rng):
    """(words, is_plural): a determiner, maybe adjectives, a noun, maybe a PP."""
    plural = _chance(rng, 0.35)
    noun = _pick(rng, _NOUNS)
    words = [_pick(rng, ["the", "some", "many", "these", "two"] if plural
                     else ["the", "a", "its", "this", "one"])]
    while _chance(rng, 0.3 if len(words) == 1 else 0.1):
        words.append(_pick(rng, _ADJECTIVES))
    words.append(_plural(noun) if plural else noun)
    if _chance(rng, 0.2):
        words += ["of", _pick(rng, _COMPANIES)]
    return words, plural


def _money(rng):
    return ["$", "N", _pick(rng, ["million", "billion"])]


def _clause(rng):
    """Subject, verb agreeing in number where it shows, object or complement."""
    subject, plural = _noun_phrase(rng)
    kind = rng.random()
    if kind < 0.45:
        verb = [_pick(rng, _TRANSITIVE)]
        if _chance(rng, 0.2):
            verb.insert(0, _pick(rng, _ADVERBS))
        obj = _money(rng) if _chance(rng, 0.25) else _noun_phrase(rng)[0]
        predicate = verb + obj
    elif kind < 0.7:
        predicate = [_pick(rng, _INTRANSITIVE), "N", "%"]
        if _chance(rng, 0.5):
            predicate += ["to", "N"]
    elif kind < 0.85:
        predicate = ["are" if plural else "is", _pick(rng, _ADJECTIVES)]
    else:
        predicate = ["have" if plural else "has", _pick(rng, _TRANSITIVE)]
        predicate += _noun_phrase(rng)[0]
    if _chance(rng, 0.3):
        predicate += [_pick(rng, _PREPOSITIONS)] + _noun_phrase(rng)[0]
    return subject + predicate


def _sentence(rng):
    """One sentence from a few news-style templates."""
    kind = rng.random()
    if kind < 0.5:
        words = _clause(rng)
        if _chance(rng, 0.35):
            words += [_pick(rng, _CONNECTIVES)] + _clause(rng)
        return words
    if kind < 0.7:
        speaker = _pick(rng, [["mr.", "<unk>"], ["analysts"], ["the", "company"],
                              [_pick(rng, _COMPANIES)], ["officials"]])
        return speaker + ["said"] + _clause(rng)
    if kind < 0.85:
        return ([_pick(rng, _COMPANIES), _pick(rng, ["posted", "reported"]),
                 *_pick(rng, [["net", "income"], ["a", "loss"], ["a", "profit"]])]
                + ["of"] + _money(rng) + ["or", "N", "cents", "a", "share"]
                + [_pick(rng, ["in", "for"]), "the", _pick(rng, ["quarter", "year"])])
    if kind < 0.93:
        return (["mr.", "<unk>", ",", "N", "years", "old", ",", "was", "named",
                 _pick(rng, _TITLES), "of", _pick(rng, _COMPANIES)]
                + (["in", _pick(rng, _MONTHS)] if _chance(rng, 0.5) else []))
    return ([_pick(rng, _COMPANIES), "shares", _pick(rng, _INTRANSITIVE), "N",
             "cents", "to", "$", "N", "in", "new", "york", "stock", "exchange",
             "trading"])


def _line(words):
    """Mikolov's PTB layout: a space before and after the space-joined words."""
    return " " + " ".join(words) + " \n"


def _plant_oov(rng, sentences, oov):
    """Overwrites one word in distinct sentences with each out-of-vocabulary word."""
    used = set()
    for word, count in oov.items():
        for _ in range(count):
            index = int(rng.random() * len(sentences))
            while index in used:
                index = (index + 1) % len(sentences)
            used.add(index)
            sentence = sentences[index]
            sentence[int(rng.random() * len(sentence))] = word


def make_ptb(out_dir, seed):
    """Writes ptb.{train,valid,test}.txt into out_dir.

    valid and test hold only training words, except for PTB_TEST_OOV in test.
    """
    rng = random.Random(seed)
    train = [_sentence(rng) for _ in range(PTB_SENTENCES["train"])]
    vocab = {word for sentence in train for word in sentence}
    assert not vocab & set(PTB_TEST_OOV), "an OOV test word occurs in train"
    splits = {"train": train}
    for split in ("valid", "test"):
        splits[split] = []
        while len(splits[split]) < PTB_SENTENCES[split]:
            sentence = _sentence(rng)
            if set(sentence) <= vocab:
                splits[split].append(sentence)
    _plant_oov(rng, splits["test"], PTB_TEST_OOV)
    os.makedirs(out_dir, exist_ok=True)
    for split, sentences in splits.items():
        with open(os.path.join(out_dir, f"ptb.{split}.txt"), "w",
                  encoding="utf-8", newline="\n") as f:
            f.write("".join(_line(sentence) for sentence in sentences))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", default=os.path.dirname(os.path.abspath(__file__)),
                        help="directory to write the data sets into")
    args = parser.parse_args(argv)
    make_ptb(os.path.join(args.out_dir, "ptb"), PTB_SEED)


if __name__ == "__main__":
    main()
