"""`techmatch serve`: the web service on uvicorn. Registered by `matcher.cli.commands` when present."""

from __future__ import annotations

import argparse
import os
import sys


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `serve` command to the `techmatch` command line."""
    sp = subparsers.add_parser(
        "serve", help="start the web service (API and web page)",
        description="Start the web service: REST API under /api, the web page at /, docs at /docs.")
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    sp.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    sp.add_argument("--db", default=os.environ.get("TECHMATCH_DB_URL"),
                    help="database file or URL (default: ./techmatch-data/techmatch.db; "
                         "postgresql+psycopg://... works too)")
    sp.add_argument("--model", "-m", default=os.environ.get("TECHMATCH_MODEL", "e5-multilingual-small"),
                    help="embedding model (default: %(default)s; 'fake' for tests)")
    sp.add_argument("--data-dir", help="folder for the derived index (default: beside the database)")
    sp.add_argument("--demo", action="store_true",
                    help="load the bundled Qiqihar corpus into an empty database and print demo tokens")
    sp.add_argument("--log-level", default=os.environ.get("TECHMATCH_LOG_LEVEL", "info"))
    sp.add_argument("--workers", type=int, default=int(os.environ.get("TECHMATCH_WORKERS", "1")),
                    help="worker processes (default: %(default)s); every worker answers from an index "
                         "holding every committed write (docs/service.md)")
    sp.set_defaults(func=cmd_serve)
    return sp


def add_db_parser(subparsers) -> argparse.ArgumentParser:
    """Add `techmatch db upgrade|current` (schema migrations) to the command line."""
    sp = subparsers.add_parser("db", help="the service database's schema (migrations)",
                               description="Show or upgrade the schema of the service database.")
    dsub = sp.add_subparsers(dest="db_command", required=True)
    for name, helptext in (("upgrade", "migrate the database to this release's schema (back it up first)"),
                           ("current", "print the database's schema revision and this release's head")):
        p = dsub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--db", default=os.environ.get("TECHMATCH_DB_URL"),
                       help="database file or URL (default: ./techmatch-data/techmatch.db)")
        p.set_defaults(func=cmd_db)
    return sp


def cmd_db(args) -> int:
    from service.settings import DEFAULT_DB_URL, db_url_from_arg, redact_url
    from service.storage import migrate
    from service.storage.db import init_db, make_engine

    url = db_url_from_arg(args.db) if args.db else DEFAULT_DB_URL
    engine = make_engine(url)
    try:
        if args.db_command == "current":
            rev = migrate.current(engine)
            state = ("empty" if rev is None else "current" if rev == migrate.head()
                     else "unknown to this release" if rev not in migrate.known_revisions() else "behind")
            print(f"database: {redact_url(url)}\nrevision: {rev or '-'} ({state})\nhead: {migrate.head()}")
            return 0
        before, after = migrate.upgrade(engine)
        init_db(engine)  # the meta rows of a new database
        print(f"database: {redact_url(url)}\nupgraded: {before or '(empty)'} -> {after}")
        return 0
    except migrate.SchemaError as exc:
        print(f"techmatch db: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def cmd_serve(args) -> int:
    import uvicorn

    from service.app import create_app
    from service.middleware import configure_logging
    from service.settings import Settings, db_url_from_arg, redact_url

    overrides: dict = {"model": args.model}
    if args.db:
        overrides["db_url"] = db_url_from_arg(args.db)
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.demo:
        overrides["demo"] = True
    settings = Settings(**overrides)
    configure_logging(args.log_level)
    from service.storage.db import init_db, make_engine
    from service.storage.migrate import SchemaError

    engine = make_engine(settings.db_url)
    try:
        init_db(engine)  # a new database is created; one whose schema is behind is refused here
    except SchemaError as exc:
        print(f"techmatch serve: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if settings.demo:
        _print_demo_tokens(settings)
    if args.workers < 1:
        print("techmatch serve: --workers must be at least 1", file=sys.stderr)
        return 2
    where = redact_url(settings.db_url)
    print(f"techmatch: open http://{args.host}:{args.port}  (API docs: /docs; database: {where}).\n"
          "techmatch: matching is available once the index is built (a log line says \"ready\"; "
          "the first start embeds every record, later starts reuse the saved index).",
          file=sys.stderr, flush=True)
    common = {"host": args.host, "port": args.port, "access_log": False, "log_config": None,
              "log_level": args.log_level.lower(), "timeout_graceful_shutdown": 5}
    if args.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return 0
    # Several processes: each builds its app from the environment. The index is built (or
    # brought forward) once here and saved, so the workers load it instead of each embedding
    # every record.
    _prepare_index(settings)
    os.environ.update({"TECHMATCH_DB_URL": settings.db_url, "TECHMATCH_MODEL": settings.model,
                       "TECHMATCH_LOG_LEVEL": args.log_level, "TECHMATCH_DEMO": "1" if settings.demo else "0"})
    if settings.data_dir is not None:
        os.environ["TECHMATCH_DATA_DIR"] = str(settings.data_dir)
    uvicorn.run("service.app:create_worker_app", factory=True, workers=args.workers, **common)
    return 0


def _prepare_index(settings) -> None:
    import gc

    from service.jobs.live import LiveIndex, open_service_encoder
    from service.storage.db import make_engine

    engine = make_engine(settings.db_url)
    try:
        live = LiveIndex(engine, open_service_encoder(settings), settings.index_dir(), index=settings.index,
                         answer_cache_bytes=int(settings.answer_cache_mb * 2**20))
        how = live.start()
        print(f"techmatch: index {how} at revision {live.revision}; starting the workers", file=sys.stderr, flush=True)
    finally:
        engine.dispose()
    del live
    gc.collect()


def _print_demo_tokens(settings) -> None:
    from service.demo import ensure_demo_tokens, load_demo_corpus
    from service.storage.db import init_db, make_engine

    engine = make_engine(settings.db_url)
    try:
        init_db(engine)
        if load_demo_corpus(engine):
            print("techmatch: loaded the bundled Qiqihar demo corpus", file=sys.stderr)
        tokens = ensure_demo_tokens(engine)
    finally:
        engine.dispose()
    print("techmatch demo tokens (public; never use --demo for real data):", flush=True)
    for tok in tokens:
        bound = f"  (bound to {tok.binding})" if tok.binding else ""
        print(f"  {tok.role:<11} {tok.token}{bound}", flush=True)
