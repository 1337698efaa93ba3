"""The form constraint of one candidate poem, behind one small interface every backend uses.

Two implementations, picked by the model's tokenizer:
- `AutomatonConstraint` (syllable-level models): the form automaton over
  syllables and the vocabulary's precomputed masks; no compile step.
- `GrammarConstraint` (byte-level BPE models): the character-level regex of
  engine/constraint.py compiled by xgrammar; compiled grammars are kept in
  one bounded cache per model (xgrammar's own cache is bounded too).

A constraint says which token ids are allowed next (`allowed`, a boolean
tensor over the model's vocabulary), takes the chosen token (`accept`),
knows when the poem is complete (`done`) and copies itself for beam search
(`fork`). The transformers backend applies it as a logits mask per row; the
vLLM backends use it for beam search (and, for syllable models, the same
automaton runs inside vLLM as a logits processor: engine/backends/vllm_form.py).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

import torch

from engine.automaton import FormAutomaton
from engine.backends.base import GenerationJob
from engine.vocab_masks import SyllableVocab

GRAMMAR_CACHE_SIZE = 256  # compiled regex grammars kept per model (rhyme segments differ by partner)
GRAMMAR_CACHE_BYTES = 64 << 20  # and xgrammar's own compiler cache


class Constraint(Protocol):
    def allowed(self) -> torch.Tensor: ...

    def accept(self, token: int) -> bool: ...

    @property
    def done(self) -> bool: ...

    def fork(self) -> Constraint: ...


class AutomatonConstraint:
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

    def fork(self) -> AutomatonConstraint:
        return AutomatonConstraint(self.automaton.fork(), self.vocab)


class GrammarConstraint:
    def __init__(self, matcher, vocab_size: int):
        self.matcher = matcher
        self.vocab_size = vocab_size

    def allowed(self) -> torch.Tensor:
        import xgrammar as xgr

        bitmask = xgr.allocate_token_bitmask(1, self.vocab_size)
        self.matcher.fill_next_token_bitmask(bitmask)
        logits = torch.zeros((1, self.vocab_size))
        xgr.apply_token_bitmask_inplace(logits, bitmask)
        return logits[0] == 0

    def accept(self, token: int) -> bool:
        return self.matcher.accept_token(int(token))

    @property
    def done(self) -> bool:
        return self.matcher.is_terminated()

    def fork(self) -> GrammarConstraint:
        return GrammarConstraint(self.matcher.fork(), self.vocab_size)


class Constraints:
    """Makes the constraint of a job, for one loaded model."""

    def __init__(self, tokenizer, vocab_size: int, eos_id: int, syllable_level: bool):
        self.vocab_size = vocab_size
        self.syllable_vocab: SyllableVocab | None = None
        self._compiler = None
        self._grammars: OrderedDict[str, object] = OrderedDict()
        if syllable_level:
            self.syllable_vocab = SyllableVocab({i: t for t, i in tokenizer.get_vocab().items()}, vocab_size)
        else:
            import xgrammar as xgr

            info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=[eos_id])
            self._compiler = xgr.GrammarCompiler(info, max_threads=1, cache_limit_bytes=GRAMMAR_CACHE_BYTES)

    def for_job(self, job: GenerationJob) -> Constraint | None:
        """A fresh constraint for one candidate of the job (None: the job decodes freely)."""
        if job.form is not None:
            if self.syllable_vocab is None:
                raise ValueError("a form automaton needs a syllable-level model")
            return AutomatonConstraint(FormAutomaton(job.form), self.syllable_vocab)
        if job.regex is None:
            return None
        import xgrammar as xgr

        return GrammarConstraint(xgr.GrammarMatcher(self.grammar(job.regex)), self.vocab_size)

    def grammar(self, regex: str):
        """The compiled grammar of a regex, from a bounded cache (compiling takes milliseconds to seconds)."""
        compiled = self._grammars.get(regex)
        if compiled is not None:
            self._grammars.move_to_end(regex)
            return compiled
        compiled = self._compiler.compile_regex(regex)
        self._grammars[regex] = compiled
        if len(self._grammars) > GRAMMAR_CACHE_SIZE:
            self._grammars.popitem(last=False)
        return compiled
