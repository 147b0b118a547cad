"""Segments: named conditions on profile properties, from the goals folder's `segments.yaml`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

from connector.config._unique import require_unique

ALL_SEGMENT = "all"
"""The built-in segment every profile belongs to."""


def _one_error(message: str) -> WrapValidator:
    """Replace pydantic's one-error-per-union-member list by a single message."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(message) from None

    return WrapValidator(validate)


Scalar = Annotated[
    bool | int | float | str | date | datetime,
    _one_error("expected one text, number, boolean or date value"),
]
Bound = Annotated[
    float | date | datetime, _one_error("gt, gte, lt and lte compare with a number or a date")
]
CONDITION_OPERATORS = ("exists", "equals", "one_of", "gt", "gte", "lt", "lte")


class Condition(BaseModel):
    """`all` / `any` of nested conditions, or a test on one property.

    A property test may combine operators (`{property: age, gte: 18, lt: 65}`):
    all of them must hold. A multi-valued property passes when any value passes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: list[Condition] | None = Field(
        default=None, description="Every one of these conditions holds (nest freely)."
    )
    any: list[Condition] | None = Field(
        default=None, description="At least one of these conditions holds (nest freely)."
    )
    property: str | None = Field(
        default=None, description="The profile property the operators beside it test."
    )
    exists: bool | None = Field(
        default=None, description="true: the property has a value; false: it has none."
    )
    equals: Scalar | None = Field(
        default=None,
        description="A value of the property equals this text, number, boolean or date.",
    )
    one_of: list[Scalar] | None = Field(
        default=None, description="A value of the property is one of these."
    )
    gt: Bound | None = Field(
        default=None, description="A value of the property is greater than this number or date."
    )
    gte: Bound | None = Field(
        default=None, description="A value of the property is at least this number or date."
    )
    lt: Bound | None = Field(
        default=None, description="A value of the property is less than this number or date."
    )
    lte: Bound | None = Field(
        default=None, description="A value of the property is at most this number or date."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        groups = [name for name in ("all", "any") if getattr(self, name) is not None]
        operators = [name for name in CONDITION_OPERATORS if getattr(self, name) is not None]
        if groups and (operators or self.property is not None):
            raise ValueError("a condition is either `all`/`any` or a property test, not both")
        if len(groups) > 1:
            raise ValueError("use `all` or `any` in one condition, not both; nest them instead")
        if not groups:
            if self.property is None:
                raise ValueError("a condition needs `all`, `any` or `property`")
            if not operators:
                raise ValueError(
                    f"condition on {self.property!r} needs an operator: {', '.join(CONDITION_OPERATORS)}"
                )
        return self


class Segment(BaseModel):
    """A named condition on profile properties; export goals name it by its id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Letters, digits, _ - and .; `all` is built in and cannot be used.",
    )
    name: str = Field(
        default="", description="A title for people (default: the id); %SEGMENT_NAME% in exports."
    )
    where: Condition = Field(description="Which profiles are members.")

    @model_validator(mode="after")
    def _not_reserved(self) -> Self:
        if self.id == ALL_SEGMENT:
            raise ValueError(f"segment id {ALL_SEGMENT!r} is built in; choose another id")
        return self

    @property
    def title(self) -> str:
        return self.name or self.id


class SegmentsFile(BaseModel):
    """The goals folder's `segments.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    segments: list[Segment] = Field(default_factory=list, description="The segments; ids unique.")

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        require_unique(
            [segment.id for segment in self.segments],
            kind="duplicate_segment_id",
            message="segment ids must be unique: {values}",
            at=("segments", "id"),
        )
        return self
