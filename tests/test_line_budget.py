"""A line budget for the package (as tinygrad keeps one): growth past it is a decision, made by
raising the number here in a commit that says why."""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "unroll"
BUDGET_TOTAL = 20_000
BUDGET_MODULE = 700


def _lines(path: Path) -> int:
    return sum(1 for _ in path.open(encoding="utf-8"))


def test_package_stays_within_its_line_budget():
    sizes = {p.relative_to(PACKAGE).as_posix(): _lines(p) for p in PACKAGE.rglob("*.py")}
    assert sum(sizes.values()) <= BUDGET_TOTAL, f"unroll/ has {sum(sizes.values())} lines"
    big = {k: v for k, v in sizes.items() if v > BUDGET_MODULE}
    assert not big, f"modules over {BUDGET_MODULE} lines (split them by job): {big}"


BUDGET_FUNCTION = 80  # compiler/ and backends/: a function a reader holds in one screen


def test_compiler_and_backend_functions_stay_short():
    import ast
    long = []
    for sub in ("compiler", "backends"):
        for p in sorted((PACKAGE / sub).rglob("*.py")):
            for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > BUDGET_FUNCTION:
                        long.append(f"{p.relative_to(PACKAGE).as_posix()}:{node.lineno} {node.name} ({n} lines)")
    assert not long, f"functions over {BUDGET_FUNCTION} lines (split them): {long}"
