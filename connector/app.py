"""What every command needs: settings, the goals folder, the store, opened once and lazily."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from connector.config import Workspace, load_workspace
from connector.settings import Settings, load_settings
from connector.storage import ProfileStore, open_store


class App:
    """The wiring between the command line (or the daemon) and the layers below."""

    def __init__(self, settings: Settings, *, create_store: bool = True) -> None:
        self.settings = settings
        self.create_store = create_store
        """False for the read commands: a missing store is StoreNotFoundError, never created."""

    @classmethod
    def from_config(cls, config_file: Path | None = None, *, create_store: bool = True) -> App:
        return cls(load_settings(config_file), create_store=create_store)

    @cached_property
    def workspace(self) -> Workspace:
        """The goals folder, validated; raises ConfigError listing every problem."""
        return load_workspace(self.settings.goals_dir)

    @cached_property
    def store(self) -> ProfileStore:
        return open_store(self.settings.database, create=self.create_store)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
