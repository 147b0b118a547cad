"""The import-groups goal as written in a connection file."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import (
    Field,
    model_validator,
)

from connector.config.goal_parts import (
    PROFILE_ID,
    ImportGoalBase,
    StrictModel,
)


class GroupMatch(StrictModel):
    """How a row finds its group."""

    column: str = Field(
        description="The column holding the group id; an empty one rejects the row."
    )


class Members(StrictModel):
    """A column of profile identifiers (multi-valued) that belong to the group."""

    column: str = Field(
        description="The column of member identifiers, split on the multi-value separator."
    )
    property: str = Field(
        default=PROFILE_ID,
        description="The property the identifiers are values of (default profile_id).",
    )


class ImportGroupsGoal(ImportGoalBase):
    """Rows of delimited files from S3 into groups of one type, with their members."""

    type: Literal["import-groups"] = Field(description="The goal type.")
    group_type: str = Field(
        pattern=r"^[a-z][a-z0-9_-]*$",
        description="The type of the groups: lower-case letters, digits, _ and -.",
    )
    match: GroupMatch = Field(description="How a row finds its group.")
    members: Members | None = Field(
        default=None, description="The column of the group's member profiles (optional)."
    )
    members_mode: Literal["add", "replace"] = Field(
        default="add",
        description="`add`: a row's members join its group. `replace`: a group's members are "
        "exactly those of its latest row; the others leave, and an empty member list removes "
        "the group.",
    )

    @model_validator(mode="after")
    def _replace_needs_members(self) -> Self:
        if self.members_mode == "replace" and self.members is None:
            raise ValueError("members_mode: replace needs `members` (the column of members)")
        return self
