"""Greedy decoding against beam search on a trained code -> name checkpoint, for several beam widths
and length penalties, on the validation or test split.

    minillm train --model seq2seq --out runs/seq2seq
    python benchmarks/seq2seq_decoding.py --ckpt runs/seq2seq [--split val] [--beams 4,8] [--alphas 0,1,2]

Prints, per decoder, exact match, subtoken precision, recall and F1, BLEU (training/metrics.py), the
mean length of the outputs in subtokens, and the seconds it took; the first row is the baseline
that always answers the most frequent training name. The split's references are rebuilt from
this Python's standard library, as `minillm train` built them.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from minillm.cli.commands import build_model                          # noqa: E402
from minillm.cli.seq2seq_commands import MAX_TARGET_LEN, load_seq2seq, scores   # noqa: E402
from minillm.training import code2name                                 # noqa: E402
from minillm.training.seq2seq_task import translate                    # noqa: E402


def row(name, predictions, references, seconds):
    """One line of the table."""
    s = scores(predictions, references)
    length = np.mean([len(p.split()) for p in predictions])
    return (f"{name:<28} {s['exact_match']:>6.3f} {s['precision']:>9.3f} {s['recall']:>7.3f} {s['f1']:>6.3f} "
            f"{s['bleu']:>6.2f} {length:>7.2f} {seconds:>6.1f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", required=True, help="a checkpoint of `minillm train --model seq2seq` (code2name)")
    p.add_argument("--split", choices=["val", "test"], default="val")
    p.add_argument("--beams", default="4", help="comma-separated beam widths")
    p.add_argument("--alphas", default="0,1,2", help="comma-separated length penalties")
    args = p.parse_args()
    model, src_tok, tgt_tok, meta = load_seq2seq(args.ckpt, build_model)
    if meta.get("data") != "code2name":
        sys.exit(f"{args.ckpt} was trained on {meta.get('data')!r}; this script scores code2name checkpoints")
    pairs = code2name.build()[args.split]
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    print(f"{args.ckpt}, {args.split} split, {len(pairs)} pairs")
    print(f"{'decoder':<28} {'exact':>6} {'precision':>9} {'recall':>7} {'F1':>6} {'BLEU':>6} {'length':>7} {'s':>6}")
    print(row(f"baseline ({meta['baseline']})", [meta["baseline"]] * len(pairs), references, 0.0))
    t0 = time.perf_counter()
    greedy = translate(model, sources, src_tok, tgt_tok, 1, max_len=MAX_TARGET_LEN)
    print(row("greedy", greedy, references, time.perf_counter() - t0))
    for beam in (int(b) for b in args.beams.split(",")):
        for alpha in (float(a) for a in args.alphas.split(",")):
            t0 = time.perf_counter()
            nbest = translate(model, sources, src_tok, tgt_tok, beam, alpha, MAX_TARGET_LEN)
            print(row(f"beam {beam}, alpha {alpha:g}", [h[0][0] for h in nbest], references, time.perf_counter() - t0))
    print(f"references: mean length {np.mean([len(r.split()) for r in references]):.2f}")


if __name__ == "__main__":
    main()
