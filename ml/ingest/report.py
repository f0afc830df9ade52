"""What an ingest batch did: per file and in total (received, loaded, quarantined, rules)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FileReport:
    """What happened to one landing file."""

    source_file: str
    entity: str
    checksum: str
    received_rows: int = 0
    loaded_rows: int = 0
    quarantined_rows: int = 0
    skipped: bool = False
    rules: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    """The outcome of one ingest batch."""

    batch_id: str
    files: list[FileReport]
    seconds: float
    erased_rows: dict[str, int] = field(default_factory=dict)

    @property
    def received_rows(self) -> int:
        return sum(f.received_rows for f in self.files)

    @property
    def loaded_rows(self) -> int:
        return sum(f.loaded_rows for f in self.files)

    @property
    def quarantined_rows(self) -> int:
        return sum(f.quarantined_rows for f in self.files)

    def summary(self) -> str:
        lines = [
            f"batch {self.batch_id}: {len(self.files)} file(s), {self.received_rows:,} received, "
            f"{self.loaded_rows:,} loaded, {self.quarantined_rows:,} quarantined "
            f"in {self.seconds:.1f}s"
        ]
        for f in self.files:
            state = (
                "unchanged, skipped"
                if f.skipped
                else (
                    f"{f.received_rows:,} received = {f.loaded_rows:,} loaded + "
                    f"{f.quarantined_rows:,} quarantined"
                )
            )
            rules = ", ".join(f"{k}: {v:,}" for k, v in sorted(f.rules.items()))
            lines.append(
                f"  {f.source_file} [{f.entity}]: {state}" + (f" ({rules})" if rules else "")
            )
            lines += [f"    WARNING: {warning}" for warning in f.warnings]
        if self.erased_rows:
            removed = ", ".join(f"{t} {n:,}" for t, n in sorted(self.erased_rows.items()))
            lines.append(f"  erasure requests applied (rows removed): {removed}")
        return "\n".join(lines)
