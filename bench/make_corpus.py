"""Writes a deterministic corpus: FILES files of SIZE bytes each, words of varied length
and ASCII spacing, into DIR. The same arguments always give the same bytes.

    python3 bench/make_corpus.py DIR FILES SIZE
"""
import os
import random
import sys

directory, files, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20261124)
vocabulary = [
    "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 12)))
    for _ in range(5000)
]
separators = [" "] * 12 + ["  ", "\t", "\n", " \n"]
pieces = []
length = 0
# A pool of text twice the size of one file; each file is a window into it.
while length < 2 * size:
    word = rng.choice(vocabulary) + rng.choice(separators)
    pieces.append(word)
    length += len(word)
pool = "".join(pieces).encode()
os.makedirs(directory, exist_ok=True)
for i in range(files):
    start = (i * 7919) % size
    with open(os.path.join(directory, f"doc-{i:04d}.txt"), "wb") as f:
        f.write(pool[start : start + size])
