"""The import-profiles goal as written in a connection file."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import (
    Field,
    model_validator,
)

from connector.config.goal_parts import (
    ImportGoalBase,
    ProfileMatch,
)


class ImportProfilesGoal(ImportGoalBase):
    """Rows of delimited files from S3 into profiles, by mapping rules."""

    type: Literal["import-profiles"] = Field(description="The goal type.")
    match: ProfileMatch = Field(description="How a row finds its profile.")
    delete_column: str | None = Field(
        default=None,
        description="A column whose true value (format.true_values) deletes the matched profile.",
    )
    on_change: Literal["reapply", "replace"] = Field(
        default="reapply",
        description="A changed file (new content, or a changed goal configuration) is applied "
        "again: `reapply` on top of what its earlier version did (sums add again); `replace` "
        "takes the earlier version's sums and added values back first, so each file counts once.",
    )

    @model_validator(mode="after")
    def _something_to_import(self) -> Self:
        if not self.mappings and not self.map_all_columns:
            raise ValueError("an import goal needs `mappings` or `map_all_columns: true`")
        return self
