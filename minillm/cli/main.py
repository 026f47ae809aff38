"""The ``minillm`` command line, its parser and its error boundary: train, generate, fill-mask,
classify, plot-attention, gradcheck, exercises, finetune, translate. What each subcommand does is
in commands.py (exercise_commands.py, finetune_command.py and seq2seq_commands.py for the last three).

    minillm train                      # a small character GPT on the built-in corpus (< 5 min, 2 cores)
    minillm generate --ckpt runs/gpt-... --prompt "The "
    minillm gradcheck                  # every hand-written backward vs finite differences
    minillm exercises start w          # classroom exercises; then: minillm exercises check w

Every error prints one line, ``minillm: error: ...``, with exit code 2 for usage mistakes (bad
options, existing output, missing files) and 1 for failures while running; no traceback unless
MINILLM_DEBUG=1.
"""
import argparse
import os
import shlex
import sys



def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _threads(text):
    return "auto" if text == "auto" else _positive_int(text)


def _seed(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def _probability(text):
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1], got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _dropout(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def _smoothing(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


# `minillm train` options whose default depends on --model: (the default of the language models, of seq2seq)
MODEL_DEFAULTS = {"tokenizer": ("char", "words"), "vocab_size": (512, 8000), "n_layer": (4, 3), "block_size": (64, 128),
                  "dropout": (0.0, 0.3), "batch_size": (12, 32), "warmup_steps": (100, 400),
                  "max_steps": (2000, 100000), "max_seconds": (240.0, 540.0), "eval_interval": (250, 500)}


def _model_default(parser, option, **kwargs):
    """An option of `minillm train` whose default is MODEL_DEFAULTS[name]: left None by the parser,
    filled in by fill_model_defaults once --model is known."""
    language_models, seq2seq = MODEL_DEFAULTS[option[2:].replace("-", "_")]
    help_text = kwargs.pop("help") + f" (default: {language_models}; seq2seq: {seq2seq})"
    parser.add_argument(option, default=None, help=help_text, **kwargs)


def fill_model_defaults(args):
    """Give each option of MODEL_DEFAULTS that was not on the command line its default for args.model."""
    for name, defaults in MODEL_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, defaults[args.model == "seq2seq"])


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends each option with its default, unless the help already says it or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def build_parser():
    """The argparse parser of every subcommand (each with --help)."""
    from .. import __version__
    p = argparse.ArgumentParser(prog="minillm", description="Language models from first principles, every backward pass by hand.")
    p.add_argument("--version", action="version", version=f"minillm {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser(formatter_class=DefaultsFormatter, name="train", help="train a GPT, Llama, BERT, LSTM or encoder-decoder model", description=(
        "Train a model on the built-in corpus (standard-library docstrings) or --data PATH. With no options: "
        "a small character-level GPT for at most 4 minutes, then a sample. --model seq2seq: the encoder-decoder "
        "on code -> name pairs for at most 9 minutes, then its scores on the test split."))
    t.add_argument("--model", choices=["gpt", "llama", "bert", "lstm", "seq2seq"], default="gpt",
                   help="which model to train (seq2seq: the encoder-decoder Transformer on pairs of texts)")
    t.add_argument("--data", metavar="PATH", help="a UTF-8 text file (default: the built-in corpus); seq2seq: one "
                                                  "'source<TAB>target' pair per line (default: --task)")
    t.add_argument("--task", choices=["code2name"], default="code2name",
                   help="seq2seq: the built-in pairs, a standard-library function's body -> its name")
    _model_default(t, "--tokenizer", choices=["char", "bpe"], help="characters, or byte-level BPE trained on the text "
                   "(seq2seq: one word vocabulary for both sides, code cut into identifier subtokens)")
    _model_default(t, "--vocab-size", type=_positive_int, help="BPE vocabulary size (seq2seq: at most this many words)")
    _model_default(t, "--n-layer", type=_positive_int, help="layers (transformer blocks, LSTM layers; seq2seq: "
                                                           "of the encoder and of the decoder)")
    t.add_argument("--n-head", type=_positive_int, default=4, help="attention heads")
    t.add_argument("--n-embd", type=_positive_int, default=128, help="model width (LSTM: embedding size)")
    t.add_argument("--hidden-size", type=_positive_int, default=256, help="LSTM hidden size")
    t.add_argument("--n-kv-head", type=_positive_int, default=None,
                   help="Llama: key/value heads, dividing --n-head (default: half of --n-head when even)")
    t.add_argument("--rope-theta", type=_positive_float, default=10000.0, help="Llama: the rotary base theta")
    _model_default(t, "--block-size", type=_positive_int, help="context length in tokens (seq2seq: the longest "
                                                              "source read)")
    _model_default(t, "--dropout", type=_dropout, help="dropout probability")
    _model_default(t, "--batch-size", type=_positive_int, help="sequences (seq2seq: pairs) per step")
    t.add_argument("--lr", type=_positive_float, default=1e-3, help="peak learning rate (AdamW)")
    t.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay of the matrices")
    _model_default(t, "--warmup-steps", type=int, help="linear warm-up steps before the cosine decay (seq2seq: before "
                                                      "the decay as 1/sqrt(step) of the Transformer paper)")
    t.add_argument("--label-smoothing", type=_smoothing, default=0.1, help="seq2seq: label smoothing of the loss")
    _model_default(t, "--max-steps", type=_positive_int, help="stop after this many steps")
    _model_default(t, "--max-seconds", type=float, help="stop after this many seconds of training (0: no limit)")
    _model_default(t, "--eval-interval", type=_positive_int, help="steps between validation losses")
    t.add_argument("--eval-batches", type=_positive_int, default=10, help="batches per validation loss")
    t.add_argument("--out", metavar="DIR", help="output folder (default: runs/<model>-<date>-<time>)")
    t.add_argument("--seed", type=_seed, default=0, help="seed of the initial weights, batches and dropout")
    t.add_argument("--backend", choices=["numpy", "cupy"], default="numpy", help="arrays on the CPU (NumPy) or a GPU (CuPy)")
    t.add_argument("--threads", type=_threads, default="auto",
                   help="CPU cores to train on: the batch is split into this many shards, one model replica "
                        "per thread (data parallelism, NumPy backend); auto: one per core, at most --batch-size; "
                        "1: one replica")
    t.add_argument("--resume", action="store_true", help="continue the checkpoint in --out exactly")

    g = sub.add_parser(formatter_class=DefaultsFormatter, name="generate", help="continue a prompt with a trained GPT, Llama or LSTM, or a GPT-2 or Llama directory")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", metavar="DIR", help="a checkpoint from `minillm train`")
    src.add_argument("--pretrained", metavar="DIR", help="a Hugging Face directory: GPT-2 (config.json, "
                     "model.safetensors, vocab.json, merges.txt) or Llama-family (config.json, model.safetensors "
                     "or its shards, tokenizer.json)")
    g.add_argument("--prompt", required=True, help="the text to continue")
    g.add_argument("--max-new-tokens", type=_positive_int, default=200, help="tokens to generate")
    g.add_argument("--temperature", type=_positive_float, default=1.0, help="divide the logits by this before sampling")
    g.add_argument("--top-k", type=_positive_int, default=None, help="sample among the k most likely tokens")
    g.add_argument("--top-p", type=_probability, default=None, help="nucleus sampling, in (0, 1]")
    g.add_argument("--greedy", action="store_true", help="always take the most likely token")
    g.add_argument("--no-cache", action="store_true", help="recompute the whole context each step (slow)")
    g.add_argument("--seed", type=_seed, default=None, help="seed of the sampling (default: a fresh draw)")
    g.add_argument("--adapters", metavar="DIR", help="LoRA adapters from `minillm finetune` to apply to the model")

    f = sub.add_parser(formatter_class=DefaultsFormatter, name="fill-mask", help="predict the [MASK] tokens of a text with a trained BERT or a BERT directory")
    fsrc = f.add_mutually_exclusive_group(required=True)
    fsrc.add_argument("--ckpt", metavar="DIR", help="a checkpoint from `minillm train --model bert`")
    fsrc.add_argument("--pretrained", metavar="DIR", help="a Hugging Face BertForMaskedLM directory: "
                      "config.json, model.safetensors, vocab.txt")
    f.add_argument("text", help='e.g. "Return the [MASK]ength of the list."')
    f.add_argument("--top", type=_positive_int, default=5, help="candidates shown per [MASK]")

    c = sub.add_parser(formatter_class=DefaultsFormatter, name="classify", help="fine-tune a BERT checkpoint on the docstring-package task, print test accuracy")
    c.add_argument("--ckpt", required=True, metavar="DIR", help="a BERT checkpoint from `minillm train --model bert`")
    c.add_argument("--from-scratch", action="store_true", help="same network and tokenizer, random weights")
    c.add_argument("--max-steps", type=_positive_int, default=300, help="fine-tuning steps")
    c.add_argument("--batch-size", type=_positive_int, default=32, help="docstrings per step")
    c.add_argument("--lr", type=_positive_float, default=3e-4, help="learning rate (AdamW)")
    c.add_argument("--max-len", type=_positive_int, default=64, help="tokens read per docstring")
    c.add_argument("--train-examples", type=_positive_int, metavar="N",
                   help="fine-tune on only N training docstrings (N / 4 per class; default: all)")
    c.add_argument("--seed", type=_seed, default=0, help="seed of the head's weights and the batches")
    c.add_argument("--out", metavar="DIR", help="output folder (default: runs/classify-<start>-<date>-<time>)")

    a = sub.add_parser(formatter_class=DefaultsFormatter, name="plot-attention", help="draw a GPT or BERT checkpoint's attention weights on a text (PNG)")
    a.add_argument("--ckpt", required=True, metavar="DIR", help="a GPT or BERT checkpoint")
    a.add_argument("--text", required=True, help="the text whose attention is drawn")
    a.add_argument("--out", metavar="PNG", help="the figure to write (default: DIR/attention.png)")

    k = sub.add_parser(formatter_class=DefaultsFormatter, name="gradcheck", help="check every hand-written backward against finite differences (float64)")
    k.add_argument("--backend", choices=["numpy", "cupy"], default="numpy", help="where the checks run")

    from .exercise_commands import add_parser
    add_parser(sub, DefaultsFormatter)
    from .finetune_command import add_parser as add_finetune
    add_finetune(sub, DefaultsFormatter, _positive_int, _positive_float)
    from .seq2seq_commands import add_translate_parser
    add_translate_parser(sub, DefaultsFormatter, _positive_int)
    return p


