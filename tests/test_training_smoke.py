"""A training smoke run: raw rows -> data -> tokenizer -> tiny GPT-2 -> model directory the engine serves."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from engine.backends.hf import HFBackend
from engine.engine import PoemEngine
from engine.forms import check
from engine.model_dir import read_model_info
from engine.prosody import syllables
from engine.request import PoemRequest
from engine.settings import SamplingSettings
from tests.tiny_model import sample_poems
from training.__main__ import main
from training.corpus import read_split
from training.dataset import encode, rhyming_chunks, rhyming_stanzas
from training.train import add_arguments

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("training")
    raw = tmp / "raw.jsonl"
    rows = [{"lines": lines, "source": "smoke", "author": f"a{i % 7}"} for i, lines in enumerate(sample_poems(400))]
    raw.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    work, model = tmp / "work", tmp / "models" / "tho-smoke"
    assert main(["--work", str(work), "data", "--input", str(raw)]) == 0
    assert main(["--work", str(work), "tokenizer", "--min-count", "2"]) == 0
    flags = (
        "--config tiny --max-steps 6"
        " --batch-size 4 --grad-accum 2 --warmup 2 --eval-every 3 --eval-batches 2 --save-every 3"
    )
    assert train(work, model, flags) == 0
    return work, model


def train(work: Path, out: Path, flags: str) -> int:
    """`python -m training --work WORK train --out OUT FLAGS...`, in process, small and on one thread."""
    return main(["--work", str(work), "train", "--out", str(out), "--block", "64", "--threads", "1", *flags.split()])


def train_plain_and_with(work: Path, model: Path, out: Path, flag: str) -> tuple[str, dict, dict]:
    """One step from `model` without and with `flag` (into `out`): the flags shared, both runs' metadata."""
    flags = f"--init-from {model} --max-steps 1 --batch-size 2 --grad-accum 1 --warmup 1 --eval-batches 1"
    plain = out.with_name(out.name + "-plain")
    assert train(work, plain, flags) == 0
    assert train(work, out, f"{flags} {flag}") == 0
    return flags, read_model_info(plain).metadata, read_model_info(out).metadata


def test_data_step_writes_disjoint_splits(trained):
    work, _ = trained
    keys = {}
    for name in ("train", "validation", "test"):
        keys[name] = {json.dumps(json.loads(ln)["lines"]) for ln in (work / "data" / f"{name}.jsonl").open()}
    assert keys["train"]
    assert not (keys["train"] & keys["validation"] or keys["train"] & keys["test"] or keys["validation"] & keys["test"])
    summary = json.loads((work / "data" / "summary.json").read_text())
    assert summary["splits"]["train"]["all"] == len(keys["train"])


def test_model_directory_is_complete(trained):
    work, model = trained
    shards = list(model.glob("*.safetensors"))
    assert shards and all(p.stat().st_size <= 15_000_000 for p in shards)
    for name in ("config.json", "tokenizer.json", "tho_model.json", "loss.png"):
        assert (model / name).is_file(), name
    meta = read_model_info(model).metadata
    assert meta["steps"] == 6 and meta["finished"] and meta["data_hash"]
    assert (work / "runs" / model.name / "ckpt.pt").is_file()


def test_resume_continues_from_the_checkpoint(trained):
    work, model = trained
    flags = (
        "--config tiny --resume --max-steps 8"
        " --batch-size 4 --grad-accum 1 --warmup 2 --eval-every 100 --eval-batches 1"
    )
    assert train(work, model, flags) == 0
    assert read_model_info(model).metadata["steps"] == 8


async def test_engine_serves_the_trained_model(trained):
    _, model = trained
    backend = HFBackend(model, threads=1)
    engine = await PoemEngine.create(backend)
    try:
        poem = await engine.write(
            PoemRequest("Mùa thu lá vàng rơi", form="5chu", settings=SamplingSettings(seed=1, candidates=1))
        )
    finally:
        await engine.close()
    assert len(poem.lines) == 4 and poem.lines[0] == "Mùa thu lá vàng rơi"
    assert all(len(syllables(ln)) == 5 for ln in poem.lines)
    assert check(list(poem.lines), "5chu").length == 1.0


