"""`python -m unroll.evaluate SPEC --ckpt PATH ...`: the same as `unroll eval`."""
import argparse
import sys

from .command import add_parser

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m unroll.evaluate")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", *sys.argv[1:]])
    sys.exit(args.func(args))
