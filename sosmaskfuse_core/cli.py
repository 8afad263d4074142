"""The `sosmaskfuse` command line: one sub-command per job."""
import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sosmaskfuse", description=__doc__)
    parser.add_subparsers(dest="command", required=True)
    args = parser.parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
