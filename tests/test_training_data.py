"""Corpus cleaning, labelling, author cap and splitting rules, on crafted rows; the text metrics."""

from __future__ import annotations

import json
import unicodedata

import pytest

from engine.forms import check
from engine.prompt import format_poem
from training import metrics
from training.__main__ import main
from training.corpus import (
    CleanPoem,
    cap_authors,
    chunks,
    clean_row,
    normalise_line,
    prepare,
    read_rows,
    split_of,
    write_split,
)
from training.dataset import rhyming_chunks, rhyming_stanzas
from training.rhymes import pair_rates, stanzas_of_generated

FIVE = ["Mùa thu lá vàng rơi", "Gió heo may về qua", "Em đi trên phố vắng", "Nhớ mãi một người xa"]
LUCBAT = [
    "Trăm năm trong cõi người ta",
    "Chữ tài chữ mệnh khéo là ghét nhau",
    "Trải qua một cuộc bể dâu",
    "Những điều trông thấy mà đau đớn lòng",
]


def row(lines, **extra):
    return {"lines": lines, "source": "test", **extra}


def test_lines_are_nfc_and_capitalised_the_same_way_for_every_source():
    decomposed = [unicodedata.normalize("NFD", ln.lower()) for ln in FIVE]
    poem, reason = clean_row(row(decomposed))
    assert reason is None
    assert list(poem.lines) == FIVE
    assert all(unicodedata.is_normalized("NFC", ln) for ln in poem.lines)


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("1. mùa thu lá vàng rơi", "Mùa thu lá vàng rơi"),
        ("(12) Mùa thu lá vàng rơi", "Mùa thu lá vàng rơi"),
        ("IV. Mùa thu lá vàng rơi", "Mùa thu lá vàng rơi"),
        ("- Mùa thu lá vàng rơi", "Mùa thu lá vàng rơi"),
        ("<b>Mùa thu</b> lá vàng&nbsp;rơi<br/>", "Mùa thu lá vàng rơi"),
        ("**Mùa thu** lá\u200b vàng   rơi", "Mùa thu lá vàng rơi"),
    ],
)
def test_markup_and_numbering_are_removed(raw, clean):
    assert normalise_line(raw) == clean


def test_separators_title_and_signature_lines_are_dropped():
    poem, _ = clean_row(
        row(
            ["Mùa Thu", *FIVE[:2], "***", *FIVE[2:], "Nguyễn Văn A", "12/3/2020"],
            title="mùa thu",
            author="Nguyễn Văn A",
        )
    )
    assert list(poem.lines) == FIVE


@pytest.mark.parametrize(
    "lines, reason",
    [
        (FIVE[:2], "too_short"),
        (
            [
                "The autumn leaves are falling down",
                "The wind is blowing through the town",
                "I walk alone along the street",
                "And think of someone I used to meet",
            ],
            "not_vietnamese",
        ),
        ([" ".join(["mưa rơi"] * 10)] * 4, "prose"),
        (["Mưa", "Mưa rơi rơi mãi trên những con đường quen thuộc của ngày xưa cũ", "Nắng", "Gió"], "prose"),
    ],
)
def test_junk_is_dropped(lines, reason):
    poem, why = clean_row(row(lines))
    assert poem is None and why == reason


def test_form_comes_from_the_checker_not_the_heuristic_field():
    poem, _ = clean_row(row(LUCBAT, genre="7chu"))
    assert poem.form == "lucbat"
    poem, _ = clean_row(row(FIVE, genre="other"))
    assert poem.form == "5chu"


def test_author_cap_is_deterministic_and_unknown_authors_are_not_capped():
    poems = [CleanPoem((f"Dòng thơ số {i} mùa thu",) * 4, "5chu", "Tác Giả", "t") for i in range(6)]
    anon = [CleanPoem((f"Dòng thơ số {i} mùa đông",) * 4, "5chu", "", "t") for i in range(6)]
    kept = cap_authors(poems + anon, cap=2)
    assert len([p for p in kept if p.author]) == 2
    assert len([p for p in kept if not p.author]) == 6
    assert kept == cap_authors(list(reversed(poems + anon)), cap=2)[::-1] or {p.key for p in kept} == {
        p.key for p in cap_authors(list(reversed(poems + anon)), cap=2)
    }


