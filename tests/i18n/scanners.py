"""Static scanners that find user-facing text which bypasses Django's translation machinery.

They are heuristics with small allowlists, not parsers of every language: each returns
``"path:line: text"`` findings so that a failing test says exactly what to wrap.

* templates: text nodes and user-facing attributes (title, placeholder, aria-label, alt, label)
  holding words outside ``{% translate %}``/``{% blocktranslate %}``/variables;
* Python: error messages (``ApplicationError`` and its subclasses, DRF/Django validation and
  permission errors), ``messages.*`` calls, ``verbose_name``/``help_text``/``label`` keywords,
  field verbose names and choice labels given as plain string literals;
* JavaScript: string literals that look like sentences and are not inside ``gettext(...)``.
"""

from __future__ import annotations

import ast
import re
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
APPS = ["accounts", "cases", "annotation", "inference", "strokeaid_site"]

# Words that are the same in every language of the interface: modality and format names,
# key names printed on keyboards, metric names. Units are NOT here: "ml", "mm", "MB" are
# written "мл", "мм", "МБ" in Russian, so a template must not glue them on untranslated
# (use ``{{ value|ml }}`` from ``strokeaid_format`` or a translated string).
ALLOWED_WORDS = {
    "DWI",
    "ADC",
    "FLAIR",
    "CT",
    "MRI",
    "NIfTI",
    "DICOM",
    "API",
    "REST",
    "JSON",
    "PNG",
    "ZIP",
    "TOAST",
    "ONNX",
    "GPU",
    "CPU",
    "ID",
    "URL",
    "Ctrl",
    "Shift",
    "Alt",
    "Esc",
    "Home",
    "End",
    "Page",
    "Up",
    "Down",
    "Delete",
    "Enter",
    "Tab",
    "Dice",
    "F1",
    "AUC",
    "IoU",
    "EN",
    "RU",
    "nii",
    "gz",
    "raw",
    "npy",
    "csv",
}
_WORD = re.compile(r"[^\W\d_]{2,}")  # single letters are shortcut keys (B, E, P, F, W, ...)


def _offending_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w not in ALLOWED_WORDS]


# --- templates ---------------------------------------------------------------------------------
_COMMENT_BLOCK = re.compile(r"{%\s*comment\b.*?%}.*?{%\s*endcomment\s*%}", re.S)
_BLOCKTRANS = re.compile(
    r"{%\s*blocktrans(?:late)?\b.*?%}.*?{%\s*endblocktrans(?:late)?\s*%}", re.S
)
# Blocks that hold CSS class names, not text (base.html's main_class, body_class).
_CLASS_BLOCK = re.compile(r"{%\s*block\s+\w*class\s*%}.*?{%\s*endblock\b.*?%}", re.S)
_TEMPLATE_TAG = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)
_USER_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "label"}
_SKIPPED_ELEMENTS = {"script", "style", "code", "pre", "kbd"}
PLACEHOLDER = "\x00"


def _blank_keep_lines(match: re.Match[str]) -> str:
    # Keeps newlines so that reported line numbers stay right.
    return PLACEHOLDER + "\n" * match.group(0).count("\n")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_depth = 0
        self.found: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self.skip_depth += 1
        values = dict(attrs)
        for name, value in attrs:
            user_facing = name in _USER_ATTRIBUTES or (
                name == "value" and tag == "input" and values.get("type") in ("submit", "button")
            )
            if user_facing and value and _offending_words(value):
                self.found.append((self.getpos()[0], f'{name}="{value}"'))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_ELEMENTS and self.skip_depth:
            self.skip_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip_depth and _offending_words(data):
            self.found.append((self.getpos()[0], data.strip()))


def template_untranslated(text: str) -> list[tuple[int, str]]:
    """(line, text) of literal words in a template that no translation tag covers."""
    text = _COMMENT_BLOCK.sub(_blank_keep_lines, text)
    text = _BLOCKTRANS.sub(_blank_keep_lines, text)
    text = _CLASS_BLOCK.sub(_blank_keep_lines, text)
    text = _TEMPLATE_TAG.sub(_blank_keep_lines, text)
    collector = _TextCollector()
    collector.feed(text)
    collector.close()
    return [(line, snippet.replace(PLACEHOLDER, "…")) for line, snippet in collector.found]


