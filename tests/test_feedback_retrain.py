"""How the export's weights reach TRL: repeated examples and KTO class weights."""

from training.feedback.export import IMPLICIT_WEIGHT
from training.feedback.retrain import ReplayBatches, copies, kto_class_weights, weighted


def test_a_rating_counts_three_times_a_tholai():
    assert copies(IMPLICIT_WEIGHT) == 1 and copies(1.0) == 3 and copies(2.0) == 6
    rows = [
        {"prompt": "p", "completion": "a", "label": True, "weight": 1.0, "form": "5chu"},
        {"prompt": "p", "completion": "b", "label": False, "weight": IMPLICIT_WEIGHT, "form": "5chu"},
    ]
    out = weighted(rows, ("prompt", "completion", "label"), seed=0)
    assert sorted(r["completion"] for r in out) == ["a", "a", "a", "b"]
    assert all(set(r) == {"prompt", "completion", "label"} for r in out)


def test_the_rarer_class_is_up_weighted():
    rows = [{"label": True}] * 10 + [{"label": False}] * 40
    assert kto_class_weights(rows) == {"desirable_weight": 4.0, "undesirable_weight": 1.0}
    assert kto_class_weights([{"label": True}] * 3) == {"desirable_weight": 1.0, "undesirable_weight": 1.0}


def test_replay_poems_reach_the_model_in_its_own_spelling(tiny_model_dir):
    """Read raw, a syllable tokenizer turns each line's last word ("rơi" before the line break) into
    the unknown token; a candidate trained on that learnt to write <|unk|> (the gate's free-decoding
    total fell by 0.1). Every replay token must be a real one."""
    from transformers import AutoTokenizer

    from engine.forms import label_form
    from engine.prompt import format_poem
    from tests.tiny_model import sample_poems

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir), local_files_only=True)
    texts = [format_poem(label_form(lines) or "tudo", lines) for lines in sample_poems()[:2]]  # words it knows
    raw = tokenizer(texts, add_special_tokens=False)["input_ids"]
    assert any(tokenizer.unk_token_id in ids for ids in raw)  # the trap this test guards against
    replay = ReplayBatches(texts, tokenizer, batch=2, max_length=256, seed=0)
    assert len(replay.rows) == 2
    assert all(tokenizer.unk_token_id not in row for row in replay.rows)
    ids, mask = replay.next("cpu")
    assert ids.shape[0] == 2 and int(mask.sum()) == sum(len(r) for r in replay.rows)
