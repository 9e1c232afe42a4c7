"""The peer of `tether`'s word_count builtin: the usual Python way, a process pool over the
files, each worker reading its file as text and counting `str.split()` words. Prints the
total. (`bench/jobs.sh` also times the faster bytes variant, WORDCOUNT_BYTES=1.)

    python3 bench/wordcount_pool.py FILE...
"""
import os
import sys
from multiprocessing import Pool, cpu_count


def count(path):
    # Text mode, as such scripts are usually written; the corpus is ASCII, so str.split()
    # splits exactly where `wc -w` does.
    with open(path, encoding="utf-8") as f:
        return len(f.read().split())


def count_bytes(path):
    with open(path, "rb") as f:
        return len(f.read().split())


if __name__ == "__main__":
    counter = count_bytes if os.environ.get("WORDCOUNT_BYTES") == "1" else count
    with Pool(cpu_count()) as pool:
        print(sum(pool.map(counter, sys.argv[1:])))
