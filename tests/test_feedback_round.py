"""A tiny-model round end to end: export -> train a few steps -> gate -> promote -> the running core serves it."""

import asyncio
import sqlite3

import pytest

from bot.config import Settings
from bot.store import NewPoem
from bot.runtime import open_runtime
from engine.prompt import prompt_for
from tests.tiny_model import sample_poems
from training.corpus import prepare, write_split
from training.feedback import export as fx
from training.feedback.gate import EvalSettings, judge
from training.feedback.loop import RoundSettings, next_version, run_round
from training.feedback.retrain import TrainSettings

# Liked poems speak of the sea, disliked ones of the town: a taste a few steps can learn.
SEA = ["Thuyền về bến biển xa", "Sóng vỗ bờ cát trắng", "Biển khơi gió lộng buồm"]
TOWN = ["Phố đông xe chạy vội", "Đèn đường soi ngõ hẹp", "Chợ chiều người mua bán"]
OPENINGS = ["Sáng nay trời trở gió", "Phố cũ mưa giăng mắc", "Bên hiên nhà mẹ đợi", "Con đò chiều lặng lẽ",
            "Tiếng ve gọi mùa hạ", "Lá rơi đầy lối cũ", "Hàng cây đứng im lìm", "Em đi qua ngõ nhỏ"]
HELDOUT = {"Lá rơi đầy lối cũ", "Hàng cây đứng im lìm", "Em đi qua ngõ nhỏ"}


@pytest.fixture
def data_dir(tmp_path):
    prepared = prepare({"lines": lines} for lines in sample_poems(300))
    poems = [p for split in prepared.splits.values() for p in split]
    write_split(poems[:40], tmp_path / "data" / "test.jsonl")
    write_split(poems[40:], tmp_path / "data" / "train.jsonl")
    return tmp_path / "data"


async def add(store, user, opening, lines):
    text = "\n".join([opening, *lines])
    return await store.add_poem(NewPoem(user_key=user, opening=opening, prompt=prompt_for("5chu", opening, True),
                                        text=text, form="5chu", stanzas=1, model_version="tiny-a", latency_ms=1.0))


@pytest.mark.slow
async def test_a_round_trains_gates_promotes_and_the_bot_serves_the_new_model(
        tiny_model_dir, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(fx, "is_heldout", lambda prompt, share=None: any(o in prompt for o in HELDOUT))
    settings = Settings(THO_MODEL=tiny_model_dir, THO_DB=tmp_path / "tho.db", THO_MODEL_WATCH_SECONDS=0.2,
                        THO_POEMS_PER_MINUTE=600)
    async with open_runtime(settings) as rt:
        # /tholai through the real core records the implicit signal.
        first = await rt.core.command("tg:1", "tho", "Mùa thu lá vàng rơi")
        again = await rt.core.command("tg:1", "tholai")
        with sqlite3.connect(settings.db) as db:
            assert db.execute("SELECT poem_id, new_poem_id FROM regenerations").fetchall() == [
                (first.poem_id, again.poem_id)]
        for i, opening in enumerate(OPENINGS):
            for user in ("tg:2", "dc:3"):
                liked = await add(rt.store, user, opening, SEA[i % 3:] + SEA[:i % 3])
                disliked = await add(rt.store, user, opening, TOWN[i % 3:] + TOWN[:i % 3])
                await rt.core.action(user, f"rate:{liked}:5")
                await rt.core.action(user, f"rate:{disliked}:1")
        round_settings = RoundSettings(
            db=settings.db, work=tmp_path / "work", min_new=10, min_examples=4, min_heldout_pairs=2,
            replay_poems=40, train=TrainSettings(method="dpo", steps=12, batch_size=4, learning_rate=1e-3, beta=0.1),
            eval=EvalSettings(data_dir=data_dir, ce_poems=20, n_openings=2, forms=("5chu",), threads=1))
        result = await run_round(round_settings)
        gate = result.metrics["gate"]
        assert set(gate["checks"]) == {"ce_per_syllable", "constrained_total.5chu", "constrained_copy_rate",
                                       "unconstrained_total", "heldout_pair_accuracy"}
        assert result.status == "promoted", gate
        assert result.version == "tiny-a-fb1"
        recorded = await rt.store.get_model_version("tiny-a-fb1")
        assert recorded.status == "serving" and recorded.metrics["gate"]["passed"]
        assert recorded.metrics["feedback"]["dpo"] > 0 and "until" in recorded.metrics["feedback"]
        for _ in range(300):  # the watcher swaps the running engine within THO_MODEL_WATCH_SECONDS
            if rt.engine.model_version == "tiny-a-fb1":
                break
            await asyncio.sleep(0.1)
        reply = await rt.core.command("tg:1", "tho", "Mùa thu lá vàng rơi")
        assert (await rt.store.get_poem(reply.poem_id)).model_version == "tiny-a-fb1"
        # Nothing new since: the next round says so and changes nothing.
        before = await rt.store.list_model_versions()
        again = await run_round(round_settings)
        assert again.status == "skipped" and "too little new feedback" in again.message
        assert await rt.store.list_model_versions() == before


def test_the_gate_rejects_any_regression():
    serving = {"ce_per_syllable": 4.0, "constrained_total": {"5chu": 0.95, "lucbat": 0.99},
               "constrained_copy_rate": 0.0, "unconstrained_total": 0.45}
    good = {**serving, "ce_per_syllable": 4.1}
    pairs = {"pairs": 10, "reward_accuracy_candidate": 0.7, "reward_accuracy_serving": 0.5}
    assert judge(serving, good, pairs).passed
    for bad, p in [({"ce_per_syllable": 4.2}, pairs), ({"constrained_total": {"5chu": 0.9, "lucbat": 0.99}}, pairs),
                   ({"constrained_copy_rate": 0.06}, pairs), ({"unconstrained_total": 0.42}, pairs),
                   ({}, {**pairs, "reward_accuracy_candidate": 0.5}), ({}, {"pairs": 0})]:
        assert not judge(serving, {**good, **bad}, p).passed


def test_versions_count_up_and_never_reuse_a_name(tmp_path):
    assert next_version("tho-gpt2-cpu", set(), tmp_path) == "tho-gpt2-cpu-fb1"
    assert next_version("tho-gpt2-cpu-fb1", {"tho-gpt2-cpu-fb2"}, tmp_path) == "tho-gpt2-cpu-fb3"
