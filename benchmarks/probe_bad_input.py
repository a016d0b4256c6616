"""Re-run the bad-input probe: every case of the corpus (tests/bad_input_cases.py: one or more per
finding F1-F20 of the report, with its variants), API probes, and SIGKILLs during training followed
by --resume; each in a forked child with a time limit. Prints the tally (tried / clean / traceback /
hang / wrong) per finding and writes it as JSON.

    python -m benchmarks.probe_bad_input [--json runs/probe/bad_input.json] [--timeout 30] [--kills 3]

clean: the expected exit status and message; traceback: a Python traceback or an internal error
(exit 3) or an unexpected exception type from the API; hang: over the time limit; wrong: a
different exit status or message without a traceback (e.g. success where an error was due).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("UNROLL_DATA", str(ROOT.parent / "shared" / "data"))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _in_child(fn, timeout: float) -> tuple[str, int | None, str]:
    """Run fn() -> (exit code, text) in a forked child; ('hang', None, '') past the timeout."""
    out = tempfile.NamedTemporaryFile(delete=False, suffix=".out")
    out.close()
    pid = os.fork()
    if pid == 0:  # child
        code = 99
        with open(out.name, "w") as fh:
            try:
                with redirect_stdout(fh), redirect_stderr(fh):
                    code = fn()
            except BaseException:  # noqa: BLE001 - what the console script would show
                fh.write(traceback.format_exc())
                code = 1
            fh.flush()
        os._exit(code if isinstance(code, int) else 0)
    start = time.monotonic()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - start > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hang", None, ""
        time.sleep(0.05)
    text = Path(out.name).read_text(errors="replace")
    os.unlink(out.name)
    return "done", os.waitstatus_to_exitcode(status), text


def _classify(state: str, code: int | None, text: str, want_code: int, needle: str) -> str:
    if state == "hang":
        return "hang"
    if "Traceback" in text or code == 3 or "internal error" in text:
        return "traceback"
    if code != want_code or needle not in text:
        return "wrong"
    return "clean"


def cli_cases(timeout: float) -> list[dict]:
    from tests.bad_input_cases import ALL_CASES
    from unroll.cli.main import main
    rows = []
    for case in ALL_CASES:
        d = Path(tempfile.mkdtemp(prefix=f"probe-{case.id}-"))
        try:
            argv = case.make(d)
        except Exception as e:  # noqa: BLE001 - a case that cannot even be set up
            rows.append({"finding": case.finding, "case": case.id, "result": "traceback",
                         "detail": f"setup: {e!r}"})
            continue
        state, code, text = _in_child(lambda: main(argv), timeout)
        result = _classify(state, code, text, case.code, case.needle)
        rows.append({"finding": case.finding, "case": case.id, "result": result, "exit": code,
                     "detail": text.strip().splitlines()[-1][:200] if text.strip() else ""})
    return rows


def _api_probes():
    """(finding, name, callable, exception types that count as a clean error or None for success)."""
    import numpy as np
    import torch

    import unroll
    from unroll.errors import SpecError
    A = np.random.default_rng(0).standard_normal((4, 6))
    lista = lambda **kw: unroll.compile("zoo:lista", K=2, A=A, **kw)  # noqa: E731
    text = unroll.zoo.path("lista").read_text()
    bad = (SpecError, ValueError, TypeError)

    def call(**kw):
        return lambda: lista()(y=torch.randn(2, 4), **kw)

    def named(old, new):
        return lambda: unroll.compile(text.replace(old, new), K=2, A=A)
    return [
        ("F3", "target__states_loss", named("x_star", "_states"), bad),
        ("F4", "api_fixed_dim", lambda: unroll.compile("zoo:ista_net", K=2, dims={"N": 100, "M": 10}), bad),
        ("F4", "api_dim_negative", lambda: unroll.unfold("zoo:lista", K=2, dims={"n": -1, "m": 3}), bad),
        ("F4", "api_dim_float", lambda: unroll.unfold("zoo:lista", K=2, dims={"n": 2.5, "m": 3}), bad),
        ("F4", "api_dim_string", lambda: unroll.unfold("zoo:lista", K=2, dims={"n": "4", "m": 3}), bad),
        ("F5", "api_A_0x0", lambda: unroll.compile("zoo:lista", K=2, A=np.zeros((0, 0))), bad),
        ("F5", "api_A_0x6", lambda: unroll.compile("zoo:lista", K=2, A=np.zeros((0, 6))), bad),
        *[("F5", f"api_zero_A_{z}", (lambda z: lambda: unroll.compile(f"zoo:{z}", K=2, A=np.zeros((4, 6))))(z), bad)
          for z in ("ista", "fista", "lista")],
        ("F5", "api_nan_A", lambda: unroll.compile("zoo:lista", K=2, A=np.full((4, 6), np.nan)), bad),
        ("F18", "api_K_true", lambda: unroll.compile("zoo:lista", K=True, A=A), bad),
        ("F14", "api_K_huge", lambda: unroll.compile("zoo:lista", K=10**9, A=A), bad),
        ("F18", "upto_0", call(upto=0), bad),
        ("F18", "upto_negative", call(upto=-1), bad),
        ("F18", "upto_past_K", call(upto=7), bad),
        ("F20", "check_int", lambda: unroll.check(123), bad),
        ("F20", "check_none", lambda: unroll.check(None), bad),
        ("F16", "unknown_kwarg_dict", lambda: unroll.compile("zoo:lista", K=2, A=A, dim={"n": 4}), bad),
        ("F16", "nested_list_A", lambda: unroll.compile("zoo:lista", K=2, A=A.tolist()), None),
        ("F20", "negative_strides", lambda: unroll.compile("zoo:lista", K=2, A=A[::-1]), None),
        ("F20", "y_float64", lambda: lista()(y=torch.randn(2, 4, dtype=torch.float64)), None),
        ("F20", "dtype_float16", lambda: unroll.compile("zoo:lista", K=2, A=A, dtype=torch.float16), bad),
        ("F20", "dtype_int32", lambda: unroll.compile("zoo:lista", K=2, A=A, dtype=torch.int32), bad),
        ("F8", "api_const_div_zero", named("const lam = 0.1", "const lam = 1 / 0"), bad),
        ("F17", "api_backslash_file", lambda: unroll.compile(
            (lambda p: (p.write_text(text), p)[1])(Path(tempfile.mkdtemp()) / "b\\xn.unroll"), K=2, A=A), None),
    ]


def api_cases(timeout: float) -> list[dict]:
    rows = []
    for finding, name, fn, expected in _api_probes():
        def run(fn=fn, expected=expected):
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - classified below
                if expected is not None and isinstance(e, expected):
                    print(f"clean error: {type(e).__name__}: {str(e).splitlines()[0][:150]}")
                    return 2
                traceback.print_exc()
                return 3
            print("ok")
            return 0
        state, code, text = _in_child(run, timeout)
        want = 0 if expected is None else 2
        result = _classify(state, code, text, want, "")
        rows.append({"finding": finding, "case": f"api-{name}", "result": result, "exit": code,
                     "detail": text.strip().splitlines()[-1][:200] if text.strip() else ""})
    return rows


def kill_cases(kills: int, timeout: float) -> list[dict]:
    """SIGKILL `unroll train` at a few points, then --resume: the run must finish (exit 0)."""
    rows = []
    for i in range(kills):
        out = Path(tempfile.mkdtemp(prefix="probe-kill-")) / "run"
        cmd = [sys.executable, "-m", "unroll.cli.main", "train", "zoo:lista", "--K", "2", "--steps", "300",
               "--batch-size", "8", "--eval-every", "25", "--checkpoint-every", "10", "--out", str(out), "--quiet"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (out / "last.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(0.5 + 1.5 * i)
        proc.kill()
        proc.wait()
        r = subprocess.run(cmd[:-1] + ["--resume", "--quiet"], cwd=ROOT, capture_output=True, text=True,
                           timeout=timeout * 10)
        text = r.stdout + r.stderr
        ok = r.returncode == 0 and "Traceback" not in text and "completed after 300/300" in text
        rows.append({"finding": "F19", "case": f"kill9-resume-{i}", "exit": r.returncode,
                     "result": "clean" if ok else ("traceback" if "Traceback" in text else "wrong"),
                     "detail": text.strip().splitlines()[-1][:200] if text.strip() else ""})
        stale = list(out.glob(".*.tmp"))
        rows.append({"finding": "F19", "case": f"kill9-no-stale-tmp-{i}", "exit": None,
                     "result": "clean" if not stale else "wrong", "detail": f"{len(stale)} stale tmp files"})
    return rows


def tally(rows: list[dict]) -> str:
    by: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        by[r["finding"]][r["result"]] += 1
        by["total"][r["result"]] += 1
    order = sorted((f for f in by if f != "total"), key=lambda f: int(f[1:])) + ["total"]
    lines = ["| finding | tried | clean | traceback | hang | wrong |", "|---|---|---|---|---|---|"]
    for f in order:
        c = by[f]
        lines.append(f"| {f} | {sum(c.values())} | {c['clean']} | {c['traceback']} | {c['hang']} | {c['wrong']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default="runs/probe/bad_input.json", help="where to write the rows and tally")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before a case counts as a hang")
    p.add_argument("--kills", type=int, default=3, help="SIGKILL-and-resume runs (0 to skip)")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    rows = cli_cases(args.timeout) + api_cases(args.timeout) + kill_cases(args.kills, args.timeout)
    print(tally(rows))
    for r in rows:
        if r["result"] != "clean":
            print(f"  {r['result']:9} {r['case']}: {r['detail']}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "table": tally(rows)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
