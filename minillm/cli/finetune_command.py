"""``minillm finetune``: LoRA fine-tuning of a trained model on a new text; only the adapters are written.

    minillm finetune --ckpt runs/gpt-... --data notes.txt --lora-rank 8 --out runs/notes-lora
    minillm generate --ckpt runs/gpt-... --adapters runs/notes-lora --prompt "The "
"""
import sys
from pathlib import Path

import numpy as np

from .. import backend
from ..models.lora import ADAPTER_CONFIG, apply_lora, lora_parameters, save_adapters
from ..training import data
from ..training.optim import AdamW
from ..training.tasks import LMTask
from ..training.trainer import TrainConfig, Trainer

DEFAULT_TARGETS = {"llama": "q_proj,v_proj", "gpt": "out_proj,linear1", "lstm": "fc"}


def add_parser(sub, formatter, positive_int, positive_float):
    """The ``finetune`` subcommand's options."""
    f = sub.add_parser("finetune", formatter_class=formatter, help="LoRA fine-tuning of a checkpoint on a text file",
                       description="Wrap chosen Linear layers of a trained model in LoRA adapters and train only "
                                   "those on --data; the adapters (kilobytes) go to --out.")
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", metavar="DIR", help="a GPT, Llama or LSTM checkpoint from `minillm train`")
    src.add_argument("--pretrained", metavar="DIR", help="a Hugging Face GPT-2 or Llama-family directory")
    f.add_argument("--data", required=True, metavar="PATH", help="the UTF-8 text to adapt to")
    f.add_argument("--lora-rank", type=positive_int, default=8, help="rank r of every adapter")
    f.add_argument("--lora-alpha", type=positive_float, default=None, help="scale alpha (the update is alpha/r B A; default r)")
    f.add_argument("--targets", default=None, help="comma-separated Linear names to adapt (default: q_proj,v_proj "
                                                   "for Llama, out_proj,linear1 for GPT, fc for the LSTM)")
    f.add_argument("--out", required=True, metavar="DIR", help="where the adapters, log.csv and loss.png go")
    f.add_argument("--max-steps", type=positive_int, default=300, help="training steps")
    f.add_argument("--batch-size", type=positive_int, default=8, help="sequences per step")
    f.add_argument("--block-size", type=positive_int, default=None, help="tokens per sequence (default: the model's)")
    f.add_argument("--lr", type=positive_float, default=1e-3, help="peak learning rate (AdamW on the adapters)")
    f.add_argument("--eval-interval", type=positive_int, default=100, help="steps between validation losses")
    f.add_argument("--eval-batches", type=positive_int, default=5, help="batches per validation loss")
    f.add_argument("--seed", type=int, default=0, help="seed of the adapters' initialisation and the batches")


class AdapterTrainer(Trainer):
    """The training loop with checkpoints that hold the adapters only (save_adapters)."""

    def save(self):
        if self.world.is_main:
            save_adapters(self.model, self.out, {"base": self.meta["base"], "step": self.step,
                                                 "val_loss": self.last_val})


def run_finetune(args, usage_error, load_model, load_pretrained):
    """Load, wrap, train the adapters, report; returns the exit code."""
    out = Path(args.out)
    if (out / ADAPTER_CONFIG).exists():
        raise FileExistsError(f"{out} already holds adapters (nothing was overwritten); choose another --out")
    if args.pretrained:
        model, tokenizer, meta = load_pretrained(args.pretrained)
        base = args.pretrained
    else:
        model, tokenizer, meta = load_model(args.ckpt, ("gpt", "llama", "lstm"))
        base = args.ckpt
    backend.manual_seed(args.seed)
    targets = [t for t in (args.targets or DEFAULT_TARGETS[meta["kind"]]).split(",") if t]
    try:
        wrapped = apply_lora(model, args.lora_rank, args.lora_alpha, targets)
    except ValueError as e:
        raise usage_error(f"--targets: {e}") from None
    text = data.read_text_file(args.data)
    ids = np.array(tokenizer.encode(text), dtype=np.int64)
    block = args.block_size or meta["model_config"]["block_size"]
    train_ids, val_ids = data.train_val_split(ids)
    task = LMTask(train_ids, val_ids, block, args.batch_size)
    params = lora_parameters(model)
    trainable, total = sum(p.data.size for p in params), model.num_parameters()
    print(f"LoRA rank {args.lora_rank} on {len(wrapped)} layers ({', '.join(sorted(set(targets)))}): {trainable:,} "
          f"trainable parameters of {total:,} ({100 * trainable / total:.2f} %)", file=sys.stderr)
    cfg = TrainConfig(max_steps=args.max_steps, lr=args.lr, min_lr=args.lr / 10, warmup_steps=min(50, args.max_steps // 10),
                      eval_interval=args.eval_interval, eval_batches=args.eval_batches, seed=args.seed, threads=1)
    trainer = AdapterTrainer(model, task, AdamW(params, lr=args.lr, weight_decay=0.0), cfg, out,
                             {"kind": meta["kind"], "base": str(base)})
    val = trainer.run()
    print(f"validation loss {val:.4f} on {args.data} after {trainer.step} steps; adapters in {out}")
    print(f"\nnext: minillm generate --{'pretrained' if args.pretrained else 'ckpt'} {base} --adapters {out} "
          "--prompt 'The '")
    return 0