def _foreign_checkpoint(path: Path) -> Path:
    """A GPT-2 checkpoint with a byte-level BPE of its own (not one token per syllable)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        ["\n".join(p) for p in sample_poems(100)],
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_head=2, n_embd=32, n_positions=256))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_init_from_goes_on_from_a_model_directory(trained, tmp_path):
    work, model = trained
    out = tmp_path / "tuned"
    flags = f"--init-from {model} --max-steps 2 --batch-size 2 --grad-accum 1 --warmup 1 --eval-batches 1"
    assert train(work, out, flags) == 0
    meta = read_model_info(out).metadata
    assert meta["config"].startswith("init-from:") and meta["steps"] == 2
    assert (out / "tokenizer.json").read_bytes() == (model / "tokenizer.json").read_bytes()


def test_init_from_keeps_the_source_models_sampling_defaults(trained, tmp_path):
    """The sweep's choice (generation_config.json) goes on with the weights: a user of the new model gets
    the temperature the old one was tuned to, not GPT-2's."""
    import shutil

    work, model = trained
    source = tmp_path / "swept"
    shutil.copytree(model, source)
    chosen = {"temperature": 0.85, "top_p": 0.95, "top_k": 0, "repetition_penalty": 1.05, "do_sample": True}
    (source / "generation_config.json").write_text(json.dumps(chosen), encoding="utf-8")
    out = tmp_path / "tuned"
    assert train(work, out, f"--init-from {source} --max-steps 2 --batch-size 2 --grad-accum 1 --warmup 1") == 0
    kept = json.loads((out / "generation_config.json").read_text())
    assert {k: kept[k] for k in chosen} == chosen


def test_dropout_is_set_for_the_run_and_written_down(trained, tmp_path):
    """`--dropout 0` for a run that goes on from a model: the saved config, the recorded
    hyperparameters and the card all say 0, where the model before had GPT-2's 0.1."""
    work, model = trained
    assert json.loads((model / "config.json").read_text())["resid_pdrop"] == 0.1
    out = tmp_path / "no-dropout"
    flags = f"--init-from {model} --max-steps 2 --batch-size 2 --grad-accum 1 --warmup 1 --eval-batches 1 --dropout 0"
    assert train(work, out, flags) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["embd_pdrop"], config["attn_pdrop"], config["resid_pdrop"]) == (0.0, 0.0, 0.0)
    assert read_model_info(out).metadata["hyperparameters"]["dropout"] == 0.0
    assert main(["card", "--model", str(out)]) == 0
    assert "dropout 0." in (out / "README.md").read_text()


