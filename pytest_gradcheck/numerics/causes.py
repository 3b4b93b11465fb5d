"""Why an entry or a check did not pass: one decision, read from the verdict, and the words for it.

The verdict gives every entry that does not pass a reason (refine.Chain.final, kinks.py,
entries._mark_unresolved) and puts check-wide findings in the result's messages
(noise.adopt_staircase, fast.check_fast, Problem.check_base).  ``entry_cause`` and
``message_causes`` read them into the small vocabulary below; ``decide`` picks the check's
headline cause from its status and those causes.  diagnose.py explains that decision: its
error-vs-step sweep and its bug shapes add evidence, never another verdict.

The same vocabulary says what would contradict a status; diagnose.py composes its sentences
from these phrases and tests/test_diagnosis_consistency.py checks every report of the corpus
against them:

* a failed check never uses CLEARING phrases (the disagreement is roundoff, a step-size
  artefact, the finite differences are unreliable, nothing may be wrong);
* a passed or inconclusive check never uses BLAMING phrases (the analytic value is wrong, a bug);
* an inconclusive check names its cause with CAUSE_WORDS[cause].

Layer: numerics, foundations.  Imports nothing of the package (reads strings only).
"""

from __future__ import annotations

import re
from collections import Counter

# -- the causes ---------------------------------------------------------------------------------
#: failures: a confirmed plateau (the finite differences agree with each other, not with the
#: analytic value); a value outside everything the one-sided derivatives allow at a kink; two
#: evaluations of fun at the same point differ
BUG, BUG_AT_KINK, NONDETERMINISTIC = "bug", "bug_at_kink", "nondeterministic"
#: inconclusive: a kink at the point (the value is a valid subgradient); several kinks crossed by
#: one move; f underflows; the finite differences are too coarse for the entry; f is a staircase;
#: f is not finite at the steps; the estimates did not settle; a fast-mode probe disagreed but no
#: entry did on its own
KINK, SEVERAL_KINKS, UNDERFLOW, UNRESOLVED = "kink", "several_kinks", "underflow", "unresolved"
STAIRCASE, NONFINITE, UNSETTLED, SPREAD = "staircase", "nonfinite", "unsettled", "spread"
#: inconclusive: fun jumps at the point (one-sided differences growing like 1/step): no derivative
DISCONTINUITY = "discontinuity"

FAIL_CAUSES = (BUG, BUG_AT_KINK, NONDETERMINISTIC)
INCONCLUSIVE_CAUSES = (KINK, SEVERAL_KINKS, UNDERFLOW, UNRESOLVED, STAIRCASE, NONFINITE, UNSETTLED, SPREAD,
                       DISCONTINUITY)

#: a diagnosis' ``kind``: the cause, with the kink variants folded into their family
KIND = {BUG_AT_KINK: BUG, SEVERAL_KINKS: KINK}

# -- reading the verdict's reasons --------------------------------------------------------------
#: (reason prefix, cause of an inconclusive entry, cause of a failed entry), first match wins.
#: The prefixes are those refine.Chain.final, kinks.judge_several_kinks / judge_plateau / judge_stair and
#: entries._mark_unresolved write; tests/test_diagnosis_consistency.py checks that every reason
#: the corpus produces is read here.
REASON_PREFIXES = (
    ("kink: several kinks at once", SEVERAL_KINKS, BUG_AT_KINK),
    ("kink along this direction", KINK, BUG_AT_KINK),
    ("kink", KINK, BUG_AT_KINK),
    ("staircase", STAIRCASE, BUG),
    ("discontinuity", DISCONTINUITY, BUG),
    ("unresolved (underflow)", UNDERFLOW, BUG),
    ("unresolved", UNRESOLVED, BUG),
    ("fun is not finite", NONFINITE, BUG),
    ("the finite-difference estimates did not settle", UNSETTLED, BUG),
    ("the two smallest usable steps agree", UNSETTLED, BUG),
)


