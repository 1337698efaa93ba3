"""`python -m training feedback export`: the rules, on databases crafted through the real Store."""

import json
import sqlite3

import pytest

from bot.store import NewPoem, Store
from engine.prompt import format_poem, prompt_for
from training.feedback import export as fx

LIKED = ["Biển xanh sóng vỗ bờ", "Thuyền về bến khơi xa", "Gió mang hương muối mặn", "Em ngồi đợi chiều tà"]
DISLIKED = ["Biển xanh sóng vỗ bờ", "Phố đông người qua lại", "Xe chạy vội trên đường", "Đèn đỏ đứng chờ mãi"]
OTHER = ["Mùa thu lá vàng rơi", "Gió heo may về qua", "Em đi trên phố vắng", "Nhớ mãi một người xa"]


async def add(store: Store, user: str, lines: list[str], form: str = "5chu") -> int:
    return await store.add_poem(
        NewPoem(
            user_key=user,
            opening=lines[0],
            prompt=prompt_for(form, lines[0], True),
            text="\n".join(lines),
            form=form,
            stanzas=1,
            model_version="m0",
            latency_ms=1.0,
        )
    )


@pytest.fixture
def no_heldout(monkeypatch):
    monkeypatch.setattr(fx, "HELDOUT_SHARE", 0.0)


async def crafted(path) -> dict[str, int]:
    async with Store(path) as s:
        ids = {}
        ids["changed"] = await add(s, "tg:1", LIKED)
        await s.rate("tg:1", ids["changed"], 1)
        await s.rate("tg:1", ids["changed"], 5)  # changed: counts once, as 5
        ids["split"] = await add(s, "tg:1", OTHER)
        await s.rate("tg:1", ids["split"], 5)
        await s.rate("tg:2", ids["split"], 1)  # average 3: neither liked nor disliked
        ids["quick_retry"] = await add(s, "tg:1", DISLIKED)
        ids["retry_poem"] = await add(s, "tg:1", LIKED[:1] + OTHER[1:])
        await s.record_regeneration("tg:1", ids["quick_retry"], ids["retry_poem"])
        ids["retried_but_rated"] = await add(s, "dc:7", OTHER[:1] + LIKED[1:])
        ids["retry2"] = await add(s, "dc:7", OTHER[:1] + DISLIKED[1:])
        await s.record_regeneration("dc:7", ids["retried_but_rated"], ids["retry2"])
        await s.rate("dc:7", ids["retried_but_rated"], 4)  # their rating wins over their /tholai
        ids["slow_retry"] = await add(s, "dc:7", ["Sông quê lặng lẽ trôi", *OTHER[1:]])
        ids["retry3"] = await add(s, "dc:7", ["Sông quê lặng lẽ trôi", *LIKED[1:]])
        await s.record_regeneration("dc:7", ids["slow_retry"], ids["retry3"])
        ids["deleted"] = await add(s, "tg:9", ["Biển xanh sóng vỗ bờ", "Bí mật riêng của tôi", *OTHER[2:]])
        await s.rate("tg:9", ids["deleted"], 5)
        await s.rate("tg:9", ids["changed"], 1)  # a deleted user's rating of someone else's poem goes too
        await s.delete_user_data("tg:9")
    with sqlite3.connect(path) as db:  # a /tholai ten minutes later is not about the poem
        db.execute("UPDATE regenerations SET seconds_after = 600 WHERE poem_id = ?", (ids["slow_retry"],))
    return ids


def completion(lines):
    return format_poem("5chu", lines)[len(prompt_for("5chu", lines[0], True)) :]


async def test_export_applies_the_rules(tmp_path, no_heldout):
    db = tmp_path / "tho.db"
    await crafted(db)
    summary = fx.export(db, tmp_path / "out")
    kto = fx.read_jsonl(tmp_path / "out" / "kto.jsonl")
    by_completion = {row["completion"]: row for row in kto}
    # changed rating: 5 (weight one rater), not 1 and 5
    assert by_completion[completion(LIKED)]["label"] is True
    assert by_completion[completion(LIKED)]["weight"] == 1.0
    # two raters averaging 3: left out
    assert completion(OTHER) not in by_completion
    # a quick /tholai: a weak "not this one"
    row = by_completion[completion(DISLIKED)]
    assert row["label"] is False and row["weight"] == pytest.approx(fx.IMPLICIT_WEIGHT, abs=1e-3)
    # rated 4 after /tholai: the rating wins
    assert by_completion[completion(OTHER[:1] + LIKED[1:])]["label"] is True
    # a slow /tholai says nothing
    assert completion(["Sông quê lặng lẽ trôi", *OTHER[1:]]) not in by_completion
    assert summary["implicit_signals"] == 1 and summary["desirable"] == 2 and summary["undesirable"] == 1
    # a pair: same prompt, liked against disliked
    pairs = fx.read_jsonl(tmp_path / "out" / "dpo.jsonl")
    assert pairs == [
        {
            "prompt": prompt_for("5chu", LIKED[0], True),
            "chosen": completion(LIKED),
            "rejected": completion(DISLIKED),
            "weight": pytest.approx(fx.IMPLICIT_WEIGHT, abs=1e-3),
            "form": "5chu",
            "opening": LIKED[0],
        }
    ]
    # prompt + completion is exactly the training format
    assert all(
        r["prompt"] + r["completion"]
        == format_poem(
            r["form"], [r["opening"], *r["completion"].removesuffix("<|endoftext|>").strip("\n").split("\n")]
        )
        for r in kto
    )


