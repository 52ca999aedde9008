"""graphql-core's validation: the work budget of the overlapping-fields rule.

The rule "overlapping fields can be merged" is quadratic in the fields that
share a response name; graphql-core bounds its work with a module-level
budget and offers no public setting for it. ``set_overlap_budget`` lowers it
(``schema.limits.OVERLAP_BUDGET``) for the whole process, with either engine.
"""

from __future__ import annotations

from graphql.validation.rules import overlapping_fields_can_be_merged


def set_overlap_budget(budget: int) -> None:
    """Bound graphql-core's overlapping-fields rule to ``budget`` comparisons (process-wide)."""
    overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = budget
