"""What the ``minillm`` commands do: build tokenizer, model, optimizer and task, train, generate.

main.py parses the options and calls the run_* functions at the end; the others can be called
from Python too.
"""
import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import backend, hub
from ..training import data, distributed
from ..training.checkpoint import checkpoint_path, load_checkpoint
from ..models import (GPT, LSTMLM, BertConfig, BertForMaskedLM, BertForSequenceClassification, GPTConfig,
                     Llama, LlamaConfig, LSTMConfig, Seq2SeqConfig, Seq2SeqTransformer)
from ..training.optim import AdamW, param_groups
from ..training.tasks import ClassifyTask, LMTask, MLMTask
from ..models.config_checks import check_config, check_step_memory
from ..tokenizers import ByteBPETokenizer, CharTokenizer, tokenizer_from_dict
from ..training.trainer import TrainConfig, Trainer
from ..tokenizers.wordpiece import SPECIAL_TOKENS, WordPieceTokenizer, join_pieces

BERT_SPECIALS = SPECIAL_TOKENS     # [PAD] [UNK] [CLS] [SEP] [MASK]: BERT's, whichever tokenizer it uses
KINDS = {"gpt": (GPT, GPTConfig), "llama": (Llama, LlamaConfig), "lstm": (LSTMLM, LSTMConfig),
         "bert": (BertForMaskedLM, BertConfig),
         "bert-cls": (BertForSequenceClassification, BertConfig), "seq2seq": (Seq2SeqTransformer, Seq2SeqConfig)}


class UsageError(Exception):
    """A bad option or argument: exit code 2."""


def check_output_folder(out, hint=""):
    """Refuse an output folder that is a file or already holds a checkpoint (nothing is overwritten)."""
    if out.suffix == ".npz" and not out.is_dir():
        raise FileExistsError(f"--out {out} looks like a file name; it must name a folder (the checkpoint goes "
                              f"in {out}/ckpt.npz), for example --out {out.with_suffix('')}")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; it must name a folder (the checkpoint goes in "
                              f"{out}/ckpt.npz)")
    if checkpoint_path(out).exists():
        raise FileExistsError(f"{out} already holds a checkpoint{hint}, or pass --out to start elsewhere "
                              "(nothing was overwritten)")


