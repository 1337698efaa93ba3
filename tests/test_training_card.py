"""The model card (training/card.py): README.md written from the files in a model directory."""

from __future__ import annotations

import json
import shutil

import pytest

from engine.model_dir import write_metadata
from training.card import write_card
from training.corpus import rows_read
from training.dataset import PACKING

SUMMARY = {
    "splits": {"train": {"lucbat": 5, "5chu": 2, "all": 7}, "validation": {"lucbat": 2, "all": 2}},
    "dropped": {"prose": 5, "too_short": 3, "duplicate": 1},
}


@pytest.fixture
def model_dir(tiny_model_dir, tmp_path):
    """The tiny model with the metadata a training run writes (a CPU run on the summary above)."""
    model = shutil.copytree(tiny_model_dir, tmp_path / "tiny")
    write_metadata(
        model,
        "tiny-card",
        config="tiny",
        device="cpu (2 torch threads)",
        data_summary=SUMMARY,
        train_poems=7,
        hyperparameters={"lr": 0.001, "warmup": 10, "block": 64},
        steps=6,
        minutes=0.5,
        validation_loss=6.5,
    )
    return model


def test_the_corpus_rows_are_read_from_the_data_summary(model_dir):
    assert rows_read(SUMMARY) == 9 + 9  # kept in a split + dropped for a reason
    card = write_card(model_dir).read_text(encoding="utf-8")
    assert "(18 rows from public poem collections" in card
    assert "| train | 7 | 2 | 5 |" in card and "Dropped: prose 5, too_short 3, duplicate 1." in card
    other = model_dir / "summary.json"
    other.write_text(json.dumps({**SUMMARY, "dropped": {"prose": 1000}}), encoding="utf-8")
    assert "(1,009 rows from" in write_card(model_dir, other).read_text(encoding="utf-8")


def test_a_card_without_evaluation_or_sweep_has_neither_section(model_dir):
    card = write_card(model_dir).read_text(encoding="utf-8")
    prose = " ".join(card.split())  # paragraphs are wrapped where the template wraps them
    assert card.startswith("# tiny-card — Thơ bot default model\n")
    assert "**Hardware note.** No GPU was available" in prose and "(6 optimizer steps," in prose
    assert "learning rate 0.001 with 10 warm-up steps" in prose and "Final validation loss 6.500." in prose
    assert "## Evaluation" not in card and "## Default sampling settings" not in card and "## Samples" not in card
    assert card.endswith("Most training poems are modern amateur verse.\n")


def test_the_card_says_whether_the_last_run_read_each_poem_from_position_0(model_dir):
    def prose() -> str:
        return " ".join(write_card(model_dir).read_text(encoding="utf-8").split())

    assert "from its own form tag at position 0" not in prose()  # a run from before `pack` kept positions
    meta = json.loads((model_dir / "tho_model.json").read_text(encoding="utf-8"))
    write_metadata(model_dir, **{**meta, "packing": PACKING})
    assert "The last run read every packed poem from its own form tag at position 0" in prose()


def test_evaluation_sweep_and_samples_each_get_their_section(model_dir):
    (model_dir / "eval.md").write_text("| form | total |\n| --- | --: |\n| 5chu | 0.950 |\n", encoding="utf-8")
    poem = ["Mùa thu lá vàng rơi", "Gió đưa hương về xa", "Trăng soi bên thềm cũ", "Người đi chẳng thấy ra"]
    (model_dir / "eval.json").write_text(json.dumps({"samples": {"constrained": {"5chu": [poem]}}}), encoding="utf-8")
    settings = {"temperature": 0.9, "top_k": 40, "top_p": 0.95, "repetition_penalty": 1.1, "no_repeat_ngram_size": 0}
    sweep = {
        "openings": 12,
        "chosen": {**settings, "candidates": 2},
        "real": {"distinct_2": 0.888, "known_bigrams": 0.875},
        "grid": [
            {
                "settings": settings,
                "total": 0.9,
                "distinct_2": 0.8,
                "known_bigrams": 0.91,
                "discriminator": 0.7,
                "score": 0.7,
            }
        ],
        "candidates": [{"candidates": 2, "total": 0.95, "p50_s": 0.3}],
    }
    (model_dir / "sweep.json").write_text(json.dumps(sweep), encoding="utf-8")
    card = write_card(model_dir).read_text(encoding="utf-8")
    assert "## Evaluation\n\nTargets: checker total ≥ 0.9" in card and "| 5chu | 0.950 |\n\n*Constrained*" in card
    assert '`{"temperature": 0.9, "top_k": 40' in card
    assert "(real distinct-2\n0.888, known bigrams 87.5%)" in card
    assert "| 0.9 | 40 | 0.95 | 1.1 | 0 | 0.900 | 0.800 | 91.0% | 0.700 | 0.700 |\n\n| candidates |" in card
    assert "| 2 | 0.950 | 0.3 |\n" in card
    assert "**5 chữ** — opening: *Mùa thu lá vàng rơi*\n\n> Mùa thu lá vàng rơi  \n> Gió đưa hương" in card


def test_a_sweep_from_before_the_realism_score_still_gets_its_section(model_dir):
    settings = {"temperature": 0.9, "top_k": 40, "top_p": 0.95, "repetition_penalty": 1.1, "no_repeat_ngram_size": 0}
    sweep = {
        "openings": 20,
        "chosen": settings,
        "grid": [{"settings": settings, "total": 0.9, "distinct_2": 0.8, "perplexity": 40.0, "score": 0.7}],
        "candidates": [],
    }
    (model_dir / "sweep.json").write_text(json.dumps(sweep), encoding="utf-8")
    card = write_card(model_dir).read_text(encoding="utf-8")
    assert "(real distinct-2\n–, known bigrams –)" in card
    assert "| 0.9 | 40 | 0.95 | 1.1 | 0 | 0.900 | 0.800 | – | – | 0.700 |\n" in card
