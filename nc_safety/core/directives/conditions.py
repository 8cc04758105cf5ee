"""A small declarative condition language over world state and plan transitions.

Norms state when they are broken with expressions such as

    obj.metallic and obj.parent.on and obj.parent.microwave_heating
    any(x in target.descendants: x.electrical)
    step.action in ["throw", "drop"] and not obj.soft

An expression is tokenized, parsed into a tree and type-checked against a `Schema` when
the norm pack loads, so a typo fails at load with its position instead of at run time.
The tree then compiles into nested Python closures: nothing is passed to `eval`, and
evaluation cannot call anything the schema does not list. docs/directives.md is the
reference for the grammar, the names and the values of missing data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from nc_safety.core.directives.errors import DirectiveError

# Static value types. A list type is written "list:<element type>".
BOOL = "bool"
NUMBER = "number"
STRING = "string"
NONE = "none"
ANY = "any"

Env = Mapping[str, Any]
Evaluator = Callable[[Env], Any]

MAX_EXPRESSION_CHARS = 2000
MAX_EXPRESSION_DEPTH = 32


def list_of(element: str) -> str:
    return f"list:{element}"


def element_of(type_name: str) -> str | None:
    return type_name[5:] if type_name.startswith("list:") else None


@dataclass(frozen=True, slots=True)
class Attribute:
    """One readable attribute of an entity type: its static type and how to read it."""

    type_name: str
    getter: Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Schema:
    """Names an expression may use: root variables, entity types and their attributes."""

    roots: Mapping[str, str]
    """Variable name -> entity type, for example `obj` -> `object`."""
    entities: Mapping[str, Mapping[str, Attribute]]
    """Entity type -> attribute name -> attribute."""
    dynamic_flags: Mapping[str, Callable[[Any, str], bool]]
    """Entity type -> test for a property named at run time, used by `has(x, name)`."""
    static_flags: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Entity type -> boolean attributes that never change while a plan is simulated."""

    def with_roots(self, roots: Mapping[str, str]) -> Schema:
        return replace(self, roots=roots)


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed, type-checked expression, ready to evaluate."""

    source: str
    evaluate: Evaluator
    roots: frozenset[str]
    """The root variables it reads."""

    def holds(self, env: Env) -> bool:
        return bool(self.evaluate(env))


def truthy(value: Any) -> bool:
    """Truth of a value: none, false, 0, "" and empty lists are false; objects are true."""
    return bool(value)


# Tokenizer -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>"[^"\\]*"|'[^'\\]*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.|:)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "none"})
_QUANTIFIERS = frozenset({"any", "all", "count"})
_FUNCTIONS = frozenset({"has", "len"})


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    """`number`, `string`, `name`, `keyword`, `op` or `end`."""
    text: str
    column: int
    """1-based column in the expression."""


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise _ParseError(position + 1, f"unexpected character {text[position]!r}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "name" and value in _KEYWORDS:
            kind = "keyword"
        if kind != "space":
            tokens.append(_Token(kind, value, position + 1))
        position = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


class _ParseError(Exception):
    def __init__(self, column: int, message: str) -> None:
        super().__init__(f"column {column}: {message}")


# Parser and compiler ---------------------------------------------------------------------

_Compiled = tuple[str, Evaluator]


class _Compiler:
    """Recursive-descent parser that type-checks and compiles as it parses."""

    def __init__(self, text: str, schema: Schema) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.schema = schema
        self.scopes: list[dict[str, str]] = [dict(schema.roots)]
        self.used_roots: set[str] = set()
        self.depth = 0

    # Token helpers.
    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, text: str) -> bool:
        if self.token.text == text and self.token.kind in ("op", "keyword", "name"):
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise _ParseError(self.token.column, f"expected {text!r}, found {self.token.text or 'end'!r}")

    def error(self, message: str, token: _Token | None = None) -> _ParseError:
        return _ParseError((token or self.token).column, message)

    # Grammar.
    def parse(self) -> _Compiled:
        result = self.expression()
        if self.token.kind != "end":
            raise self.error(f"unexpected {self.token.text!r} after the end of the expression")
        return result

    def expression(self) -> _Compiled:
        self.depth += 1
        if self.depth > MAX_EXPRESSION_DEPTH:
            raise self.error(f"expression nests deeper than {MAX_EXPRESSION_DEPTH} levels")
        try:
            return self.or_expression()
        finally:
            self.depth -= 1

    def or_expression(self) -> _Compiled:
        parts = [self.and_expression()]
        while self.accept("or"):
            parts.append(self.and_expression())
        if len(parts) == 1:
            return parts[0]
        evaluators = tuple(part[1] for part in parts)

        # Plain loops here and below: any()/all() over a generator cost a generator per
        # call, and these run for every norm on every changed object.
        def disjunction(env: Env) -> bool:
            for evaluate in evaluators:  # noqa: SIM110
                if evaluate(env):
                    return True
            return False

        return BOOL, disjunction

    def and_expression(self) -> _Compiled:
        parts = [self.not_expression()]
        while self.accept("and"):
            parts.append(self.not_expression())
        if len(parts) == 1:
            return parts[0]
        evaluators = tuple(part[1] for part in parts)

        def conjunction(env: Env) -> bool:
            for evaluate in evaluators:  # noqa: SIM110
                if not evaluate(env):
                    return False
            return True

        return BOOL, conjunction

    def not_expression(self) -> _Compiled:
        if self.accept("not"):
            _type, operand = self.not_expression()
            return BOOL, lambda env: not operand(env)
        return self.comparison()

    def comparison(self) -> _Compiled:
        left = self.postfix()
        token = self.token
        if token.kind == "op" and token.text in ("==", "!=", "<", "<=", ">", ">="):
            self.advance()
            return self.compare(token, left, self.postfix())
        if token.text == "in" and token.kind == "keyword":
            self.advance()
            return self.membership(token, left, self.postfix(), negate=False)
        if token.text == "not" and self.tokens[self.index + 1].text == "in":
            self.index += 2
            return self.membership(token, left, self.postfix(), negate=True)
        return left

    def compare(self, token: _Token, left: _Compiled, right: _Compiled) -> _Compiled:
        (left_type, left_eval), (right_type, right_eval) = left, right
        operator = token.text
        if operator in ("==", "!="):
            if not _comparable(left_type, right_type):
                raise self.error(f"cannot compare {left_type} with {right_type} using {operator}", token)
            if operator == "==":
                return BOOL, lambda env: _equal(left_eval(env), right_eval(env))
            return BOOL, lambda env: not _equal(left_eval(env), right_eval(env))
        for side in (left_type, right_type):
            if side not in (NUMBER, ANY):
                raise self.error(f"{operator} needs numbers, got {side}", token)
        order: Callable[[float, float], bool] = {
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }[operator]

        def ordered(env: Env) -> bool:
            a, b = left_eval(env), right_eval(env)
            # A missing number (none) makes every ordering false.
            if not _is_number(a) or not _is_number(b):
                return False
            return order(a, b)

        return BOOL, ordered

    def membership(self, token: _Token, item: _Compiled, container: _Compiled, negate: bool) -> _Compiled:
        (item_type, item_eval), (container_type, container_eval) = item, container
        element = element_of(container_type)
        if element is None and container_type != ANY:
            raise self.error(f"`in` needs a list on the right, got {container_type}", token)
        if element is not None and not _comparable(item_type, element):
            raise self.error(f"`in` compares {item_type} with a list of {element}", token)

        def contained(env: Env) -> bool:
            values = container_eval(env)
            if values is None:
                return negate
            value = item_eval(env)
            found = any(_equal(value, candidate) for candidate in values)
            return found != negate

        return BOOL, contained

    def postfix(self) -> _Compiled:
        start = self.token
        type_name, evaluate = self.atom()
        while self.accept("."):
            name_token = self.advance()
            if name_token.kind != "name":
                raise self.error(
                    f"expected an attribute name after '.', found {name_token.text!r}", name_token
                )
            type_name, evaluate = self.attribute(type_name, evaluate, name_token, start)
        return type_name, evaluate

    def attribute(self, type_name: str, base: Evaluator, name_token: _Token, start: _Token) -> _Compiled:
        attributes = self.schema.entities.get(type_name)
        if attributes is None:
            raise self.error(f"{type_name} has no attributes (reading {name_token.text!r})", name_token)
        attribute = attributes.get(name_token.text)
        if attribute is None:
            known = ", ".join(sorted(attributes)[:12])
            raise self.error(
                f"{type_name} has no attribute {name_token.text!r} (known include: {known}, ...)", name_token
            )
        getter = attribute.getter

        def read(env: Env) -> Any:
            value = base(env)
            # Reading through a missing object (none) yields none instead of failing.
            return None if value is None else getter(value)

        return attribute.type_name, read

    def atom(self) -> _Compiled:
        token = self.advance()
        if token.kind == "number":
            number = float(token.text)
            return NUMBER, lambda env: number
        if token.kind == "string":
            text = token.text[1:-1]
            return STRING, lambda env: text
        if token.kind == "keyword":
            if token.text in ("true", "false"):
                flag = token.text == "true"
                return BOOL, lambda env: flag
            if token.text == "none":
                return NONE, lambda env: None
            raise self.error(f"unexpected keyword {token.text!r}", token)
        if token.text == "(":
            result = self.expression()
            self.expect(")")
            return result
        if token.text == "[":
            return self.list_literal(token)
        if token.kind == "name":
            if token.text in _QUANTIFIERS and self.token.text == "(":
                return self.quantifier(token)
            if token.text in _FUNCTIONS and self.token.text == "(":
                return self.function(token)
            return self.variable(token)
        raise self.error(f"unexpected {token.text or 'end of expression'!r}", token)

    def list_literal(self, start: _Token) -> _Compiled:
        items: list[_Compiled] = []
        if not self.accept("]"):
            items.append(self.expression())
            while self.accept(","):
                items.append(self.expression())
            self.expect("]")
        types = {item[0] for item in items}
        element = types.pop() if len(types) == 1 else ANY
        evaluators = tuple(item[1] for item in items)
        return list_of(element), lambda env: [evaluate(env) for evaluate in evaluators]

    def variable(self, token: _Token) -> _Compiled:
        name = token.text
        for scope in reversed(self.scopes):
            if name in scope:
                if scope is self.scopes[0]:
                    self.used_roots.add(name)
                return scope[name], lambda env: env.get(name)
        known = ", ".join(sorted(known_name for scope in self.scopes for known_name in scope))
        raise self.error(f"unknown name {token.text!r}; known names: {known}", token)

    def quantifier(self, token: _Token) -> _Compiled:
        self.expect("(")
        variable = self.advance()
        if variable.kind != "name" or variable.text in _KEYWORDS:
            raise self.error(f"expected a variable name, found {variable.text!r}", variable)
        if not self.accept("in"):
            # count(list) without a condition counts the elements.
            if token.text != "count":
                raise self.error(f"expected 'in' after {variable.text!r}", self.token)
            self.index -= 1
            list_type, list_eval = self.expression()
            self.expect(")")
            if element_of(list_type) is None and list_type != ANY:
                raise self.error(f"count() needs a list, got {list_type}", token)
            return NUMBER, lambda env: float(len(list_eval(env) or ()))
        list_type, list_eval = self.expression()
        element = element_of(list_type)
        if element is None and list_type != ANY:
            raise self.error(f"{token.text}() iterates over a list, got {list_type}", token)
        self.expect(":")
        self.scopes.append({variable.text: element or ANY})
        try:
            _type, body = self.expression()
        finally:
            self.scopes.pop()
        self.expect(")")
        name = variable.text

        def each(env: Env) -> Any:
            scoped = dict(env)
            for value in list_eval(env) or ():
                scoped[name] = value
                yield truthy(body(scoped))

        if token.text == "any":
            return BOOL, lambda env: any(each(env))
        if token.text == "all":
            return BOOL, lambda env: all(each(env))
        return NUMBER, lambda env: float(sum(each(env)))

    def function(self, token: _Token) -> _Compiled:
        self.expect("(")
        arguments = [self.expression()]
        while self.accept(","):
            arguments.append(self.expression())
        self.expect(")")
        if token.text == "len":
            if len(arguments) != 1:
                raise self.error(f"len() takes 1 argument, got {len(arguments)}", token)
            list_type, list_eval = arguments[0]
            if element_of(list_type) is None and list_type != ANY:
                raise self.error(f"len() needs a list, got {list_type}", token)
            return NUMBER, lambda env: float(len(list_eval(env) or ()))
        if len(arguments) != 2:
            raise self.error(f"has() takes 2 arguments (entity, property name), got {len(arguments)}", token)
        (entity_type, entity_eval), (name_type, name_eval) = arguments
        test = self.schema.dynamic_flags.get(entity_type)
        if test is None:
            raise self.error(f"has() needs an entity with properties, got {entity_type}", token)
        if name_type not in (STRING, ANY):
            raise self.error(f"has() needs a property name string, got {name_type}", token)

        def has(env: Env) -> bool:
            entity = entity_eval(env)
            name = name_eval(env)
            return entity is not None and isinstance(name, str) and test(entity, name)

        return BOOL, has


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, (str, bool)) or isinstance(b, (str, bool)) or a is None or b is None:
        return type(a) is type(b) and a == b
    return a is b


def _comparable(a: str, b: str) -> bool:
    return a == b or ANY in (a, b) or NONE in (a, b)


def compile_condition(text: str, schema: Schema) -> Condition:
    """Parse, type-check and compile one expression; raises DirectiveError on any problem."""
    if not isinstance(text, str) or not text.strip():
        raise DirectiveError([f"a condition must be a non-empty string, got {text!r}"], source="condition")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise DirectiveError(
            [f"the condition has {len(text)} characters, more than {MAX_EXPRESSION_CHARS}"],
            source="condition",
        )
    try:
        compiler = _Compiler(text, schema)
        _type, evaluate = compiler.parse()
    except _ParseError as error:
        raise DirectiveError([f"{error} in {text!r}"], source="condition") from None
    return Condition(source=text, evaluate=evaluate, roots=frozenset(compiler.used_roots))


# Templates -------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class Template:
    """Text with `{path}` placeholders, each a type-checked path such as `{obj.parent}`."""

    source: str
    parts: tuple[str | Condition, ...]

    def render(self, env: Env) -> str:
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
            else:
                pieces.append(describe(part.evaluate(env)))
        return "".join(pieces)


def describe(value: Any) -> str:
    """Text for a value inside a message: objects and liquids by name, lists joined."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(describe(item) for item in value) or "nothing"
    name = getattr(value, "name", None)
    return str(name) if name is not None else str(value)


def compile_template(text: str, schema: Schema) -> Template:
    """Compile a message template; raises DirectiveError listing every bad placeholder."""
    if not isinstance(text, str):
        raise DirectiveError([f"a template must be a string, got {text!r}"], source="template")
    parts: list[str | Condition] = []
    problems: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(text[position : match.start()])
        try:
            parts.append(compile_condition(match.group(1), schema))
        except DirectiveError as error:
            problems.extend(f"placeholder {{{match.group(1)}}}: {problem}" for problem in error.problems)
        position = match.end()
    parts.append(text[position:])
    if problems:
        raise DirectiveError(problems, source="template")
    return Template(source=text, parts=tuple(part for part in parts if part != ""))