def build_model(kind, config_dict, where="the command line", step=None):
    """A fresh model of ``kind`` ("gpt", "llama", "lstm", "bert", "bert-cls", "seq2seq") from its config fields, checked
    first (types, ranges, size: models/config_checks.py); ``where`` names their source. With
    ``step`` = (batch size, tokens per sequence), a training step must also fit in memory."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"{where}: unknown model kind {kind!r} (expected one of {', '.join(KINDS)})")
    cls, cfg_cls = KINDS[kind]
    config = check_config(cfg_cls, config_dict, where)
    if step is not None:
        check_step_memory(config, *step, where)
    return cls(config)


def load_model(ckpt_dir, kinds):
    """(model, tokenizer, meta) from a checkpoint directory whose kind is one of ``kinds``."""
    meta, state, _ = load_checkpoint(ckpt_dir)
    if meta.get("kind") == "seq2seq" and "seq2seq" not in kinds:
        raise ValueError(f"checkpoint {checkpoint_path(ckpt_dir)} holds an encoder-decoder ('seq2seq'), which "
                         f"`minillm translate --ckpt {ckpt_dir}` runs; this command needs "
                         f"{' or '.join(repr(k) for k in kinds)}")
    if not isinstance(meta.get("kind"), str) or meta["kind"] not in kinds:
        raise ValueError(f"checkpoint {checkpoint_path(ckpt_dir)} holds a {meta.get('kind')!r} model; "
                         f"this command needs {' or '.join(repr(k) for k in kinds)}")
    where = f"checkpoint {checkpoint_path(ckpt_dir)}"
    model = build_model(meta["kind"], meta.get("model_config"), where)
    try:
        model.load_state_dict(state)
        if not isinstance(meta.get("tokenizer"), dict):
            raise ValueError("it has no tokenizer description")
        tokenizer = tokenizer_from_dict(meta["tokenizer"])
    except (TypeError, ValueError) as e:                # name the file the bad weights or tokenizer came from
        raise (ValueError if isinstance(e, ValueError) else TypeError)(f"{where}: {e}") from None
    if tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"{where}: its tokenizer has {tokenizer.vocab_size} tokens but its model "
                         f"{model.config.vocab_size}; they must be the pair that was trained together")
    return model, tokenizer, meta


def make_tokenizer(text, kind, vocab_size, specials):
    """kind "char": a CharTokenizer of text; "bpe": a ByteBPETokenizer trained on text to vocab_size."""
    if kind == "char":
        return CharTokenizer.train(text, specials)
    if vocab_size < 256 + len(specials):
        raise UsageError(f"--vocab-size must be at least {256 + len(specials)} for byte-level BPE (256 bytes + "
                         f"{len(specials)} special token(s)), got {vocab_size}")
    print(f"training byte-level BPE to {vocab_size} tokens ...", file=sys.stderr)
    return ByteBPETokenizer.train(text, vocab_size, specials)


def model_config(args, vocab_size):
    """The config dataclass fields for args.model, from the command-line options."""
    if args.model == "gpt":
        return asdict(GPTConfig(vocab_size, args.block_size, args.n_layer, args.n_head, args.n_embd, args.dropout))
    if args.model == "llama":
        kv_heads = args.n_kv_head or (args.n_head // 2 if args.n_head % 2 == 0 else args.n_head)
        if args.n_head % kv_heads:
            raise UsageError(f"--n-head {args.n_head} is not divisible by --n-kv-head {kv_heads}")
        hidden = 8 * ((8 * args.n_embd // 3 + 7) // 8)           # about 8/3 C, rounded up to a multiple of 8
        return asdict(LlamaConfig(vocab_size, args.block_size, args.n_layer, args.n_head, kv_heads, args.n_embd,
                                  hidden, rope_theta=args.rope_theta))
    if args.model == "lstm":
        return asdict(LSTMConfig(vocab_size, args.n_embd, args.hidden_size, args.n_layer, args.dropout, args.block_size))
    return asdict(BertConfig(vocab_size, args.block_size, args.n_layer, args.n_head, args.n_embd, dropout=args.dropout))


def train(args):
    """minillm train: returns the output directory. Under ``mpiexec -n N`` every rank runs this, and
    rank 0 alone prints and writes (training/distributed.py)."""
    if args.model == "seq2seq":
        from .seq2seq_commands import train_seq2seq
        return train_seq2seq(args, build_model, check_output_folder)
    world = distributed.world()
    if args.backend == "cupy":
        backend.use("cupy")
        if world.size > 1:           # one GPU per rank of this machine
            backend.xp().cuda.Device(world.rank % backend.xp().cuda.runtime.getDeviceCount()).use()
    backend.manual_seed(args.seed)
    out = Path(world.broadcast(args.out or f"runs/{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"))
    say = (lambda *a, **k: print(*a, **k)) if world.is_main else (lambda *a, **k: None)
    if not args.resume:
        check_output_folder(out, "; pass --resume to continue it")
    if args.resume and not checkpoint_path(out).exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path(out)}")
    text = data.read_text_file(args.data) if args.data else data.builtin_corpus()
    if args.resume:
        tokenizer = load_model(out, (args.model,))[1]                # the checkpoint checked whole first
    else:
        specials = BERT_SPECIALS if args.model == "bert" else (("<|endoftext|>",) if args.tokenizer == "bpe" else ())
        tokenizer = make_tokenizer(text, args.tokenizer, args.vocab_size, specials)
    ids = np.array(tokenizer.encode(text), dtype=np.int64)
    train_ids, val_ids = data.train_val_split(ids)
    cfg = model_config(args, tokenizer.vocab_size)
    model = build_model(args.model, cfg, step=(args.batch_size, args.block_size))
    if args.model == "bert":
        task = MLMTask(train_ids, val_ids, args.block_size, args.batch_size, tokenizer)
    else:
        task = LMTask(train_ids, val_ids, args.block_size, args.batch_size)
    opt = AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.99))
    tcfg = TrainConfig(max_steps=args.max_steps, max_seconds=args.max_seconds, lr=args.lr, min_lr=args.lr / 10,
                       warmup_steps=args.warmup_steps, grad_clip=1.0, eval_interval=args.eval_interval,
                       eval_batches=args.eval_batches, log_interval=10, seed=args.seed,
                       threads="auto" if getattr(args, "threads_auto", False) else args.threads)
    meta = {"kind": args.model, "model_config": cfg, "tokenizer": tokenizer.to_dict(),
            "data": args.data or "built-in corpus", "backend": backend.current()}
    trainer = Trainer(model, task, opt, tcfg, out, meta)
    if args.resume:
        say(f"resuming {out} from step {trainer.resume()}", file=sys.stderr)
    say(f"{args.model}: {model.num_parameters():,} parameters, vocabulary {tokenizer.vocab_size} ({args.tokenizer}), "
        f"{len(train_ids):,} training tokens, backend {backend.current()}", file=sys.stderr)
    if world.size > 1:
        say(f"MPI: {world.size} ranks, each with {args.batch_size // world.size}-{-(-args.batch_size // world.size)} "
            f"rows of every batch of {args.batch_size}", file=sys.stderr)
    if backend.current() == "numpy":
        from ..kernels.cpu import jit
        from ..training.parallel import uses_the_cores
        split = "; the LSTM's units split between the cores" if trainer.threads == 1 and uses_the_cores(model) else ""
        say(f"{jit.describe()}; {trainer.threads} model replica(s) (--threads){split}", file=sys.stderr)
    val = trainer.run()
    if not world.is_main:
        return out
    print(f"validation loss {val:.4f} (perplexity {np.exp(val):.2f}) after {trainer.step} steps, "
          f"{trainer.elapsed:.0f} s; checkpoint, log.csv and loss.png in {out}")
    if args.model == "bert":
        example = fill_mask_example(text, tokenizer, args.block_size)
        print(f"\nfill-mask example: {example!r}")
        for line in fill_mask(model, tokenizer, example, 3):
            print("  " + line)
        next_line = f"minillm fill-mask --ckpt {shlex.quote(str(out))} {shlex.quote(example)}"
    else:
        prompt = "The "
        try:
            prompt_ids = tokenizer.encode(prompt)
        except ValueError:               # a user's text without these characters: start from its own first ones
            prompt = text[:4]
            prompt_ids = tokenizer.encode(prompt)
        ids = model.generate(np.array([prompt_ids]), 300, temperature=0.8, top_k=40, seed=args.seed)
        print(f"\nsample (prompt {prompt!r}, temperature 0.8, top-k 40):\n" + tokenizer.decode(ids[0].tolist()))
        next_line = f"minillm generate --ckpt {shlex.quote(str(out))} --prompt {shlex.quote(prompt)} --max-new-tokens 200"
    print("\nnext: " + next_line)             # the command that uses this checkpoint, ready to paste
    return out


def fill_mask_example(text, tokenizer, block_size):
    """The start of the training text with its middle character masked, as long as fits the model
    (its tokens and [CLS] at most block_size), for the sample a BERT run ends with."""
    for n in range(max(4, block_size // 2), 1, -1):
        example = text[:n // 2] + "[MASK]" + text[n // 2 + 1:n]
        if len(tokenizer.encode(example, allowed_special=True)) + 1 <= block_size:
            return example
    return "[MASK]"


def generate(args):
    """minillm generate: prints the prompt and its continuation."""
    if getattr(args, "pretrained", None):
        model, tok, meta = load_pretrained_decoder(args.pretrained)
    else:
        model, tok, meta = load_model(args.ckpt, ("gpt", "llama", "lstm"))
    if getattr(args, "adapters", None):
        from ..models.lora import load_adapters
        config = load_adapters(model, args.adapters)
        print(f"LoRA adapters from {args.adapters}: rank {config['r']} on {len(config['layers'])} layers",
              file=sys.stderr)
    ids = tok.encode(args.prompt)
    if not ids:
        raise ValueError("the prompt is empty")
    block = meta["model_config"]["block_size"]
    if meta["kind"] in ("gpt", "llama") and len(ids) > block:
        print(f"note: the prompt has {len(ids)} tokens; only the last {block} (block_size) are used", file=sys.stderr)
        ids = ids[-block:]
    kw = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, do_sample=not args.greedy,
              seed=args.seed)
    if meta["kind"] in ("gpt", "llama"):
        kw["use_cache"] = not args.no_cache
    t0 = time.perf_counter()
    out = model.generate(np.array([ids]), args.max_new_tokens, **kw)
    dt = time.perf_counter() - t0
    print(tok.decode(out[0].tolist()))
    print(f"({args.max_new_tokens} tokens in {dt:.2f} s, {args.max_new_tokens / dt:.0f} tokens/s)", file=sys.stderr)


def load_pretrained_decoder(path):
    """(model, tokenizer, meta) from a Hugging Face GPT-2 or Llama-family directory, told apart by
    config.json's model_type."""
    path = Path(path)
    try:
        kind = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        kind = None                                   # load_pretrained_gpt2 reports what is wrong
    if kind not in ("llama", "smollm"):
        return load_pretrained_gpt2(path)
    from ..hub_llama import load_llama
    from ..tokenizers import load_tokenizer_json
    model = load_llama(path)
    tok = load_tokenizer_json(path / "tokenizer.json")
    if tok.vocab_size > model.config.vocab_size:
        raise ValueError(f"{path}: the tokenizer has {tok.vocab_size} tokens but the model only {model.config.vocab_size}")
    print(f"loaded {kind} from {path}: {model.num_parameters():,} parameters, vocabulary {model.config.vocab_size}",
          file=sys.stderr)
    return model, tok, {"kind": "llama", "model_config": model.config_dict()}


