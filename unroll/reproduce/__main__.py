"""`python -m unroll.reproduce ista-net ...`: the same as `unroll reproduce`."""
import argparse
import sys

from .command import add_parser

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m unroll.reproduce")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["reproduce", *sys.argv[1:]])
    sys.exit(args.func(args))
