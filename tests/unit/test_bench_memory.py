"""`python -m bench memory` runs (tiny sizes) so its harness cannot rot; its figures are for
reading, never asserted."""

from pathlib import Path

from bench.memory import MemoryOptions, huge_keys, markdown, run_memory, small_answers


def test_scenarios_report_what_they_measured() -> None:
    small = small_answers(3000, 2)
    assert small["answers"] == 3000
    assert small["counted_bytes"] > 0
    assert small["big_table_freed_at_purge"] == small["sweep_step"]
    assert small["big_table_pending_after_purge"] == 1500 - small["sweep_step"]
    huge = huge_keys(50, 20_000, 100_000)
    assert huge["counted_bytes"] <= 100_000
    assert 1 <= huge["entries_held"] <= 5


def test_the_command_writes_its_report(tmp_path: Path) -> None:
    report = run_memory(
        MemoryOptions(answers=2000, realms=2, huge_keys=10, huge_key_chars=5000, out_dir=tmp_path)
    )
    assert (tmp_path / "memory.json").exists()
    assert "purge of one table" in markdown(report)
