"""Every error code the server can send has words in both of the app's languages.

The codes are read from the backend's source, not listed by hand: the first argument of every
`AppError`/`MutationRejected`/… raised, the codes of `AppError` subclasses and of `require`,
the HTTP fallbacks in `core/errors.py`, and the `(code, …)` tuples a function returns for a
caller to raise. A new code without an entry in pwa/app/i18n/errors.*.js fails here, so the
outbox and the sign-in never show a person a bare code or an English server sentence.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.support import ROOT

BACKEND = ROOT / "backend" / "loopline"
TABLES = {tag: ROOT / "pwa" / "app" / "i18n" / f"errors.{tag}.js" for tag in ("en", "zh-CN")}

# Calls whose argument at this position is an error code.
CODE_ARGUMENT = {
    "AppError": 0,
    "MutationRejected": 0,
    "Conflict": 0,
    "NotAuthenticated": 0,
    "AdvisoryStepRefused": 0,
    "require": 1,
    "error_response": 1,
}
ERROR_BASES = {"AppError", "MutationRejected"}
CODE = re.compile(r"[a-z][a-z0-9_]*")


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _string(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _codes_in(tree: ast.Module) -> set[str]:
    codes: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in CODE_ARGUMENT:
            position = CODE_ARGUMENT[_name(node.func) or ""]
            given = node.args[position] if len(node.args) > position else None
            given = next((k.value for k in node.keywords if k.arg == "code"), given)
            codes.add(_string(given) or "")
        elif isinstance(node, ast.ClassDef) and {_name(base) for base in node.bases} & ERROR_BASES:
            # `super().__init__("code", …)` and `code: str = "default"` of the subclass.
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call) and _name(inner.func) == "__init__" and inner.args:
                    codes.add(_string(inner.args[0]) or "")
                if isinstance(inner, ast.arguments):
                    codes.update(_defaults_of(inner, "code"))
        elif isinstance(node, ast.FunctionDef):
            if node.name in CODE_ARGUMENT:
                codes.update(_defaults_of(node.args, "code"))
            returns = ast.unparse(node.returns) if node.returns else ""
            if "tuple[str" in returns:
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return) and isinstance(inner.value, ast.Tuple) and inner.value.elts:
                        codes.add(_string(inner.value.elts[0]) or "")
        elif isinstance(node, ast.Assign) and any(_name(target) == "_HTTP_CODES" for target in node.targets):
            assert isinstance(node.value, ast.Dict)
            codes.update(_string(value) or "" for value in node.value.values)
    # A code is a snake_case word; other strings in such places (a mutation name) are not codes.
    return {code for code in codes if CODE.fullmatch(code)}


def _defaults_of(arguments: ast.arguments, name: str) -> set[str]:
    positional = arguments.posonlyargs + arguments.args
    pairs = list(zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults, strict=True))
    pairs += [(a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d is not None]
    return {_string(default) or "" for argument, default in pairs if argument.arg == name}


def backend_codes() -> set[str]:
    codes: set[str] = set()
    for path in sorted(BACKEND.rglob("*.py")):
        codes |= _codes_in(ast.parse(path.read_text(encoding="utf-8")))
    return codes


def table_codes(path: Path) -> set[str]:
    return set(re.findall(r"^\s*'error\.([a-z0-9_]+)':", path.read_text(encoding="utf-8"), flags=re.MULTILINE))


def test_the_backend_codes_are_found() -> None:
    """Guards the parser: codes of each way of raising are among those found."""
    found = backend_codes()
    # One of each way: a call, a `require`, a subclass, its default, a returned tuple, an HTTP fallback.
    ways = ["stale_transition", "message_deleted", "blob_rejected", "not_authenticated", "too_deep", "unavailable"]
    assert [code for code in ways if code not in found] == []
    assert len(found) >= 50


@pytest.mark.parametrize("tag", list(TABLES))
def test_every_backend_code_has_words(tag: str) -> None:
    missing = sorted(backend_codes() - table_codes(TABLES[tag]))
    assert missing == [], f"add these to pwa/app/i18n/errors.{tag}.js"


def test_both_languages_have_the_same_codes() -> None:
    assert table_codes(TABLES["en"]) == table_codes(TABLES["zh-CN"])
