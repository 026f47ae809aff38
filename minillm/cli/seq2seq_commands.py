"""``minillm train --model seq2seq`` and ``minillm translate``: the encoder-decoder on pairs of texts.

    minillm train --model seq2seq                  # code -> name on the standard library, <= 9 minutes
    minillm translate --ckpt runs/seq2seq-... --beam 4 "return self._name"

The pairs come from --task code2name (training/code2name.py), or from --data FILE with one pair per
line, "source<TAB>target", split 90/5/5 by a hash of the source. Both sides are read as words of
one shared vocabulary, code cut into identifier subtokens (tokenizers/word.py), with one shared
embedding table. After training, the test split is scored for the baseline, greedy decoding and
beam search (training/metrics.py).
"""
import json
import shlex
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from .. import backend
from ..files import written_whole
from ..models import Seq2SeqConfig
from ..tokenizers import WordTokenizer, tokenizer_from_dict
from ..training import code2name, data, distributed
from ..training.checkpoint import checkpoint_path, load_checkpoint
from ..training.metrics import corpus_bleu, exact_match, subtoken_scores
from ..training.optim import AdamW, param_groups
from ..training.seq2seq_task import BOS, EOS, PAD, Seq2SeqTask, translate
from ..training.trainer import TrainConfig, Trainer

MAX_TARGET_LEN = 16          # target tokens, </s> included (names have 1-6 subtokens)
EVAL_BEAM = 4


def normalize(text):
    """A source as the corpus holds it: whitespace runs squeezed to one space (code2name.py)."""
    return " ".join(text.split())


