"""A tiny-model round end to end: export -> train a few steps -> gate -> promote -> the running core serves it."""

import asyncio
import itertools
import sqlite3

import pytest

from bot.config import Settings
from bot.runtime import open_runtime
from bot.store import NewPoem
from engine.forms import label_form
from engine.prompt import prompt_for
from tests.tiny_model import FALLBACK_POEMS
from training.corpus import DEFAULT_CORPUS, CleanPoem, clean_row, read_rows, write_split
from training.feedback import export as fx
from training.feedback import gate as gate_module
from training.feedback.gate import EvalSettings, judge
from training.feedback.loop import RoundSettings, next_version, run_round
from training.feedback.retrain import TrainSettings

# Liked poems speak of the sea, disliked ones of the town: a taste a few steps can learn.
SEA = ["Thuyền về bến biển xa", "Sóng vỗ bờ cát trắng", "Biển khơi gió lộng buồm"]
TOWN = ["Phố đông xe chạy vội", "Đèn đường soi ngõ hẹp", "Chợ chiều người mua bán"]
OPENINGS = [
    "Sáng nay trời trở gió",
    "Phố cũ mưa giăng mắc",
    "Bên hiên nhà mẹ đợi",
    "Con đò chiều lặng lẽ",
    "Tiếng ve gọi mùa hạ",
    "Lá rơi đầy lối cũ",
    "Hàng cây đứng im lìm",
    "Em đi qua ngõ nhỏ",
]
HELDOUT = {"Lá rơi đầy lối cũ", "Hàng cây đứng im lìm", "Em đi qua ngõ nhỏ"}


def clean_poems(n: int) -> list[CleanPoem]:
    """n cleaned poems from the shared corpus (a test split and a replay sample), or from our own lines."""
    out: list[CleanPoem] = []
    if DEFAULT_CORPUS.is_file():
        for row in itertools.islice(read_rows(DEFAULT_CORPUS), 20_000):
            poem, _ = clean_row(row)
            if poem is not None and poem.form in ("5chu", "lucbat"):
                out.append(poem)
                if len(out) >= n:
                    return out
    own = [[o, *SEA] for o in OPENINGS] + [[o, *TOWN] for o in OPENINGS] + FALLBACK_POEMS
    return out + [CleanPoem(tuple(lines), label_form(lines) or "tudo", "", "test") for lines in own]


@pytest.fixture
def data_dir(tmp_path):
    poems = clean_poems(80)
    write_split(poems[:30], tmp_path / "data" / "test.jsonl")
    write_split(poems[30:], tmp_path / "data" / "train.jsonl")
    return tmp_path / "data"


async def add(store, user, opening, lines):
    text = "\n".join([opening, *lines])
    return await store.add_poem(
        NewPoem(
            user_key=user,
            opening=opening,
            prompt=prompt_for("5chu", opening, True),
            text=text,
            form="5chu",
            stanzas=1,
            model_version="tiny-a",
            latency_ms=1.0,
        )
    )


async def rate_sea_over_town(rt, users=("tg:2", "dc:3")) -> None:
    """Each user: for every opening a sea poem rated 5 and a town poem rated 1 (star buttons, real core)."""
    for i, opening in enumerate(OPENINGS):
        for user in users:
            liked = await add(rt.store, user, opening, SEA[i % 3 :] + SEA[: i % 3])
            disliked = await add(rt.store, user, opening, TOWN[i % 3 :] + TOWN[: i % 3])
            await rt.core.action(user, f"rate:{liked}:5")
            await rt.core.action(user, f"rate:{disliked}:1")


