"""Error masking that costs nothing on error-free results.

strawberry's ``MaskErrors`` checks every result against a runtime-checkable
``Protocol`` (an ``isinstance`` that inspects the class's attributes each
time); a subscription with a thousand subscribers pays it per message.
``LeanMaskErrors`` masks exactly the same errors, looking at ``errors`` first.
"""

from __future__ import annotations

from strawberry.extensions import MaskErrors


class LeanMaskErrors(MaskErrors):
    """``MaskErrors`` whose check of a result is one attribute read."""

    def _process_result(self, result: object) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]
