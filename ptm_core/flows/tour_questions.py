"""Predict, then reveal: the tour asks a one-click question before a step runs and, once it has, says in one
sentence how the answer compares with the guess (issue 24).

The sentence says only what the step's tests say. A contrast step (2, 3, the students' own images) tests pretrained
features against each other kind with McNemar's exact test on the same test images (`ContrastResult.tests`,
pretrained as a); random init and pixels are never tested against each other. So "best" is claimed only where the
tests place one kind above both others: pretrained beating both, or a kind beating pretrained that in turn beat the
third (the two tests named). A tie is called a tie: "no difference was detected", not "they are equal". Step 4 is
Welch's t-test between pretrained features and pixels at the smallest label budget (`efficiency_claim`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ptm_core.base.messages import M_, Message
from ptm_core.flows.tour import ContrastResult, EfficiencyClaim

CONTRAST_OPTIONS = (("pixels", M_("Raw pixels")), ("random", M_("Random-init backbone")),
                    ("pretrained", M_("Pretrained backbone")))
EFFICIENCY_OPTIONS = (("pretrained", M_("Pretrained features")), ("pixels", M_("Raw pixels")),
                      ("tie", M_("No difference")))
# What the sentences call each kind mid-sentence (the step captions' words).
NAMES = {"pixels": M_("raw pixels"), "random": M_("random-init features"), "pretrained": M_("pretrained features"),
         "tie": M_("no difference")}
OTHERS = ("random", "pixels")  # the kinds tested against pretrained, in ContrastResult.tests


@dataclass(frozen=True)
class Question:
    """One question: its prompt, its options as (key, label), and which reveal reads the step's outcome."""

    id: str
    prompt: Message
    options: tuple[tuple[str, Message], ...]
    kind: str  # "contrast" (a ContrastResult) or "efficiency" (an EfficiencyClaim of the shapes)

    def label(self, key: str) -> Message:
        return dict(self.options)[key]


QUESTIONS = {q.id: q for q in (
    Question("shapes", M_("Which will separate the cluttered shapes best: raw pixels, a random-init backbone or the "
                          "pretrained one?"), CONTRAST_OPTIONS, "contrast"),
    Question("digits", M_("And on handwritten digits, grey and centred, nothing like ImageNet's photos: which will "
                          "read them best?"), CONTRAST_OPTIONS, "contrast"),
    Question("efficiency", M_("With only 1 labelled image per class of the shapes, which does better: pretrained "
                              "features or raw pixels?"), EFFICIENCY_OPTIONS, "efficiency"),
    Question("own_images", M_("Which of the three will recognise your classes best: raw pixels, a random-init "
                              "backbone or the pretrained one?"), CONTRAST_OPTIONS, "contrast"),
)}


def question(question_id: str) -> Question:
    if question_id not in QUESTIONS:
        raise KeyError(f"unknown tour question {question_id!r}; one of {', '.join(QUESTIONS)}")
    return QUESTIONS[question_id]


