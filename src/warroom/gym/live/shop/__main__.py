"""`python -m warroom.gym.live.shop serve|gateway|load`: one process of the shop.

    serve --config FILE                  the service the config names, until SIGTERM
    gateway --port P                     the third-party payment gateway stub
    load --target URL --rps R --seconds S [--seed N]

A bad config file or target is one line on stderr and exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from warroom.errors import InputError

USAGE_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m warroom.gym.live.shop")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run one shop service")
    serve.add_argument("--config", type=Path, required=True, help="the service's JSON config")
    gateway = commands.add_parser("gateway", help="run the payment gateway stub")
    gateway.add_argument("--port", type=int, required=True)
    load = commands.add_parser("load", help="send shoppers to the frontend")
    load.add_argument("--target", required=True, help="http://127.0.0.1:PORT of the frontend")
    load.add_argument("--rps", type=float, required=True, help="mean arrivals per second")
    load.add_argument("--seconds", type=float, required=True, help="how long to run")
    load.add_argument("--seed", type=int, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; its exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from warroom.gym.live.shop.app import serve
            from warroom.gym.live.shop.config import load_config

            serve(load_config(args.config))
        elif args.command == "gateway":
            from warroom.gym.live.shop.gateway import run_gateway

            asyncio.run(run_gateway(args.port))
        else:
            return _load(args)
    except InputError as err:
        print(f"shop: error: {err}", file=sys.stderr)
        return USAGE_ERROR
    return 0


def _load(args: argparse.Namespace) -> int:
    from warroom.gym.live.shop.load import check_target, run_load

    check_target(args.target)
    if args.rps <= 0 or args.seconds <= 0:
        raise InputError("--rps and --seconds must be positive")
    tally = asyncio.run(run_load(args.target, args.rps, args.seconds, args.seed))
    print(tally.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
