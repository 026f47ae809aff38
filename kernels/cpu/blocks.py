"""Long element-wise formulas run over cache-sized blocks.

A block of 64K float32 values (256 KB) stays in the L2 cache across the several passes of a
formula such as the GELU, instead of streaming a whole (B, T, 4C) array through main memory at
every pass.
"""


def for_blocks(fn, n, block=1 << 16):
    """Call fn(start, stop) over [0, n) in blocks of ``block`` items, one after the other."""
    for i in range(0, n, block):
        fn(i, min(i + block, n))
