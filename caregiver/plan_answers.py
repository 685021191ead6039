"""What became of a plan or progression sent to a device: pending, accepted, refused, no answer.

The service records each ``plan`` / ``progression`` command (pending) before it
publishes it; ingest records the device's reply on ``.../reply`` (matched by
request id), so every instance on one database shows the same answer. A
command still pending :data:`ANSWER_TIMEOUT_S` after it was sent shows as
"no answer" (the device is off or away, or slow); a late reply still turns it
into accepted or refused. The broker keeps nothing for a device that is off
(it connects with a clean session, docs/mqtt.md "Commands"): one sent while the
device said it was offline is said not delivered, to be sent again once it is
back on line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from caregiver.storage import SentCommand
from core.protocol.commands import (
    Ack,
    AssignPlan,
    AssignProgression,
    ChangeProgression,
    Command,
    TestAlarm,
)
from core.protocol.messages import PlanStored, ProgressionStored, ReplyMessage
from core.protocol.plan import Plan, duration_words, plan_words
from core.protocol.walker import DEFAULT_WALKER_ID

ANSWER_TIMEOUT_S = 30.0
"""A device on line answers within a second; after this the page says it did not."""
KEPT_PER_DEVICE = 20
"""Commands the plan page lists per device (older ones are forgotten)."""

AnswerState = Literal["pending", "accepted", "refused", "no answer"]

_ACTIONS = {"hold": "hold", "release": "release the hold", "step_back": "step back a stage"}


def _for(walker: str, who: str | None) -> str:
    """ ", for Carla Díaz": ``who``, the walker as the dashboard names them
    (:func:`caregiver.walkers.named`); their id without a name; nothing for the default walker
    of a treadmill with one (``who`` None)."""
    if who is not None:
        return f", for {who}"
    return "" if walker == DEFAULT_WALKER_ID else f", for walker {walker}"


def _minutes(plan: Plan) -> str:
    return f"{duration_words(plan.duration_s)} in all"  # "10 min 10 s", never "10.1667 min"


def summary_of(command: Command, who: str | None = None) -> str:
    """What was sent, in the words the plan page shows: a plan by its name and what it
    prescribes (:func:`core.protocol.plan.plan_words`; stored with the command, so a row
    sent before says what it said then), and for whom: ``who``, the walker as the page names
    them ("for Carla Díaz", "for Default walker" on a shared treadmill; None: the default
    walker of a treadmill with one, or a name not known, said by id)."""
    match command:
        case AssignPlan(plan=plan, walker=walker):
            return f"plan {plan.name}: {plan_words(plan)} ({_minutes(plan)}){_for(walker, who)}"
        case AssignProgression(progression=progression, stage=stage, walker=walker):
            first = progression.stages[stage]
            return (
                f"progression schedule {progression.name}, from stage {stage + 1} of "
                f"{len(progression.stages)} ({first.plan.name}: "
                f"{plan_words(first.plan, first.sessions_per_week)}){_for(walker, who)}"
            )
        case ChangeProgression(action=action, walker=walker):
            return f"progression schedule: {_ACTIONS.get(action, action)}{_for(walker, who)}"
        case _:
            return type(command).__name__


def walker_of(command: Command) -> str | None:
    """Whose plan or progression ``command`` is (None: a command about no walker)."""
    match command:
        case AssignPlan(walker=w) | AssignProgression(walker=w) | ChangeProgression(walker=w):
            return w
        case _:
            return None


def sent_by(command: Command) -> str:
    """Who the command says sent it (the caregiver's user name)."""
    match command:
        case AssignPlan(by=by) | AssignProgression(by=by) | ChangeProgression(by=by):
            return by
        case Ack(by=by) | TestAlarm(by=by):
            return by
        case _:
            return "caregiver"


def answer_of(reply: ReplyMessage) -> str:
    """The reply in words: what the device did, in sentences a person reads (each begins with
    a capital and ends with a full stop: "stored as plan ..." before "The walker's progression
    ... is now held" read as one sentence in two cases), or why it refused (the device's own
    words, naming the field: shown after "Refused:"). The reply's fields are not changed."""
    if not reply.ok:
        return reply.error or "refused"
    try:
        match reply.command:
            case "plan":
                plan = msgspec.convert(reply.result, PlanStored)
                stored = (
                    f"Stored as plan {plan.plan} (revision {plan.revision}); "
                    "used from the walker's next session."
                )
                if plan.progression_held is None:
                    return stored
                return f"{stored} {plan.progression_held.words(plan.walker)}"
            case "progression":
                now = msgspec.convert(reply.result, ProgressionStored)
                said = (
                    f"Progression schedule {now.progression}: {now.change}, "
                    f"stage {now.stage} of {now.stages}."
                )
                return f"{said} {now.restored_words()}" if now.plan_restored else said
    except msgspec.ValidationError as exc:  # a device of another version: still accepted
        return f"Stored (the treadmill's answer was not understood: {exc})."
    return "Accepted."


NOT_DELIVERED = (
    "Not delivered: the treadmill is offline, and nothing sent while it is off is kept for it. "
    "Send it again once the treadmill is back on line."
)
"""A command sent while the device said it was offline (:func:`view_of`)."""


def as_sentence(text: str) -> str:
    """``text`` as a sentence: a capital first, a full stop last (an answer stored by an
    earlier release, "stored as plan ... session", reads as the new ones do)."""
    text = text.strip()
    return _ended(text[:1].upper() + text[1:]) if text else text


def _ended(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else f"{text}."


def with_name(text: str, walker: str | None, who: str | None) -> str:
    """``text``, a treadmill's answer, with the walker it names by id (``walker``: "Walker
    carla-diaz's progression ... is now held", "walker bob is already at the first stage")
    named ``who``, as the page names them (:func:`caregiver.walkers.named`): the physio never
    typed an id. Said when the page is drawn, from the names it reads then (ingest stores the
    device's words: a reply is never held up by, nor aborts a batch on, a read of names).
    Unchanged without a name, and for another walker's id ("walker bobby" is not Bob's)."""
    if walker is None or who is None or who == walker:
        return text
    named_by_id = re.compile(rf"\b[Ww]alker {re.escape(walker)}(?![\w-])")
    return named_by_id.sub(lambda _: who, text)


@dataclass(frozen=True, slots=True)
class CommandView:
    """A sent command as the plan page shows it."""

    sent: SentCommand
    state: AnswerState
    offline: bool = False
    """Unanswered, and sent while the device said it was offline: it never got it."""
    who: str | None = None
    """Its walker as the page names them (:func:`caregiver.walkers.named`; None: no name to
    say, the answer names them as the treadmill did): :func:`with_name`."""

    @property
    def text(self) -> str:
        """The answer cell's words, in sentences (the row's ``state`` is what a program reads)."""
        if self.offline and self.state in ("pending", "no answer"):
            return NOT_DELIVERED
        match self.state:
            case "pending":
                return "Sent, waiting for the treadmill's answer."
            case "accepted":
                return f"Accepted. {self.answer or 'Stored.'}"
            case "refused":
                said = with_name(self.sent.answer or "no reason given", self.sent.walker, self.who)
                return f"Refused: {_ended(said)}"
            case _:
                return (
                    f"No answer after {ANSWER_TIMEOUT_S:g} s: the treadmill may be off or off "
                    "line, and nothing sent while it is off is kept for it: send it again once "
                    "it is back on line."
                )

    @property
    def answer(self) -> str:
        """What the treadmill did, as a sentence (:func:`as_sentence`: rows stored before
        read alike), naming its walker as the page does (:func:`with_name`); "" before it
        answered."""
        return as_sentence(with_name(self.sent.answer or "", self.sent.walker, self.who))

    def as_json(self) -> dict[str, Any]:
        return {
            "request_id": self.sent.request_id,
            "command": self.sent.command,
            "summary": self.sent.summary,
            "by": self.sent.sent_by,
            "sent_at": self.sent.sent_at,
            "state": self.state,
            "answer": self.sent.answer,
            "text": self.text,
        }


def view_of(
    sent: SentCommand,
    now: float,
    timeout_s: float = ANSWER_TIMEOUT_S,
    offline_since: float | None = None,
    who: str | None = None,
) -> CommandView:
    """``offline_since``: when the service last heard the device, which said then that it is
    offline (None: not offline). A command still unanswered that was sent from then on was
    not delivered: the device's session is clean, the broker kept nothing for it. The page
    said "Sent, waiting for the treadmill's answer." beside a card saying "Monitor offline",
    then that the treadmill gets it when it is back: it never did. ``who``: its walker as the
    page names them (:attr:`CommandView.who`)."""
    offline = offline_since is not None and sent.sent_at >= offline_since
    if sent.status == "pending" and now - sent.sent_at >= timeout_s:
        return CommandView(sent, "no answer", offline, who)
    return CommandView(sent, sent.status, offline, who)
