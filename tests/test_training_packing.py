"""Packed training rows read each poem as the engine's prompt does: from its own form tag, at position 0."""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from training.dataset import loss, pack


def test_positions_restart_with_each_example_and_go_on_across_a_row_cut():
    examples = [[10, 11, 12], [20, 21, 22, 23, 24], [30, 31]]
    rows = pack(examples, block=4, seed=0, max_position=31)
    place = {t: i for ex in examples for i, t in enumerate(ex)}  # token -> its position in its example
    assert len(rows) == 2  # 10 tokens -> (10 - 1) // 4 rows of 5 (one token shared at each cut)
    for ids, positions in zip(rows.ids.tolist(), rows.positions.tolist(), strict=True):
        assert positions == [place[t] for t in ids]
    # whatever the shuffle, no example starts at the cut (stream index 4): the second row opens mid-poem
    # and goes on with that poem's positions, not from 0
    assert rows.positions[1, 0] > 0


def test_an_example_longer_than_a_row_keeps_counting_and_is_cut_at_the_models_context():
    """Positions never repeat inside an example: transformers starts a new sequence (a token that sees
    nothing before it) wherever a position does not follow the one before, so a long poem read across
    rows keeps counting, and one longer than the model's context is cut where the positions end."""
    long, short = list(range(100, 130)), [1, 2, 3]  # 30 tokens; the model embeds positions 0..19
    for seed in range(4):
        rows = pack([long, short], block=6, seed=seed, max_position=19)
        assert len(rows) == 3  # 20 + 3 tokens -> (23 - 1) // 6 rows: the long one cut to 20 tokens
        assert not set(rows.ids.flatten().tolist()) & set(long[20:])
        for positions in rows.positions.tolist():
            for before, after in zip(positions[:-1], positions[1:], strict=True):
                assert after == before + 1 or after == 0, positions


def _tiny_gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2)
    return GPT2LMHeadModel(config).eval()


@torch.no_grad()
def test_a_packed_poem_gets_the_loss_it_gets_alone():
    """The loss of a row of packed examples is the loss of each example read alone, from position 0: no
    example attends to the one before it, and none sits at the row offset it happened to land on."""
    model = _tiny_gpt2()
    first, second = list(range(3, 12)), list(range(20, 27))
    rows = pack([first, second], block=len(first) + len(second) - 1, seed=0, max_position=31)
    (row,) = rows.ids.tolist()
    a, b = (first, second) if row[0] == first[0] else (second, first)
    assert row == a + b

    def alone(example: list[int]) -> torch.Tensor:  # summed next-token losses, as the engine would see it
        x = torch.tensor([example])
        logits = model(input_ids=x[:, :-1]).logits
        return torch.nn.functional.cross_entropy(logits[0], x[0, 1:], reduction="sum")

    # the packed row also predicts b's first token from a's last; that one term belongs to neither
    x = torch.tensor([row])
    joint = model(input_ids=x[:, :-1], position_ids=rows.positions[:, :-1], use_cache=False).logits[0]
    seam = torch.nn.functional.cross_entropy(joint[len(a) - 1 : len(a)], x[0, len(a) : len(a) + 1], reduction="sum")
    packed = loss(model, rows, reduction="sum")
    assert torch.allclose(packed - seam, alone(a) + alone(b), atol=1e-4)

    # numbered from the row start, as rows were before, the second example reads differently
    plain = model(input_ids=x[:, :-1]).logits[0]
    assert not torch.allclose(plain[len(a) :], joint[len(a) :], atol=1e-3)