def test_split_is_deterministic_by_poem_and_duplicates_stay_in_one_split():
    rows = [
        row([f"Chiều nay {w} về trên bến", *FIVE[1:]])
        for w in ("em", "anh", "ta", "ai", "mây", "gió", "trăng", "sao", "mưa", "nắng") * 30
    ]
    rows += [row([ln.upper() + "!" for ln in r["lines"]]) for r in rows[:10]]  # same text, other case/punctuation
    a, b = prepare(rows), prepare(list(reversed(rows)))
    keys = {name: {p.key for p in poems} for name, poems in a.splits.items()}
    assert keys == {name: {p.key for p in poems} for name, poems in b.splits.items()}
    assert not (keys["train"] & keys["validation"] or keys["train"] & keys["test"] or keys["validation"] & keys["test"])
    assert sum(map(len, a.splits.values())) == 10  # duplicates collapse to one poem
    assert a.duplicates == len(rows) - 10
    p = a.splits["train"][0] if a.splits["train"] else next(x for s in a.splits.values() for x in s)
    assert split_of(p) == split_of(CleanPoem(p.lines, p.form, "another author", "another source"))


def test_split_shares_are_about_right():
    poems = [CleanPoem((f"Dòng x{i} y{j}",) * 4, "tudo", "", "t") for i in range(100) for j in range(50)]
    counts = {s: 0 for s in ("train", "validation", "test")}
    for p in poems:
        counts[split_of(p)] += 1
    assert 0.01 < counts["test"] / len(poems) < 0.03 and 0.01 < counts["validation"] / len(poems) < 0.03


def test_crawler_rows_are_accepted(tmp_path):
    path = tmp_path / "crawl.jsonl"
    rows = [
        {
            "lines": LUCBAT,
            "title": "Kiều",
            "author": "Nguyễn Du",
            "url": "http://127.0.0.1/1",
            "source": "crawler",
            "stanzas": [LUCBAT],
            "genre_label": "Lục bát",
        },
        {"stanzas": [FIVE, FIVE[::-1]], "source": "crawler", "url": "http://127.0.0.1/2"},
        {"title": "no lines"},
    ]
    path.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + '\n{"lines": ["cut off', encoding="utf-8"
    )
    read = list(read_rows(path))
    assert len(read) == 2 and read[1]["lines"] == FIVE + FIVE[::-1]
    prepared = prepare(read)
    assert sorted(p.form for s in prepared.splits.values() for p in s) == ["5chu", "lucbat"]


def test_chunks_are_whole_stanzas_of_at_most_four():
    poem = CleanPoem(tuple(FIVE * 5 + FIVE[:2]), "5chu", "", "t")
    parts = chunks(poem)
    assert [len(lines) for _, lines in parts] == [16, 4]
    assert all(form == "5chu" for form, _ in parts)


def test_rhyming_stanzas_are_the_ones_that_keep_their_forms_rhymes():
    cheo = ["Bạn bè tôi vừa qua", "Ai còn và ai mất", "Thương tấm áo bà ba", "Tấm khăn rằn phơ phất"]  # ABAB
    poem = CleanPoem(tuple(FIVE + cheo + FIVE), "5chu", "", "t")  # FIVE: lines 1 and 3 do not rhyme
    free = CleanPoem(("Một mình", "Đi giữa phố đông", "Chẳng ai", "Hay biết"), "tudo", "", "t")  # no rhyme rule
    lucbat = CleanPoem(tuple(LUCBAT), "lucbat", "", "t")
    assert list(rhyming_stanzas([poem, free, lucbat])) == [format_poem("5chu", cheo), format_poem("lucbat", LUCBAT)]