def load_pretrained_gpt2(path):
    """(GPT, its GPT-2 tokenizer, meta) from a Hugging Face GPT-2 directory with vocab.json + merges.txt."""
    path = Path(path)
    for name in ("vocab.json", "merges.txt"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path}: {name} is missing (a GPT-2 directory has vocab.json and merges.txt)")
    model = hub.load_gpt2(path)
    tok = ByteBPETokenizer.from_gpt2_files(path / "vocab.json", path / "merges.txt")
    if tok.vocab_size > model.config.vocab_size:
        raise ValueError(f"{path}: the tokenizer has {tok.vocab_size} tokens but the model only {model.config.vocab_size}")
    print(f"loaded GPT-2 from {path}: {model.num_parameters():,} parameters, vocabulary {model.config.vocab_size}",
          file=sys.stderr)
    return model, tok, {"kind": "gpt", "model_config": model.config_dict()}


def load_pretrained_bert(path):
    """(BertForMaskedLM, its WordPiece tokenizer) from a Hugging Face BERT directory with vocab.txt.
    Lower-casing follows tokenizer_config.json's do_lower_case when the file is there (else on)."""
    path = Path(path)
    if not (path / "vocab.txt").is_file():
        raise FileNotFoundError(f"{path}: vocab.txt is missing (a BERT directory has config.json, "
                                "model.safetensors and vocab.txt)")
    lower = True
    if (path / "tokenizer_config.json").is_file():
        lower = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8")).get("do_lower_case", True)
    model = hub.load_bert(path)
    tok = WordPieceTokenizer.from_vocab_file(path / "vocab.txt", do_lower_case=lower)
    if tok.vocab_size > model.config.vocab_size:
        raise ValueError(f"{path}: vocab.txt has {tok.vocab_size} tokens but the model only {model.config.vocab_size}")
    print(f"loaded BERT from {path}: {model.num_parameters():,} parameters, vocabulary {tok.vocab_size}",
          file=sys.stderr)
    return model, tok