def test_rhyming_stanzas_add_copies_of_the_stanzas_that_rhyme(trained, tmp_path):
    """`--rhyming-stanzas 3`: the run's examples are the poems' plus three copies of every stanza that keeps
    its form's rhymes, and the model says so."""
    work, model = trained
    poems = read_split(work / "data" / "train.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(str(model), local_files_only=True)
    rhyming = encode(list(rhyming_stanzas(poems)), tokenizer)
    assert rhyming  # the smoke corpus has some
    flags, plain, more = train_plain_and_with(work, model, tmp_path / "rhyming", "--rhyming-stanzas 3")
    assert more["train_tokens"] - plain["train_tokens"] == 3 * sum(map(len, rhyming))
    assert (plain["hyperparameters"]["rhyming_stanzas"], more["hyperparameters"]["rhyming_stanzas"]) == (0, 3)
    with pytest.raises(SystemExit, match="--rhyming-stanzas must be 0 or more"):
        train(work, tmp_path / "bad", flags + " --rhyming-stanzas -1")
    # --resume rebuilds the same examples, or refuses: the checkpoint's row points into them
    with pytest.raises(SystemExit, match="trained with --rhyming-stanzas 3, not 0"):
        train(work, tmp_path / "rhyming", flags + " --resume --max-steps 2")
    assert train(work, tmp_path / "rhyming", flags + " --resume --max-steps 2 --rhyming-stanzas 3") == 0
    assert read_model_info(tmp_path / "rhyming").metadata["steps"] == 2
    assert main(["card", "--model", str(tmp_path / "rhyming")]) == 0
    assert "`--rhyming-stanzas 3`" in (tmp_path / "rhyming" / "README.md").read_text()


def test_rhyming_chunks_add_copies_of_the_forms_chunks_that_rhyme(trained, tmp_path):
    """`--rhyming-chunks lucbat=2`: two more copies of every lục bát chunk that rhymes in half its pairs; the
    model card names the flag, --resume keeps it."""
    work, model = trained
    poems = read_split(work / "data" / "train.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(str(model), local_files_only=True)
    rhyming = encode(list(rhyming_chunks(poems, "lucbat")), tokenizer)
    assert rhyming  # the smoke corpus has some
    flags, plain, more = train_plain_and_with(work, model, tmp_path / "chunks", "--rhyming-chunks lucbat=2")
    assert more["train_tokens"] - plain["train_tokens"] == 2 * sum(map(len, rhyming))
    assert (plain["hyperparameters"]["rhyming_chunks"], more["hyperparameters"]["rhyming_chunks"]) == (
        {},
        {"lucbat": 2},
    )
    with pytest.raises(SystemExit, match="trained with --rhyming-chunks lucbat=2, not none"):
        train(work, tmp_path / "chunks", flags + " --resume --max-steps 2")
    assert train(work, tmp_path / "chunks", flags + " --resume --max-steps 2 --rhyming-chunks lucbat=2") == 0
    assert main(["card", "--model", str(tmp_path / "chunks")]) == 0
    assert "`--rhyming-chunks lucbat=2`" in (tmp_path / "chunks" / "README.md").read_text()


def test_rhyming_chunks_flag_is_one_count_per_rhyming_form(capsys):
    """Repeated flags: the last count for a form wins, zero counts and the order given do not change the
    value (it is what --resume compares); a bad value is refused with the forms it may name."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    def chunks_of(*flags: str) -> dict:
        return parser.parse_args(["--out", "x", *flags]).rhyming_chunks

    assert chunks_of() == {}
    assert chunks_of("--rhyming-chunks", "5chu=4") == {"5chu": 4}
    both = chunks_of("--rhyming-chunks", "lucbat=1", "--rhyming-chunks", "5chu=2", "--rhyming-chunks", "8chu=0")
    assert list(both.items()) == [("5chu", 2), ("lucbat", 1)]
    assert chunks_of("--rhyming-chunks", "5chu=2", "--rhyming-chunks", "5chu=0") == {}
    for bad in ("tudo=2", "5chu=-1", "5chu", "sonnet=1", "5chu=²"):
        with pytest.raises(SystemExit):
            chunks_of("--rhyming-chunks", bad)
        assert "expected FORM=K with FORM one of 5chu, 7chu, 8chu, lucbat and K >= 0" in capsys.readouterr().err


def test_dropout_out_of_range_is_refused_before_training(trained, tmp_path):
    work, model = trained
    with pytest.raises(SystemExit, match=r"--dropout must be in \[0, 1\)"):
        train(work, tmp_path / "bad", f"--init-from {model} --max-steps 2 --dropout 1.5")
    assert not (tmp_path / "bad").exists()


def test_sound_embeddings_are_trained_and_served_as_a_plain_gpt2(trained, tmp_path):
    """`--sound-embeddings`: the rhyme-key and tone vectors are trained (and kept across --resume), and the
    saved model directory, a plain GPT-2 the engine loads, gives the trained model's own next-syllable scores."""
    import torch
    from transformers import GPT2LMHeadModel

    from training.model import load_for_finetuning
    from training.sound_embeddings import add_sound_embeddings

    work, model = trained
    out = tmp_path / "sound"
    flags = (
        f"--init-from {model} --max-steps 3 --batch-size 2 --grad-accum 1 --warmup 1 --eval-batches 1 --save-every 3"
    )
    assert train(work, out, flags + " --sound-embeddings") == 0
    ckpt = torch.load(work / "runs" / out.name / "ckpt.pt", weights_only=False)
    assert ckpt["model"]["transformer.wte.parametrizations.weight.0.key"].abs().max() > 0
    assert read_model_info(out).metadata["hyperparameters"]["sound_embeddings"] is True
    assert main(["card", "--model", str(out)]) == 0
    assert "--sound-embeddings" in (out / "README.md").read_text()

    trained_model, tokenizer = load_for_finetuning(model)
    add_sound_embeddings(trained_model, tokenizer)
    trained_model.load_state_dict(ckpt["model"])
    served = GPT2LMHeadModel.from_pretrained(str(out), local_files_only=True, dtype=torch.float32)
    assert served.lm_head.weight is served.transformer.wte.weight
    ids = tokenizer("<|5chu|>gió thổi qua sông\n", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want, got = trained_model.eval()(input_ids=ids).logits, served.eval()(input_ids=ids).logits
    assert torch.allclose(want, got, atol=2e-2)  # fp16 shards
    assert want.argmax(-1).tolist() == got.argmax(-1).tolist()
    # line breaks, punctuation and special tokens get nothing added: their rows are the raw trained ones
    not_syllables = ckpt["model"]["transformer.wte.parametrizations.weight.0.key_of"] == 0
    raw = ckpt["model"]["transformer.wte.parametrizations.weight.original"]
    assert not_syllables.any() and not not_syllables.all()
    assert torch.allclose(served.transformer.wte.weight[not_syllables], raw[not_syllables].half().float())

    with pytest.raises(SystemExit, match="trained with --sound-embeddings"):
        train(work, out, flags.replace("--max-steps 3", "--max-steps 5") + " --resume")

    assert train(work, out, flags.replace("--max-steps 3", "--max-steps 5") + " --sound-embeddings --resume") == 0
    assert read_model_info(out).metadata["steps"] == 5


def test_init_from_refuses_a_checkpoint_it_could_not_serve(trained, tmp_path):
    """A GPT-2 over a byte-level BPE could be trained but never served: refused before training."""
    work, _ = trained
    base = _foreign_checkpoint(tmp_path / "foreign")
    with pytest.raises(SystemExit, match="not a syllable-level model"):
        train(work, tmp_path / "tuned", f"--init-from {base} --max-steps 2")
    assert not (tmp_path / "tuned").exists()


def test_gpu_recipe_runs_on_cpu_with_a_tiny_configuration(trained, tmp_path):
    """`make model-gpu` (the recipe for a CUDA box) end to end, here on the CPU with the tiny configuration."""
    import subprocess
    import sys

    work, _ = trained
    out = tmp_path / "tho-gpt2-gpu"
    args = (
        "--block 64 --batch-size 4 --grad-accum 1 --warmup 1 --eval-every 2 --eval-batches 1 --save-every 2 "
        "--max-steps 3 --threads 1"
    )
    subprocess.run(
        [
            "make",
            "-s",
            "model-gpu",
            f"GPU_PYTHON={sys.executable}",
            "GPU_CONFIG=tiny",
            f"GPU_WORK={work}",
            f"GPU_OUT={out}",
            "GPU_MINUTES=1",
            f"GPU_ARGS={args}",
        ],
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
    )
    shards = list(out.glob("*.safetensors"))
    assert shards and sum(p.stat().st_size for p in shards) <= 60_000_000
    assert read_model_info(out).syllable_level and read_model_info(out).metadata["steps"] == 3


def test_bench_prints_tokens_per_second_for_each_case(trained, capsys):
    """`python -m training bench`: one line per threads x shape x (eager, compiled) case, with its tok/s."""
    work, _ = trained
    assert main(["--work", str(work), "bench", "--config", "tiny", "--threads", "1", "--shapes", "2x16", "4x8"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "tok/s" in line]
    assert len(lines) == 2
    assert "batch   2 x block  16" in lines[0] and "batch   4 x block   8" in lines[1]
    assert all(float(line.split("tok/s")[0].split()[-1]) > 0 for line in lines)


def test_evaluate_writes_the_report_the_model_card_reads(trained, tmp_path):
    """`python -m training evaluate` end to end on the tiny model: the likelihood measures, the generated
    poems' scores per form (constrained, free and the real lines), latency, in eval.json and eval.md."""
    import shutil

    from engine.prompt import FORM_TAGS

    work, model = trained
    copy = tmp_path / model.name
    shutil.copytree(model, copy)
    # the smoke corpus's test split is one free-verse poem: hold out its 5 chữ and lục bát poems instead
    rows = [json.loads(line) for line in (work / "data" / "train.jsonl").open(encoding="utf-8")]
    held = [r for r in rows if r["form"] in ("5chu", "lucbat")]
    data = tmp_path / "data"
    data.mkdir()
    for name, part in (("train", [r for r in rows if r not in held]), ("test", held)):
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part))
    shutil.copy(work / "data" / "validation.jsonl", data / "validation.jsonl")
    args = ["--model", str(copy), "--data", str(data), "--n-openings", "2", "--forms", "5chu", "lucbat"]
    assert main(["--work", str(work), "evaluate", *args, "--latency-requests", "2", "--threads", "1"]) == 0
    report = json.loads((copy / "eval.json").read_text(encoding="utf-8"))
    assert report["test_cross_entropy"]["nats_per_syllable"] > 0 and report["test_cross_entropy"]["poems"] > 0
    assert report["validation"]["loss"] > 0
    assert report["end_token_after_line"] and set(report["end_token_after_line"]) <= set(FORM_TAGS)
    assert all(0 <= p <= 1 for ps in report["end_token_after_line"].values() for p in ps)
    assert report["openings_per_form"] == {"5chu": 2, "lucbat": 1}
    for decoding in ("constrained", "unconstrained", "real"):
        assert set(report["generation"][decoding]) == {"5chu", "lucbat"}, decoding
    # the form automaton guarantees the lines' lengths even from a random tiny model
    assert all(r["length"] == 1.0 for r in report["generation"]["constrained"].values())
    assert 0 < report["latency_4_lines"]["p50_s"] <= report["latency_4_lines"]["p90_s"]
    assert "cross-entropy" in (copy / "eval.md").read_text(encoding="utf-8")