def main(argv=None):
    """The ``minillm`` command: run the subcommand; an error becomes one line and exit code 2 (usage) or 1."""
    for stream in (sys.stdout, sys.stderr):
        # Generated text can hold any character of the corpus. Where the terminal or pipe has a
        # narrower encoding (a Windows code page, say), print \xdf for what it cannot show, not fail.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from . import commands                       # after parsing: --help and --version stay quick
    from .exercise_commands import run_exercises
    from .finetune_command import run_finetune
    from ..training.checkpoint import CheckpointError
    run = {"train": commands.run_train, "generate": commands.run_generate, "fill-mask": commands.run_fill_mask,
           "classify": commands.run_classify, "plot-attention": commands.run_plot_attention,
           "gradcheck": commands.run_gradcheck,
           "exercises": lambda a: run_exercises(a, commands.UsageError),
           "finetune": lambda a: run_finetune(a, commands.UsageError, commands.load_model,
                                              commands.load_pretrained_decoder),
           "translate": commands.run_translate}[args.command]
    if args.command == "train":
        fill_model_defaults(args)
    try:
        return run(args)
    except BrokenPipeError:                      # `minillm exercises list | head`: the reader left, say nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # nor at exit, when Python flushes
        return 1
    except Exception as e:                       # the one error boundary: one line, never a traceback
        if os.environ.get("MINILLM_DEBUG") == "1":
            raise
        rank = _mpi_rank()
        where = "" if rank is None else f"rank {rank}: "
        print(f"minillm: error: {where}{error_line(e, (CheckpointError, commands.UsageError))}", file=sys.stderr)
        code = 2 if isinstance(e, (commands.UsageError, FileExistsError, FileNotFoundError)) else 1
        _end_other_ranks(code)
        return code
    except KeyboardInterrupt as e:               # Ctrl-C; during training, after a saved checkpoint
        if not _mpi_rank():                      # one process, or rank 0 of several: the others agree
            print(f"minillm: {interrupted_line(e, sys.argv[1:] if argv is None else argv)}", file=sys.stderr)
        return 130


