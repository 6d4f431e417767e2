"""The ``tessera`` command: serve, migrate, plugins, admin (and plugin-provided commands).

Startup problems (bad config, a broken plugin, an unreachable database) print one line to
stderr and exit non-zero; they never hang and never print a traceback wall. Libraries'
progress chatter stays out of the way unless ``--verbose`` (or ``log_level = "debug"``)
asks for it (:mod:`kernel.console_logging`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kernel.commands import Command
from kernel.config import Settings, load_settings
from kernel.console_logging import configure_logging, library_level
from kernel.db.embedded import EmbeddedPostgres
from kernel.db.engine import Database, DatabaseUnavailable, redact
from kernel.db.migrate import head_revisions, migrate, plugin_migrations
from kernel.errors import ConfigError, PluginError, TesseraError
from kernel.plugins import installed_entry_points, load_plugins
from kernel.registry import Registry
from kernel.runtime import SchemaOutOfDate, Tessera, load_secret_key

T = TypeVar("T")


class CommandFailed(Exception):
    """A command could not do its job; the message is for the person at the terminal."""


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """The command's settings (``--verbose`` means ``log_level = "debug"``), with logging
    configured for their ``log_level``."""
    if getattr(args, "verbose", False):
        overrides["log_level"] = "debug"
    settings = load_settings(getattr(args, "config", None), **overrides)
    configure_logging(settings.log_level)
    return settings


def _banner(settings: Settings, database_url: str, embedded: EmbeddedPostgres | None) -> str:
    """What ``tessera serve`` says once it is about to serve: where, where the data lives,
    how to stop."""
    base = f"http://{settings.host}:{settings.port}"
    if embedded is not None:
        data = f"{Path(settings.data_dir).resolve()} (embedded PostgreSQL and local files)"
    else:
        data = f"{redact(database_url)} (local files in {Path(settings.data_dir).resolve()})"
    return "\n".join(
        (
            f"Tessera is serving {base}",
            f"  admin     {base}/admin",
            f"  API docs  {base}/docs",
            f"  data      {data}",
            "Stop it with Ctrl-C.",
        )
    )


async def _migrate_url(url: str, settings: Settings) -> None:
    """Migrate over ``session_database_url`` when set: the migration lock is a session
    advisory lock, which a PgBouncer in transaction mode would not keep."""
    migrations = plugin_migrations(load_plugins(settings))
    db = await Database.connect(
        settings.session_database_url or url,
        pool_size=1,
        connect_timeout=settings.db_connect_timeout,
    )
    try:
        await migrate(db.engine, migrations)
    finally:
        await db.close()


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = _settings(args)
    embedded = None
    url = settings.database_url
    if url is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        url = embedded.start()
    try:
        asyncio.run(_migrate_url(url, settings))
    finally:
        if embedded is not None:
            embedded.stop()
    heads = head_revisions(plugin_migrations(load_plugins(settings)))
    print(f"platform schema at {', '.join(sorted(heads))} ({redact(url)})")


def cmd_serve(args: argparse.Namespace) -> None:
    from kernel.serve import (
        AddressInUse,
        ServeOptions,
        require_shared_secret,
        serve_single,
        serve_workers,
    )

    overrides = {
        key: value
        for key, value in {"host": args.host, "port": args.port, "workers": args.workers}.items()
        if value is not None
    }
    settings = _settings(args, **overrides)
    require_shared_secret(settings)
    Tessera.build(settings)  # fail fast on plugin problems, before any server starts
    load_secret_key(settings)  # created once here, read by every worker
    if args.config:
        os.environ["TESSERA_CONFIG"] = str(Path(args.config).resolve())
    embedded = None
    url = settings.database_url
    if url is None:
        # Start the embedded server once, in this parent, before the workers start.
        embedded = EmbeddedPostgres(settings.data_dir)
        print(f"starting embedded PostgreSQL in {embedded.pgdata}", file=sys.stderr)
        url = embedded.start()
        os.environ["TESSERA_DATABASE_URL"] = url
    try:
        asyncio.run(_migrate_url(url, settings))
        if settings.workers > 1:
            metrics_dir = Path(settings.data_dir) / "metrics"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        print(_banner(settings, url, embedded), file=sys.stderr, flush=True)
        options = ServeOptions(settings.host, settings.port, library_level(settings.log_level))
        if settings.workers == 1:
            serve_single(options)
        else:
            try:
                status = serve_workers(options, settings.workers)
            except AddressInUse as error:
                raise CommandFailed(str(error)) from None
            if status:
                raise CommandFailed("the workers could not start; their log is above")
    finally:
        if embedded is not None:
            embedded.stop()


def cmd_plugins_list(args: argparse.Namespace) -> None:
    """Installed plugins; the enabled ones described exactly as ``GET /api/plugins`` does."""
    settings = _settings(args)
    entry_points = installed_entry_points()
    enabled = {plugin["name"]: plugin for plugin in Tessera.build(settings).describe_plugins()}
    rows = [("PLUGIN", "STATE", "VERSION", "DISTRIBUTION", "KINDS", "HOOKS")]
    for name in sorted(entry_points):
        if name in enabled:
            plugin = enabled[name]
            rows.append(
                (
                    name,
                    "enabled",
                    plugin["version"],
                    plugin["distribution"],
                    ", ".join(plugin["kinds"]) or "-",
                    ", ".join(plugin["hooks"]),
                )
            )
        else:
            dist = entry_points[name].dist
            version, distribution = (dist.version, dist.name) if dist else ("?", "?")
            rows.append((name, "disabled", version, distribution, "", ""))
    _print_columns(rows)


def _print_columns(rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` (the first one a header) in aligned columns; the last is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def _with_kernel(args: argparse.Namespace, work: Callable[[Tessera], Awaitable[T]]) -> T:
    """Run ``work`` on a started kernel (database and bus, so revocations reach every
    process), stopped afterwards whatever happened."""

    async def run() -> T:
        tessera = Tessera.build(_settings(args))
        await tessera.start()
        try:
            return await work(tessera)
        finally:
            await tessera.stop()

    return asyncio.run(run())


def cmd_admin_create(args: argparse.Namespace) -> None:
    admin_id = _with_kernel(
        args, lambda tessera: tessera.identity.create_admin(args.email, args.password)
    )
    print(f"admin {args.email} created (id {admin_id})")


def _utc(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def cmd_admin_list(args: argparse.Namespace) -> None:
    listed = _with_kernel(args, lambda tessera: tessera.identity.list_admins())
    rows = [("EMAIL", "ADDED", "LAST SIGN-IN")]
    for admin in listed:
        rows.append((admin["email"], _utc(admin["created_at"]), _utc(admin["last_login_at"])))
    _print_columns(rows)


def cmd_admin_set_password(args: argparse.Namespace) -> None:
    _with_kernel(
        args, lambda tessera: tessera.identity.set_admin_password(args.email, args.password)
    )
    print(f"admin {args.email}: password changed; their earlier sessions are signed out")


def cmd_admin_delete(args: argparse.Namespace) -> None:
    _with_kernel(args, lambda tessera: tessera.identity.delete_admin(args.email))
    print(f"admin {args.email} deleted; their sessions are signed out")


KERNEL_COMMANDS = frozenset({"serve", "migrate", "plugins", "admin"})


def plugin_commands(argv: list[str] | None) -> list[Command]:
    """Commands the enabled plugins add, or none when config or plugins do not load (the
    kernel's own commands then report the problem)."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--config")
    known, _ = early.parse_known_args(argv)
    try:
        plugins = load_plugins(load_settings(known.config))
        registry = Registry.from_hook(plugins, "register_commands", "command", Command)
    except (ConfigError, PluginError):
        return []
    commands = []
    for name, command in registry.items():
        if name in KERNEL_COMMANDS:
            raise PluginError(
                f"plugin {registry.owner(name)}: command {name!r} is reserved by the kernel"
            )
        commands.append(command())
    return commands


def _plugin_runner(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return command.run(args, _settings(args))

    return run


def build_parser(extra: Sequence[Command] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tessera", description="Tessera, a no-code backend")
    parser.add_argument("--config", help="path to tessera.toml (default: $TESSERA_CONFIG)")
    verbose_help = "log everything, libraries included (log_level = debug)"
    parser.add_argument("--verbose", "-v", action="store_true", help=verbose_help)
    # --config and --verbose are accepted after the command too (tessera serve --config FILE).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help="path to tessera.toml")
    common.add_argument(
        "--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help=verbose_help
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", parents=[common], help="migrate, then serve the API and the admin UI"
    )
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(run=cmd_serve)

    migrate_command = commands.add_parser(
        "migrate", parents=[common], help="bring the platform schema to head"
    )
    migrate_command.set_defaults(run=cmd_migrate)

    plugins = commands.add_parser("plugins", help="inspect plugins")
    plugin_commands = plugins.add_subparsers(dest="plugins_command", required=True)
    plugin_commands.add_parser("list", parents=[common], help="installed plugins").set_defaults(
        run=cmd_plugins_list
    )

    admin = commands.add_parser("admin", help="manage admins")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_commands.add_parser("create", parents=[common], help="create an admin")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.set_defaults(run=cmd_admin_create)
    admin_commands.add_parser(
        "list", parents=[common], help="every admin, with when they last signed in"
    ).set_defaults(run=cmd_admin_list)
    set_password = admin_commands.add_parser(
        "set-password",
        parents=[common],
        help="change an admin's password (signs out their sessions everywhere)",
    )
    set_password.add_argument("--email", required=True)
    set_password.add_argument("--password", required=True)
    set_password.set_defaults(run=cmd_admin_set_password)
    delete = admin_commands.add_parser(
        "delete", parents=[common], help="delete an admin (signs out their sessions everywhere)"
    )
    delete.add_argument("--email", required=True)
    delete.set_defaults(run=cmd_admin_delete)

    for command in extra:
        sub = commands.add_parser(command.name, parents=[common], help=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=_plugin_runner(command))
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        extra = plugin_commands(argv)
    except PluginError as error:
        print(f"tessera: {error}", file=sys.stderr)
        return 2
    args = build_parser(extra).parse_args(argv)
    run: Callable[[argparse.Namespace], int | None] = args.run
    try:
        code = run(args)
    except (ConfigError, PluginError, DatabaseUnavailable, SchemaOutOfDate, CommandFailed) as error:
        print(f"tessera: {error}", file=sys.stderr)
        return 2 if isinstance(error, ConfigError | PluginError) else 1
    except TesseraError as error:
        print(f"tessera: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
