"""A pytest plugin that fails the session when any log record could leak a location or a secret.

Enable with ``pytest_plugins = ["tests.log_scan"]`` in ``tests/conftest.py`` (or ``-p tests.log_scan``).

What is scanned
  * every record reaching the root logger during the session (a handler at level ``NOTSET``; the
    root level is lowered to INFO, the service's production level, unless something set it lower).
    Per record: the formatted message, every extra field (rendered as the JSON formatter does) and
    the *message lines* of an attached exception and its causes. Traceback source lines are code,
    not data, and are not scanned. The handler survives ``service.logs.configure``
    (``keep_on_configure``) and is re-attached before each test if something removed it.
  * at the end, the ``*.log`` files under the session's base temporary directory that contain at
    least one ``service.logs`` JSON line (the captured stderr of ``routerisk serve`` subprocesses;
    redis.log and the like are skipped): every line, JSON fields and plain text alike.

Rules (:func:`scan_text`, :func:`scan_fields`); each finding names its rule
  * ``coordinate-pair``: two decimal numbers next to each other (separated by a comma, semicolon
    or spaces, optionally inside ``[..]``/``(..)``) that fit a latitude (|x| ≤ 90) and a longitude
    (|y| ≤ 180) in either order, at least one with ≥ 3 decimals (≈ 100 m), not both below 1 in
    absolute value (probabilities and rates). ``19.60123, -99.2`` and ``[-99.20000, 19.6]`` match.
  * ``coordinate-keyword``: ``lat``/``lng``/``lon``/``latitude``/``longitude`` followed by a decimal
    number (``latitude 123.4``, ``lat=19.6``, ``"lng": -99.2``).
  * ``geojson``/``wkt``: a ``"coordinates"`` key; ``POINT (``/``LINESTRING (``/``POLYGON (`` with numbers.
  * ``polyline``: a run of ≥ 21 characters of the encoded-polyline alphabet (ASCII 63–126) that
    mixes chunk-end (``?``–``^``) and continuation (``_``–``~``) characters and holds at least one
    of ``?@[\\]^`{|}~``: identifiers such as ``RouteRiskAdminServiceServicer`` or
    ``SEND_INITIAL_METADATA_TOKEN`` have none of those and do not match.
  * ``bearer``/``authorization``/``api-key``/``jwt``/``url-credentials``: ``Bearer <token>``; an
    ``authorization``, ``api_key``/``x-api-key`` name followed by a value of ≥ 8 characters;
    ``eyJ…​.…`` JSON web tokens; ``scheme://user:password@``; the ``rr_`` API key prefix.
  * ``forbidden``: any exact string registered with :func:`forbid` (e.g. the test API keys).
  * ``sensitive-field``: an extra field named like a location or a secret (``lat``, ``lng``,
    ``latitude``, ``longitude``, ``coordinates``, ``polyline``, ``geometry``, ``points``, ``bbox``,
    ``authorization``, ``api_key``, ``token``, ``password``, ``secret``) with a non-empty value.

Not false positives by construction: numbers glued to letters, digits, ``.``, ``:`` or ``/`` are
not numbers here, so version strings (``1.85.3``), IP addresses, hashes (``9f3a1.234``), ISO and
logging timestamps (``04:00:00.123``, ``00:00:00,123``) and epoch floats (``1741752000.123``)
never form a coordinate pair; hex hashes contain digits, which break polyline runs.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SCAN_LEVEL = logging.INFO
MAX_REPORTED = 30

# LogRecord attributes that are not extra fields
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}

_NUMBER = r"(?<![\w.:/])(-?\d{1,3}\.(\d+))(?![\w.:/])"
_PAIR = re.compile(_NUMBER + r"\s*[\]\)]?\s*(?:[,;]\s*|\s+)[\[\(]?\s*" + _NUMBER)
_KEYWORD = re.compile(
    r"(?i)(?<![a-z])(lat|lng|lon|latitude|longitude)(?![a-z])[\"']?\s*[:=]?\s*[\"']?\s*-?\d{1,3}\.\d+"
)
_GEOJSON = re.compile(r"[\"']coordinates[\"']\s*:")
_WKT = re.compile(r"(?i)\b(?:multi)?(?:point|linestring|polygon)\s*(?:z\s*)?\(+\s*-?\d")
_POLYLINE_RUN = re.compile(r"[\x3f-\x7e]{21,}")
_POLYLINE_SYMBOLS = set("?@[\\]^`{|}~")
_SECRETS = [
    ("bearer", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}")),
    ("authorization", re.compile(r"(?i)authorization[\"']?\s*[:=,]\s*[\"']?\s*(?!bearer\b)[^\s\"',)}\]]{8,}")),
    ("api-key", re.compile(r"(?i)(?:x-)?api[_-]?key[\"']?\s*[:=,]\s*[\"']?\s*[^\s\"',)}\]]{8,}")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("url-credentials", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@\"']*:[^/\s@\"']+@")),
    ("api-key", re.compile(r"\brr_[A-Za-z0-9_-]{16,}")),
]
_SENSITIVE_FIELDS = re.compile(
    r"(?i)^(lat|lng|lon|latitude|longitude|coordinates|coords|polyline|geometry|points|bbox|"
    r"authorization|x-api-key|api[_-]?key|apikey|token|access_token|password|secret)$"
)

_forbidden: set[str] = set()


def forbid(*values: str) -> None:
    """Flag any log text containing one of these exact strings (test API keys, passwords)."""
    _forbidden.update(v for v in values if v)


@dataclass(frozen=True)
class Finding:
    rule: str
    excerpt: str
    where: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.where}: …{self.excerpt}…"


def _is_coordinate_pair(a: str, a_decimals: str, b: str, b_decimals: str) -> bool:
    x, y = abs(float(a)), abs(float(b))
    if max(len(a_decimals), len(b_decimals)) < 3 or (x < 1 and y < 1):
        return False
    return (x <= 90 and y <= 180) or (y <= 90 and x <= 180)


def _excerpt(text: str, start: int, end: int) -> str:
    return text[max(0, start - 30) : min(len(text), end + 30)].replace("\n", "\\n")


def _polyline_like(run: str) -> bool:
    run = run.strip("[]{}")  # a bracketed identifier such as [SomeLongIdentifierName] is not a polyline
    if len(run) < 21:
        return False
    ends = sum(1 for c in run if "?" <= c <= "^")
    continuations = len(run) - ends
    return ends >= 2 and continuations >= 2 and any(c in _POLYLINE_SYMBOLS for c in run)


def scan_text(text: str) -> Iterator[tuple[str, str]]:
    """(rule, excerpt) for every suspicious span of ``text``."""
    for match in _PAIR.finditer(text):
        if _is_coordinate_pair(match.group(1), match.group(2), match.group(3), match.group(4)):
            yield "coordinate-pair", _excerpt(text, match.start(), match.end())
    for rule, pattern in (("coordinate-keyword", _KEYWORD), ("geojson", _GEOJSON), ("wkt", _WKT)):
        for match in pattern.finditer(text):
            yield rule, _excerpt(text, match.start(), match.end())
    for rule, pattern in _SECRETS:  # the report shows where, not the secret itself
        for match in pattern.finditer(text):
            masked = text[: match.start()] + f"<{rule}: {len(match.group())} chars>" + text[match.end() :]
            yield rule, _excerpt(masked, match.start(), match.start() + len(rule) + 12)
    for match in _POLYLINE_RUN.finditer(text):
        if _polyline_like(match.group()):
            yield "polyline", _excerpt(text, match.start(), match.end())
    for value in _forbidden:
        at = text.find(value)
        if at >= 0:
            yield "forbidden", _excerpt(text, at, at + len(value)).replace(value, "<forbidden>")


def scan_fields(fields: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Findings of extra fields: suspicious names, then the rendered values as text."""
    for key, value in fields.items():
        if _SENSITIVE_FIELDS.match(str(key)) and value not in (None, "", "-", [], {}):
            yield "sensitive-field", f"{key}=<{type(value).__name__}>"
    if fields:
        yield from scan_text(json.dumps(fields, default=str))


