"""Service settings, read from the environment (prefix ``TECHMATCH_``) or passed in by tests."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB_URL = "sqlite:///./techmatch-data/techmatch.db"


class Settings(BaseSettings):
    """Everything the service needs to start. Environment: ``TECHMATCH_<FIELD>``.

    db_url: SQLAlchemy URL (SQLite file by default; ``postgresql+psycopg://...`` works too).
    data_dir: folder for the derived index (default: next to an SQLite file, else
    ``./techmatch-data``); always safe to delete, it is rebuilt from the database.
    """

    model_config = SettingsConfigDict(env_prefix="TECHMATCH_", extra="ignore")

    db_url: str = DEFAULT_DB_URL
    model: str = "e5-multilingual-small"
    index: Literal["exact", "hnsw", "ivf"] = "exact"  # vector index; hnsw for large corpora (docs/performance.md)
    data_dir: Path | None = None
    admin_token: SecretStr | None = None
    demo: bool = False
    max_upload_mb: float = Field(default=10.0, gt=0)
    default_k: int = Field(default=10, ge=1, le=100)
    max_k: int = Field(default=100, ge=1, le=1000)
    cookie_secure: bool = False  # set when served over HTTPS
    log_level: str = "INFO"
    impression_retention_days: int = Field(default=365, ge=0)  # 0 keeps impressions forever
    impression_flush_seconds: float = Field(default=1.0, gt=0)
    # BLAS threads per process, set at start-up: a request's products are small, and on a busy
    # machine (or under concurrent requests) a second BLAS thread waiting for a core cost 8 ms
    # per 0.3 ms product, a stored-demand match at 42k 40 ms instead of 17 (docs/performance.md);
    # 0 leaves the library's default.
    blas_threads: int = Field(default=1, ge=0)
    # Texts the service encodes at a time (a start's missing vectors, a write's new records): a
    # batch's activations are the service's largest transient, 201 MB for 32 e5 texts of 256
    # tokens and 123 MB for 16, which kept a first start at 42k capabilities that encodes
    # 3,100 texts at 945 MB instead of 1,030, no slower (docs/performance.md, session 13).
    # `techmatch index` and batch runs keep the library's 32.
    encode_batch: int = Field(default=16, ge=1, le=1024)
    # The staff button trains on the 30 base features; true adds the seven evidence features
    # (docs/learning.md): a model trained on them costs a few ms more per served list.
    ranker_evidence: bool = False
    # Megabytes of engine answers each process keeps until the index changes (service.jobs.answers):
    # a stored demand's partners asked again at 42k capabilities cost 15 ms less. An answer of
    # ten partners is about 12 kB, its key (the demand) a few kB: 16 MB keep over a thousand.
    # 0 keeps none.
    answer_cache_mb: float = Field(default=16.0, ge=0)

    # `extra` fields (spreadsheet columns beyond the known ones) institutes and enterprises may see,
    # comma-separated; every other extra field is shown to bureau staff only.
    public_extra_fields: str = ""

    def public_extra(self) -> frozenset[str]:
        return frozenset(f.strip() for f in self.public_extra_fields.replace("，", ",").split(",") if f.strip())

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def index_dir(self) -> Path:
        """Where the derived index lives (see the class docstring)."""
        if self.data_dir is not None:
            return Path(self.data_dir).expanduser() / "index"
        db_file = sqlite_path(self.db_url)
        if db_file is not None:
            return db_file.parent / f"{db_file.stem}-index"
        return Path("techmatch-data") / "service-index"

    def jobs_dir(self) -> Path:
        """Where conference jobs write their files (kept: not derived, unlike the index)."""
        if self.data_dir is not None:
            return Path(self.data_dir).expanduser() / "conference-jobs"
        db_file = sqlite_path(self.db_url)
        if db_file is not None:
            return db_file.parent / f"{db_file.stem}-conference-jobs"
        return Path("techmatch-data") / "conference-jobs"


    def rankers_dir(self) -> Path:
        """Where learned ranker versions live (kept: models are trained from the database's outcomes)."""
        if self.data_dir is not None:
            return Path(self.data_dir).expanduser() / "rankers"
        db_file = sqlite_path(self.db_url)
        if db_file is not None:
            return db_file.parent / f"{db_file.stem}-rankers"
        return Path("techmatch-data") / "rankers"


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL, None for other databases or an in-memory SQLite."""
    if not url.startswith("sqlite"):
        return None
    _, _, rest = url.partition(":///")
    rest = rest.split("?", 1)[0]
    if not rest or rest == ":memory:":
        return None
    return Path(rest).expanduser()


def db_url_from_arg(value: str) -> str:
    """``--db`` takes a URL or a file path (made an absolute SQLite URL)."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def redact_url(url: str) -> str:
    """`url` fit for a log: the password (and any query string, which may hold one) hidden."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not a URL SQLAlchemy reads: show only its scheme
        return url.split(":", 1)[0] + "://***"
    if parsed.password is not None:
        parsed = parsed.set(password="***")
    if parsed.query:
        parsed = parsed.set(query={})
    return parsed.render_as_string(hide_password=False)
