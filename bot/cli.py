"""The `clarity` command: serve, worker, migrate, receive, scan, token, link, secret."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from bot.settings import DEFAULT_DATABASE_URL, SettingsError, load_settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bot import logs
    from bot.app import create_app

    settings = load_settings()
    logs.configure(secrets=settings.secret_values())
    uvicorn.run(
        create_app(settings), host=args.host, port=args.port, log_config=None, access_log=False
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from bot import logs, metrics
    from bot.worker import create_worker

    settings = load_settings()
    logs.configure(secrets=settings.secret_values())
    if settings.worker_nice:
        os.nice(settings.worker_nice)  # builds' sandboxes inherit it
    if settings.metrics_port:  # this process's own /metrics (see bot.metrics for why)
        metrics.serve(settings.metrics_port)
    if args.lane in ("fast", "slow"):
        create_worker(settings, args.lane, burst=args.burst).run()
    else:
        import asyncio

        from bot.worker import run_lanes

        asyncio.run(run_lanes(settings, ("fast", "slow"), burst=args.burst))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from bot.migrate import upgrade

    # Migrating needs only the database URL, not the App's credentials.
    upgrade(_database_url(args))
    print("database schema is up to date")
    return 0


def _receive(args: argparse.Namespace) -> int:
    from bot import logs
    from bot.receive import receive

    settings = load_settings()
    logs.configure(json=False, secrets=settings.secret_values())
    try:
        payload = json.loads(Path(args.payload).read_text())
    except (OSError, ValueError) as error:
        print(f"clarity receive: cannot read {args.payload}: {error}", file=sys.stderr)
        return 2
    report = asyncio.run(receive(settings, args.event, payload))
    print(report.render())
    return 0 if report.ok else 1


def _demo(args: argparse.Namespace) -> int:
    from bot.demo import DemoError, main

    url = (
        os.environ.get("CLARITY_REDIS_URL")
        or os.environ.get("REDIS_URL")
        or "redis://127.0.0.1:6379/0"
    )
    try:
        return main(url)
    except DemoError as error:
        print(f"clarity demo: {error}", file=sys.stderr)
        return 2


def _database_url(args: argparse.Namespace) -> str:
    return (
        getattr(args, "database_url", None)
        or os.environ.get("CLARITY_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )


def _token(args: argparse.Namespace) -> int:
    from bot.auth import Scope, create_token, revoke_token
    from bot.db import Database

    async def run() -> int:
        db = Database(_database_url(args))
        try:
            if args.action == "create":
                token = await create_token(
                    db, args.name, [Scope(s) for s in args.scope or ["read"]]
                )
                print(token)  # shown once; only its hash is stored
                return 0
            revoked = await revoke_token(db, args.name)
            print(f"revoked {revoked} token(s) named {args.name!r}")
            return 0 if revoked else 1
        finally:
            await db.dispose()

    return asyncio.run(run())


def _link(args: argparse.Namespace) -> int:
    from bot.auth import capability

    settings = load_settings()
    link = capability(args.build_id, settings.link_key(), ttl=args.days * 86400)
    print(f"{settings.public_url.rstrip('/')}/v1/builds/{args.build_id}?cap={link}")
    return 0


class _BadInput(Exception):
    """Input `clarity secret` refuses (exit 2)."""


def _secret_value(args: argparse.Namespace) -> str:
    # Never from argv: any user on the host can read it with `ps`.
    if args.from_env:
        if args.from_env not in os.environ:
            raise _BadInput(f"environment variable {args.from_env} is not set")
        return os.environ[args.from_env]
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"value of {args.name}: ")
    # One trailing line end is the shell's (`echo "$KEY" |`), not the secret's.
    return sys.stdin.read().removesuffix("\n").removesuffix("\r")


def _encryption_keys() -> list[str]:
    # Only the keys and the database are needed here, not the App's credentials.
    raw = os.environ.get("CLARITY_ENCRYPTION_KEYS", "")
    return [key.strip() for key in raw.split(",") if key.strip()]


def _secret(args: argparse.Namespace) -> int:
    from bot.db import Database
    from bot.secret_store import InvalidEncryptionKey, SecretStore, SecretStoreError, new_key

    if args.action == "new-key":
        print(new_key())  # shown once: put it first in CLARITY_ENCRYPTION_KEYS
        return 0

    async def act(store: SecretStore) -> int:
        installation = getattr(args, "installation", None)
        if args.action == "set":
            stored = await store.put(installation, args.name, _secret_value(args))
            print(f"stored {args.name!r} for installation {installation} (key {stored.key_id})")
        elif args.action == "list":
            secrets = await store.list_masked(installation)
            for secret in secrets:
                when = secret.updated_at.isoformat(timespec="seconds")
                print(f"{secret.name}\t{secret.mask}\tkey {secret.key_id}\tupdated {when}")
            if not secrets:
                print(f"installation {installation} has no secrets")
        elif args.action == "delete":
            if not await store.delete(installation, args.name):
                print(f"installation {installation} has no secret {args.name!r}")
                return 1
            print(f"deleted {args.name!r} from installation {installation}")
        else:
            print(f"re-sealed {await store.rotate()} secret(s) with key {store.newest_key_id}")
        return 0

    async def run() -> int:
        db = Database(_database_url(args))
        try:
            return await act(SecretStore(db, _encryption_keys()))
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except InvalidEncryptionKey as error:
        print(f"clarity secret: CLARITY_ENCRYPTION_KEYS: {error}", file=sys.stderr)
        return 2
    except (SecretStoreError, _BadInput) as error:
        print(f"clarity secret: {error}", file=sys.stderr)
        return 2


def _scan(argv: list[str]) -> int:
    from scanner.cli import main as scan_main

    return scan_main(argv)


def _setup(args: argparse.Namespace) -> int:
    from bot.setup import API_URL, APP_YML, SetupError, SetupOptions, run

    options = SetupOptions(
        webhook_url=args.webhook_url,
        env_file=Path(args.env_file),
        private_key_file=Path(args.private_key_file) if args.private_key_file else None,
        org=args.org,
        github_url=args.github_url,
        api_url=args.api_url or os.environ.get("CLARITY_GITHUB_API_URL") or API_URL,
        manifest_file=Path(args.manifest) if args.manifest else APP_YML,
        host=args.host,
        port=args.port,
        force=args.force,
    )
    try:
        return run(options)
    except SetupError as error:
        print(f"clarity setup: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clarity", description="Clarity Check service and tools.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web service (webhook intake)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="web processes (default 1)")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run an arq worker")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    worker.add_argument(
        "--lane",
        choices=("fast", "slow", "all"),
        default="all",
        help="fast: deliveries and Tier 1; slow: deep scans and fixes; all: both (default)",
    )
    worker.set_defaults(run=_worker)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--database-url", help="defaults to CLARITY_DATABASE_URL / DATABASE_URL")
    migrate.set_defaults(run=_migrate)

    receive = commands.add_parser(
        "receive", help="replay a saved webhook payload through the handlers"
    )
    receive.add_argument(
        "-e", "--event", required=True, help="the X-GitHub-Event name, e.g. pull_request"
    )
    receive.add_argument("-p", "--payload", required=True, help="path to the JSON payload")
    receive.set_defaults(run=_receive)

    token = commands.add_parser("token", help="create or revoke an operator API token for /v1")
    token.add_argument("action", choices=["create", "revoke"])
    token.add_argument("name")
    token.add_argument(
        "--scope",
        action="append",
        # bot.auth.Scope's values, spelled out so that parsing does not import the database.
        choices=["read", "control", "secrets:read", "secrets:write"],
        help="repeatable; default read",
    )
    token.set_defaults(run=_token)

    link = commands.add_parser("link", help="print a signed, expiring link to one build")
    link.add_argument("build_id", type=int)
    link.add_argument("--days", type=float, default=30)
    link.set_defaults(run=_link)

    secret = commands.add_parser(
        "secret", help="manage installations' secrets, sealed with CLARITY_ENCRYPTION_KEYS"
    )
    actions = secret.add_subparsers(dest="action", required=True)
    put = actions.add_parser(
        "set", help="store a secret read from stdin (one trailing newline dropped) or --from-env"
    )
    put.add_argument("installation", type=int)
    put.add_argument("name")
    put.add_argument("--from-env", metavar="VAR", help="read the value from this variable")
    listed = actions.add_parser("list", help="an installation's secrets, masked")
    listed.add_argument("installation", type=int)
    removed = actions.add_parser("delete", help="remove one secret")
    removed.add_argument("installation", type=int)
    removed.add_argument("name")
    actions.add_parser("rotate", help="re-seal every secret with the first key")
    actions.add_parser("new-key", help="print a new encryption key")
    secret.set_defaults(run=_secret)

    demo = commands.add_parser("demo", help="run the whole loop locally on embedded defaults")
    demo.set_defaults(run=_demo)

    setup = commands.add_parser(
        "setup", help="register the GitHub App (manifest flow) and write its credentials"
    )
    setup.add_argument(
        "--webhook-url",
        required=True,
        help="where GitHub sends webhooks: https://HOST/webhooks/github",
    )
    setup.add_argument("--env-file", default=".env", help="the environment file to write (.env)")
    setup.add_argument(
        "--private-key-file",
        help="where to write the App's key (default: github-app-key.pem beside the env file)",
    )
    setup.add_argument("--org", help="register the App on this organization, not your account")
    setup.add_argument(
        "--github-url",
        default="https://github.com",
        help="GitHub's web address (GitHub Enterprise)",
    )
    setup.add_argument(
        "--api-url", help="GitHub's API (default CLARITY_GITHUB_API_URL or api.github.com)"
    )
    setup.add_argument("--manifest", help="the App manifest (default: app.yml)")
    setup.add_argument("--host", default="127.0.0.1", help="the local setup page's address")
    setup.add_argument("--port", type=int, default=3000, help="its port (0: any free port)")
    setup.add_argument(
        "--force", action="store_true", help="replace the App the env file already names"
    )
    setup.set_defaults(run=_setup)

    commands.add_parser("scan", help="scan a directory (see `clarity scan --help`)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "scan":
        return _scan(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SettingsError as error:
        print(f"clarity {args.command}: {error}", file=sys.stderr)
        return 2