async def wait_for_model(rt, version: str) -> None:
    for _ in range(300):  # the watcher swaps the running engine within THO_MODEL_WATCH_SECONDS
        if rt.engine.model_version == version:
            return
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_a_round_trains_gates_promotes_and_the_bot_serves_the_new_model(
    tiny_model_dir, data_dir, tmp_path, monkeypatch
):
    # (prompts are in the tiny syllable model's spelling: lower-case line starts)
    monkeypatch.setattr(fx, "is_heldout", lambda prompt, share=None: any(o.lower() in prompt.lower() for o in HELDOUT))
    settings = Settings(
        THO_MODEL=tiny_model_dir, THO_DB=tmp_path / "tho.db", THO_MODEL_WATCH_SECONDS=0.2, THO_POEMS_PER_MINUTE=600
    )
    round_settings = RoundSettings(
        db=settings.db,
        work=tmp_path / "work",
        min_new=10,
        min_examples=4,
        min_heldout_pairs=2,
        replay_poems=40,
        train=TrainSettings(method="dpo", steps=12, batch_size=4, learning_rate=1e-3, beta=0.1),
        eval=EvalSettings(data_dir=data_dir, ce_poems=20, n_openings=2, forms=("5chu", "lucbat"), threads=1),
    )
    async with open_runtime(settings) as rt:
        # /tholai through the real core records the implicit signal.
        first = await rt.core.command("tg:1", "tho", "Mùa thu lá vàng rơi")
        again = await rt.core.command("tg:1", "tholai")
        with sqlite3.connect(settings.db) as db:
            assert db.execute("SELECT poem_id, new_poem_id FROM regenerations").fetchall() == [
                (first.poem_id, again.poem_id)
            ]
        await rate_sea_over_town(rt)

        # A candidate that fails a check is recorded as rejected, with its figures; the old model keeps serving.
        with monkeypatch.context() as strict:
            strict.setattr(gate_module, "CE_RATIO_LIMIT", 0.5)
            rejected = await run_round(round_settings)
        assert rejected.status == "rejected" and rejected.version == "tiny-a-fb1", rejected.message
        recorded = await rt.store.get_model_version("tiny-a-fb1")
        assert recorded.status == "rejected" and not recorded.metrics["gate"]["passed"]
        assert set(recorded.metrics["gate"]["checks"]) == {
            "ce_per_syllable",
            "constrained_total.5chu",
            "constrained_total.lucbat",
            "constrained_copy_rate",
            "unconstrained_total",
            "heldout_pair_accuracy",
        }
        assert recorded.metrics["feedback"]["dpo"] > 0 and recorded.metrics["training"]["steps"] == 12
        assert (await rt.store.serving_model()).version == "tiny-a" and rt.engine.model_version == "tiny-a"

        # Nothing new since: the next round says so and changes nothing.
        before = await rt.store.list_model_versions()
        skipped = await run_round(round_settings)
        assert skipped.status == "skipped" and "too little new feedback" in skipped.message
        assert await rt.store.list_model_versions() == before

        # New ratings; this candidate passes and is promoted, and the running bot serves it.
        await rate_sea_over_town(rt, users=("tg:4", "dc:5"))
        # Two openings per form on an untrained tiny model: its free-decoding score is noise, not a signal.
        monkeypatch.setattr(gate_module, "UNCONSTRAINED_DROP_LIMIT", 1.0)
        result = await run_round(round_settings)
        assert result.status == "promoted", result.metrics["gate"]
        assert result.version == "tiny-a-fb2"
        assert result.metrics["gate"]["checks"]["heldout_pair_accuracy"]["candidate"] > 0.5
        recorded = await rt.store.get_model_version("tiny-a-fb2")
        assert recorded.status == "serving" and recorded.metrics["gate"]["passed"]
        await wait_for_model(rt, "tiny-a-fb2")
        reply = await rt.core.command("tg:1", "tho", "Mùa thu lá vàng rơi")
        assert (await rt.store.get_poem(reply.poem_id)).model_version == "tiny-a-fb2"


def test_the_gate_rejects_any_regression():
    serving = {
        "ce_per_syllable": 4.0,
        "constrained_total": {"5chu": 0.95, "lucbat": 0.99},
        "constrained_copy_rate": 0.0,
        "unconstrained_total": 0.45,
    }
    good = {**serving, "ce_per_syllable": 4.1}
    pairs = {"pairs": 10, "reward_accuracy_candidate": 0.7, "reward_accuracy_serving": 0.5}
    assert judge(serving, good, pairs).passed
    for bad, p in [
        ({"ce_per_syllable": 4.2}, pairs),
        ({"constrained_total": {"5chu": 0.9, "lucbat": 0.99}}, pairs),
        ({"constrained_copy_rate": 0.06}, pairs),
        ({"unconstrained_total": 0.42}, pairs),
        ({}, {**pairs, "reward_accuracy_candidate": 0.5}),
        ({}, {"pairs": 0}),
    ]:
        assert not judge(serving, {**good, **bad}, p).passed


def test_versions_count_up_and_never_reuse_a_name(tmp_path):
    assert next_version("tho-gpt2-cpu", set(), tmp_path) == "tho-gpt2-cpu-fb1"
    assert next_version("tho-gpt2-cpu-fb1", {"tho-gpt2-cpu-fb2"}, tmp_path) == "tho-gpt2-cpu-fb3"