def _mpi_rank():
    """This process's rank when it is one of several MPI ranks training together, else None."""
    from ..training import distributed
    world = distributed.current_world()
    return None if world is None or world.size == 1 else world.rank


def _end_other_ranks(code):
    """After an error on one rank of an MPI job, end them all: the others would wait for it."""
    from ..training import distributed
    world = distributed.current_world()
    if world is not None and world.size > 1:
        world.abort(code)


def interrupted_line(e, argv):
    """What to print on Ctrl-C: for a training run, the step it saved and the command that resumes it."""
    from ..training.interrupt import TrainingInterrupted
    if not isinstance(e, TrainingInterrupted):
        return "interrupted"
    args = list(argv)
    if "--out" not in args:
        args += ["--out", str(e.out)]
    if "--resume" not in args:
        args.append("--resume")
    from ..training import distributed
    world = distributed.current_world()
    launcher = ["mpiexec", "-n", str(world.size)] if world is not None and world.size > 1 else []
    return (f"interrupted after step {e.step}; checkpoint saved in {e.out}. "
            f"To continue: {shlex.join(launcher + ['minillm'] + args)}")


def error_line(e, raised_on_purpose):
    """The text after "minillm: error: ": the message of the errors minillm raises on purpose, and
    the exception's type with its message for any other (a bug to report, or MINILLM_DEBUG=1 to see
    the traceback)."""
    if isinstance(e, MemoryError):
        return f"out of memory ({str(e) or 'the arrays this command needs do not fit'}); try a smaller model or batch"
    ours = (*raised_on_purpose, ValueError, TypeError, RuntimeError, OSError)
    text = str(e).strip().replace("\n", " ")
    if isinstance(e, ours) and text:
        return text
    return f"{type(e).__name__}: {text} (set MINILLM_DEBUG=1 to see where)"

if __name__ == "__main__":
    sys.exit(main())