def fill_mask(model, tok, text, top):
    """Lines 'position: candidate (probability) -> the text with the best candidate' for every [MASK].

    Byte-level BPE glues a word to the space before it (' list' is one token), and masked-LM
    training masks such tokens. So with BPE the space written before "[MASK]" belongs to the
    masked word (as RoBERTa's <mask> does): "the [MASK] of" asks for ' list', not for 'list'
    after a lone ' ' token. Characters are their own tokens, so the char tokenizer keeps it.
    """
    if isinstance(tok, ByteBPETokenizer):
        text = text.replace(" [MASK]", "[MASK]")
    ids = tok.encode(text, allowed_special=True)
    mask_id = tok.token_to_id("[MASK]")
    ids = [tok.token_to_id("[CLS]")] + ids
    if mask_id not in ids:
        raise ValueError(f"the text contains no [MASK] token: {text!r}")
    limit = model.config.max_position
    if len(ids) > limit:
        raise ValueError(f"the text has {len(ids)} tokens with [CLS]; this model reads at most {limit}")
    model.eval()
    logits = backend.to_numpy(model(backend.to_device(np.array([ids]))))[0]
    lines = []
    for pos in [i for i, t in enumerate(ids) if t == mask_id]:
        p = np.exp(logits[pos] - logits[pos].max())
        p /= p.sum()
        best = np.argsort(-p)[:top]
        cands = ", ".join(f"{tok.decode([int(b)])!r} ({p[b]:.2f})" for b in best)
        lines.append(f"mask at token {pos}: {cands}   ->  {_filled(tok, ids, pos, int(best[0]))}")
    return lines