def _exception_text(exc: BaseException | None) -> str:
    """The message lines of an exception and of its causes/contexts, without traceback source."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.extend(traceback.format_exception_only(type(exc), exc))
        exc = exc.__cause__ or exc.__context__
    return "".join(parts)


def scan_record(record: logging.LogRecord) -> list[tuple[str, str]]:
    """Findings of one log record: message, extra fields and exception messages."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: scan its parts
        message = f"{record.msg} {record.args}"
    found = list(scan_text(message))
    found.extend(scan_fields({k: v for k, v in record.__dict__.items() if k not in _STANDARD}))
    if record.exc_info and record.exc_info[1] is not None:
        found.extend(scan_text(_exception_text(record.exc_info[1])))
    return found


def _without_source_lines(text: str) -> str:
    """A traceback without its (4-space-indented) source lines."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("    "))


def scan_log_lines(lines: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    """(line number, rule, excerpt) over a captured server log (JSON lines and plain text)."""
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            exception = entry.pop("exception", None)
            fields = {k: v for k, v in entry.items() if k not in ("time", "level", "logger", "pid", "message")}
            found = [*scan_text(str(entry.get("message", ""))), *scan_fields(fields)]
            if exception:
                found.extend(scan_text(_without_source_lines(str(exception))))
        else:
            found = list(scan_text(_without_source_lines(line)))
        for rule, excerpt in found:
            yield number, rule, excerpt


def _is_service_log(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for _, line in zip(range(200), handle, strict=False):
                if line.startswith("{") and '"logger"' in line and '"level"' in line:
                    return True
    except OSError:
        return False
    return False


class ScanHandler(logging.Handler):
    """Scans every record it receives and keeps the findings."""

    keep_on_configure = True

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.findings: list[Finding] = []
        self.records = 0
        self.current_test = "(outside tests)"
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            found = scan_record(record)
        except Exception as exc:  # the scanner must never break a test
            found = [("scanner-error", repr(exc))]
        with self._guard:
            self.records += 1
            where = f"{self.current_test} logger={record.name} level={record.levelname}"
            self.findings.extend(Finding(rule, excerpt, where) for rule, excerpt in found)


_handler: ScanHandler | None = None
_file_findings: list[Finding] = []
_files_scanned: list[Path] = []


def _attach() -> None:
    root = logging.getLogger()
    if _handler is not None and _handler not in root.handlers:
        root.addHandler(_handler)
    if root.level == logging.NOTSET or root.level > SCAN_LEVEL:
        root.setLevel(SCAN_LEVEL)


def pytest_configure(config: pytest.Config) -> None:
    global _handler
    if _handler is None:
        _handler = ScanHandler()
    _attach()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _handler is not None:
        _handler.current_test = item.nodeid
    _attach()


def pytest_runtest_teardown(item: pytest.Item) -> None:
    _attach()


def _scan_files(config: pytest.Config) -> list[Finding]:
    factory = getattr(config, "_tmp_path_factory", None)
    basetemp = getattr(factory, "_basetemp", None)
    if basetemp is None or not Path(basetemp).is_dir():
        return []
    found = []
    for path in sorted(Path(basetemp).rglob("*.log")):
        if not path.is_file() or not _is_service_log(path):
            continue
        _files_scanned.append(path)
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, rule, excerpt in scan_log_lines(handle):
                found.append(Finding(rule, excerpt, f"{path.relative_to(basetemp)}:{number}"))
    return found


def all_findings() -> list[Finding]:
    return [*(_handler.findings if _handler is not None else []), *_file_findings]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _file_findings[:] = _scan_files(session.config)
    if all_findings() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    findings = all_findings()
    records = _handler.records if _handler is not None else 0
    scanned = f"{records} log records and {len(_files_scanned)} server log files"
    if not findings:
        terminalreporter.write_line(f"log scan: {scanned} clean")
        return
    terminalreporter.section("log scan: possible location or secret in logs", sep="=", red=True, bold=True)
    for finding in findings[:MAX_REPORTED]:
        terminalreporter.write_line(str(finding))
    if len(findings) > MAX_REPORTED:
        terminalreporter.write_line(f"… and {len(findings) - MAX_REPORTED} more")
    terminalreporter.write_line(f"log scan FAILED: {len(findings)} findings in {scanned} (rules: tests/log_scan.py)")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