def entry_cause(verdict: str, reason: str):
    """The cause of one entry that did not pass (``verdict`` "fail" or "inconclusive"), or None for
    an inconclusive entry whose reason says nothing (vector.py gives none: the caller decides
    from the numbers).  A failed entry without a reason failed on a confirmed plateau."""
    for prefix, inconclusive, failed in REASON_PREFIXES:
        if reason.startswith(prefix):
            return failed if verdict == "fail" else inconclusive
    return BUG if verdict == "fail" else None


#: (message stem, cause): check-wide findings in the result's messages.  Stems of
#: Problem.check_base, noise.adopt_staircase and fast.check_fast.
MESSAGE_STEMS = (
    ("fun is nondeterministic", NONDETERMINISTIC),
    ("fun is piecewise constant at this scale", STAIRCASE),
    ("fast mode: fun underflows", UNDERFLOW),
    ("fast mode: the probes cannot see", UNRESOLVED),
    ("random-direction probe(s) disagreed", SPREAD),
)


def message_causes(messages) -> list:
    """The causes the messages name, in MESSAGE_STEMS order."""
    found = [cause for stem, cause in MESSAGE_STEMS if any(stem in m for m in messages)]
    return found


def decide(status: str, causes: Counter, from_messages, worst=None):
    """The headline cause of a check: None for a pass.

    ``causes``: how many non-passing entries have each cause; ``from_messages``: the
    causes its messages name; ``worst``: the cause of its worst entry.  A failure is
    explained by its worst failing entry (or by nondeterminism, which fails every entry);
    an inconclusive check by the most common cause among its entries, else by what the
    messages say (fast mode's check-wide findings); a staircase is named whenever f was found to
    be one and the entries are unresolved by it."""
    if status == "pass":
        return None
    if status == "fail":
        if NONDETERMINISTIC in from_messages:
            return NONDETERMINISTIC
        return worst if worst in (BUG, BUG_AT_KINK) else (BUG_AT_KINK if causes.get(BUG_AT_KINK) and
                                                          not causes.get(BUG) else BUG)
    inconclusive = Counter({c: k for c, k in causes.items() if c in INCONCLUSIVE_CAUSES})
    cause = None
    if inconclusive:
        order = {c: j for j, c in enumerate(INCONCLUSIVE_CAUSES)}  # ties: the order above
        cause = max(inconclusive, key=lambda c: (inconclusive[c], -order[c]))
    else:
        for c in (UNDERFLOW, UNRESOLVED, SPREAD):
            if c in from_messages:
                cause = c
                break
    if STAIRCASE in from_messages and cause in (None, UNRESOLVED, UNSETTLED):
        cause = STAIRCASE
    return cause or UNSETTLED


# -- the words ----------------------------------------------------------------------------------
#: the phrase a diagnosis of an inconclusive check must contain for its cause (each is part of
#: that cause's explanation in diagnose.py)
CAUSE_WORDS = {
    KINK: "kink",
    SEVERAL_KINKS: "several kinks",
    UNDERFLOW: "underflow",
    UNRESOLVED: "too coarse to resolve",
    STAIRCASE: "piecewise constant",
    NONFINITE: "not finite",
    UNSETTLED: "did not settle",
    SPREAD: "no single entry",
    DISCONTINUITY: "jumps",
    NONDETERMINISTIC: "nondeterministic",
}

#: what a failed check never says: it clears the analytic value
CLEARING = ("step-size artefact", "nothing may be wrong", "finite differences are unreliable",
            "disagreement is roundoff", "disagreement was roundoff", "agrees with the finite differences")
#: what a passed or inconclusive check never says: it blames the analytic value
BLAME = "the analytic value is wrong"
BLAMING = (BLAME, "not a valid subgradient", "bug")


def contradictions(status: str, text: str) -> list:
    """The phrases of ``text`` that contradict ``status`` (empty when consistent)."""
    low = text.lower()
    if status == "fail":
        return [p for p in CLEARING if p in low]
    if status in ("pass", "inconclusive"):
        return [p for p in BLAMING if re.search(r"\b" + re.escape(p) + r"\b", low)]
    return []
