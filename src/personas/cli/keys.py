"""``personas keys create|list|revoke``: the service's API keys, in the database ``personas serve`` uses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from personas.cli._common import console, err_console, user_errors
from personas.errors import ConfigError

app = typer.Typer(help="API keys of the HTTP service (`personas serve`): create, list, revoke.", no_args_is_help=True)

Model = Annotated[
    Path | None, typer.Option(help="The run folder given to `personas serve` (its default SQLite database).")
]
Db = Annotated[str | None, typer.Option(help="The database URL given to `personas serve --db`.")]


def _storage(model: Path | None, db: str | None) -> Any:
    from personas.api import ServeSettings, Storage

    if db is None and model is None:
        try:
            url = ServeSettings().resolved_database_url()  # PERSONAS_SERVE_MODEL_DIR / _DATABASE_URL, as serve
        except ValueError:
            raise ConfigError(
                "Say which database holds the keys: --model DIR (the run folder served) or --db URL, as given to "
                "`personas serve`."
            ) from None
    else:
        url = db or ServeSettings(model_dir=model).resolved_database_url()
    storage = Storage(url)
    storage.create_schema()
    return storage


@app.command("create")
@user_errors
def create(
    scope: Annotated[str, typer.Option(help="Comma-separated: read, write, admin.")] = "read",
    name: Annotated[str, typer.Option(help="A label to recognise the key by (who holds it).")] = "",
    run_users: Annotated[
        bool, typer.Option("--run-users", help="May also read and write the users of the run (their histories).")
    ] = False,
    model: Model = None,
    db: Db = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from personas.api.auth import create_key

    storage = _storage(model, db)
    try:
        stored, key = create_key(storage, scope, name=name, run_users=run_users)
    finally:
        storage.close()
    err_console.print(
        f"Key {stored.key_id} ({', '.join(stored.scopes)}{', run users' if stored.run_users else ''}) created. "
        "It is shown this once; send it as 'Authorization: Bearer <key>':",
        highlight=False,
    )
    typer.echo(key)  # alone on stdout, so that KEY=$(personas keys create ...) works


@app.command("list")
@user_errors
def list_keys(model: Model = None, db: Db = None) -> None:
    """The keys: id, name, scopes, created, revoked (never the keys themselves)."""
    storage = _storage(model, db)
    try:
        keys = storage.api_keys()
    finally:
        storage.close()
    table = Table(title=f"{len(keys)} API keys in {escape(storage.url)}", title_justify="left")
    for column in ("id", "name", "scopes", "run users", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key.key_id,
            escape(key.name),
            ",".join(key.scopes),
            "yes" if key.run_users else "",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    console.print(table)


@app.command("revoke")
@user_errors
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (`personas keys list`).")],
    model: Model = None,
    db: Db = None,
) -> None:
    """Revoke a key: refused by every server within PERSONAS_SERVE_KEY_RECHECK_SECONDS (default 2 s)."""
    from personas.api.auth import revoke_key

    storage = _storage(model, db)
    try:
        stored = revoke_key(storage, key_id)
    finally:
        storage.close()
    when = f" ({stored.revoked_at:%Y-%m-%d %H:%M:%S})" if stored.revoked_at else ""
    console.print(f"Key {stored.key_id} revoked{when}.", highlight=False)
