"""Plan fingerprints that stay the same when a plan is reworded or its independent steps reordered.

Risk tracking uses them to notice a refused plan sent again in other words. A step is
normalised to its words: Unicode NFKC, lower case, punctuation and filler words removed,
multi-word verbs and synonyms mapped to one verb, a plural "s" dropped, and the words
after the verb sorted. Two steps depend on each other when they name a common object.
The plan's canonical order is the smallest topological order of that dependency graph, so
swapping independent steps does not change it, but swapping dependent ones does.

NOTE: sorting the words after the verb also maps "from A to B" and "from B to A" to the
same step. For rephrase detection that errs on the side of noticing a repeat, which only
matters for a requester whose plan was already refused.
"""

from __future__ import annotations

import heapq
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nc_safety.core.canonical import sha256_hex
from nc_safety.core.errors import NcSafetyError

FINGERPRINT_PREFIX = "plan1:"

DEFAULT_PHRASES: Mapping[str, str] = {
    "pick up": "pick",
    "put down": "place",
    "set down": "place",
    "hand over": "give",
    "pass over": "give",
    "turn on": "activate",
    "switch on": "activate",
    "turn off": "deactivate",
    "switch off": "deactivate",
    "go to": "go",
    "move to": "go",
    "drive to": "go",
    "navigate to": "go",
    "next to": "near",
    "close to": "near",
    "beside": "near",
    "on top of": "on",
    "onto": "on",
    "into": "in",
    "inside": "in",
}
"""Multi-word phrases replaced before the words are split, longest first."""

DEFAULT_SYNONYMS: Mapping[str, str] = {
    "grab": "pick",
    "take": "pick",
    "grasp": "pick",
    "get": "pick",
    "fetch": "bring",
    "carry": "bring",
    "deliver": "bring",
    "put": "place",
    "set": "place",
    "drop": "place",
    "leave": "place",
    "hand": "give",
    "pass": "give",
    "move": "go",
    "drive": "go",
    "navigate": "go",
    "travel": "go",
    "head": "go",
    "push": "push",
    "shove": "push",
    "knife": "knife",
    "knives": "knife",
    "blade": "knife",
    "kid": "child",
    "children": "child",
    "infant": "child",
    "toddler": "child",
    "person": "person",
    "people": "person",
    "human": "person",
    "stove": "stove",
    "cooker": "stove",
    "hob": "stove",
}
"""Word -> canonical word, applied after phrases."""

DEFAULT_STOP_WORDS: frozenset[str] = frozenset(
    {
        "a",
        "an",
        "the",
        "please",
        "kindly",
        "then",
        "and",
        "now",
        "next",
        "after",
        "that",
        "this",
        "to",
        "of",
        "up",
        "over",
        "you",
        "could",
        "would",
        "can",
        "will",
        "just",
        "robot",
        "it",
        "some",
        "first",
        "finally",
    }
)

DEFAULT_VERBS: frozenset[str] = frozenset(
    {"pick", "place", "give", "bring", "go", "push", "activate", "deactivate", "open", "close", "pour", "cut"}
)

_STEP_SEPARATORS = re.compile(r"\s*(?:;|\n|\bafter that\b|\band then\b|\bthen\b|,\s*then\b|\.\s+)\s*")
_NON_WORD = re.compile(r"[^\w\s]+")
_STRUCTURED_KEYS = ("action", "verb", "skill", "object", "item", "target", "destination", "location", "to")


class PlanError(NcSafetyError):
    """Raised when a plan cannot be normalised."""


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Words that normalisation maps or drops; extend it for a site's own terms."""

    phrases: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PHRASES))
    synonyms: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SYNONYMS))
    stop_words: frozenset[str] = DEFAULT_STOP_WORDS
    verbs: frozenset[str] = DEFAULT_VERBS


DEFAULT_VOCABULARY = Vocabulary()

PlanStep = str | Mapping[str, object]


def split_steps(text: str) -> list[str]:
    """Split free text such as "grab the knife, then give it to the child" into steps."""
    return [part for part in _STEP_SEPARATORS.split(text) if part and part.strip()]


def _step_text(step: PlanStep) -> str:
    if isinstance(step, str):
        return step
    if isinstance(step, Mapping):
        known = [str(step[key]) for key in _STRUCTURED_KEYS if key in step and step[key] is not None]
        rest = [f"{key} {step[key]}" for key in sorted(step) if key not in _STRUCTURED_KEYS]
        return " ".join(known + rest)
    raise PlanError(f"invalid plan step {step!r}: use a string or a mapping such as {{'action': 'pick'}}")


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def normalise_step(step: PlanStep, vocabulary: Vocabulary = DEFAULT_VOCABULARY) -> tuple[str, ...]:
    """Return the normalised words of one step: the verb first, then the other words sorted."""
    text = unicodedata.normalize("NFKC", _step_text(step)).casefold()
    text = " " + " ".join(_NON_WORD.sub(" ", text).split()) + " "
    for phrase in sorted(vocabulary.phrases, key=len, reverse=True):
        text = text.replace(f" {phrase} ", f" {vocabulary.phrases[phrase]} ")
    words = []
    for raw in text.split():
        word = vocabulary.synonyms.get(raw) or vocabulary.synonyms.get(_singular(raw)) or _singular(raw)
        if word not in vocabulary.stop_words:
            words.append(word)
    if not words:
        return ()
    verb_index = next((index for index, word in enumerate(words) if word in vocabulary.verbs), 0)
    verb = words[verb_index]
    others = words[:verb_index] + words[verb_index + 1 :]
    return (verb, *sorted(others))


def canonical_plan(
    steps: str | Sequence[PlanStep], vocabulary: Vocabulary = DEFAULT_VOCABULARY
) -> tuple[str, ...]:
    """Return the plan's normalised steps in canonical order (empty steps dropped)."""
    items = split_steps(steps) if isinstance(steps, str) else list(steps)
    normalised = [words for words in (normalise_step(step, vocabulary) for step in items) if words]
    texts = [" ".join(words) for words in normalised]
    objects = [set(words[1:]) for words in normalised]

    # Edge i -> j (i before j) when both steps name a common object.
    blockers = [0] * len(texts)
    followers: list[list[int]] = [[] for _ in texts]
    for later in range(len(texts)):
        for earlier in range(later):
            if objects[earlier] & objects[later]:
                followers[earlier].append(later)
                blockers[later] += 1
    ready = [(texts[index], index) for index in range(len(texts)) if blockers[index] == 0]
    heapq.heapify(ready)
    ordered: list[str] = []
    while ready:
        text, index = heapq.heappop(ready)
        ordered.append(text)
        for follower in followers[index]:
            blockers[follower] -= 1
            if blockers[follower] == 0:
                heapq.heappush(ready, (texts[follower], follower))
    return tuple(ordered)


def plan_fingerprint(steps: str | Sequence[PlanStep], vocabulary: Vocabulary = DEFAULT_VOCABULARY) -> str:
    """Return a fingerprint equal for rewordings and reorderings of independent steps.

    Raises PlanError when the plan has no step left after normalisation.
    """
    ordered = canonical_plan(steps, vocabulary)
    if not ordered:
        raise PlanError(f"plan {steps!r} has no steps after normalisation; send at least one action")
    return FINGERPRINT_PREFIX + sha256_hex(list(ordered))
