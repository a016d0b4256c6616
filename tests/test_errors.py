"""Malformed specs: each gives a `SpecError` at the right line and column, rendered with the
offending line, a caret under the mistake and a hint where one helps."""
import numpy as np
import pytest

import unroll
from unroll.dsl.parser import BAD_EXAMPLES, parse
from unroll.errors import DerivationError, NameError_, ShapeError, SpecError, SpecSyntaxError, TyingError

A = np.random.default_rng(0).standard_normal((4, 6))

# Lines 1-5; every case below adds its own lines from line 6 on.
HEAD = ("dims n, m\n"
        "operator A : [n, m]\n"
        "input y : [n]\n"
        "target x_star : [m]\n"
        "const lam = 0.1\n")


def spec(*body: str, state: str = "state x : [m] = 0", decls: str = "", tail: str = "output x\n") -> str:
    """HEAD, extra declarations (from line 6), the state, `iterate K = 3:` and the indented body."""
    return (HEAD + decls + state + "\niterate K = 3:\n" + "".join(f"    {b}\n" for b in body) + tail)


# (id, text, error class, line, col, text in message, text in hint or None)
CASES = [
    # ---- syntax ----
    ("missing_equals", HEAD + "const c 0.1\n" + spec("x = A' y")[len(HEAD):],
     SpecSyntaxError, 6, 9, "missing '='", "const name = expression"),
    ("missing_shape", spec("x = A' y", decls="learn W : m = 0\n"),
     SpecSyntaxError, 6, 11, "missing shape", "in brackets"),
    ("expression_ends_early", spec("x = A' y", decls="const c = 1 +\n"),
     SpecSyntaxError, 6, 14, "expression ends too early", None),
    ("unclosed_norm", spec("x = A' y", decls="const c = ||A\n"),
     SpecSyntaxError, 6, 14, "unclosed norm bars", "||v||"),
    ("iterate_without_colon", HEAD + "state x : [m] = 0\niterate K = 3\n    x = A' y\noutput x\n",
     SpecSyntaxError, 7, 14, "missing ':' after iterate", "iterate K = 16:"),
    ("empty_iterate", HEAD + "state x : [m] = 0\niterate K = 3:\noutput x\n",
     SpecSyntaxError, 8, 1, "iterate block is empty or not indented", "indent"),
    ("unexpected_character", spec("x = A' y $ x"),
     SpecSyntaxError, 8, 14, "unexpected character '$'", None),
    ("unexpected_indentation", spec("x = A' y", "  x = x"),
     SpecSyntaxError, 9, 7, "unexpected indentation", None),
    ("inconsistent_dedent", spec("    x = A' y", "x = x"),
     SpecSyntaxError, 9, 5, "indentation matches no enclosing block", "same amount"),
    ("unclosed_string", 'algorithm X "hello\n' + spec("x = A' y"),
     SpecSyntaxError, 1, 13, "unexpected character '\"'", None),
    # ---- names ----
    ("unknown_name_typo", spec("x = soft(A' y + x, lamda)"),
     NameError_, 8, 24, "unknown name 'lamda'", "did you mean 'lam'?"),
    ("unknown_learnable_typo", spec("x = W_ee y", decls="learn W_e : [m, n] = A'\n"),
     NameError_, 9, 9, "unknown name 'W_ee'", "'W_e'"),
    ("unknown_function", spec("x = sofft(A' y, lam)"),
     NameError_, 8, 9, "unknown function 'sofft'", "'soft'"),
    ("unknown_dim", HEAD.replace("[n, m]", "[n, p]") + spec("x = A' y")[len(HEAD):],
     NameError_, 2, 18, "unknown dim 'p'", "dims"),
    ("unknown_dim_typo", spec("x = A' y", state="state x : [mm] = 0"),
     NameError_, 6, 12, "unknown dim 'mm'", "did you mean 'm'?"),
    ("duplicate_declaration", spec("x = A' y", decls="input y : [n]\n"),
     NameError_, 6, 1, "'y' is already declared as input at line 3", "declared once"),
    ("reserved_name", spec("x = A' y", decls="const k = 1\n"),
     NameError_, 6, 1, "'k' is reserved", "layer index"),
    ("assign_to_operator", spec("A = A", "x = A' y"),
     NameError_, 8, 5, "cannot assign to operator 'A'", "only states"),
    ("assign_to_input", spec("y = y", "x = A' y"),
     NameError_, 8, 5, "cannot assign to input 'y'", "only states"),
    ("target_in_iterate_body", spec("x = A' y + x_star"),
     NameError_, 8, 16, "target 'x_star' cannot be used here", "only visible to the loss"),
    ("target_in_state_init", spec("x = A' y", state="state x : [m] = x_star"),
     NameError_, 6, 17, "target 'x_star' cannot be used here", None),
    ("input_in_learn_init", spec("x = W y", decls="learn W : [m, n] = A' + y\n"),
     NameError_, 6, 25, "input 'y' cannot be used here", "when the model is built"),
    ("index_outside_iterate", spec("x = A' y", decls="const c = k + 1\n"),
     NameError_, 6, 11, "layer index k", None),
    ("output_not_a_state", spec("x = A' y", tail="output xx\n"),
     NameError_, 9, 1, "output 'xx' is not a state", "did you mean 'x'?"),
    ("cost_parameter_not_a_state", spec("x = A' y", decls="cost f(z) = ||z||^2\n"),
     NameError_, 6, 1, "cost parameter 'z' is not a state", None),
    ("loss_reads_iterate_local", spec("r = A x - y", "x = x - A' r", tail="output x\nloss mse(r, y)\n"),
     NameError_, 11, 10, "unknown name 'r'", None),
    # ---- shapes ----
    ("matmul_inner_dims", spec("x = soft(A y + x, lam)"),
     ShapeError, 8, 14, "cannot multiply [n, m] by [n]", "`A` is [n, m] (from operator A : [n, m], line 2)"),
    ("add_mismatch", spec("x = x + y"),
     ShapeError, 8, 9, "cannot add [m] and [n]", "`y` is [n] (from input y : [n], line 3)"),
    ("wrong_init_shape", spec("x = W y + x", decls="learn W : [m, n] = A\n"),
     ShapeError, 6, 20, "learn W is declared [m, n] but its value has shape [n, m]", "`A` is [n, m]"),
    ("state_update_shape", spec("x = y"),
     ShapeError, 8, 9, "state x is [m] but the new value is [n]", "`y` is [n]"),
    ("transpose_of_vector", spec("x = soft(x' + A' y, lam)"),
     ShapeError, 8, 14, "transpose needs a matrix", "sum(x * y)"),
    ("left_factor_vector", spec("x = soft(y A, lam)"),
     ShapeError, 8, 14, "left factor of a product must be a matrix", "a * b"),
    ("loss_not_scalar", spec("x = A' y", tail="output x\nloss x - x_star\n"),
     ShapeError, 10, 6, "the loss must be a scalar", "mse(x, x_star)"),
    ("aux_not_scalar", spec("x = A' y", "aux r = x", tail="output x\nloss mse(x, x_star) + r\n"),
     ShapeError, 9, 13, "aux term r must be a scalar", "sum()"),
    ("cost_not_scalar", spec("x = A' y", decls="cost f(x) = A x - y\n").replace(
        "cost f(x) = A x - y\nstate x : [m] = 0\n", "state x : [m] = 0\ncost f(x) = A x - y\n"),
     ShapeError, 7, 13, "cost f must be a scalar", None),
    ("cost_argument_shape", spec("x = x - f(y) * x", decls="cost f(x) = ||A x - y||^2\n").replace(
        "cost f(x) = ||A x - y||^2\nstate x : [m] = 0\n", "state x : [m] = 0\ncost f(x) = ||A x - y||^2\n"),
     ShapeError, 9, 15, "cost f takes x of shape [m]", "`y` is [n]"),
    ("identity_size_unknown", spec("x = A' y", decls="const B = I\n"),
     ShapeError, 6, 11, "the size of I is unknown", "square matrix"),
    ("zero_dimension", HEAD.replace("[n, m]", "[n, 0]") + spec("x = A' y")[len(HEAD):],
     ShapeError, 2, 18, "a dimension must be positive", None),
    ("complex_state_real_update", spec("x = A' y", state="state x : [m] complex = 0"),
     ShapeError, 8, 9, "state x is complex but the new value is real", None),
    ("derivative_divides_by_zero", spec("x = x - grad(f, x)", state="state x : [m] = 0\n"
                                        "cost f(x) = 1/0 * ||A x - y||^2"),
     SpecError, 7, 13, "divides by zero", "a value written in the spec must be finite"),
    # ---- tying and constraints ----
    ("shared_per_layer", spec("x = W y + x", decls="learn W : [m, n] = A' shared per_layer\n"),
     TyingError, 6, 30, "both shared and per_layer", "choose one tying"),
    ("two_constraints", spec("x = soft(A' y, t)", decls="learn t : [m] = 1 positive unit\n"),
     TyingError, 6, 28, "two constraints", None),
    # ---- structure and calls ----
    ("missing_iterate", HEAD + "state x : [m] = 0\noutput x\n",
     SpecError, 1, 1, "no `iterate K = N:` block", "iterate K = 16:"),
    ("two_iterate_blocks", spec("x = A' y", tail="iterate J = 2:\n    x = x\noutput x\n"),
     SpecError, 9, 1, "one iterate block", None),
    ("no_state", HEAD + "iterate K = 3:\n    z = A' y\noutput z\n",
     SpecError, 6, 1, "declares no state", "state x : [m] = 0"),
    ("no_output", spec("x = A' y", tail=""),
     SpecError, 7, 1, "has no `output`", "output x"),
    ("K_zero", HEAD + "state x : [m] = 0\niterate K = 0:\n    x = A' y\noutput x\n",
     SpecError, 7, 1, "K must be at least 1", None),
    ("wrong_arg_count", spec("x = soft(A' y)"),
     SpecError, 8, 9, "soft() takes 2 arguments, got 1", "soft(v, t)"),
    ("cost_wrong_arg_count", spec("x = x - A'(A x - y) + f(x, x)",
                                  decls="cost f(x) = ||A x - y||^2\n").replace(
        "cost f(x) = ||A x - y||^2\nstate x : [m] = 0\n", "state x : [m] = 0\ncost f(x) = ||A x - y||^2\n"),
     SpecError, 9, 27, "cost f takes 1 argument(s), got 2", None),
    ("value_called_as_function", spec("x = y(1, 2)"),
     SpecError, 8, 9, "'y' is a value, not a function", None),
    ("keyword_argument", spec("x = soft(x, t=1)"),
     SpecError, 8, 9, "soft() takes no keyword arguments", None),
    ("list_expression", spec("x = [x, x]"),
     SpecError, 8, 9, "a list is only allowed as a keyword argument", None),
]


