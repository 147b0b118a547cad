"""A connection file: S3 access, schedule, notifications, consent and goals."""

from __future__ import annotations

import re
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connector.config._unique import require_unique
from connector.config.schedule import Schedule
from connector.errors import NotFoundError
from connector.exports.model import ExportProfilesGoal
from connector.goals.registry import Goal, ImportGoal
from connector.groups.model import ImportGroupsGoal
from connector.imports.model import ImportProfilesGoal

_CONNECTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class StorageSettings(BaseModel):
    """S3 access. Without keys the AWS default chain (env, profile, instance role) applies."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    region: str = Field(default="us-east-1", description="The AWS region of the buckets.")
    endpoint_url: str | None = Field(
        default=None,
        description="http(s) URL of S3-compatible storage; empty or absent: AWS itself.",
    )
    access_key_id: SecretStr | None = Field(
        default=None,
        description="With secret_access_key; without keys the AWS default chain applies. "
        "Put it in the environment: ${VAR}.",
    )
    secret_access_key: SecretStr | None = Field(
        default=None, description="With access_key_id; put it in the environment: ${VAR}."
    )
    session_token: SecretStr | None = Field(
        default=None, description="For temporary credentials; put it in the environment: ${VAR}."
    )
    connect_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=300,
        description="Seconds to open a connection to the endpoint, per attempt (default 1.5).",
    )
    read_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="Seconds without a byte from the endpoint, before an answer or mid-body, "
        "before the request is given up (default 20).",
    )
    max_attempts: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="Attempts per request, the first included (default 3); retries back off "
        "exponentially with jitter.",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value == "":
            return None  # `${ENDPOINT:-}` left empty means plain AWS
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("endpoint_url must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _keys_in_pairs(self) -> Self:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither")
        return self


class Notifications(BaseModel):
    """Who gets mail about runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: list[str] = Field(
        default_factory=list,
        description="Addresses mailed when a run fails (and succeeds, with on_success).",
    )
    on_success: bool = Field(
        default=False, description="Mail after successful runs too (failures always mail)."
    )

    @field_validator("email")
    @classmethod
    def _addresses(cls, addresses: list[str]) -> list[str]:
        wrong = [address for address in addresses if not _EMAIL.match(address)]
        if wrong:
            raise ValueError(f"not an email address: {', '.join(wrong)}")
        return addresses


class Connection(BaseModel):
    """Everything one connection file says; `id` defaults to the file's stem."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    id: str = Field(
        description="Default: the file's stem. Letters, digits, _ - and ., starting with a "
        "letter or digit.",
        json_schema_extra={"pattern": _CONNECTION_ID.pattern},
    )

    name: str = Field(default="", description="A title for people (default: the id).")
    enabled: bool = Field(default=True, description="A disabled connection is never scheduled.")
    storage: StorageSettings = Field(
        default_factory=StorageSettings, description="S3 access for every goal of the connection."
    )
    schedule: Schedule | None = Field(
        default=None,
        description="When the daemon runs the connection; absent: on demand only (connector run).",
    )
    notifications: Notifications = Field(
        default_factory=Notifications, description="Mail about runs."
    )
    objectives: list[str] = Field(
        default_factory=list,
        description="Consent: only profiles whose consented_objectives hold at least one of "
        "these are processed (default none: every profile).",
    )
    goals: list[Goal] = Field(
        min_length=1,
        description="Run in this order; at least one, names unique within the connection.",
    )

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _CONNECTION_ID.match(value):
            raise ValueError(
                f"connection id {value!r} may contain letters, digits, '_', '-' and '.'"
            )
        return value

    @model_validator(mode="after")
    def _unique_goal_names(self) -> Self:
        require_unique(
            [goal.name for goal in self.goals],
            kind="duplicate_goal_name",
            message="goal names must be unique in a connection: {values}",
            at=("goals", "name"),
        )
        return self

    @property
    def title(self) -> str:
        return self.name or self.id

    def goal(self, name: str) -> Goal:
        """The goal called `name`; NotFoundError (a KeyError) lists the names there are."""
        for goal in self.goals:
            if goal.name == name:
                return goal
        known = ", ".join(goal.name for goal in self.goals)
        raise NotFoundError(f"connection {self.id!r} has no goal {name!r} (goals: {known})")


__all__ = [
    "Connection",
    "ExportProfilesGoal",
    "ImportGoal",
    "ImportGroupsGoal",
    "ImportProfilesGoal",
    "Notifications",
    "StorageSettings",
]
