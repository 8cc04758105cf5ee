"""`nc-safety eval-directives FILE.jsonl ...`: score the directive checker on a benchmark.

Two line formats are read:

- the household-benchmark format of SafeAgentBench (`instruction`, `step` list, and
  `risk_category` on unsafe tasks). A file whose name contains `unsafe` holds unsafe
  tasks, any other file safe ones, unless a line says otherwise with `"label"`.
- the project's own format: `{"label": "safe"|"unsafe", "category": "...", "directive":
  {...}}`, with the directive as docs/schemas/directive.schema.json describes it.

A task counts as refused when the verdict does not forward it (anything but comply or
modify). Every task is checked in a fresh world: records are independent scenes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nc_safety.core.directives.checker import DirectiveChecker, DirectiveResult
from nc_safety.core.directives.errors import DirectiveError
from nc_safety.core.directives.felicity import CheckContext

SAFE = "safe"
UNSAFE = "unsafe"


@dataclass(frozen=True, slots=True)
class Task:
    source: str
    """`file:line`, for messages."""
    label: str
    category: str
    text: str
    directive_json: str


@dataclass(frozen=True, slots=True)
class Outcome:
    task: Task
    result: DirectiveResult

    @property
    def refused(self) -> bool:
        return not self.result.decision.verdict.forwards


def read_tasks(path: Path, role: str, label_override: str | None) -> list[Task]:
    """Read one JSONL file; raises ValueError naming the line of any unreadable record."""
    default_label = label_override or (UNSAFE if "unsafe" in path.name.lower() else SAFE)
    tasks: list[Task] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            source = f"{path.name}:{number}"
            try:
                record = json.loads(line)
            except ValueError as error:
                raise ValueError(f"{source}: not valid JSON ({error})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{source}: each line must be a JSON object")
            tasks.append(_task(record, source, role, default_label, label_override))
    return tasks


def _task(
    record: dict[str, object], source: str, role: str, default_label: str, override: str | None
) -> Task:
    label = override or str(record.get("label", default_label))
    if label not in (SAFE, UNSAFE):
        raise ValueError(f"{source}: label must be 'safe' or 'unsafe', got {label!r}")
    if "directive" in record:
        directive = record["directive"]
        text = directive.get("text", "") if isinstance(directive, dict) else ""
        category = str(record.get("category", "uncategorized" if label == UNSAFE else SAFE))
        return Task(source, label, category, str(text), json.dumps(directive))
    steps = record.get("step")
    if not isinstance(steps, list):
        raise ValueError(f"{source}: a benchmark record needs a `step` list or a `directive` object")
    category = str(record.get("risk_category") or ("uncategorized" if label == UNSAFE else SAFE))
    directive = {
        "id": source.replace(".jsonl", ""),
        "requester": {"id": f"eval-{source}", "role": role},
        "text": str(record.get("instruction", ""))[:2000],
        "plan": steps,
    }
    return Task(source, label, category, str(record.get("instruction", "")), json.dumps(directive))


def evaluate(checker: DirectiveChecker, tasks: Sequence[Task]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for task in tasks:
        # Every record is its own scene, so no world carries over between records.
        checker.forget()
        outcomes.append(Outcome(task, checker.check_json(task.directive_json, CheckContext())))
    return outcomes


def _reason_line(result: DirectiveResult) -> str:
    decision = result.decision
    parts = []
    for reason in decision.reasons:
        step = "plan" if reason.step is None else f"step {reason.step}"
        parts.append(f"{reason.rule_id} ({step}): {reason.message}")
    return "; ".join(parts) or "(no reason)"


def report(outcomes: Sequence[Outcome], show_missed: bool) -> str:
    unsafe = [item for item in outcomes if item.task.label == UNSAFE]
    safe = [item for item in outcomes if item.task.label == SAFE]
    refused_unsafe = sum(item.refused for item in unsafe)
    refused_safe = sum(item.refused for item in safe)
    lines = ["Directive checker evaluation", ""]
    if unsafe:
        lines.append(
            f"unsafe tasks refused (recall): {refused_unsafe}/{len(unsafe)} = {refused_unsafe / len(unsafe):.1%}"
        )
    if safe:
        accepted = len(safe) - refused_safe
        lines.append(f"safe tasks accepted: {accepted}/{len(safe)} = {accepted / len(safe):.1%}")
        lines.append(f"safe tasks refused: {refused_safe}/{len(safe)} = {refused_safe / len(safe):.1%}")
    uncited = [item for item in outcomes if item.refused and not item.result.decision.reasons]
    lines.append(f"refusals without a rule id: {len(uncited)}")

    verdicts = Counter(item.result.decision.verdict.value for item in outcomes)
    lines.append("verdicts: " + ", ".join(f"{name} {count}" for name, count in sorted(verdicts.items())))
    rules = Counter(
        reason.rule_id for item in outcomes if item.refused for reason in item.result.decision.reasons
    )
    lines.append("")
    lines.append("rules fired on refused tasks:")
    lines.extend(f"  {count:4d}  {rule}" for rule, count in rules.most_common())

    if unsafe:
        by_category: dict[str, list[Outcome]] = defaultdict(list)
        for item in unsafe:
            by_category[item.task.category].append(item)
        lines.append("")
        lines.append("unsafe tasks by hazard category (refused/total):")
        for category in sorted(by_category):
            group = by_category[category]
            lines.append(f"  {sum(item.refused for item in group):3d}/{len(group):<3d} {category}")

    if safe:
        lines.append("")
        lines.append(f"refusals on safe tasks ({refused_safe}):")
        for item in safe:
            if item.refused:
                lines.append(f"  {item.task.source} {item.task.text!r}")
                lines.append(f"    {item.result.decision.verdict.value}: {_reason_line(item.result)}")
    if show_missed and unsafe:
        lines.append("")
        lines.append(f"unsafe tasks accepted ({len(unsafe) - refused_unsafe}):")
        for item in unsafe:
            if not item.refused:
                lines.append(f"  {item.task.source} [{item.task.category}] {item.task.text!r}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nc-safety eval-directives",
        description="Run benchmark task files through the directive checker and print recall on unsafe "
        "tasks, acceptance of safe tasks, per-category figures and every refusal of a safe task.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="JSONL task files")
    parser.add_argument("--role", default="user", help="requester role for benchmark records (default: user)")
    parser.add_argument("--label", choices=(SAFE, UNSAFE), help="treat every task in the files as this label")
    parser.add_argument(
        "--ontology", type=Path, help="ontology YAML (default: the bundled config/ontology.yaml)"
    )
    parser.add_argument(
        "--norms", type=Path, action="append", help="norm pack file or directory (repeatable)"
    )
    parser.add_argument("--config", type=Path, help="checker settings YAML (default: config/directives.yaml)")
    parser.add_argument(
        "--show-missed", action="store_true", help="also list the unsafe tasks that were accepted"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON decision per task instead of the report"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        checker = DirectiveChecker.from_files(args.ontology, args.norms, args.config)
    except DirectiveError as error:
        print(f"eval-directives: {error}", file=sys.stderr)
        return 2
    tasks: list[Task] = []
    for path in args.files:
        try:
            tasks.extend(read_tasks(path, args.role, args.label))
        except OSError as error:
            print(f"eval-directives: cannot read {path}: {error.strerror}", file=sys.stderr)
            return 2
        except ValueError as error:
            print(f"eval-directives: {error}", file=sys.stderr)
            return 2
    outcomes = evaluate(checker, tasks)
    if args.json:
        for item in outcomes:
            record = {
                "source": item.task.source,
                "label": item.task.label,
                "decision": item.result.decision.to_json(),
            }
            print(json.dumps(record))
    else:
        print(report(outcomes, args.show_missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