def test_rhyming_chunks_are_whole_chunks_of_the_form_where_half_the_pairs_rhyme():
    cheo = ["Bạn bè tôi vừa qua", "Ai còn và ai mất", "Thương tấm áo bà ba", "Tấm khăn rằn phơ phất"]  # ABAB
    unrhymed = [FIVE[0], FIVE[1], FIVE[3], FIVE[2]]  # rơi/xa, qua/vắng: neither vần chéo pair rhymes
    half = CleanPoem(tuple(unrhymed + cheo), "5chu", "", "t")  # 2 of 4 pairs rhyme: kept whole, 8 lines
    none = CleanPoem(tuple(unrhymed * 2), "5chu", "", "t")
    quarter = CleanPoem(tuple(FIVE + unrhymed), "5chu", "", "t")  # FIVE: qua/xa only; 1 of 4 pairs: dropped
    lucbat = CleanPoem(tuple(LUCBAT), "lucbat", "", "t")  # rhymes, but another form
    long = CleanPoem(tuple(cheo * 5), "5chu", "", "t")  # 20 lines: two chunks (16 + 4), both kept
    assert list(rhyming_chunks([half, none, quarter, lucbat, long], "5chu")) == [
        format_poem("5chu", unrhymed + cheo),
        format_poem("5chu", cheo * 4),
        format_poem("5chu", cheo),
    ]
    assert list(rhyming_chunks([half, none, lucbat], "lucbat")) == [format_poem("lucbat", LUCBAT)]


def test_rhymes_counts_which_line_ends_rhyme_per_stanza(tmp_path, capsys):
    """`python -m training rhymes POEMS`: per form, the share of stanzas in which each pair of line ends
    rhymes, and the share of the default scheme's pairs (vần chéo for 5 chữ: 1-3 and 2-4; tứ tuyệt for
    7 chữ, chained as the checker scores it: 1-2 and 2-4)."""
    cheo = ["Bạn bè tôi vừa qua", "Ai còn và ai mất", "Thương tấm áo bà ba", "Tấm khăn rằn phơ phất"]  # ABAB
    unrhymed = [FIVE[0], FIVE[1], FIVE[3], FIVE[2]]  # rơi/qua/xa/vắng: only 2-3 (qua/xa) rhyme
    seven = ["Bước tới đèo Ngang bóng xế tà", "Cỏ cây chen đá lá chen hoa"]  # tà/hoa rhyme
    seven += ["Lom khom dưới núi tiều vài chú", "Lác đác bên sông chợ mấy người"]  # người: no rhyme
    rows = [
        {"form": "5chu", "lines": cheo + unrhymed},  # two stanzas
        {"form": "5chu", "lines": cheo[:3]},  # not a whole stanza: not counted
        {"form": "lucbat", "lines": LUCBAT},  # no end-rhyme scheme: not counted
        {"form": "7chu", "lines": seven},
    ]
    path = tmp_path / "poems.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    assert main(["--work", str(tmp_path), "rhymes", str(path)]) == 0
    report = pair_rates(stanzas_of_generated(path))
    assert list(report) == ["5chu", "7chu"]
    five = report["5chu"]
    assert five["stanzas"] == 2
    assert five["pairs"] == {"1-2": 0.0, "1-3": 0.5, "1-4": 0.0, "2-3": 0.5, "2-4": 0.5, "3-4": 0.0}
    assert (five["scheme"], five["scheme_rate"]) == ("cheo", 0.5)
    assert (report["7chu"]["scheme"], report["7chu"]["scheme_rate"]) == ("tutuyet", check(seven, "7chu").rhyme)
    assert report["7chu"]["scheme_rate"] == 0.5  # 1-2 of 1-2 and 2-4 (not 1 of the group's 3 pairs)
    out = capsys.readouterr().out
    assert "cheo 0.500" in out and "tutuyet 0.500" in out

    # without POEMS: the training split's stanzas (chunks of labelled poems)
    write_split([CleanPoem(tuple(cheo + unrhymed), "5chu", "", "t")], tmp_path / "data" / "train.jsonl")
    assert main(["--work", str(tmp_path), "rhymes"]) == 0
    assert "5chu         2  0.000  0.500  0.000  0.500  0.500  0.000  cheo 0.500" in capsys.readouterr().out


def test_metrics():
    assert metrics.rouge_l("mùa thu lá vàng rơi", "Mùa thu lá vàng rơi.") == 1.0
    assert metrics.bleu("mùa thu lá vàng rơi", "mùa thu lá vàng rơi") == pytest.approx(1.0)
    assert 0 < metrics.bleu("mùa thu lá rơi", "mùa thu lá vàng rơi") < 1
    assert metrics.rouge_l("gió heo may", "mùa thu lá vàng rơi") == 0.0
    assert metrics.distinct_n([["a b a b"]], 1) == 0.5
    assert metrics.copy_rate(["Mùa thu lá vàng rơi!", "Câu mới tinh"], {"mùa thu lá vàng rơi"}) == 0.5
