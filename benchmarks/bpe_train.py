"""Training the byte-level BPE tokenizer on 1 MB of text, on one core (the aim: under a minute).

    python benchmarks/bpe_train.py [--vocab-sizes 1024,4096,8192,32768] [--megabytes 1]

Trains minillm's ByteBPETokenizer on the first --megabytes MB of the built-in corpus for each
vocabulary size and prints the seconds, the merges learned (on 1 MB, pairs seen at least twice
run out near 11,400 merges, so larger vocabularies stop there) and the tokens per byte it then
encodes a held-out 100 KB of the corpus to. The reference, measured in the same run, is Hugging Face
`tokenizers` (Rust) training a byte-level BPE on the same text with one thread, if it is installed;
its vocabulary differs a little (its own pre-tokenizer, a vocabulary counted with the 256 bytes
and no special tokens), so compare its time, not its ids.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")     # the reference on one core too (read at its import)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from minillm.training import data                                         # noqa: E402
from minillm.tokenizers import ByteBPETokenizer                  # noqa: E402


def reference_seconds(text, vocab_size):
    """Seconds for Hugging Face tokenizers to train a byte-level BPE of vocab_size on text; None if absent."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        return None
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    t0 = time.perf_counter()
    tok.train_from_iterator(text.splitlines(keepends=True), trainer)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab-sizes", default="1024,4096,8192,32768")
    ap.add_argument("--megabytes", type=float, default=1.0)
    args = ap.parse_args()
    corpus = data.builtin_corpus().encode("utf-8")
    n = int(args.megabytes * 1_000_000)
    text = corpus[:n].decode("utf-8", errors="ignore")            # cut on a byte count: drop a split character
    held_out = corpus[n:n + 100_000].decode("utf-8", errors="ignore")
    print(f"{len(text.encode('utf-8')):,} bytes of the built-in corpus; one core; date {time.strftime('%Y-%m-%d')}")
    print(f"{'vocab':>7} {'merges':>7} {'minillm s':>10} {'tokens/byte':>12} {'HF tokenizers s':>16} {'ratio':>6}")
    for vocab in (int(v) for v in args.vocab_sizes.split(",")):
        t0 = time.perf_counter()
        tok = ByteBPETokenizer.train(text, vocab)
        ours = time.perf_counter() - t0
        per_byte = len(tok.encode(held_out)) / len(held_out.encode("utf-8"))
        ref = reference_seconds(text, vocab)
        ref_s, ratio = ("-", "-") if ref is None else (f"{ref:.2f}", f"{ours / ref:.1f}")
        print(f"{vocab:7d} {len(tok.merges):7d} {ours:10.2f} {per_byte:12.3f} {ref_s:>16} {ratio:>6}")
    print("ratio: minillm seconds / HF tokenizers seconds (the aim: minillm under 60 s on 1 MB)")


if __name__ == "__main__":
    main()
