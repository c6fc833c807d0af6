"""Fuzzing the whole pipeline: whatever a `.snn` file contains, building, compiling,
instantiating and running it lets only `SnnError` escape, at build time, and changes
nothing outside its own folder (issue 8; LANGUAGE.md §7).

The cases (mutated corpus seeds, generated networks, both, special files) and the checks
on each are in fuzz_pipeline_worker.py. They run in child processes, each with a 4 GiB
address-space limit, a per-case alarm, SNNC_MAX_MEMORY=256M, HOME, TMPDIR and the kernel
cache (SNNC_CACHE) in this test's temporary folder, and PYTHONHASHSEED fixed: a case is a
pure function of (seed, index), so the default run is the same on every machine. A worker
that dies (a crash in C code, memory exhausted outside Python) or hangs is reported for
the case it was running and replaced by a new one that goes on after that case.

The default run makes DEFAULT_CASES cases without shrinking; `pytest -m slow` makes
SLOW_CASES with another seed, on every core, and shrinks the first failure of each kind
to a smaller input. From the command line (python tests/test_fuzz_pipeline.py --help)
any range of cases can be run and summarised.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import fuzz_pipeline_worker as worker
import pytest

WORKER = Path(worker.__file__).resolve()
DEFAULT_CASES, DEFAULT_SEED = 1000, 0
SLOW_CASES, SLOW_SEED = 20_000, 1
# A worker whose case outlives its own alarm is stuck where Python cannot interrupt it.
HANG_S = worker.CASE_SECONDS + 30
STARTUP_S = 60  # more, before a new worker's first case
SHOWN_CLASSES = 12


@dataclass
class Run:
    """The failures and statistics of a range of cases, over all workers."""
    seed: int
    cases: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    failures: list[dict] = field(default_factory=list)
    wall: float = 0.0


# ---------------------------------------------------------------------------------------
# Running workers.

def _environment(area: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "SNNC_CACHE": str(cache), "SNNC_MAX_MEMORY": worker.SNNC_MAX_MEMORY,
        "SNNC_TRACEBACK": "1",  # the CLI re-raises internal errors: the report shows where
        "SNNC_FUSED": "0",      # each case turns the kernels on or off itself
        "HOME": str(area / "home"), "TMPDIR": str(area / "tmp"),
        "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(WORKER.parent), env.get("PYTHONPATH", "")]),
    })
    return env


class Worker:
    """One child process over cases [start, stop), replaced when it dies or hangs."""

    def __init__(self, area: Path, cache: Path, seed: int, start: int, stop: int,
                 extra: tuple[str, ...] = (), hang_s: float = HANG_S) -> None:
        self.area, self.cache, self.seed = area, cache, seed
        self.next, self.stop, self.extra, self.hang_s = start, stop, extra, hang_s
        self.results = area / "results.jsonl"
        self.read_at = 0
        self.records: list[dict] = []
        self.running: int | None = None   # the case started and not done
        self.last_progress = time.monotonic()
        self.proc: subprocess.Popen | None = None

    def launch(self) -> None:
        worker.Area(self.area).make()
        argv = [sys.executable, str(WORKER), "--area", str(self.area), "--seed", str(self.seed),
                "--start", str(self.next), "--stop", str(self.stop), *self.extra]
        with open(self.area / "stderr.txt", "ab") as stderr:
            self.proc = subprocess.Popen(argv, env=_environment(self.area, self.cache),
                                         cwd=self.area, stdout=subprocess.DEVNULL,
                                         stderr=stderr, start_new_session=True)
        self.last_progress = time.monotonic() + STARTUP_S  # importing torch comes first

    def poll(self) -> bool:
        """Read new results; restart after a death or hang. False once all cases are done."""
        self._read()
        if self.proc.poll() is None:
            if time.monotonic() - self.last_progress <= self.hang_s:
                return True
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            kind, why = "hang", f"no progress for {self.hang_s:.0f} s (the alarm did not stop it)"
        else:
            kind, why = "crash", f"the worker died: exit status {self.proc.returncode}"
        self._read()
        if self.running is None and self.next < self.stop:
            self.running = self.next  # it stopped between cases: blame the next, to go on
        if self.running is not None:
            self._lost(kind, why if kind == "hang" else f"{why}; {self._stderr_tail()}")
        if self.next < self.stop:
            self.launch()
            return True
        return False

    def _read(self) -> None:
        if not self.results.exists():
            return
        with open(self.results, encoding="utf-8") as f:
            f.seek(self.read_at)
            while (line := f.readline()).endswith("\n"):
                self.read_at = f.tell()
                record = json.loads(line)
                self.last_progress = time.monotonic()
                if record["event"] == "start":
                    self.running = record["case"]
                else:
                    self.running = None
                    self.next = record["case"] + 1
                    self.records.append(record)

    def _lost(self, kind: str, message: str) -> None:
        """The running case killed its worker: a failure, and the next worker skips it."""
        try:
            record = worker.case_record(worker.make_case(self.seed, self.running))
        except Exception as exc:  # noqa: BLE001 - the failure says so
            record = {"case": self.running, "kind": "?", "origin": f"make_case: {exc!r}",
                      "main": "", "build": None, "fused": False, "backward": False,
                      "special": None, "files": {}}
        failure = {**record, "stage": "worker", "type": kind, "message": message,
                   "traceback": ""}
        self.records.append({"event": "done", "case": self.running, "outcome": "failed",
                             "stage": "worker", "seconds": HANG_S if kind == "hang" else 0,
                             "kind": record["kind"], "failures": [failure]})
        self.next, self.running = self.running + 1, None

    def _stderr_tail(self) -> str:
        text = (self.area / "stderr.txt").read_bytes().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-15:])


def run_cases(folder: Path, seed: int, start: int, stop: int, jobs: int = 1,
              extra: tuple[str, ...] = (), hang_s: float = HANG_S) -> Run:
    """Cases [start, stop) on `jobs` workers, each on a contiguous share."""
    began = time.monotonic()
    cache = folder / "cache"
    bounds = [start + (stop - start) * k // jobs for k in range(jobs + 1)]
    workers = [Worker(folder / f"worker{k}", cache, seed, bounds[k], bounds[k + 1], extra,
                      hang_s) for k in range(jobs) if bounds[k] < bounds[k + 1]]
    for w in workers:
        w.launch()
    active = list(workers)
    while active:
        time.sleep(0.2)
        active = [w for w in active if w.poll()]
    run = Run(seed, wall=time.monotonic() - began)
    for record in (r for w in workers for r in w.records):
        run.cases += 1
        run.seconds += record["seconds"]
        run.outcomes[record["outcome"]] += 1
        run.failures += record.get("failures", [])
    return run


# ---------------------------------------------------------------------------------------
# Reporting.

def signature(failure: dict) -> tuple[str, str, str]:
    """What makes two failures the same bug, roughly: stage, exception type and the
    message with its numbers, quoted names and paths taken out."""
    message = failure["message"].splitlines()[0] if failure["message"] else ""
    message = re.sub(r"(['\"]).*?\1", "'…'", message)
    message = re.sub(r"\[[\d,\s]*\]", "[…]", message)  # shapes
    message = re.sub(r"/\S+", "PATH", message)
    message = re.sub(r"\d+(\.\d+)?(e[+-]?\d+)?", "N", message)
    stage = re.sub(r"^(built module|fused|reference): ", "", failure["stage"])
    return stage, failure["type"], message[:100]


def classes(failures: list[dict]) -> dict[tuple, list[dict]]:
    grouped: dict[tuple, list[dict]] = {}
    for failure in failures:
        grouped.setdefault(signature(failure), []).append(failure)
    return dict(sorted(grouped.items(), key=lambda item: -len(item[1])))


def summary(run: Run, shrunk: dict[int, str] | None = None) -> str:
    per_case = run.seconds / max(1, run.cases)
    lines = [f"{run.cases} cases (seed {run.seed}) in {run.wall:.0f} s "
             f"({per_case * 1000:.0f} ms per case in the workers): "
             + ", ".join(f"{n} {k}" for k, n in sorted(run.outcomes.items())),
             f"{len(run.failures)} failures in {len(classes(run.failures))} classes:"]
    for n, (key, found) in enumerate(classes(run.failures).items()):
        if n == SHOWN_CLASSES:
            lines.append(f"... and {len(classes(run.failures)) - n} more classes")
            break
        lines += _describe_class(key, found, (shrunk or {}).get(found[0]["case"]))
    return "\n".join(lines)


def _describe_class(key: tuple, found: list[dict], shrunk: str | None) -> list[str]:
    first = found[0]
    stage, kind, _ = key
    lines = ["", f"=== {len(found)} x [{stage}] {kind}: {first['message'][:300]}",
             f"    first: case {first['case']} ({first['kind']}, {first['origin']}, "
             f"file {first['main']!r}, build {first['build']}, fused {first['fused']}, "
             f"special {first['special']}); cases {sorted({f['case'] for f in found})[:12]}"]
    if first["traceback"]:
        lines += ["    " + line for line in first["traceback"].splitlines()[-8:]]
    text = shrunk if shrunk is not None else first["files"].get(first["main"], "")
    label = "shrunk input" if shrunk is not None else "input"
    lines.append(f"    --- {label} ({len(text)} characters):")
    lines += ["    | " + line for line in text[:1500].splitlines()]
    others = [k for k in first["files"] if k not in (first["main"], "lib.snn")]
    if others:
        lines.append(f"    (and files {others})")
    return lines


def shrink_classes(folder: Path, run: Run, budget_s: float, most: int = 10) -> dict[int, str]:
    """The first case of each failure class, shrunk by a worker of its own."""
    shrunk: dict[int, str] = {}
    for key, found in list(classes(run.failures).items())[:most]:
        case = found[0]["case"]
        if key[0] == "worker":
            continue  # it kills its worker: shrinking it would kill every attempt too
        area = folder / f"shrink{case}"
        w = Worker(area, folder / "cache", run.seed, case, case + 1,
                   ("--shrink", str(budget_s)), hang_s=budget_s + 2 * HANG_S)
        w.launch()
        while w.poll():
            time.sleep(0.2)
        for record in w.records:
            for failure in record.get("failures", []):
                shrunk.setdefault(case, failure["files"][failure["main"]])
    return shrunk


def check(folder: Path, seed: int, cases: int, jobs: int, shrink_s: float = 0) -> None:
    run = run_cases(folder, seed, 0, cases, jobs)
    (folder / "failures.json").write_text(json.dumps(run.failures, indent=1))
    shrunk = shrink_classes(folder, run, shrink_s) if shrink_s and run.failures else None
    print(summary(run, shrunk).splitlines()[0])
    assert run.cases == cases, f"{run.cases} of {cases} cases reported"
    if run.failures:  # the summary alone: the records are in failures.json
        pytest.fail(f"{summary(run, shrunk)}\n\nall failures: {folder / 'failures.json'}",
                    pytrace=False)


# ---------------------------------------------------------------------------------------
# The fuzz runs.

def test_fuzz_pipeline(tmp_path):
    check(tmp_path, DEFAULT_SEED, DEFAULT_CASES, jobs=min(2, os.cpu_count() or 1))


@pytest.mark.slow
def test_fuzz_pipeline_slow(tmp_path):
    check(tmp_path, SLOW_SEED, SLOW_CASES, jobs=os.cpu_count() or 1, shrink_s=60)


# ---------------------------------------------------------------------------------------
# The harness itself: it must see what it is there to see.

def test_cases_are_a_function_of_seed_and_index():
    for index in (0, 30, 31, 500, 19_999):
        assert worker.make_case(3, index) == worker.make_case(3, index)
    assert worker.make_case(3, 500) != worker.make_case(4, 500)


def test_generated_networks_mostly_pass_the_checks(tmp_path):
    """Otherwise the fuzzer tests only the checks: code generation and the runtime are
    reached only by what the checks accept."""
    from snnc.compiler import frontend
    from snnc.errors import SnnError
    passed, total = 0, 0
    for index in range(200):
        rng = worker.random.Random(f"generator/{index}")
        text, files = worker.NetworkWriter(rng).program()
        folder = tmp_path / str(index)
        folder.mkdir()
        for name, content in {"net.snn": text, "lib.snn": worker.corpus.LIB, **files}.items():
            (folder / name).write_text(content, encoding="utf-8")
        total += 1
        try:
            frontend(folder / "net.snn")
            passed += 1
        except SnnError:
            pass
    assert passed >= 0.5 * total, f"only {passed} of {total} generated networks pass"


def _one_case(tmp_path: Path, text: str, **fields) -> worker.Result:
    area = worker.Area(tmp_path / "area")
    area.make()
    case = worker.Case(7, "test", "test", "net.snn",
                       {"net.snn": text.encode(), "lib.snn": worker.corpus.LIB.encode()},
                       **fields)
    return worker.run_case(case, area)


SMALL = "network n { input a[3]; population p[3] = LIF; connect a -> p }\n"


def test_a_refusal_is_no_failure(tmp_path):
    result = _one_case(tmp_path, "network n { population p[3] = NoSuchModel }\n")
    assert (result.outcome, result.failures) == ("refused", [])


def test_another_exception_is_a_failure(tmp_path, monkeypatch):
    import snnc

    def broken(path, *args):
        raise ValueError("boom")
    monkeypatch.setattr(snnc, "compile", broken)
    result = _one_case(tmp_path, SMALL)
    assert [(f["stage"], f["type"]) for f in result.failures] == [("compile", "ValueError")]


def test_a_change_outside_the_case_folder_is_a_failure(tmp_path, monkeypatch):
    import snnc
    real = snnc.compile

    def leaky(path, *args):
        (tmp_path / "area" / "home" / "leak").write_text("")
        return real(path, *args)
    monkeypatch.setattr(snnc, "compile", leaky)
    result = _one_case(tmp_path, SMALL)
    assert [f["stage"] for f in result.failures] == ["outside the case folder"]
    assert "leak" in result.failures[0]["message"]


def test_a_changed_input_file_is_a_failure(tmp_path, monkeypatch):
    import snnc
    real = snnc.compile

    def overwriting(path, *args):
        Path(path).write_text(SMALL + "\n")
        return real(path, *args)
    monkeypatch.setattr(snnc, "compile", overwriting)
    result = _one_case(tmp_path, SMALL)
    assert [f["stage"] for f in result.failures] == ["input files"]


def test_a_dead_worker_is_reported_and_the_run_goes_on(tmp_path):
    """Case 102's worker is killed by a signal, as a crash in C code would kill it."""
    run = run_cases(tmp_path, 0, 100, 104, extra=("--crash-at", "102"))
    assert run.cases == 4
    assert [(f["case"], f["stage"], f["type"]) for f in run.failures
            if f["stage"] == "worker"] == [(102, "worker", "crash")]