def read_pairs(path):
    """{"train", "val", "test"} of (source, target) from a file of "source<TAB>target" lines,
    split by the SHA-256 of the source (a repeated source always lands in the same split)."""
    corpus = {name: [] for name in code2name.SPLITS}
    for number, line in enumerate(data.read_text_file(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ValueError(f"data file {path}, line {number}: expected 'source<TAB>target', got {line[:60]!r}")
        corpus[code2name.split_of(normalize(parts[0]))].append((normalize(parts[0]), normalize(parts[1])))
    for split, pairs in corpus.items():
        if not pairs:
            raise ValueError(f"data file {path}: no pair fell in the {split} split; it needs more lines "
                             f"(about 5 % go to each of val and test)")
    return corpus


def make_tokenizer(train_pairs, max_words):
    """One word vocabulary for sources and targets: the words (code cut into identifier subtokens)
    seen at least twice in the training pairs, at most max_words. Shared, so a name's words are
    the same ids as the identifiers of its body, and the model can copy them."""
    texts = [s for s, _ in train_pairs] + [t for _, t in train_pairs]
    return WordTokenizer.train(texts, min_count=2, max_size=max_words, special_tokens=(PAD, BOS, EOS), split="code")


def scores(predictions, references):
    """{"exact_match", "precision", "recall", "f1", "bleu"} of predictions against references."""
    p, r, f1 = subtoken_scores(predictions, references)
    return {"exact_match": exact_match(predictions, references), "precision": p, "recall": r, "f1": f1,
            "bleu": corpus_bleu(predictions, references)}


def evaluate(model, pairs, src_tok, tgt_tok, baseline, beam=EVAL_BEAM):
    """Scores on ``pairs`` of the baseline (always ``baseline``), greedy decoding and beam search."""
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    greedy = translate(model, sources, src_tok, tgt_tok, 1, max_len=MAX_TARGET_LEN)
    best = [hyps[0][0] for hyps in translate(model, sources, src_tok, tgt_tok, beam, max_len=MAX_TARGET_LEN)]
    return {"baseline": scores([baseline] * len(references), references), "greedy": scores(greedy, references),
            f"beam {beam}": scores(best, references)}


def score_table(results, split, n):
    """The lines of the table that ``train`` prints."""
    lines = [f"{split} split, {n} pairs   exact match   precision   recall   F1 (words)   BLEU"]
    for name, s in results.items():
        lines.append(f"  {name:<12} {s['exact_match']:>16.3f} {s['precision']:>11.3f} {s['recall']:>8.3f} "
                     f"{s['f1']:>6.3f} {s['bleu']:>12.2f}")
    return lines


def report(model, test, src_tok, tgt_tok, baseline, out, step):
    """Score the test pairs, print the table, write out/scores.json, print the next command."""
    results = evaluate(model, test, src_tok, tgt_tok, baseline)
    print("\n" + "\n".join(score_table(results, "test", len(test))))
    print(f"(baseline: always the most frequent training target, {baseline!r})")
    with written_whole(out / "scores.json") as tmp:
        tmp.write_text(json.dumps({"split": "test", "pairs": len(test), "step": step, **results}, indent=1),
                       encoding="utf-8")
    example = min(test, key=lambda pair: len(pair[0]))[0]
    print(f"\nnext: minillm translate --ckpt {shlex.quote(str(out))} --beam {EVAL_BEAM} {shlex.quote(example)}")


def train_seq2seq(args, build_model, check_output_folder):
    """minillm train --model seq2seq: returns the output directory. Under ``mpiexec -n N`` every rank
    trains and rank 0 alone prints, writes and scores the test split."""
    world = distributed.world()
    if args.backend == "cupy":
        backend.use("cupy")
    backend.manual_seed(args.seed)
    out = Path(world.broadcast(args.out or f"runs/seq2seq-{time.strftime('%Y%m%d-%H%M%S')}"))
    say = print if world.is_main else (lambda *a, **k: None)
    if not args.resume:
        check_output_folder(out, "; pass --resume to continue it")
    if args.resume and not checkpoint_path(out).exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path(out)}")
    corpus = read_pairs(args.data) if args.data else code2name.build()
    if args.resume:
        _, src_tok, tgt_tok, _ = load_seq2seq(out, build_model)
    else:
        src_tok = tgt_tok = make_tokenizer(corpus["train"], args.vocab_size)
    cfg = asdict(Seq2SeqConfig(src_tok.vocab_size, tgt_tok.vocab_size, max(args.block_size, MAX_TARGET_LEN),
                               args.n_layer, args.n_layer, args.n_head, args.n_embd, 4 * args.n_embd, args.dropout,
                               share_embeddings=True))
    model = build_model("seq2seq", cfg, step=(args.batch_size, cfg["max_len"]))
    task = Seq2SeqTask(corpus["train"], corpus["val"], src_tok, tgt_tok, cfg["max_len"], MAX_TARGET_LEN,
                       args.batch_size, args.label_smoothing)
    opt = AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.98))   # the paper's betas
    tcfg = TrainConfig(max_steps=args.max_steps, max_seconds=args.max_seconds, lr=args.lr,
                       warmup_steps=args.warmup_steps, schedule="noam", eval_interval=args.eval_interval,
                       eval_batches=args.eval_batches, seed=args.seed, threads=args.threads)
    baseline = Counter(t for _, t in corpus["train"]).most_common(1)[0][0]
    meta = {"kind": "seq2seq", "model_config": cfg, "tokenizer": src_tok.to_dict(),
            "target_tokenizer": tgt_tok.to_dict(), "data": args.data or "code2name", "baseline": baseline}
    trainer = Trainer(model, task, opt, tcfg, out, meta)
    if args.resume:
        say(f"resuming {out} from step {trainer.resume()}", file=sys.stderr)
    say(f"seq2seq: {model.num_parameters():,} parameters, {len(task.data['train']):,} training pairs "
          f"({meta['data']}), one vocabulary of {src_tok.vocab_size} words for both sides", file=sys.stderr)
    val = trainer.run()
    if not world.is_main:
        return out
    print(f"validation loss {val:.4f} (label-smoothed) after {trainer.step} steps, {trainer.elapsed:.0f} s; "
          f"checkpoint and log.csv in {out}")
    report(model, corpus["test"], src_tok, tgt_tok, baseline, out, trainer.step)
    return out


