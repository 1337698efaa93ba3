"""How the export's weights reach TRL: repeated examples and KTO class weights."""

from training.feedback.export import IMPLICIT_WEIGHT
from training.feedback.retrain import copies, kto_class_weights, weighted


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
