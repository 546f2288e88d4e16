"""Reading a journal back: torn tails, the HMAC chain, the chain head, version-1 journals.

Rules (the behaviour of ``resume``, ``replay`` and ``report`` follows from them):

- a **torn tail**, a last line without its newline or that is not JSON (the session was
  killed, or the disk filled, while writing it), is the expected crash mode: readers
  ignore it and say so in :attr:`SessionLog.notices`; ``resume`` moves it aside first
  (:func:`move_torn_tail`). Anything wrong before the last line is refused
  (:class:`JournalCorrupt`, naming the line) and the file is left untouched;
- the **HMAC chain** (:mod:`agent.session.chain`) is verified with this installation's
  secret; the first line that does not match raises :class:`JournalTampered` naming the
  line and its entry; so does a journal with fewer entries than the chain head in
  ``summary.json`` (whole entries dropped at the end), or whose entry at the head is not
  the one recorded;
- a journal whose header names **another installation's secret** (or read where there
  is no secret yet) cannot be verified: it is read with ``integrity.status ==
  foreign_secret`` and a notice; resume refuses it;
- a **version-1** journal (no chain) is read with its stop reasons mapped (``goals_met``
  -> ``all_goals_met`` when the final evaluation meets every goal, else
  ``priority1_met_no_further_improvement``), ``integrity.status == unverified_v1`` and a
  notice; resume refuses it. Other versions are refused naming the version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from agent.session.chain import chain_seed, matches, unseal
from agent.session.errors import JournalCorrupt, JournalTampered
from agent.session.provenance import ChainHead, IntegrityStatus, JournalIntegrity, TornTail
from agent.session.records import (
    JOURNAL_FILENAME,
    RECORDS_SCHEMA_VERSION,
    SUMMARY_FILENAME,
    ApplyIntent,
    IterationRecord,
    JournalEntry,
    SessionEvent,
    SessionHeader,
    SessionLog,
    SessionSummary,
)
from agent.session.secret import derive_key, key_id, load_secret
from rtplan_common.models import validation_problems

_ENTRY_ADAPTER: TypeAdapter[JournalEntry] = TypeAdapter(JournalEntry)
#: Schema versions this code reads (1: mapped and unverified).
READABLE_VERSIONS = (1, RECORDS_SCHEMA_VERSION)


def journal_path(session_dir_or_journal: str | Path) -> Path:
    """The journal file of a session directory (or the path itself if it is a file)."""
    path = Path(session_dir_or_journal)
    return path / JOURNAL_FILENAME if path.is_dir() else path


def describe_entry(entry: JournalEntry) -> str:
    """An entry in words, for messages: ``header``, ``iteration 2``, ``event 'resumed'``."""
    if isinstance(entry, IterationRecord):
        return f"iteration {entry.iteration}"
    if isinstance(entry, ApplyIntent):
        return f"{entry.purpose} intent of iteration {entry.iteration}"
    if isinstance(entry, SessionEvent):
        return f"event {entry.kind!r}"
    return entry.entry


def map_v1_summary(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 summary (dict) with its stop reason renamed to the version-2 names."""
    if data.get("stop_reason") != "goals_met":
        return data
    final = data.get("final_evaluation") or {}
    goals = final.get("goals") or []
    every = bool(goals) and all(g.get("status") == "met" for g in goals)
    return {
        **data,
        "stop_reason": "all_goals_met" if every else "priority1_met_no_further_improvement",
    }