async def test_export_leaks_no_user_and_drops_deleted_users(tmp_path, no_heldout):
    db = tmp_path / "tho.db"
    await crafted(db)
    fx.export(db, tmp_path / "out")
    written = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir())
    for secret in ("tg:", "dc:", "console:", "Bí mật riêng"):
        assert secret not in written
    for name in fx.FILES:
        for row in fx.read_jsonl(tmp_path / "out" / name):
            assert set(row) <= {"prompt", "completion", "label", "chosen", "rejected", "weight", "form", "opening"}


async def test_held_out_openings_are_stable_and_never_trained_on(tmp_path, monkeypatch):
    db = tmp_path / "tho.db"
    await crafted(db)
    monkeypatch.setattr(fx, "HELDOUT_SHARE", 1.0)
    fx.export(db, tmp_path / "all-heldout")
    assert fx.read_jsonl(tmp_path / "all-heldout" / "kto.jsonl") == []
    assert len(fx.read_jsonl(tmp_path / "all-heldout" / "dpo.heldout.jsonl")) == 1
    monkeypatch.setattr(fx, "HELDOUT_SHARE", 0.5)
    first = fx.build(db)
    again = fx.build(db)
    assert first.kto == again.kto and first.kto_heldout == again.kto_heldout
    assert not {r["prompt"] for r in first.kto} & {r["prompt"] for r in first.kto_heldout}


async def test_new_signals_are_counted_since_the_last_export(tmp_path):
    db = tmp_path / "tho.db"
    await crafted(db)
    until = fx.build(db).summary["until"]
    assert fx.count_new_signals(db, None) >= 5
    assert fx.count_new_signals(db, until) == 0
    async with Store(db) as s:
        pid = await add(s, "tg:3", OTHER)
        await s.rate("tg:3", pid, 2)
    assert fx.count_new_signals(db, until) == 1


async def test_deleting_a_user_deletes_their_regenerations(tmp_path):
    db = tmp_path / "tho.db"
    await crafted(db)
    async with Store(db) as s:
        await s.delete_user_data("tg:1")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM regenerations WHERE user_key = 'tg:1'").fetchone()[0] == 0
    summary = fx.export(db, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["implicit_signals"] == 0
    assert summary["undesirable"] == 0


async def test_poems_of_a_syllable_level_model_are_exported_in_its_spelling(tmp_path, tiny_model_dir):
    """The bot stores a syllable-level model's prompt in that model's spelling ("<|5chu|>mùa thu ... \\n"):
    the export must write the poem the same way, or no rated poem of the shipped model could be learnt from."""
    from bot.runtime import open_runtime
    from engine.syllable_text import codec_for_model
    from tests.helpers import core_settings

    settings = core_settings(tiny_model_dir, tmp_path)
    async with open_runtime(settings, watch=False) as rt:
        liked = await rt.core.tho("tg:1", "Mùa thu lá vàng rơi")
        disliked = await rt.core.tho("tg:2", "Mùa thu lá vàng rơi")
        await rt.core.rate("tg:3", liked.poem_id, 5)
        await rt.core.rate("tg:3", disliked.poem_id, 1)
        stored = await rt.store.get_poem(liked.poem_id)
    codec = codec_for_model(tiny_model_dir)
    spell = fx.spelling_of(tiny_model_dir)
    rows = fx.build(tmp_path / "tho.db", spell=spell)
    (row,) = [r for r in rows.kto + rows.kto_heldout if r["label"]]
    assert row["prompt"] == stored.prompt
    lines = [line for line in stored.text.split("\n") if line]
    assert row["prompt"] + row["completion"] == format_poem("5chu", [codec.to_model("\n".join(lines))])
    assert len(rows.kto + rows.kto_heldout) == 2 and len(rows.dpo + rows.dpo_heldout) == 1
