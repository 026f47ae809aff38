"""Pre-tokenizers of Hugging Face's tokenizer.json: how a text is cut into pieces before BPE.

Merges never cross a piece boundary, so the cut decides what a token can be. A tokenizer.json
describes it as JSON; the kinds byte-level BPE models use are:

    ByteLevel  {"add_prefix_space": bool, "use_regex": bool}   GPT-2's split pattern (if use_regex)
    Split      {"pattern": {"Regex": "..."}, "behavior": "Isolated"}   every match is a piece, and
               so is every stretch between matches (Llama 3's pattern, with \\p{L} letters, \\p{N} digits)
    Digits     {"individual_digits": bool}   each digit alone, or each run of digits (SmolLM)
    Sequence   {"pretokenizers": [...]}   each step applied to every piece of the one before

\\p{L} and friends are Unicode classes the standard library's re lacks, so patterns are compiled
with the ``regex`` package (pip install regex, which transformers and tiktoken use too).
"""

# GPT-2's pattern as the tokenizers library writes it (ByteLevel with use_regex)
BYTE_LEVEL_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _regex():
    try:
        import regex
    except ImportError:
        raise RuntimeError("a tokenizer.json split pattern needs the regex package: pip install regex") from None
    return regex


def _isolated(pattern, piece):
    """Every match of pattern in piece, and every stretch between two matches, in order."""
    out, last = [], 0
    for m in pattern.finditer(piece):
        if m.start() > last:
            out.append(piece[last:m.start()])
        if m.end() > m.start():
            out.append(m.group())
        last = m.end()
    if last < len(piece):
        out.append(piece[last:])
    return out


class PreTokenizer:
    """A tokenizer.json "pre_tokenizer" description made callable: text -> [pieces].

    An unsupported kind or option is a ValueError naming it, raised here, when the file is read.
    """

    def __init__(self, spec, where="tokenizer.json"):
        self.spec = spec
        self.steps = self._compile(spec, where)

    def _compile(self, spec, where):
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise ValueError(f"{where}: pre_tokenizer must be an object with a type, got {spec!r}"[:200])
        kind = spec["type"]
        if kind == "Sequence":
            items = spec.get("pretokenizers")
            if not isinstance(items, list):
                raise ValueError(f"{where}: a Sequence pre_tokenizer needs a list of pretokenizers")
            return [step for item in items for step in self._compile(item, where)]
        if kind == "ByteLevel":
            steps = [("prefix", None)] if spec.get("add_prefix_space", False) else []
            if spec.get("use_regex", True):
                steps.append(("isolated", _regex().compile(BYTE_LEVEL_PATTERN)))
            return steps
        if kind == "Split":
            pattern = spec.get("pattern")
            if spec.get("behavior") != "Isolated" or spec.get("invert", False) or not isinstance(pattern, dict):
                raise ValueError(f"{where}: a Split pre_tokenizer is supported with behavior Isolated, invert false "
                                 f"and a pattern, got {spec!r}"[:300])
            if "Regex" in pattern:
                return [("isolated", _regex().compile(pattern["Regex"]))]
            return [("isolated", _regex().compile(_regex().escape(pattern.get("String", ""))))]
        if kind == "Digits":
            digits = r"\p{N}" if spec.get("individual_digits", False) else r"\p{N}+"
            return [("isolated", _regex().compile(digits))]
        raise ValueError(f"{where}: pre_tokenizer type {kind!r} is not supported (ByteLevel, Split, Digits, "
                         "Sequence are)")

    def __call__(self, text):
        """The pieces of ``text``, after every step."""
        pieces = [text]
        for kind, pattern in self.steps:
            if kind == "prefix":                # ByteLevel's add_prefix_space: every piece so far
                pieces = [p if p.startswith(" ") else " " + p for p in pieces]
            else:
                pieces = [q for p in pieces for q in _isolated(pattern, p)]
        return [p for p in pieces if p]
