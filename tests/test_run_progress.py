"""``affinity run``'s own output: stage lines from the run's metadata, a live line on a terminal,
the full log cut into the task logs the Airflow UI reads."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path

from ml.orchestration.airflow_db import RunState, TaskState
from ml.orchestration.progress import ProgressPrinter, describe, duration, stage_progress
from ml.orchestration.run_log import run_log_path
from ml.orchestration.task_logs import split_task_sections, structured, write_task_logs
from ml.pipeline import DAILY

T0 = datetime(2026, 11, 27, 11, 0, 0)


def _task(task_id: str, state: str | None, start: int | None, end: int | None, tries: int = 1):
    def at(seconds: int | None) -> datetime | None:
        return None if seconds is None else T0 + timedelta(seconds=seconds)

    return TaskState(task_id, state, tries, -1, at(start), at(end))


INGEST = {"received_rows": 1_000, "loaded_rows": 990, "quarantined_rows": 10, "rows": 990}


def _run(*tasks: TaskState, **returns) -> RunState:
    return RunState("manual__x", "running", tasks, returns)


def test_stage_lines_come_from_the_tasks_and_their_summaries():
    run = _run(
        _task("ingest", "success", 0, 4),
        _task("product_text", "success", 4, 6),
        _task("dbt_features.a_model_build", "success", 6, 20),
        _task("dbt_features.b_model_build", "running", 20, None),
        ingest=INGEST,
    )
    by_name = {p.name: p for p in stage_progress(run, DAILY)}
    assert describe(by_name["ingest"]) == (
        "  ingest            4.0s  1,000 rows received = 990 loaded + 10 quarantined (250/s)"
    )
    features = by_name["dbt_features"]
    assert (features.total, features.done, features.finished, features.running) == (
        2,
        1,
        False,
        True,
    )
    # A stage whose summary is missing still gets a line.
    assert describe(by_name["product_text"]).endswith("done")
    assert by_name["train"].total == 0 and not by_name["train"].finished


def test_a_failed_stage_names_its_task_and_later_stages_say_they_did_not_run():
    run = _run(
        _task("dbt_features.a_model_build", "success", 0, 5),
        _task("dbt_features.b_model_build", "failed", 5, 9),
        _task("train", "upstream_failed", None, None),
    )
    by_name = {p.name: p for p in stage_progress(run, DAILY)}
    assert describe(by_name["dbt_features"]).endswith("FAILED: dbt_features.b_model_build")
    assert describe(by_name["train"]).endswith("not run: an earlier stage failed")


def test_the_printer_prints_each_finished_stage_once_in_order():
    out = io.StringIO()
    printer = ProgressPrinter(out, DAILY, live=False, clock=lambda: T0)
    printer.update(_run(_task("ingest", "running", 0, None)))
    assert out.getvalue() == ""
    running = _run(
        _task("ingest", "success", 0, 4), _task("product_text", "running", 4, None), ingest=INGEST
    )
    printer.update(running)
    printer.update(running)  # polled again: nothing new to say
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("  ingest") and "\r" not in out.getvalue()


def test_on_a_terminal_a_live_bar_is_redrawn_and_cleared_before_each_line():
    out = io.StringIO()
    printer = ProgressPrinter(out, DAILY, live=True, clock=lambda: T0 + timedelta(seconds=75))
    tasks = [_task(f"dbt_features.m{i}_model_build", "success", i, i + 1) for i in range(3)]
    tasks.append(_task("dbt_features.m9_model_build", "running", 3, None))
    printer.update(_run(_task("ingest", "success", 0, 1), *tasks))
    text = out.getvalue()
    assert "dbt_features   [##################------] 3/4 tasks  1m15s" in text
    printer.close()
    assert out.getvalue().endswith("\r\033[K")
    # Not live: no control characters at all.
    plain = io.StringIO()
    ProgressPrinter(plain, DAILY, live=False, clock=lambda: T0).update(_run(*tasks))
    assert "\r" not in plain.getvalue() and "\033" not in plain.getvalue()


def test_durations_read_naturally():
    assert [duration(s) for s in (None, 9.44, 125, 3720)] == ["-", "9.4s", "2m05s", "1h02m"]


def test_run_log_names_do_not_collide(tmp_path: Path):
    first = run_log_path(tmp_path / "logs", T0)
    first.write_text("x")
    second = run_log_path(tmp_path / "logs", T0)
    assert (first.name, second.name) == ("run-20261127T110000Z.log", "run-20261127T110000Z-2.log")


DAG_TEST_OUTPUT = """\
2026-11-27T11:29:54.906326Z [info     ] DAG bundles loaded: dags-folder [airflow.dag_processing.bundles.manager.DagBundlesManager] loc=manager.py:304
2026-11-27T11:29:57.795694Z [info     ] [DAG TEST] starting task_id=ingest map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-11-27T11:29:58.000000Z [info     ] [DAG TEST] running task <TaskInstance: affinity_daily.ingest manual__x [TaskInstanceState.SCHEDULED] ti_id=1> [airflow.sdk.definitions.dag] loc=dag.py:1504
2026-11-27T11:30:10.000000Z [warning  ] orders.csv: column(s) not in the orders contract ignored: note [ml.ingest.loader] loc=loader.py:140
11:30:11  dbt says hello
2026-11-27T11:30:14.807286Z [info     ] [DAG TEST] end task task_id=ingest map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
2026-11-27T11:30:14.900000Z [info     ] between tasks [airflow.models.dagrun.DagRun] loc=dagrun.py:1
2026-11-27T11:30:15.000000Z [info     ] [DAG TEST] starting task_id=dbt_features.m_model_build map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-11-27T11:30:16.000000Z [error    ] boom [task] loc=x.py:1
2026-11-27T11:30:17.000000Z [info     ] [DAG TEST] end task task_id=dbt_features.m_model_build map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
2026-11-27T11:30:20.000000Z [info     ] [DAG TEST] starting task_id=dbt_features.m_model_build map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-11-27T11:30:21.000000Z [info     ] fine now [task] loc=x.py:1
2026-11-27T11:30:22.000000Z [info     ] [DAG TEST] end task task_id=dbt_features.m_model_build map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
"""
TEMPLATE = (
    "dag_id={{ ti.dag_id }}/run_id={{ ti.run_id }}/task_id={{ ti.task_id }}/"
    "{% if ti.map_index >= 0 %}map_index={{ ti.map_index }}/{% endif %}"
    "attempt={{ try_number|default(ti.try_number) }}.log"
)


def test_the_output_is_cut_into_one_section_per_task_attempt():
    sections = split_task_sections(DAG_TEST_OUTPUT.splitlines(keepends=True))
    assert [(s.task_id, len(s.lines)) for s in sections] == [
        ("ingest", 5),
        ("dbt_features.m_model_build", 3),
        ("dbt_features.m_model_build", 3),
    ]
    records = structured(sections[0].lines)
    assert records[2] == {
        "timestamp": "2026-11-27T11:30:10.000000Z",
        "level": "warning",
        "event": "orders.csv: column(s) not in the orders contract ignored: note loc=loader.py:140",
        "logger": "ml.ingest.loader",
    }
    # The TaskInstance repr has brackets of its own: the logger is the last one.
    assert records[1]["logger"] == "airflow.sdk.definitions.dag"
    # dbt's own lines keep the last timestamp, so the UI keeps them in place.
    assert records[3] == {
        "timestamp": "2026-11-27T11:30:10.000000Z",
        "event": "11:30:11  dbt says hello",
    }


def test_task_logs_are_written_where_the_run_template_puts_them(tmp_path: Path):
    output = tmp_path / "run.log"
    output.write_text(DAG_TEST_OUTPUT)
    tasks = [
        _task("ingest", "success", 0, 1),
        _task("dbt_features.m_model_build", "success", 2, 3, tries=2),
        _task("dbt_features.never_ran", "upstream_failed", None, None, tries=0),
    ]
    written = write_task_logs(
        output, tmp_path / "logs", TEMPLATE, "affinity_daily", "manual__x", tasks
    )
    base = tmp_path / "logs" / "dag_id=affinity_daily" / "run_id=manual__x"
    assert written == [
        base / "task_id=ingest" / "attempt=1.log",
        base / "task_id=dbt_features.m_model_build" / "attempt=1.log",
        base / "task_id=dbt_features.m_model_build" / "attempt=2.log",
    ]
    retry = [json.loads(line) for line in written[2].read_text().splitlines()]
    assert [r["event"].split(" loc=")[0] for r in retry][1] == "fine now"
    first = [json.loads(line)["event"] for line in written[1].read_text().splitlines()]
    assert any(e.startswith("boom") for e in first)


def test_a_failure_names_the_task_and_shows_the_end_of_its_log(tmp_path: Path):
    from ml.orchestration.dag_watch import DagWatch

    output = tmp_path / "run.log"
    output.write_text(DAG_TEST_OUTPUT)
    watch = DagWatch(tmp_path / "airflow", "affinity_daily", T0)
    assert watch.failure_detail(output) == ""  # nothing read yet: nothing to add
    watch.state = _run(
        _task("ingest", "success", 0, 1), _task("dbt_features.m_model_build", "failed", 2, 3, 2)
    )
    detail = watch.failure_detail(output).splitlines()
    assert detail[0] == "failed task(s): dbt_features.m_model_build"
    assert detail[1] == "last lines of dbt_features.m_model_build's log:"
    # The last attempt's lines, not the first one's.
    assert any("fine now" in line for line in detail) and not any("boom" in line for line in detail)