def load_seq2seq(ckpt_dir, build_model):
    """(model, source tokenizer, target tokenizer, meta) from a seq2seq checkpoint, each part checked."""
    meta, state, _ = load_checkpoint(ckpt_dir)
    where = f"checkpoint {checkpoint_path(ckpt_dir)}"
    if meta.get("kind") != "seq2seq":
        raise ValueError(f"{where} holds a {meta.get('kind')!r} model; this command needs 'seq2seq' "
                         "(from `minillm train --model seq2seq`)")
    model = build_model("seq2seq", meta.get("model_config"), where)
    try:
        model.load_state_dict(state)
        tokenizers = [tokenizer_from_dict(meta.get(name)) for name in ("tokenizer", "target_tokenizer")]
        for tok, side in zip(tokenizers, ("src", "tgt")):
            if tok.vocab_size != getattr(model.config, f"{side}_vocab_size"):
                raise ValueError(f"its {side} tokenizer has {tok.vocab_size} tokens but its model "
                                 f"{getattr(model.config, f'{side}_vocab_size')}")
            tok.token_to_id(PAD)
        for token in (BOS, EOS):
            tokenizers[1].token_to_id(token)
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{where}: {str(e).strip()}") from None
    return model, tokenizers[0], tokenizers[1], meta


def add_translate_parser(sub, formatter, positive_int):
    """The ``translate`` subcommand's options."""
    t = sub.add_parser("translate", formatter_class=formatter, help="run a seq2seq checkpoint on texts (greedy or beam search)",
                       description="Encode each source and decode its output: greedy, or beam search with "
                                   "--beam N, which prints the N best outputs with their scores.")
    t.add_argument("--ckpt", required=True, metavar="DIR", help="a checkpoint from `minillm train --model seq2seq`")
    t.add_argument("text", nargs="?", help="the source text (or use --file)")
    t.add_argument("--file", metavar="F", help="a UTF-8 file with one source per line")
    t.add_argument("--beam", type=positive_int, default=1, help="beam width (1: greedy decoding)")
    t.add_argument("--length-penalty", type=float, default=1.0,
                   help="alpha of the length penalty ((5 + length) / 6)^alpha dividing beam scores; 0: none")
    t.add_argument("--max-len", type=positive_int, default=MAX_TARGET_LEN, help="longest output, in tokens with </s>")


def read_sources(args, usage_error):
    """The sources of TEXT or --file, whitespace squeezed; a bad or empty one is a usage error."""
    if (args.text is None) == (args.file is None):
        raise usage_error("give either a TEXT or --file F (one source per line), not " +
                          ("both" if args.text is not None else "neither"))
    if args.text is not None:
        sources = [normalize(args.text)]
        if not sources[0]:
            raise usage_error("the source text is empty: there is nothing to translate")
        return sources
    sources = [normalize(line) for line in data.read_text_file(args.file).splitlines()]
    empty = next((i for i, s in enumerate(sources) if not s), None)
    if empty is not None:
        raise usage_error(f"--file {args.file}, line {empty + 1} is empty: give one source per line")
    return sources


def run_translate(args, usage_error, build_model):
    """minillm translate: print each source's output, or with --beam its n-best list; returns 0."""
    model, src_tok, tgt_tok, _ = load_seq2seq(args.ckpt, build_model)
    if not 0 <= args.length_penalty < float("inf"):
        raise usage_error(f"--length-penalty must be a finite number >= 0, got {args.length_penalty}")
    if args.beam > tgt_tok.vocab_size:
        raise usage_error(f"--beam {args.beam} is larger than the target vocabulary ({tgt_tok.vocab_size} tokens)")
    if args.max_len > model.config.max_len:
        raise usage_error(f"--max-len {args.max_len} is beyond the decoder's {model.config.max_len} positions")
    sources = read_sources(args, usage_error)
    for i, source in enumerate(sources):
        n = len(src_tok.encode(source))
        if n > model.config.max_len:
            where = "the source" if len(sources) == 1 else f"source {i + 1}"
            print(f"note: {where} has {n} tokens; only the first {model.config.max_len} (the encoder's positions) "
                  "are read", file=sys.stderr)
    results = translate(model, sources, src_tok, tgt_tok, args.beam, args.length_penalty, args.max_len)
    for i, result in enumerate(results):
        if args.beam == 1:
            print(result)
            continue
        if len(sources) > 1:
            print(("\n" if i else "") + f"# {i + 1}")
        for rank, (text, score) in enumerate(result, 1):
            print(f"{rank}\t{score:.4f}\t{text}")
    return 0
