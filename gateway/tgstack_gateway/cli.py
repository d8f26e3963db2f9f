"""The gateway's command line: ``tgstack-gateway <command>``.

  run        the service: the configured source through the pipeline until SIGTERM (systemd runs this)
  check      the configuration (settings file + secrets file; exit 2 listing every problem), then each
             backend (exit 3 naming the one that cannot be reached and why); --offline: the files only
  replay     a JSON Lines file through the pipeline, then the totals as JSON (exit 0 once all is done)
  backfill   one Telegram chat's history from a message id or a date, with a progress bar
  login      create a Telegram session string interactively, once, to keep in the vault
  synthetic  write a synthetic load as a replay file (JSON Lines), for demos and tests
  bench      throughput and latency through the configured backends, with the broker's and the
             database's own rates as ceilings (bench/gateway_throughput.py runs it on the lab)

Exit status 2 is a configuration error and 4 a Telegram login problem (a dead session, a chat that cannot
be resolved): systemd does not retry either (RestartPreventExitStatus=2 4). Fixing the files or logging in
again is the way out, not a restart loop that would hammer Telegram.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import sys
import typing as t

from tgstack_gateway.config import Config, ConfigError, load
from tgstack_gateway.synthetic import Mix, SyntheticLoad

DEFAULT_CONFIG = "/etc/tgstack-gateway/gateway.yml"
DEFAULT_SECRETS = "/etc/tgstack-gateway/secrets.env"


EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3
EXIT_TELEGRAM_LOGIN = 4  # a chat that cannot be resolved, a session that is not (or no longer) logged in


def telegram_login_problem(error: BaseException) -> bool:
    """Whether ERROR is one a restart cannot fix: a bad chat list or a dead session (log in again)."""
    if "telethon" not in sys.modules:
        return False
    from telethon.errors import AuthKeyError, UnauthorizedError

    from tgstack_gateway.lock import LeaseLost
    from tgstack_gateway.telethon_source import TelegramSourceError

    if isinstance(error, LeaseLost):  # another gateway has the session: restart and wait as a standby
        return False
    return isinstance(error, TelegramSourceError | UnauthorizedError | AuthKeyError)


def configuration(args: argparse.Namespace) -> Config | None:
    try:
        return load(args.config, args.env_file)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return None


def check(args: argparse.Namespace) -> int:
    config = configuration(args)
    if config is None:
        return EXIT_CONFIG
    print(f"{args.config}: the configuration is complete (source {config.source}, publish {config.publish_mode})")
    if args.offline:
        return 0
    from tgstack_gateway.service import check_backends

    failed = 0
    for name, reachable, detail in asyncio.run(check_backends(config)):
        print(f"{name}: {'ok' if reachable else 'FAILED'}: {detail}", file=sys.stdout if reachable else sys.stderr)
        failed += not reachable
    if failed:
        print(f"{failed} backend(s) cannot be reached: check the addresses in {args.config}, the passwords in "
              f"{args.env_file}, and that the services run", file=sys.stderr)  # fmt: skip
        return EXIT_UNREACHABLE
    return 0


def run(args: argparse.Namespace) -> int:
    from tgstack_gateway.service import run_pipeline, setup_logging

    setup_logging(args.log_level)
    config = configuration(args)
    if config is None:
        return EXIT_CONFIG
    try:
        asyncio.run(run_pipeline(config))
    except Exception as error:  # a ConfigError found once running goes on to main() (exit 2)
        if not telegram_login_problem(error):
            raise
        # not retried by systemd (RestartPreventExitStatus): restarting would only hammer Telegram
        print(f"Telegram: {error}", file=sys.stderr)
        return EXIT_TELEGRAM_LOGIN
    return 0


def replay(args: argparse.Namespace) -> int:
    from tgstack_gateway.service import run_pipeline, setup_logging

    setup_logging(args.log_level)
    config = configuration(args)
    if config is None:
        return EXIT_CONFIG
    if not os.path.isfile(args.file):
        print(f"{args.file}: no such file (a JSON Lines file of records, see gateway/README.md)", file=sys.stderr)
        return EXIT_CONFIG
    # a spool of its own: the service may be running next to it, with the configured one
    config = dataclasses.replace(config, spool_dir=args.spool_dir or config.spool_dir.rstrip("/") + "-replay")
    totals = asyncio.run(run_pipeline(config, replay_path=args.file, serve_metrics=False))
    print(json.dumps(vars(totals)))
    return 0


def backfill(args: argparse.Namespace) -> int:
    from tgstack_gateway.service import run_pipeline, setup_logging

    setup_logging(args.log_level)
    config = configuration(args)
    if config is None:
        return EXIT_CONFIG
    if config.source != "telethon":
        print(f"{args.config}: backfill reads from Telegram: set source.kind to telethon", file=sys.stderr)
        return EXIT_CONFIG
    since_date = dt.datetime.fromisoformat(args.since_date) if args.since_date else None
    if since_date is not None and since_date.tzinfo is None:
        since_date = since_date.replace(tzinfo=dt.UTC)

    def progress(done: int, total: int | None) -> None:
        shown = f"{done}/{total} ({100 * done // max(total, 1)} %)" if total else str(done)
        print(f"\rbackfill {args.chat}: {shown} messages", end="", file=sys.stderr, flush=True)

    async def backfill_chat() -> t.Any:
        from tgstack_gateway.telethon_source import BackfillSource, make_client

        client = make_client(config)
        source = BackfillSource(client, args.chat, since_id=args.since_id, since_date=since_date, progress=progress)
        return await run_pipeline(config, source=source, serve_metrics=False, lease_wait=False)

    from tgstack_gateway.lock import LeaseLost

    try:
        totals = asyncio.run(backfill_chat())
    except LeaseLost as error:
        print(f"\n{error}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    print(json.dumps(vars(totals)))
    return 0


def bench(args: argparse.Namespace) -> int:
    from tgstack_gateway import bench as benchmark
    from tgstack_gateway.service import setup_logging

    setup_logging(args.log_level)
    config = configuration(args)
    if config is None:
        return EXIT_CONFIG
    return benchmark.command(args, config)


def login(args: argparse.Namespace) -> int:
    from tgstack_gateway.telethon_source import login as telegram_login

    api_id = args.api_id or os.environ.get("TGSTACK_TELEGRAM_API_ID")
    api_hash = args.api_hash or os.environ.get("TGSTACK_TELEGRAM_API_HASH")
    if not (api_id and str(api_id).isdigit() and api_hash):
        print("login needs --api-id and --api-hash (or TGSTACK_TELEGRAM_API_ID / _API_HASH): from "
              "https://my.telegram.org", file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    session = asyncio.run(telegram_login(int(api_id), api_hash, phone=args.phone, bot_token=args.bot_token))
    print("The session string (keep it in the vault as the gateway's Telegram session; it is a login):")
    print(session)
    return 0


def synthetic(args: argparse.Namespace) -> int:
    load_ = SyntheticLoad(chats=args.chats, seed=args.seed, first_chat=args.first_chat,
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

    def with_config(name: str, handler: t.Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_)
        command.add_argument("--config", default=DEFAULT_CONFIG, help=f"the settings file (default {DEFAULT_CONFIG})")
        command.add_argument("--env-file", default=DEFAULT_SECRETS, help=f"the secrets (default {DEFAULT_SECRETS})")
        command.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
        command.set_defaults(handler=handler)
        return command

    with_config("run", run, "run the gateway (the service)")
    checking = with_config("check", check, "check the configuration and every backend")
    checking.add_argument("--offline", action="store_true", help="check the files only, connect to nothing")
    replaying = with_config("replay", replay, "send a JSON Lines file through the pipeline")
    replaying.add_argument("file")
    replaying.add_argument("--spool-dir", help="where batches wait while a backend is away (default: the "
                           "configured spool directory with -replay appended)")  # fmt: skip
    backfilling = with_config("backfill", backfill, "store one chat's history")
    backfilling.add_argument("chat", help="the chat: @username, link or numeric id")
    since = backfilling.add_mutually_exclusive_group()
    since.add_argument("--since-id", type=int, help="from this message id on")
    since.add_argument("--since-date", help="from this time on (ISO 8601, UTC when no offset)")
    from tgstack_gateway.bench import add_arguments as bench_arguments

    bench_arguments(with_config("bench", bench, "measure throughput and latency against the configured backends"))
    logging_in = commands.add_parser("login", help="create a Telegram session string for the vault")
    logging_in.add_argument("--api-id")
    logging_in.add_argument("--api-hash")
    who = logging_in.add_mutually_exclusive_group()
    who.add_argument("--phone", help="log in as a user (a code is sent to Telegram)")
    who.add_argument("--bot-token", help="log in as a bot")
    logging_in.set_defaults(handler=login)
    making = commands.add_parser("synthetic", help="write a synthetic load as a replay file")
    making.add_argument("--out", required=True, help="the JSON Lines file to write")
    making.add_argument("--count", type=int, default=10000)
    making.add_argument("--chats", type=int, default=50)
    making.add_argument("--seed", type=int, default=1)
    making.add_argument("--first-chat", type=int, default=-1001000000000, help="the first chat id (counting down)")
    making.add_argument("--duplicates", type=float, default=0.05)
    making.add_argument("--edits", type=float, default=0.05)
    making.add_argument("--deletions", type=float, default=0.01)
    making.add_argument("--expected", help="also write the final state the records must leave (JSON)")
    making.set_defaults(handler=synthetic)
    return top


def main(argv: t.Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:  # found once running: metrics.listen taken, a schema older than the gateway
        print(error, file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
