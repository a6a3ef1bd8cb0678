"""Strings the stores cannot hold are refused at the edge: the rules live in
`driftline_core.strings`, shared by every service's HTTP API (issue 18)."""

from driftline_core.strings import (
    identifier_problem,
    may_hold_control,
    may_hold_unstorable,
    refuse_unstorable_request,
    unstorable,
)

__all__ = [
    "identifier_problem",
    "may_hold_control",
    "may_hold_unstorable",
    "refuse_unstorable_request",
    "unstorable",
]
