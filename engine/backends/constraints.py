"""The form constraint of one candidate poem, the one interface every backend uses.

A `Constraint` is the form automaton over syllables plus the vocabulary's
precomputed masks (no compile step). It says which token ids are allowed next
(`allowed`, a boolean tensor over the model's vocabulary), takes the chosen
token (`accept`), knows when the poem is complete (`done`) and copies itself
for beam search (`fork`). The transformers backend applies it as a logits mask
per row; the vLLM backends use it for beam search (and the same automaton runs
inside vLLM as a logits processor: engine/backends/vllm_form.py).
"""

from __future__ import annotations

import torch

from engine.automaton import FormAutomaton
from engine.backends.base import GenerationJob
from engine.vocab_masks import SyllableVocab


class Constraint:
    def __init__(self, automaton: FormAutomaton, vocab: SyllableVocab):
        self.automaton = automaton
        self.vocab = vocab

    def allowed(self) -> torch.Tensor:
        return self.vocab.mask(self.automaton.next())

    def accept(self, token: int) -> bool:
        return self.automaton.advance(*self.vocab.describe(token))

    @property
    def done(self) -> bool:
        return self.automaton.done

    def fork(self) -> Constraint:
        return Constraint(self.automaton.fork(), self.vocab)


class Constraints:
    """Makes the constraint of a job, for one loaded syllable-level model."""

    def __init__(self, tokenizer, vocab_size: int):
        self.vocab_size = vocab_size
        self.syllable_vocab = SyllableVocab({i: t for t, i in tokenizer.get_vocab().items()}, vocab_size)

    def for_job(self, job: GenerationJob) -> Constraint | None:
        """A fresh constraint for one candidate of the job (None: the job decodes freely)."""
        if job.form is None:
            return None
        return Constraint(FormAutomaton(job.form), self.syllable_vocab)
