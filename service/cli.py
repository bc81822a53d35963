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
    sp.set_defaults(func=cmd_serve)
    return sp


def cmd_serve(args) -> int:
    import uvicorn

    from service.app import create_app
    from service.middleware import configure_logging
    from service.settings import Settings, db_url_from_arg

    overrides: dict = {"model": args.model}
    if args.db:
        overrides["db_url"] = db_url_from_arg(args.db)
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.demo:
        overrides["demo"] = True
    settings = Settings(**overrides)
    configure_logging(args.log_level)
    if settings.demo:
        _print_demo_tokens(settings)
    app = create_app(settings)
    print(f"techmatch: open http://{args.host}:{args.port}  (API docs: /docs; database: {settings.db_url}).\n"
          "techmatch: matching is available once the index is built (a log line says \"ready\"; "
          "the first start embeds every record, later starts reuse the saved index).",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_config=None,
                log_level=args.log_level.lower())
    return 0


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
