"""Writing a workspace: the starters a student fills in, the README with the statements, and the
reference solutions a teacher can fill in instead.

A starter keeps the lesson function's exact signature and replaces its body with
``raise NotImplementedError``. A solution is the lesson function's own source, without the lines
that hand the call to an engine kernel (the dispatch), which are not part of the math.
"""
import ast
import importlib
import inspect
import textwrap
from pathlib import Path

from ..files import written_whole
from .catalog import select

HEADER = ('"""{title}: exercise {number} of the minillm course.\n\n{statement}\n'
          'Check it, from this folder: minillm exercises check . --only {name}\n"""\n')


def lesson_object(module, qualname):
    """The library function (or method) an exercise mirrors."""
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _function_node(source):
    return ast.parse(source).body[0]


def signature_line(source):
    """'def name(args):' exactly as the lesson writes its arguments and defaults."""
    node = _function_node(source)
    return f"def {node.name}({ast.unparse(node.args)}):"


def solution_source(obj):
    """The source of ``obj`` with its dispatch statements removed: every top-level statement of the
    body that mentions ``dispatch`` or ``kernel``, or calls a private helper (an argument check)."""
    source = textwrap.dedent(inspect.getsource(obj))
    node = _function_node(source)
    dropped = set()
    for statement in node.body:
        names = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name)}
        private_call = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id.startswith("_")
                           for n in ast.walk(statement))
        if names & {"dispatch", "kernel"} or private_call:
            dropped.update(range(statement.lineno, statement.end_lineno + 1))
    lines = [line for i, line in enumerate(source.splitlines(), start=1) if i not in dropped]
    return "\n".join(lines) + "\n"


def starter_source(obj):
    """The signature, a one-line docstring naming the library twin, and NotImplementedError."""
    source = textwrap.dedent(inspect.getsource(obj))
    return (f"{signature_line(source)}\n"
            f'    """Your {obj.__qualname__} (see the statement at the top of this file)."""\n'
            f'    raise NotImplementedError("{obj.__qualname__} is not written yet")\n')


def file_text(exercise, solved):
    """The whole <name>.py of an exercise: header docstring, imports, then each function."""
    number = select().index(exercise) + 1
    parts = [HEADER.format(title=exercise.title, number=number, statement=exercise.statement.strip() + "\n",
                           name=exercise.name)]
    if exercise.imports:
        parts.append(exercise.imports + "\n")
    for module, qualname in exercise.lesson:
        obj = lesson_object(module, qualname)
        parts.append(solution_source(obj) if solved else starter_source(obj))
    return "\n\n\n".join(part.rstrip("\n") for part in parts) + "\n"


def readme_text(exercises, folder):
    """README.md of a workspace: how to check, then every statement in course order."""
    lines = ["# minillm exercises", "",
             "Fill in each file's functions, then check them (float64 gradient checks, a comparison with the",
             "library, and a test inside a real layer):", "",
             f"    minillm exercises check {folder}", f"    minillm exercises check {folder} --only {exercises[0].name}",
             "", "Each function keeps the name and signature of its twin in minillm, so the library runs your code",
             "when the check plugs it in.", ""]
    everything = select()
    for e in exercises:
        needs = f" (uses: {', '.join(e.needs)})" if e.needs else ""
        lines += [f"## {everything.index(e) + 1}. {e.title}: `{e.name}.py`{needs}", "", e.statement.strip(), ""]
    return "\n".join(lines)


def _write(path, text):
    with written_whole(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def start(folder, only=None):
    """Write the starters and README.md into ``folder`` (created). Refuses, naming the file, to
    overwrite anything that exists: a workspace may hold a student's work. Returns the paths written."""
    folder = Path(folder)
    exercises = select(only)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} is a file; the workspace must be a folder")
    targets = [folder / f"{e.name}.py" for e in exercises] + [folder / "README.md"]
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise FileExistsError(f"{existing[0]} already exists (a workspace is never overwritten); choose another "
                              "folder or remove it")
    folder.mkdir(parents=True, exist_ok=True)
    for e, path in zip(exercises, targets):
        _write(path, file_text(e, solved=False))
    _write(targets[-1], readme_text(exercises, folder))
    return targets


def solve(folder, only=None):
    """Write the reference solutions into ``folder``. A file that exists is replaced only while it
    is still the untouched starter: a student's edited file is never overwritten (FileExistsError)."""
    folder = Path(folder)
    exercises = select(only)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} is a file; the workspace must be a folder")
    for e in exercises:
        path = folder / f"{e.name}.py"
        if path.exists() and path.read_text(encoding="utf-8") not in (file_text(e, False), file_text(e, True)):
            raise FileExistsError(f"{path} has been edited; solve never overwrites work (use another folder)")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for e in exercises:
        _write(folder / f"{e.name}.py", file_text(e, solved=True))
        written.append(folder / f"{e.name}.py")
    if not (folder / "README.md").exists():
        _write(folder / "README.md", readme_text(exercises, folder))
        written.append(folder / "README.md")
    return written