def load_summary_file(path: Path) -> SessionSummary:
    """Read ``summary.json`` (version-1 stop reasons mapped).

    Raises :class:`ValueError` (JSON) or :class:`pydantic.ValidationError`.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "chain_head" not in data:
        data = map_v1_summary(data)
    return SessionSummary.model_validate(data)


@dataclass
class ParsedJournal:
    """A journal's complete lines, parsed, and what is after them.

    ``keep_bytes`` is the length of the complete lines (where a torn tail starts);
    ``macs`` the HMAC (hex) of every line, ``None`` where a line has none.
    """

    file: Path
    data: bytes
    keep_bytes: int
    lines: list[str]
    entries: list[JournalEntry]
    macs: list[str | None]
    version: int
    torn: TornTail | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def last_mac(self) -> bytes:
        """The HMAC of the last complete line (the predecessor of the next one)."""
        mac = self.macs[-1]
        assert mac is not None
        return bytes.fromhex(mac)


def _split(file: Path, data: bytes) -> tuple[list[bytes], int, TornTail | None]:
    """Complete lines, their byte length and the torn tail (if any)."""
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1]
    torn: TornTail | None = None
    if end < len(data):
        torn = TornTail(line=len(lines) + 1, size_bytes=len(data) - end)
    elif lines:
        try:
            json.loads(lines[-1].decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            last = lines.pop()
            end -= len(last) + 1
            torn = TornTail(line=len(lines) + 1, size_bytes=len(last) + 1)
    return lines, end, torn


def parse_journal(path: str | Path) -> ParsedJournal:
    """Read and parse a journal's complete lines (no chain check, no structure check).

    Raises
    ------
    JournalCorrupt
        Missing or empty file, no complete line, a line before the last that is not a
        valid entry (named by number), a first line that is not a header, or a schema
        version this code does not read.
    """
    file = journal_path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError as exc:
        raise JournalCorrupt(f"no journal at {str(file)!r}") from exc
    except OSError as exc:
        raise JournalCorrupt(f"cannot read journal {str(file)!r}: {exc}") from exc
    if not data.strip():
        raise JournalCorrupt(f"journal {str(file)!r} is empty")
    raw_lines, keep, torn = _split(file, data)
    if not raw_lines:
        raise JournalCorrupt(
            f"journal {str(file)!r} has no complete line: its only line is torn "
            "(the session was killed while writing its header); nothing was changed"
        )
    lines: list[str] = []
    entries: list[JournalEntry] = []
    macs: list[str | None] = []
    version = RECORDS_SCHEMA_VERSION
    for number, raw in enumerate(raw_lines, start=1):
        where = f"journal {str(file)!r} line {number}"
        try:
            line = raw.decode("utf-8")
            obj = json.loads(line) if line.strip() else None
        except (UnicodeDecodeError, ValueError) as exc:
            raise JournalCorrupt(f"{where} is not valid JSON: {exc}; nothing was changed") from exc
        if not isinstance(obj, dict):
            raise JournalCorrupt(f"{where}: empty line or not a JSON object; nothing was changed")
        mac = obj.pop("hmac", None)
        if number == 1:
            version = _check_header_version(obj, where)
        if version == 1 and obj.get("entry") == "summary":
            obj = map_v1_summary(obj)
        try:
            entry = _ENTRY_ADAPTER.validate_python(obj)
        except ValidationError as exc:
            shown = "; ".join(f"{f}: {r}" for f, r in validation_problems(exc)[:3])
            raise JournalCorrupt(
                f"{where} is not a valid {obj.get('entry', 'journal')!s:.20} entry ({shown}): "
                "it was edited or damaged; nothing was changed"
            ) from exc
        if number == 1 and not isinstance(entry, SessionHeader):
            raise JournalCorrupt(f"journal {str(file)!r} line 1 is not a session header")
        lines.append(line)
        entries.append(entry)
        macs.append(mac if isinstance(mac, str) else None)
    parsed = ParsedJournal(file, data, keep, lines, entries, macs, version, torn)
    if torn is not None:
        parsed.notices.append(
            f"the journal's last line ({torn.line}) is cut short ({torn.size_bytes} bytes torn: "
            "the session was killed or the disk filled while writing it, or it is still being "
            "written) and was ignored; `rtplan resume` moves it aside"
        )
    return parsed


def _check_header_version(obj: dict[str, Any], where: str) -> int:
    if obj.get("entry") != "header":
        raise JournalCorrupt(f"{where.rsplit(' line', 1)[0]} line 1 is not a session header")
    version = obj.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise JournalCorrupt(
            f"{where}: journal schema version {version} is not supported (this rtplan reads "
            f"versions {', '.join(map(str, READABLE_VERSIONS))}); use the rtplan that wrote it"
        )
    assert isinstance(version, int)
    return version


def _head(file: Path) -> ChainHead | None:
    summary = file.parent / SUMMARY_FILENAME
    try:
        data = json.loads(summary.read_text(encoding="utf-8"))
        head = data.get("chain_head") if isinstance(data, dict) else None
        return None if head is None else ChainHead.model_validate(head)
    except (OSError, UnicodeDecodeError, ValueError):
        return None  # no (readable) summary.json: the report says so on its own


def _check_head_count(parsed: ParsedJournal, head: ChainHead | None) -> None:
    """Refuse a journal with fewer complete entries than ``summary.json``'s chain head."""
    if head is None:
        return
    name = str(parsed.file)
    if parsed.torn is not None and head.entries == parsed.torn.line:
        raise JournalTampered(
            f"journal {name!r} line {parsed.torn.line} is torn, but summary.json's chain head "
            "records it as complete: the journal was damaged or truncated after the session "
            "finished; nothing was changed"
        )
    if head.entries > len(parsed.entries):
        raise JournalTampered(
            f"journal {name!r} is truncated: it has {len(parsed.entries)} complete entries but "
            f"summary.json's chain head records {head.entries}; whole entries at the end "
            "were removed; nothing was changed"
        )