def _raise(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        unroll.compile(text, A=A)
    return info.value


def _assert_rendered(err: SpecError, text: str, line: int, col: int) -> None:
    """The rendering has `file:line:col:`, the source line and a caret starting at `col`."""
    out = str(err)
    head, src_line, caret = out.splitlines()[:3]
    assert head.startswith(f"<spec>:{line}:{col}: {err.kind}: ")
    assert src_line == f"  {line:4d} | {text.splitlines()[line - 1]}"
    assert caret.startswith("       | ")
    marks = caret[len("       | "):]
    assert marks.lstrip(" ").startswith("^") and set(marks.strip()) == {"^"}
    assert len(marks) - len(marks.lstrip(" ")) == col - 1
    if err.hint:
        assert out.splitlines()[-1] == f"hint: {err.hint}"


def test_at_least_twenty_cases():
    assert len(CASES) >= 20
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_spec(case):
    _, text, cls, line, col, message, hint = case
    err = _raise(text)
    assert isinstance(err, cls), f"{type(err).__name__}: {err}"
    assert (err.span.line, err.span.col) == (line, col), str(err)
    assert message in err.message
    assert err.hint, f"{case[0]}: every spec error carries a hint"
    if hint is not None:
        assert hint in err.hint, err.hint
    _assert_rendered(err, text, line, col)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_check_alone_raises_the_same_error(case):
    """`unroll.check` (no operators) reports the same place as `compile` for spec-only mistakes."""
    _, text, cls, line, col, message, _ = case
    try:
        unroll.check(text)
    except SpecError as err:
        assert (err.span.line, err.span.col) == (line, col)
        assert message in err.message


@pytest.mark.parametrize("prefix", ["", "dims n, m\noperator A : [n, m]\nstate x : [m] = 0\n"],
                         ids=["alone", "after_declarations"])
@pytest.mark.parametrize("message,hint,example",
                         [(m, h, ex) for m, h, exs in BAD_EXAMPLES for ex in exs])
def test_bad_examples_give_their_named_message(message, hint, example, prefix):
    with pytest.raises(SpecSyntaxError) as info:
        parse(prefix + example)
    err = info.value
    assert err.message == message
    assert err.hint == hint
    assert err.span.line >= prefix.count("\n") + 1
    assert "^" in str(err)


UNCLOSED_PAREN = [
    ("in_iterate", spec("x = soft(A' y + x, lam"), 8, len("    x = soft(A' y + x, lam") + 1),
    ("before_declaration", spec("x = A' y", decls="const c = (1 + 2\nconst d = 3\n"), 6,
     len("const c = (1 + 2") + 1),
]


@pytest.mark.parametrize("case", UNCLOSED_PAREN, ids=[c[0] for c in UNCLOSED_PAREN])
def test_unclosed_paren_is_reported_on_its_own_line(case):
    _, text, line, col = case
    with pytest.raises(SpecSyntaxError) as info:
        parse(text)
    assert (info.value.span.line, info.value.span.col) == (line, col)
    assert info.value.message == "missing closing parenthesis"


def test_constraint_violated_by_init_points_at_the_init():
    text = spec("x = soft(A' y, theta)", decls="learn theta : [m] = -1 positive\n")
    err = _raise(text)
    assert (err.span.line, err.span.col) == (6, 21)
    assert "positive" in err.message
    _assert_rendered(err, text, 6, 21)


def test_constraint_error_names_the_learnable_that_fails():
    text = spec("x = soft(a * A' y, b)",
                decls="learn a : [] = 1 positive\nlearn b : [m] = 2 unit\n")
    err = _raise(text)
    assert "learn b" in err.message and "unit" in err.message
    assert (err.span.line, err.span.col) == (7, 17)


def test_operator_shape_mismatch_points_at_the_declaration():
    with pytest.raises(ShapeError) as info:
        unroll.compile("zoo:lista", K=2, A=np.zeros(4))
    err = info.value
    assert (err.span.file, err.span.line, err.span.col) == ("lista.unroll", 5, 1)
    assert str(err).startswith("lista.unroll:5:1: shape error: operator A is declared [n, m]")


def test_dim_given_twice_inconsistently():
    with pytest.raises(ShapeError) as info:
        unroll.compile("zoo:lista", K=2, dims={"n": 5}, A=A)
    assert "n = 5" in info.value.message and info.value.span.line == 5


def test_unknown_operator_and_missing_operator():
    with pytest.raises(SpecError, match="unknown operator B"):
        unroll.compile("zoo:lista", K=2, A=A, B=A)
    with pytest.raises(SpecError, match="operator A was not given") as info:
        unroll.compile("zoo:lista", K=2, dims={"n": 4, "m": 6})
    assert info.value.span.line == 5 and "unroll.compile(spec, A=array)" in info.value.hint


def test_errors_from_files_name_the_file(tmp_path):
    p = tmp_path / "bad.unroll"
    p.write_text(spec("x = soft(A' y + x, lamda)"))
    with pytest.raises(NameError_) as info:
        unroll.check(p)
    assert str(info.value).startswith(f"{p}:8:24: name error: unknown name 'lamda'")


def test_caret_lines_up_under_tab_indentation():
    text = spec("\tx = soft(A y + x, 0.1)").replace("    \t", "\t")
    err = _raise(text)
    src_line, caret = str(err).splitlines()[1:3]
    col = err.span.col
    assert src_line.endswith(text.splitlines()[err.span.line - 1])
    prefix = caret[len("       | "):].split("^")[0]
    assert prefix.expandtabs(8) == " " * len(text.splitlines()[err.span.line - 1][:col - 1].expandtabs(8))


def test_unused_learnable_is_reported_without_derived_steps():
    from unroll.compiler.implicit import UnusedLearnableWarning
    with pytest.warns(UnusedLearnableWarning, match=r"<spec>:6:1: learn Z is never used"):
        unroll.compile(spec("x = soft(A' y + x, 0.1)", decls="learn Z : [m] = 0 shared\n"), A=A)


def test_complex_array_for_a_real_operator_is_an_error():
    with pytest.raises(SpecError, match="complex array but is declared real"):
        unroll.compile(spec("x = soft(A' y + x, 0.1)"), A=A + 1j * A)
