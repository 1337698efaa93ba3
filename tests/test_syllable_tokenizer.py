"""The syllable tokenizer: one token per syllable, a plain tokenizer.json, exact round trips."""

from transformers import AutoTokenizer

from engine.prompt import LINE_SEPARATOR
from engine.syllable_text import UNKNOWN, SyllableCodec, join_continuation
from tests.tiny_model import sample_poems
from training.corpus import clean_lines
from training.tokenizer import build_syllable_tokenizer, round_trip_share


def test_every_poem_in_the_vocabulary_round_trips_exactly(tmp_path):
    poems = [clean_lines(p) for p in sample_poems(400)]  # as the training split holds them
    tokenizer, stats = build_syllable_tokenizer(poems[:300], min_count=2)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)  # no code of ours needed to load it
    share = round_trip_share(loaded, poems)
    assert share["all_in_vocabulary"] >= 50
    assert share["round_trip_exact"] == share["all_in_vocabulary"]
    assert stats["coverage"] > 0.8


def test_one_token_per_syllable_with_its_trailing_space():
    tokenizer, _ = build_syllable_tokenizer(
        [["Mùa thu lá vàng rơi, gió về", "Em đi qua Huế"]] * 20, min_count=1, name_min_count=1
    )
    codec = SyllableCodec(tokenizer.get_vocab())
    text = codec.to_model("Mùa thu lá vàng rơi, gió về\nEm đi qua Huế")
    assert text == "mùa thu lá vàng rơi , gió về \nem đi qua Huế "
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert tokens[:6] == ["mùa ", "thu ", "lá ", "vàng ", "rơi ", ", "]
    assert LINE_SEPARATOR in tokens and "Huế " in tokens  # the line break is an ordinary token; names keep capitals
    decoded = tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert codec.from_model(decoded) == "Mùa thu lá vàng rơi, gió về\nEm đi qua Huế"


def test_an_unknown_word_reads_as_the_unknown_token_and_the_opening_is_kept():
    tokenizer, _ = build_syllable_tokenizer([["Mùa thu lá vàng rơi"]] * 20, min_count=1)
    codec = SyllableCodec(tokenizer.get_vocab())
    ids = tokenizer(codec.to_model("Xyzqua thu"), add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids)[0] == UNKNOWN
    assert (
        join_continuation("Xyzqua thu", codec.from_model("lá vàng rơi \n", continues_line=True), False)
        == "Xyzqua thu lá vàng rơi\n"
    )