def _filled(tok, ids, pos, best):
    """The text of ids[1:] (after [CLS]) with the token at pos replaced by "[best]"."""
    if isinstance(tok, WordPieceTokenizer):          # pieces are joined by spaces, "##" glues
        pieces = [tok.vocab[i] for i in ids[1:]]
        word = tok.vocab[best]
        pieces[pos - 1] = "##[" + word[2:] + "]" if word.startswith("##") else "[" + word + "]"
        return join_pieces(pieces)
    word = tok.decode([best])
    space = word[:len(word) - len(word.lstrip(" "))] if word.strip() else ""   # ' list' -> ' [list]'; ' ' -> '[ ]'
    return tok.decode(ids[1:pos]) + space + "[" + word[len(space):] + "]" + tok.decode(ids[pos + 1:])


def classifier_trainer(meta, state, task, num_labels, from_scratch, lr, max_steps, seed, out, quiet=False):
    """The fine-tuning run of `minillm classify`, ready to ``run()``: a BertForSequenceClassification
    with the checkpoint's config (dropout 0.1) whose encoder starts from the checkpoint's weights
    (or random ones, from_scratch), AdamW (weight decay 0.01), warm-up over max_steps // 10 steps
    then cosine to lr / 10, gradient clipping 1.0, batches and dropout seeded with ``seed``."""
    backend.manual_seed(seed)
    cfg = dict(meta["model_config"], num_labels=num_labels, dropout=0.1)
    model = build_model("bert-cls", cfg, "the checkpoint's model config", step=(task.batch_size, task.max_len))
    if not from_scratch:
        model.bert.load_state_dict({k[len("bert."):]: v for k, v in state.items() if k.startswith("bert.")})
    opt = AdamW(param_groups(model, 0.01), lr=lr)
    tcfg = TrainConfig(max_steps=max_steps, lr=lr, min_lr=lr / 10, warmup_steps=max_steps // 10,
                       eval_interval=max_steps, eval_batches=4, log_interval=10, seed=seed)
    return Trainer(model, task, opt, tcfg, out, {"kind": "bert-cls", "model_config": cfg, "tokenizer": meta["tokenizer"]},
                   quiet=quiet)


def classify(args):
    """minillm classify: fine-tune a BERT checkpoint (or the same network from scratch) on the labelled set."""
    pretrained, tok, meta = load_model(args.ckpt, ("bert",))          # every field checked
    state = pretrained.state_dict()
    train_ex, test_ex, names = data.labelled_docstrings()
    if args.train_examples:
        train_ex = data.first_per_class(train_ex, args.train_examples)
    task = ClassifyTask(train_ex, test_ex, tok, min(args.max_len, meta["model_config"]["max_position"]), args.batch_size)
    out = Path(args.out or f"runs/classify-{'scratch' if args.from_scratch else 'pretrained'}-{time.strftime('%Y%m%d-%H%M%S')}")
    check_output_folder(out)
    trainer = classifier_trainer(meta, state, task, len(names), args.from_scratch, args.lr, args.max_steps, args.seed, out)
    trainer.run()
    acc = task.accuracy(trainer.model)
    label = "from scratch" if args.from_scratch else f"pretrained ({args.ckpt})"
    print(f"{len(names)} classes {names}; {len(train_ex)} training / {len(test_ex)} test docstrings")
    print(f"test accuracy, BERT {label}: {acc:.3f} (chance {1 / len(names):.3f}); checkpoint in {out}")
    return acc