def test_a_hung_worker_is_reported_and_the_run_goes_on(tmp_path):
    """Case 102 blocks the alarm and sleeps, as a loop in C code would run on."""
    run = run_cases(tmp_path, 0, 100, 104, extra=("--hang-at", "102"), hang_s=3)
    assert run.cases == 4
    assert [(f["case"], f["stage"], f["type"]) for f in run.failures
            if f["stage"] == "worker"] == [(102, "worker", "hang")]


# ---------------------------------------------------------------------------------------
# The command line: any range, summarised.

def _main() -> None:
    parser = argparse.ArgumentParser(description="Run the whole-pipeline fuzzer's cases.")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=DEFAULT_CASES)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--shrink", type=float, default=0, help="seconds per class")
    parser.add_argument("--keep", help="a folder to keep the workers' files in")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="snnc-fuzz-"))
    folder.mkdir(parents=True, exist_ok=True)
    run = run_cases(folder, args.seed, args.start, args.stop, args.jobs)
    (folder / "failures.json").write_text(json.dumps(run.failures, indent=1))
    shrunk = shrink_classes(folder, run, args.shrink) if args.shrink and run.failures else None
    print(summary(run, shrunk))
    print(f"\nall failures: {folder / 'failures.json'}")


if __name__ == "__main__":
    _main()
