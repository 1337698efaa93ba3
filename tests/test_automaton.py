"""The form automaton and the vocabulary's masks, on a hand-made syllable vocabulary."""

from __future__ import annotations

from engine.automaton import NEWLINE, SYLLABLE, FormAutomaton, FormSpec
from engine.forms import check
from engine.prompt import END_OF_POEM, LINE_SEPARATOR
from engine.vocab_masks import SyllableVocab

OPENING = "Này môi này mắt này vai"
LINE_2 = "làm con mắt mắt ướt lai lệ nhòa".split()
LINE_3_START = "nhìn nhau mắt đẫm lệ".split()


def vocabulary() -> SyllableVocab:
    words = {w for w in LINE_2 + LINE_3_START} | {"nhoà", "hoa", "xa"}
    tokens = [END_OF_POEM, LINE_SEPARATOR, *(w + " " for w in sorted(words))]
    return SyllableVocab(dict(enumerate(tokens)), len(tokens))


def test_a_rhyme_partner_is_never_its_own_syllable_in_another_spelling():
    """ "nhòa" and "nhoà" (the tone mark on o or on a) are one syllable: the checker counts them as
    a repeat, not a rhyme, so after one the automaton must refuse the other (a fine-tuned model
    wrote exactly that pair in lục bát, scored rhyme 0.67 under the constraint)."""
    vocab = vocabulary()
    automaton = FormAutomaton(FormSpec("lucbat", 1, OPENING, True))
    for word in LINE_2:
        assert automaton.advance(SYLLABLE, word), word
    assert automaton.advance(NEWLINE)
    for word in LINE_3_START:
        assert automaton.advance(SYLLABLE, word), word

    allowed = vocab.mask(automaton.next())
    ids = {text: i for i, (_, text) in vocab.kind.items()}
    assert not allowed[ids["nhòa"]] and not allowed[ids["nhoà"]]
    assert allowed[ids["hoa"]] and allowed[ids["xa"]]  # the same rhyme, other syllables
    assert not automaton.fork().advance(SYLLABLE, "nhoà")
    assert automaton.advance(SYLLABLE, "hoa")

    line_4 = "làm cho anh với cuộc ta một mình"
    kept = [OPENING, " ".join(LINE_2), " ".join([*LINE_3_START, "hoa"]), line_4]
    repeated = [OPENING, " ".join(LINE_2), " ".join([*LINE_3_START, "nhoà"]), line_4]
    assert check(kept, "lucbat").rhyme == 1.0 and check(repeated, "lucbat").rhyme < 1.0