def verify_chain(parsed: ParsedJournal, secret: bytes | None) -> JournalIntegrity:
    """Check every line's HMAC and ``summary.json``'s chain head.

    Raises
    ------
    JournalTampered
        At the first line whose HMAC does not match (or is missing), or when the journal
        is shorter than, or differs at, the chain head recorded in ``summary.json``.
    """
    file, entries = parsed.file, parsed.entries
    header = entries[0]
    assert isinstance(header, SessionHeader)
    name = str(file)
    if parsed.version == 1:
        return JournalIntegrity(
            status=IntegrityStatus.UNVERIFIED_V1,
            entries=len(entries),
            message=f"journal {name!r} has schema version 1, which has no HMAC chain: "
            "it cannot be verified (stop reasons were mapped to the version-2 names)",
        )
    if header.chain_key_id is None:
        raise JournalTampered(
            f"journal {name!r} line 1 (header) has no chain key id: not a journal this "
            "rtplan wrote, or edited"
        )
    head = _head(file)
    if secret is None or key_id(secret) != header.chain_key_id:
        _check_head_count(parsed, head)
        here = "no secret yet" if secret is None else f"key id {key_id(secret)}"
        return JournalIntegrity(
            status=IntegrityStatus.FOREIGN_SECRET,
            entries=len(entries),
            message=f"journal {name!r} cannot be verified with this installation's secret "
            f"(written with key id {header.chain_key_id}, this installation has {here}): "
            "it was written on another installation, or its header was edited",
        )
    key = derive_key(secret, "journal-chain")
    previous = chain_seed(key, header.session_id)
    for number, (line, entry, mac) in enumerate(
        zip(parsed.lines, entries, parsed.macs, strict=True), start=1
    ):
        payload, sealed = unseal(line)
        if mac is None or sealed != mac or not matches(key, previous, payload, mac):
            raise JournalTampered(
                f"journal {name!r} line {number} ({describe_entry(entry)}) does not match its "
                "HMAC chain: it was edited, or an entry before it was removed, inserted or "
                "reordered; nothing was changed"
            )
        previous = bytes.fromhex(mac)
    _check_head_count(parsed, head)
    if head is not None and parsed.macs[head.entries - 1] != head.last_hmac:
        raise JournalTampered(
            f"journal {name!r} line {head.entries} "
            f"({describe_entry(entries[head.entries - 1])}) is not the entry summary.json's "
            "chain head records: the journal was replaced or cut and rewritten"
        )
    return JournalIntegrity(
        status=IntegrityStatus.VERIFIED,
        entries=len(entries),
        head_checked=head is not None,
        message="HMAC chain verified"
        + (" against summary.json's chain head" if head is not None else ""),
    )


def build_log(parsed: ParsedJournal, integrity: JournalIntegrity) -> SessionLog:
    """Check the order of entries and assemble the :class:`SessionLog`.

    Raises :class:`JournalCorrupt` when iterations are out of order, a second header
    appears, or anything but a ``resumed`` event follows a summary.
    """
    name = str(parsed.file)
    header = parsed.entries[0]
    assert isinstance(header, SessionHeader)
    iterations: list[IterationRecord] = []
    events: list[SessionEvent] = []
    intents: list[ApplyIntent] = []
    summary: SessionSummary | None = None
    for number, entry in enumerate(parsed.entries[1:], start=2):
        if summary is not None:
            if isinstance(entry, SessionEvent) and entry.kind == "resumed":
                events.append(entry)  # an interrupted session was continued
                summary = None
                continue
            raise JournalCorrupt(f"journal {name!r} line {number}: entry after the summary")
        if isinstance(entry, SessionHeader):
            raise JournalCorrupt(f"journal {name!r} line {number}: a second header")
        if isinstance(entry, IterationRecord):
            if entry.iteration != len(iterations):
                raise JournalCorrupt(
                    f"journal {name!r} line {number}: iteration {entry.iteration} "
                    f"where {len(iterations)} was expected"
                )
            iterations.append(entry)
        elif isinstance(entry, SessionEvent):
            events.append(entry)
        elif isinstance(entry, ApplyIntent):
            intents.append(entry)
        else:
            summary = entry
    notices = list(parsed.notices)
    if integrity.status in (IntegrityStatus.FOREIGN_SECRET, IntegrityStatus.UNVERIFIED_V1):
        notices.insert(0, f"UNVERIFIED: {integrity.message}")
    return SessionLog(
        header=header,
        iterations=iterations,
        events=events,
        intents=intents,
        summary=summary,
        torn_tail=parsed.torn,
        integrity=integrity,
        notices=notices,
    )


def read_journal(
    path: str | Path, *, verify: bool = True, secret: bytes | None = None
) -> SessionLog:
    """Read a journal (file or session directory) into a :class:`SessionLog`, read-only.

    Parameters
    ----------
    path
        ``journal.jsonl`` or its session directory.
    verify
        Check the HMAC chain and the chain head (``False``: ``integrity`` is
        ``not_checked``).
    secret
        The installation secret (default: :func:`agent.session.secret.load_secret`, never
        created by a reader).

    Raises
    ------
    JournalCorrupt
        Malformed journal (see :func:`parse_journal` and :func:`build_log`).
    JournalTampered
        The chain does not match (see :func:`verify_chain`).
    agent.session.errors.SecretError
        The secret file exists but is unusable (e.g. readable by others).
    """
    parsed = parse_journal(path)
    if verify:
        key = secret if secret is not None else load_secret(create=False)
        integrity = verify_chain(parsed, key)
    else:
        integrity = JournalIntegrity(
            status=IntegrityStatus.NOT_CHECKED,
            entries=len(parsed.entries),
            message="HMAC chain not checked",
        )
    return build_log(parsed, integrity)
