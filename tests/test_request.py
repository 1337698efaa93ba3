"""Opening lines and sampling settings are checked in one place."""

import pytest

from engine.request import MAX_OPENING_CHARS, InvalidRequest, PoemRequest, clean_opening
from engine.settings import SPECS, SamplingSettings, SettingError, generation_defaults_from_config


@pytest.mark.parametrize(
    "text, code",
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("\x00\x07", "empty"),
        ("à" * (MAX_OPENING_CHARS + 1), "too_long"),
        ("😀🌸🌙", "not_vietnamese"),
        ("hello world", "not_vietnamese"),
        ("'; DROP TABLE poems; --", "not_vietnamese"),
        ("12345", "not_vietnamese"),
        ("Привет мир", "not_vietnamese"),
        ("<|endoftext|><|lucbat|>", "empty"),
    ],
)
def test_bad_openings_are_refused_with_a_reason(text, code):
    with pytest.raises(InvalidRequest) as err:
        clean_opening(text)
    assert err.value.code == code


def test_opening_is_normalised():
    assert clean_opening("  mùa\x00 thu\u200b   lá\tvàng ") == "Mùa thu lá vàng"
    assert clean_opening("mu\u0300a thu") == "Mùa thu"  # decomposed input comes out NFC
    assert clean_opening("Mùa\u200bthu lá\u200dvàng") == "Mùa thu lávàng"  # a zero-width space parts words


def test_the_prompt_formats_markup_typed_in_an_opening_is_not_read_as_tokens():
    """ "<|endoftext|>" in an opening ended the poem there (the user got an empty one); a form tag
    changed the form the model read. The user's words are kept, the markup dropped."""
    assert clean_opening("<|endoftext|> mùa thu lá vàng rơi") == "Mùa thu lá vàng rơi"
    assert clean_opening("Mùa thu <|endoftext|>lá<|lucbat|>vàng rơi<|unk|>") == "Mùa thu lá vàng rơi"
    assert PoemRequest("<|lucbat|>Mùa thu lá vàng rơi").form_id == "5chu"


def test_form_follows_the_opening_length_unless_given():
    assert PoemRequest("Mùa thu lá vàng rơi").form_id == "5chu"
    assert PoemRequest("Trăm năm trong cõi người ta").form_id == "lucbat"
    assert PoemRequest("Chiều nay em đứng bên sông vắng").form_id == "7chu"
    assert PoemRequest("Em đi qua những con đường ngày cũ").form_id == "8chu"
    assert PoemRequest("Mùa thu").form_id == "5chu"
    assert PoemRequest("Mùa thu", default_form="lucbat").form_id == "lucbat"
    assert PoemRequest("Mùa thu lá vàng rơi", form="tudo").form_id == "tudo"


def test_opening_longer_than_the_first_line_is_refused():
    with pytest.raises(InvalidRequest) as err:
        PoemRequest("Chiều nay em đứng bên sông vắng", form="5chu")
    assert err.value.code == "opening_too_long_for_form" and err.value.params["syllables"] == 7


@pytest.mark.parametrize("stanzas", [0, 5, True, "2"])
def test_stanzas_out_of_range(stanzas):
    with pytest.raises(InvalidRequest):
        PoemRequest("Mùa thu", stanzas=stanzas)


@pytest.mark.parametrize(
    "name, value",
    [
        ("temperature", 0.0),
        ("temperature", 2.5),
        ("temperature", float("nan")),
        ("top_k", -1),
        ("top_k", 1.5),
        ("top_p", 0.0),
        ("top_p", 1.2),
        ("repetition_penalty", 0.9),
        ("num_beams", 9),
        ("strategy", "random"),
        ("seed", -1),
        ("candidates", 0),
        ("temperature", True),
    ],
)
def test_settings_out_of_range(name, value):
    with pytest.raises(SettingError):
        SamplingSettings(**{name: value})


def test_user_typed_values_are_parsed():
    assert SPECS["temperature"].parse("0,9") == 0.9
    assert SPECS["top_k"].parse(" 40 ") == 40
    with pytest.raises(SettingError):
        SPECS["temperature"].parse("nóng")


def test_none_means_model_default_and_user_choice_wins():
    defaults = generation_defaults_from_config(
        {"temperature": 0.7, "top_k": 30, "do_sample": True, "tho_candidates": 2, "top_p": 7}
    )  # invalid top_p ignored
    resolved = SamplingSettings(top_k=10).resolve(defaults)
    assert resolved.temperature == 0.7 and resolved.top_k == 10 and resolved.candidates == 2
    assert resolved.top_p == 0.95  # fallback, the model's value was invalid
    assert resolved.seed is not None