# ============================================================================ the subcommands
def run_gradcheck(args):
    """minillm gradcheck: run the float64 gradient check of every model and print the table; exit 1 if any fails."""
    from ..gradcheck import TOLERANCE
    from ..gradcheck.suite import format_table, model_cases, run_suite
    if args.backend != "numpy":
        backend.use(args.backend)
    rows = run_suite(model_cases())
    print(format_table(rows))
    return 0 if all(err <= TOLERANCE for _, _, err in rows) else 1


def run_train(args):
    """minillm train: train a GPT, Llama, BERT, LSTM LM or seq2seq model, write checkpoints and log.csv,
    print a sample (seq2seq: the test scores)."""
    if args.model == "seq2seq" and args.tokenizer != "words":
        raise UsageError(f"--tokenizer {args.tokenizer}: seq2seq reads both sides with one word vocabulary; "
                         "leave --tokenizer out")
    if args.n_embd % args.n_head and args.model != "lstm":
        raise UsageError(f"--n-embd {args.n_embd} is not divisible by --n-head {args.n_head}")
    args.threads_auto = args.threads == "auto"          # train() asks the model again (uses_the_cores)
    if args.threads == "auto":
        from ..training.parallel import auto_threads
        world = distributed.world()
        args.threads = 1 if args.backend == "cupy" else auto_threads(-(-args.batch_size // world.size),
                                                                     distributed.cores_per_rank(world))
    if args.threads > 1 and args.backend == "cupy":
        raise UsageError(f"--threads {args.threads} runs model replicas on CPU cores; with --backend cupy use "
                         "--threads 1")
    if args.threads > args.batch_size:
        raise UsageError(f"--threads {args.threads} gives each thread at least one row of the batch, so it must be "
                         f"at most --batch-size ({args.batch_size})")
    train(args)
    return 0


def run_translate(args):
    """minillm translate: a seq2seq checkpoint's output for each source (greedy, or the n-best of beam search)."""
    from .seq2seq_commands import run_translate as translate_sources
    return translate_sources(args, UsageError, build_model)


def run_generate(args):
    """minillm generate: continue a prompt with a GPT or LSTM checkpoint (or Hugging Face GPT-2 files)."""
    generate(args)
    return 0


def run_fill_mask(args):
    """minillm fill-mask: the most likely tokens for each [MASK] in the text (BERT checkpoint or directory)."""
    if args.pretrained:
        model, tok = load_pretrained_bert(args.pretrained)
    else:
        model, tok, _ = load_model(args.ckpt, ("bert",))
    for line in fill_mask(model, tok, args.text, args.top):
        print(line)
    return 0


def run_classify(args):
    """minillm classify: fine-tune a BERT checkpoint (or random weights) on the labelled set; prints accuracy."""
    classify(args)
    return 0


def run_plot_attention(args):
    """minillm plot-attention: draw each head's attention weights of a GPT or BERT checkpoint on --text to a PNG."""
    from .plots import attention_maps, plot_attention
    model, tok, meta = load_model(args.ckpt, ("gpt", "bert"))
    ids = tok.encode(args.text, allowed_special=True)
    limit = meta["model_config"].get("block_size") or meta["model_config"].get("max_position")
    if not ids:
        raise UsageError("--text is empty")
    if len(ids) > limit:
        raise UsageError(f"--text has {len(ids)} tokens; this model reads at most {limit}")
    labels = [tok.decode([i]) for i in ids]
    out = args.out or str(Path(args.ckpt) / "attention.png")
    if not out.lower().endswith(".png"):
        raise UsageError(f"--out must name a .png file, got {out}")
    path = plot_attention(attention_maps(model, ids), labels, out,
                          f"{meta['kind']} {args.ckpt}: attention weights (row: query, column: key)")
    print(f"wrote {path} ({len(ids)} tokens, {len(labels)} labels)")
    return 0