def p_words(p: float) -> str:
    """"p = 0.41", "p = 0.003", or "p < 0.001" below that (as the page's captions write it)."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _pct(value: float) -> str:
    return f"{value:.1%}"


def reveal(question_id: str, choice: str | None, outcome) -> Message:
    """One sentence: the step's answer, as its tests give it, against the guess `choice` (an option's key; None when
    no guess was made). `outcome` is a ContrastResult (or one of its shape) or, for "efficiency", an EfficiencyClaim."""
    q = question(question_id)
    if choice is not None and choice not in dict(q.options):
        raise ValueError(f"{choice!r} is not an option of {question_id!r}")
    if choice is None:
        return M_("No guess was made before this step ran: next time, guess first, then see what the test says.")
    finding, right = (_contrast(outcome, choice) if q.kind == "contrast" else _efficiency(outcome, choice))
    name = NAMES[choice]
    if right is True:
        if q.kind == "efficiency" and choice == "tie":
            return M_("You chose no difference, and none was detected: {finding}", finding=finding)
        return M_("You chose {choice}, and you were right: {finding}", choice=name, finding=finding)
    if right is False:
        return M_("You chose {choice}, but {finding}", choice=name, finding=finding)
    return M_("You chose {choice}: {finding}", choice=name, finding=finding)


def contenders(tests: dict) -> set[str]:
    """The kinds no test places below another, directly (against pretrained) or through pretrained (a kind that
    beat pretrained, which beat the third). One kind: the tests name the best; more: they do not."""
    above = set()
    for kind in OTHERS:
        verdict = tests[kind].verdict
        if verdict != "tie":
            above.add(("pretrained", kind) if verdict == "a" else (kind, "pretrained"))
    above |= {(high, low) for high, mid in above for mid2, low in above if mid == mid2 and high != low}
    return {kind for kind in ("pixels", "random", "pretrained") if not any(low == kind for _h, low in above)}


def _contrast(result: ContrastResult, choice: str) -> tuple[Message, bool | None]:
    """(finding, whether the guess was right: True, False, or None where the tests cannot say)."""
    tests, acc = result.tests, {row.kind: _pct(row.accuracy) for row in result.rows}
    n = f"{tests['pixels'].n_test:,}"
    p = {kind: p_words(tests[kind].p_value) for kind in OTHERS}
    best = contenders(tests)
    if best == {"pretrained"}:
        return M_("{best} scored highest ({acc}) and beat both {k1} ({acc1}, {p1}) and {k2} ({acc2}, {p2}) on the "
                  "same {n} test images (McNemar's test).", best=NAMES["pretrained"], acc=acc["pretrained"],
                  k1=NAMES["random"], acc1=acc["random"], p1=p["random"], k2=NAMES["pixels"], acc2=acc["pixels"],
                  p2=p["pixels"], n=n), choice == "pretrained"
    if len(best) == 1:  # a kind beat pretrained, which beat the third: both tests, named
        top = next(iter(best))
        low = next(kind for kind in OTHERS if kind != top)
        return M_("{top} beat {mid} ({acc_top} vs {acc_mid}, {p1}), which beat {low} ({acc_low}, {p2}), on the same "
                  "{n} test images (McNemar's test).", top=NAMES[top], mid=NAMES["pretrained"], acc_top=acc[top],
                  acc_mid=acc["pretrained"], p1=p[top], low=NAMES[low], acc_low=acc[low], p2=p[low], n=n), choice == top
    if choice in OTHERS:
        return _other_choice(result, choice, acc, p, n)
    return _pretrained_choice(result, acc, p, n)


def _pretrained_choice(result: ContrastResult, acc: dict, p: dict, n: str) -> tuple[Message, bool | None]:
    """No single best, and the guess was pretrained: what each test against pretrained says."""
    tests = result.tests
    better = [kind for kind in OTHERS if tests[kind].verdict == "b"]
    if len(better) == 2:
        return M_("both {k1} ({acc1}, {p1}) and {k2} ({acc2}, {p2}) did better than {mid} ({acc}) on the same {n} "
                  "test images (McNemar's test).", k1=NAMES["random"], acc1=acc["random"], p1=p["random"],
                  k2=NAMES["pixels"], acc2=acc["pixels"], p2=p["pixels"], mid=NAMES["pretrained"],
                  acc=acc["pretrained"], n=n), False
    if better:
        return _better(better[0], "pretrained", acc, p[better[0]], n), False
    tied = [kind for kind in OTHERS if tests[kind].verdict == "tie"]
    others = (NAMES[tied[0]] if len(tied) == 1 else M_("{first} or {second}", first=NAMES[tied[0]],
                                                      second=NAMES[tied[1]]))
    ps = p[tied[0]] if len(tied) == 1 else M_("{first} and {second}", first=p[tied[0]], second=p[tied[1]])
    return _tie(_top(result), NAMES["pretrained"], others, acc, ps, n), None


def _other_choice(result: ContrastResult, choice: str, acc: dict, p: dict, n: str) -> tuple[Message, bool | None]:
    """No single best, and the guess was random init or pixels: its own test against pretrained, and the third
    kind where that changes what the test means."""
    test, third = result.tests[choice], next(kind for kind in OTHERS if kind != choice)
    if test.verdict == "a":
        return _better("pretrained", choice, acc, p[choice], n), False
    if test.verdict == "b":
        return M_("{choice} beat {mid} ({acc_c} vs {acc_mid} on the same {n} test images, McNemar's test, {p}), but "
                  "{choice} and {third} were not tested against each other, so no single best was shown.",
                  choice=NAMES[choice], mid=NAMES["pretrained"], acc_c=acc[choice], acc_mid=acc["pretrained"], n=n,
                  p=p[choice], third=NAMES[third]), None
    if result.tests[third].verdict == "b":
        return M_("no difference between {choice} and {mid} was detected on the same {n} test images ({acc_c} vs "
                  "{acc_mid}, McNemar's test, {p}), while {third} did better than {mid} ({p3}); {third} and {choice} "
                  "were not tested against each other.", choice=NAMES[choice], mid=NAMES["pretrained"],
                  acc_c=acc[choice], acc_mid=acc["pretrained"], n=n, p=p[choice], third=NAMES[third],
                  p3=p[third]), None
    return _tie(_top(result), NAMES[choice], NAMES["pretrained"], acc, p[choice], n), None


def _top(result: ContrastResult) -> str:
    return max(result.rows, key=lambda row: row.accuracy).kind


def _better(winner: str, loser: str, acc: dict, p: str, n: str) -> Message:
    return M_("{winner} did better than {loser} ({acc_w} vs {acc_l} on the same {n} test images, McNemar's test, "
              "{p}).", winner=NAMES[winner], loser=NAMES[loser], acc_w=acc[winner], acc_l=acc[loser], n=n, p=p)


def _tie(top: str, first: Message, second: Message, acc: dict, p, n: str) -> Message:
    return M_("{top} scored highest ({acc}), but no difference between {first} and {second} was detected on the same "
              "{n} test images (McNemar's test, {p}), so your guess is as good as any here.", top=NAMES[top],
              acc=acc[top], first=first, second=second, n=n, p=p)


def _efficiency(claim: EfficiencyClaim, choice: str) -> tuple[Message, bool | None]:
    """Welch's test at the smallest label budget (1 per class in both plans, as the question says)."""
    if not claim.tests:
        raise ValueError("the label-efficiency outcome has no budget tested on both pretrained features and pixels")
    k, test = min(claim.tests, key=lambda item: item[0])
    budget = M_("1 labelled image per class") if k == 1 else M_("{k} labelled images per class", k=k)
    values = {"budget": budget, "pre": NAMES["pretrained"], "pix": NAMES["pixels"], "a": _pct(test.a_mean),
              "b": _pct(test.b_mean), "p": p_words(test.p_value)}
    if test.verdict == "tie":
        finding = M_("with {budget}, no difference was detected between {pre} ({a}) and {pix} ({b}) (Welch's "
                     "t-test over the label draws, {p}).", **values)
    elif test.verdict == "a":
        finding = M_("with {budget}, {pre} averaged {a} against {b} for {pix} (Welch's t-test over the label draws, "
                     "{p}).", **values)
    else:
        finding = M_("with {budget}, {pix} averaged {b} against {a} for {pre} (Welch's t-test over the label draws, "
                     "{p}).", **values)
    if test.verdict == "tie":  # a guess of a lead is not shown wrong by a tie, only not shown right
        return finding, True if choice == "tie" else None
    return finding, choice == {"a": "pretrained", "b": "pixels"}[test.verdict]
