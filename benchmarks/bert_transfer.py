"""Does masked-LM pre-training help? Fine-tune a pre-trained BERT and the same network from
scratch on the docstring-package set, several seeds each, and print test accuracy along the way.

    minillm train --model bert --tokenizer bpe --vocab-size 1024 --max-seconds 600 --out runs/bert-bpe
    python benchmarks/bert_transfer.py --ckpt runs/bert-bpe [--seeds 0,1,2] [--train-examples 128,all]

Ten CPU minutes leave the masked-LM on its plateau (validation loss ~5.4); the README's figures
use a checkpoint that left it, pre-trained on a GPU with
    minillm train --model bert --tokenizer bpe --vocab-size 1024 --backend cupy --batch-size 128 \
        --dropout 0.1 --warmup-steps 500 --max-steps 9000 --out runs/bert-bpe

For each training-set size (all 509 docstrings, or a balanced subset: scarce labels), each seed
and each start (pre-trained weights / random weights), the classifier is fine-tuned by the code of
`minillm classify` itself (`commands.classifier_trainer`: AdamW lr 3e-4, batch 32, warm-up then
cosine, dropout 0.1, 300 steps) and scored on the 127 test docstrings every --eval-every steps.
The seed sets the classifier's initial weights (and, from scratch, the encoder's), the batches
and the dropout masks.
Test accuracy on 127 examples moves in steps of 0.008 and its standard error is about 0.035,
which is why one run per side says little and the table shows the mean over seeds.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from minillm.training import data                                                # noqa: E402
from minillm.training.checkpoint import load_checkpoint                          # noqa: E402
from minillm.cli.commands import classifier_trainer                         # noqa: E402
from minillm.training.tasks import ClassifyTask                                  # noqa: E402
from minillm.tokenizers import tokenizer_from_dict                      # noqa: E402


def fine_tune(meta, state, task, num_labels, from_scratch, seed, steps, lr, eval_every):
    """Test accuracy after every eval_every steps of `minillm classify`'s fine-tuning run."""
    with tempfile.TemporaryDirectory() as out:
        trainer = classifier_trainer(meta, state, task, num_labels, from_scratch, lr, steps, seed, out, quiet=True)
        curve = []
        for stop in range(eval_every, steps + 1, eval_every):
            trainer.run(stop_step=stop)
            curve.append(task.accuracy(trainer.model))
    return curve


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True, help="a checkpoint of `minillm train --model bert`")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--train-examples", default="128,all", help="comma-separated sizes; 'all' = the whole set")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--lr", type=float, default=3e-4)
    args = ap.parse_args()
    meta, state, _ = load_checkpoint(args.ckpt, expected_kind="bert")
    tok = tokenizer_from_dict(meta["tokenizer"])
    train_all, test, names = data.labelled_docstrings()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"checkpoint {args.ckpt} (masked-LM val loss {meta.get('val_loss')}, step {meta.get('step')}); "
          f"{len(names)} classes, {len(test)} test docstrings; seeds {seeds}; date {time.strftime('%Y-%m-%d')}")
    for size in args.train_examples.split(","):
        train = train_all if size == "all" else data.first_per_class(train_all, int(size))
        task = ClassifyTask(train, test, tok, min(64, meta["model_config"]["max_position"]), 32)
        curves = {start: [fine_tune(meta, state, task, len(names), scratch, s, args.steps, args.lr, args.eval_every)
                          for s in seeds]
                  for start, scratch in (("pre-trained", False), ("from scratch", True))}
        print(f"\n{len(train)} training docstrings: test accuracy, mean over seeds (each seed)")
        print(f"{'step':>5} {'pre-trained':>30} {'from scratch':>30} {'difference':>10}")
        for i in range(args.steps // args.eval_every):
            row = [np.array([c[i] for c in curves[start]]) for start in ("pre-trained", "from scratch")]
            cells = [f"{r.mean():.3f} ({' '.join(f'{a:.3f}' for a in r)})" for r in row]
            print(f"{(i + 1) * args.eval_every:>5} {cells[0]:>30} {cells[1]:>30} {row[0].mean() - row[1].mean():>+10.3f}")


if __name__ == "__main__":
    main()