def template_files() -> list[Path]:
    files = sorted((ROOT / "templates").rglob("*.html"))
    for app in APPS:
        files += sorted((ROOT / app).rglob("templates/**/*.html"))
    return files


def scan_templates() -> list[str]:
    findings = []
    for path in template_files():
        for line, snippet in template_untranslated(path.read_text(encoding="utf-8")):
            findings.append(f"{path.relative_to(ROOT)}:{line}: {snippet[:100]}")
    return findings


# --- Python ------------------------------------------------------------------------------------
# Exceptions whose message reaches a user: the API's ``{"message"}`` or a page.
ERROR_NAMES = {
    "ApplicationError",
    "NotFoundError",
    "ConflictError",
    "PreconditionFailedError",
    "PreconditionRequiredError",
    "TooLargeError",
    "ForbiddenError",
    "ValidationError",
    "PermissionDenied",
    "NotFound",
    "ParseError",
    "AuthenticationFailed",
    "NotAuthenticated",
    "Http404",
    "APIException",
}
TEXT_KEYWORDS = {"verbose_name", "verbose_name_plural", "help_text", "label", "empty_label"}
RELATION_FIELDS = {"ForeignKey", "OneToOneField", "ManyToManyField"}
MESSAGE_LEVELS = {"debug", "info", "success", "warning", "error", "add_message"}
TRANSLATION_CALLS = {
    "_",
    "gettext",
    "gettext_lazy",
    "ngettext",
    "ngettext_lazy",
    "pgettext",
    "pgettext_lazy",
    "npgettext",
    "npgettext_lazy",
    "format_lazy",
}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _is_plain_text(node: ast.AST | None) -> bool:
    """A literal (or f-string, or literal concatenation) with words: not translated."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(_offending_words(node.value))
    if isinstance(node, ast.JoinedStr):
        return any(
            isinstance(v, ast.Constant) and _offending_words(str(v.value)) for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _is_plain_text(node.left)
    return False


class _PythonScanner(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def _flag(self, node: ast.AST, what: str) -> None:
        self.found.append((getattr(node, "lineno", 0), what))

    def visit_Call(self, node: ast.Call) -> None:
        name = _name(node.func)
        if name in ERROR_NAMES:
            message = node.args[0] if node.args else None
            for kw in node.keywords:
                if kw.arg in ("message", "detail"):
                    message = kw.value
            if _is_plain_text(message):
                self._flag(node, f"{name}({ast.unparse(message)[:80]})")  # type: ignore[arg-type]
        if (
            name in MESSAGE_LEVELS
            and isinstance(node.func, ast.Attribute)
            and _name(node.func.value) == "messages"
        ):
            text_arg = node.args[2] if name == "add_message" and len(node.args) > 2 else None
            if name != "add_message" and len(node.args) > 1:
                text_arg = node.args[1]
            if _is_plain_text(text_arg):
                self._flag(node, f"messages.{name}({ast.unparse(text_arg)[:80]})")  # type: ignore[arg-type]
        if name not in TRANSLATION_CALLS:
            for kw in node.keywords:
                if kw.arg in TEXT_KEYWORDS and _is_plain_text(kw.value):
                    self._flag(kw.value, f"{kw.arg}={ast.unparse(kw.value)[:80]}")
        if (
            name.endswith("Field")
            and name not in RELATION_FIELDS
            and isinstance(node.func, ast.Attribute)
            and _name(node.func.value) in ("models", "forms")
            and node.args
            and _is_plain_text(node.args[0])
        ):
            self._flag(node, f"{name}({ast.unparse(node.args[0])[:80]}) verbose name")
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if any(_name(b) in ("TextChoices", "IntegerChoices", "Choices") for b in node.bases):
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Tuple):
                    label = stmt.value.elts[-1]
                    if _is_plain_text(label):
                        self._flag(stmt, f"choice label {ast.unparse(label)[:80]}")
                elif (
                    isinstance(stmt, ast.Assign)
                    and isinstance(stmt.value, ast.Constant)
                    and not _name(stmt.targets[0]).startswith("_")
                    and _offending_words(_name(stmt.targets[0]).replace("_", " ").title())
                ):
                    # Without a label Django makes an English one from the member's name.
                    self._flag(stmt, f"choice {_name(stmt.targets[0])} has no translatable label")
        for stmt in node.body:
            # class Meta: verbose_name = "..."
            if isinstance(stmt, ast.Assign) and node.name == "Meta":
                targets = {_name(t) for t in stmt.targets}
                if targets & {"verbose_name", "verbose_name_plural"} and _is_plain_text(stmt.value):
                    self._flag(stmt, f"Meta {ast.unparse(stmt)[:80]}")
        self.generic_visit(node)


def python_untranslated(source: str) -> list[tuple[int, str]]:
    scanner = _PythonScanner()
    scanner.visit(ast.parse(source))
    return scanner.found


def python_files() -> list[Path]:
    files: list[Path] = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = set(path.relative_to(ROOT).parts)
            # Migrations freeze strings as they were; commands talk to operators in a shell.
            if "migrations" in parts or "management" in parts or "settings" in parts:
                continue
            files.append(path)
    return files


def scan_python() -> list[str]:
    findings = []
    for path in python_files():
        for line, what in python_untranslated(path.read_text(encoding="utf-8")):
            findings.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    return findings


# --- JavaScript --------------------------------------------------------------------------------
_JS_STRING = re.compile(r"""(?P<q>["'`])(?P<s>(?:\\.|(?!(?P=q)).)*)(?P=q)""")
_JS_LINE_COMMENT = re.compile(r"(^|[^:\\])//.*$", re.M)
_JS_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
# Calls whose string argument is translated or is code, not text: gettext and its aliases,
# DOM lookups, events, network and storage keys.
_JS_NGETTEXT_PLURAL = re.compile(r"ngettext\s*\(\s*(['\"])(?:(?!\1).)*\1\s*,\s*$")
_JS_CODE_CALLS = re.compile(
    r"(gettext|ngettext|pgettext|interpolate|get_format|\bt|querySelector(?:All)?|getElementById|\$\$?|"
    r"addEventListener|removeEventListener|createElement|getAttribute|setAttribute|"
    r"removeAttribute|fetch|WebSocket|replace|split|join|startsWith|endsWith|includes|"
    r"matches|closest|add|remove|toggle|contains|getItem|setItem|Error|warn|log|error)"
    r"\s*\(\s*$"
)


def js_untranslated(source: str) -> list[tuple[int, str]]:
    """(line, literal) of sentence-like string literals outside ``gettext(...)``."""
    source = _JS_BLOCK_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), source)
    source = _JS_LINE_COMMENT.sub(lambda m: m.group(1), source)
    found = []
    for match in _JS_STRING.finditer(source):
        text = match.group("s")
        before = source[max(0, match.start() - 40) : match.start()]
        line_start = source.rfind("\n", 0, match.start()) + 1
        if _JS_CODE_CALLS.search(before) or "console." in source[line_start : match.start()]:
            continue
        if _JS_NGETTEXT_PLURAL.search(source[max(0, match.start() - 200) : match.start()]):
            continue  # the plural form, ngettext's second argument
        if match.group("q") == "`":
            text = re.sub(r"\$\{.*?\}", " ", text)
        # Anything with a word that is put straight into the page or a dialog is text.
        shown = re.search(
            r"(textContent|innerText|innerHTML|title|placeholder|value)\s*=\s*$|"
            r"(alert|confirm|prompt)\s*\(\s*$",
            before,
        )
        if shown and _offending_words(text):
            line = source.count("\n", 0, match.start()) + 1
            found.append((line, text[:80]))
            continue
        # Sentence-like: at least two words of letters separated by a space and no code
        # punctuation (selectors, URLs, CSS, identifiers with dots or dashes).
        words = _offending_words(text)
        if len(words) < 2 or re.search(
            r"[#{}<>=/\\;]|^\s*[.\-]|\w[.-]\w|^[a-z]+(\s[a-z-]+)*$", text
        ):
            continue
        line = source.count("\n", 0, match.start()) + 1
        found.append((line, text[:80]))
    return found


def js_files() -> list[Path]:
    files = sorted((ROOT / "static").rglob("*.js"))
    return [p for p in files if "vendor" not in p.relative_to(ROOT).parts]


def scan_js() -> list[str]:
    findings = []
    for path in js_files():
        for line, text in js_untranslated(path.read_text(encoding="utf-8")):
            findings.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    return findings
