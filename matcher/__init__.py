"""techmatch engine: match enterprises' technology demands with research partners."""

__version__ = "0.1.0"
