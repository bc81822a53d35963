"""Fixtures for the service tests: a fresh app on a temporary SQLite file with the fake
encoder, the tiny corpus of `service_testkit` and one token for every role."""

from __future__ import annotations

import pytest
from dbbackends import db_backend  # noqa: F401 - every test runs on each database
from fastapi.testclient import TestClient
from service_testkit import ADMIN_TOKEN, World, make_settings, seed, start

from matcher.retrieval.encoders import FakeEncoder
from service.app import create_app


@pytest.fixture
def make_world(tmp_path):
    """Factory: make_world(seeded=True, **settings) -> World (closed at teardown)."""
    opened: list[TestClient] = []

    def make(seeded: bool = True, encoder=None, **overrides) -> World:
        settings = make_settings(tmp_path, **overrides)
        client = TestClient(create_app(settings, encoder=encoder or FakeEncoder()))
        opened.append(start(client))
        world = World(client, settings)
        world.tokens = seed(client) if seeded else {"admin": ADMIN_TOKEN, "anonymous": None}
        return world

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def world(make_world) -> World:
    return make_world()
