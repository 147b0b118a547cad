"""Consent: a connection with `objectives` only processes profiles that consented to one.

A profile's consent is the multi-valued property `consented_objectives`
(an import maps a column to it like any other property). Imports apply a
row when the profile, as the row leaves it, has consented to one of the
connection's objectives; exports write only such profiles. A connection
without `objectives` processes every profile.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

CONSENT_PROPERTY = "consented_objectives"


def has_consent(properties: Mapping[str, list[str]], objectives: Collection[str]) -> bool:
    if not objectives:
        return True
    return any(value in objectives for value in properties.get(CONSENT_PROPERTY, ()))
