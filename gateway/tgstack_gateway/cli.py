"""The gateway's command line: ``tgstack-gateway <command>``.

Commands so far:
  check      read and check the configuration (settings file + secrets file); exit 2 with every problem
  synthetic  write a synthetic load as a replay file (JSON Lines), for demos and tests
"""

from __future__ import annotations

import argparse
import json
import sys
import typing as t

from tgstack_gateway.config import ConfigError, load
from tgstack_gateway.synthetic import Mix, SyntheticLoad

DEFAULT_CONFIG = "/etc/tgstack-gateway/gateway.yml"
DEFAULT_SECRETS = "/etc/tgstack-gateway/secrets.env"


def check(args: argparse.Namespace) -> int:
    try:
        config = load(args.config, args.env_file)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"{args.config}: the configuration is complete (source {config.source}, publish {config.publish_mode})")
    return 0


def synthetic(args: argparse.Namespace) -> int:
    load_ = SyntheticLoad(chats=args.chats, seed=args.seed,
                          mix=Mix(duplicates=args.duplicates, edits=args.edits, deletions=args.deletions))  # fmt: skip
    with open(args.out, "w", encoding="utf-8") as handle:
        for record in load_.records(args.count):
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
    if args.expected:
        final = [{"chat_id": chat, "message_id": message, "text": state.text, "edited_at": state.edited_at,
                  "deleted": state.deleted} for (chat, message), state in sorted(load_.final.items())]  # fmt: skip
        with open(args.expected, "w", encoding="utf-8") as handle:
            json.dump(final, handle)
    print(f"{args.out}: {args.count} records, {len(load_.final)} distinct messages in {args.chats} chats")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tgstack-gateway", description="The Telegram gateway of tgstack.hybrid")
    commands = top.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="check the configuration")
    checking.add_argument("--config", default=DEFAULT_CONFIG)
    checking.add_argument("--env-file", default=DEFAULT_SECRETS)
    checking.set_defaults(handler=check)
    making = commands.add_parser("synthetic", help="write a synthetic load as a replay file")
    making.add_argument("--out", required=True, help="the JSON Lines file to write")
    making.add_argument("--count", type=int, default=10000)
    making.add_argument("--chats", type=int, default=50)
    making.add_argument("--seed", type=int, default=1)
    making.add_argument("--duplicates", type=float, default=0.05)
    making.add_argument("--edits", type=float, default=0.05)
    making.add_argument("--deletions", type=float, default=0.01)
    making.add_argument("--expected", help="also write the final state the records must leave (JSON)")
    making.set_defaults(handler=synthetic)
    return top


def main(argv: t.Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
