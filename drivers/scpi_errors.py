"""A SCPI instrument's error queue, read back and turned into one line a person can act on.

Shared by every SCPI dialect the rig speaks (the `scpi` force indicator, the `tilt`
inclinometer): commands that answer nothing are followed by SYST:ERR? where a refusal is
possible, so a rejected setting raises with the instrument's own error text and what to
do about it, instead of passing silently. Each dialect brings its own catalogue of fixes
(its contract's codes name its own commands); the SCPI classes (-100 command, -200
execution, -300 device, -400 query) are explained here once for all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.errors import DeviceProtocolError

#: the error queue holds 10 entries, then one overflow entry (-350)
QUEUE_READS = 11


@dataclass(frozen=True)
class ErrorCatalogue:
    """What to do about each error code a dialect's instrument may queue.

    `contract`: the codes its contract names; `other`: standard codes known beyond it;
    `noun`: what the instrument is called ("indicator"); `kind`: how to check its dialect
    ("a scpi indicator of this dialect"); `reopen`: how to reopen it ("reopen the gauge").
    """

    contract: dict[int, str]
    other: dict[int, str] = field(default_factory=dict)
    noun: str = "instrument"
    kind: str = "an instrument of this dialect"
    reopen: str = "reopen the instrument"

    def explain(self, code: int) -> str:
        """What to do about a SCPI error, for every code: the contract's list, the standard
        codes known beyond it, else the SCPI class the code belongs to (an unknown code must
        still say which way to look, not "see the command table")."""
        if code in self.contract:
            return self.contract[code]
        if code in self.other:
            return self.other[code]
        noun, reopen = self.noun, self.reopen
        if -199 <= code <= -100:
            return (f"a command error (SCPI class -100) the contract does not list: the {noun} did not accept the "
                    f"command's form; check it is {self.kind} and see its manual for {code}")
        if -299 <= code <= -200:
            return (f"an execution error (SCPI class -200) the contract does not list: the command was understood but "
                    f"not possible in the {noun}'s present state; {reopen} (ABOR and *CLS on open), and see "
                    f"its manual for {code} if it persists")
        if -399 <= code <= -300:
            return (f"a device-specific error (SCPI class -300) the contract does not list: the {noun} reports a "
                    f"fault of its own; see its manual for {code}, power-cycle it, and have it serviced if it persists")
        if -499 <= code <= -400:
            return (f"a query error (SCPI class -400) the contract does not list: a reply was lost or interrupted; "
                    f"{reopen}, which drains stale replies")
        return (f"an error code the contract does not list: see the {noun}'s manual for {code}; {reopen} "
                "(ABOR and *CLS on open) and power-cycle it if it persists")


def check_error_queue(link, resource: str, after: str, catalogue: ErrorCatalogue, unexpected) -> None:
    """Drain the error queue on `link` (a VisaLink); raise DeviceProtocolError with the
    first error's text and what to do about it, counting the others. `unexpected(command,
    reply, expected)` is the dialect's error for a reply that is not an error entry."""
    errors = []
    for _ in range(QUEUE_READS):
        reply = link.query("SYST:ERR?")
        code_text, _, message = reply.partition(",")
        try:
            code = int(code_text)
        except ValueError:
            raise unexpected("SYST:ERR?", reply, "'<code>,\"<message>\"'") from None
        if code == 0:
            break
        errors.append((code, message.strip().strip('"')))
    if errors:
        (code, message), more = errors[0], len(errors) - 1
        also = f" (and {more} more error{'s' if more > 1 else ''} in the queue)" if more else ""
        raise DeviceProtocolError(resource, f"{after!r} rejected: {code},\"{message}\"{also}", catalogue.explain(code))
