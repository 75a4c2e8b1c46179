"""Assemble the runtime image's root file system: only what restdemo loads, in three layers.

Run in the Dockerfile's `collect` stage, on the runtime base with the app's venv installed, by
that venv's interpreter. It runs the server and the CLI with PYTHONVERBOSE=1, which makes every
Python process (granian's worker included) log each module it imports and from where, and
exercises them: every route with GET and HEAD, a 404, a 405, a malformed request, SIGTERM; the
CLI's answers, formats, usage errors, help, a refused connection and a timeout. Then it copies:

- the interpreter and, found with ldd, the shared libraries it and every loaded extension need,
  with the dynamic loader and its cache;
- each imported standard-library module, compiled to a sourceless .pyc where its .py was
  (Python imports those), plus os.pyc, the landmark by which the interpreter finds its library;
- the venv (app, granian, click), compiled the same way, and its dist-info;
- /etc/passwd and /etc/group naming the app's user, and /tmp.

Into three trees, one image layer each, from the least to the most often changed:
/rootfs/system (interpreter, libraries, standard library: changes with the base image),
/rootfs/deps (the venv but the app: changes with the lock file), /rootfs/app (restdemo, its
scripts, public/). Every file gets the same timestamp and the .pyc files hash-based
invalidation, so an unchanged tree gives a byte-identical layer: a rollout of new app code
pulls only the app's layer.

No shell, no package manager, no pip. tests/image checks what this leaves out is not needed.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path("/rootfs")
SYSTEM, DEPS, APP = ROOT / "system", ROOT / "deps", ROOT / "app"
VENV = Path(sys.prefix)
PORT = 18000
URL = f"http://127.0.0.1:{PORT}"
USER_ID = 10001

CODE_OBJECT = re.compile(r"^# code object from '?(?P<path>[^']+?)'?$")
EXTENSION = re.compile(r"^# extension module '[^']+' loaded from '(?P<path>[^']+)'$")
LDD_PATH = re.compile(r"(?:=> )?(?P<path>/\S+) \(0x[0-9a-f]+\)$")


VERBOSE = {**os.environ, "PYTHONVERBOSE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
# Any fixed time: what matters is that it does not change from one build to the next.
TIMESTAMP = 946684800  # 2000-01-01


def cli(log, *args: str) -> None:
    subprocess.run(
        [str(VENV / "bin" / "restdemo-cli"), *args], stdout=subprocess.DEVNULL, stderr=log, timeout=30, env=VERBOSE
    )


def ask(method: str, path: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    connection.request(method, path)
    connection.getresponse().read()
    connection.close()


def exercise(log_dir: Path) -> str:
    """Everything restdemo does, logged verbosely; the log's text."""
    from restdemo.routes import build_routes, default_public_dir

    log_path = log_dir / "verbose.log"
    with open(log_path, "w") as log:
        server_env = {**VERBOSE, "HOST": "127.0.0.1", "PORT": str(PORT), "VER": "collect"}
        server = subprocess.Popen(
            [str(VENV / "bin" / "restdemo")], env=server_env, stdout=subprocess.DEVNULL, stderr=log
        )
        deadline = time.monotonic() + 30
        while (
            subprocess.run(
                [str(VENV / "bin" / "restdemo-cli"), "show", "health", "--url", URL], capture_output=True
            ).returncode
            != 0
        ):
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("collect: the server did not answer")
            time.sleep(0.2)
        for path in [*build_routes(default_public_dir()), "/nope", "/health?connection=close"]:
            for method in ("GET", "HEAD"):
                ask(method, path)
        ask("DELETE", "/health")
        with socket.create_connection(("127.0.0.1", PORT), timeout=5) as sock:
            sock.sendall(b"NOT HTTP\r\n\r\n")
            sock.recv(1024)
        for args in (
            ["show", "health", "--url", URL],
            ["show", "health", "--url", URL, "--format", "{{.hostname}} {{.version}}"],
            ["show", "health", "--url", URL, "--format", "{{json .}}"],
            ["show", "health", "--url", URL, "--format", "{{.}}"],
            ["show", "health", "--url", URL, "--format", "{{.nope"],
            ["show", "health", "--url", f"{URL}/nope"],
            ["show", "health", "--url", "http://127.0.0.1:1"],
            ["show", "health", "--url", "http://[::1]:1", "--timeout", "0.5"],
            ["show", "health", "--url", "ftp://x"],
            ["show", "health", "--timeout", "inf"],
            ["--help"],
            ["show", "--help"],
            ["nonsense"],
        ):
            cli(log, *args)
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    return log_path.read_text(errors="replace")


def loaded_files(log: str) -> set[Path]:
    """Source files and extension modules the processes loaded, from the verbose log."""
    files = set()
    for line in log.splitlines():
        if match := CODE_OBJECT.match(line):
            path = match["path"]
            files.add(Path(importlib.util.source_from_cache(path) if "__pycache__" in path else path))
        elif match := EXTENSION.match(line):
            files.add(Path(match["path"]))
    return files


def shared_libraries(binaries: list[Path]) -> set[Path]:
    """Every library ldd resolves for the binaries, the dynamic loader included; a library it
    cannot find stops the build (the image would fail at the first import of that module)."""
    libraries = set()
    for binary in binaries:
        result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
        if result.returncode != 0 or "not found" in result.stdout:
            raise SystemExit(f"collect: ldd {binary}:\n{result.stdout}{result.stderr}")
        for line in result.stdout.splitlines():
            if match := LDD_PATH.search(line.strip()):
                libraries.add(Path(match["path"]))
    return libraries


def link_target(link: Path) -> Path:
    text = os.readlink(link)
    return Path(text) if os.path.isabs(text) else Path(os.path.normpath(link.parent / text))


def copy_file(source: Path, root: Path, follow: bool = True) -> None:
    """`source` at the same path under `root`; a symlink stays one, and (`follow`) what it points
    to comes too."""
    target = root / source.relative_to("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        if not target.is_symlink():
            target.symlink_to(os.readlink(source))
        if follow:
            copy_file(link_target(source), root)
    elif not target.exists():
        shutil.copy2(source, target)


COMPILE = """
import json, py_compile, sys
for source, target in json.load(sys.stdin):
    py_compile.compile(source, cfile=target, dfile=source, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""
to_compile: list[tuple[str, str]] = []


def copy_compiled(source: Path, root: Path) -> None:
    """`source` (.py) as a sourceless .pyc where it was, under `root` (compiled by compile_all)."""
    target = (root / source.relative_to("/")).with_suffix(".pyc")
    target.parent.mkdir(parents=True, exist_ok=True)
    to_compile.append((str(source), str(target)))


def compile_all() -> None:
    """In a fresh, isolated interpreter that never ran the app: the bytes of a .pyc depend on the
    strings the compiling process had interned, and the same source must give the same layer."""
    subprocess.run([sys.executable, "-I", "-c", COMPILE], input=json.dumps(to_compile), text=True, check=True)


def always_kept(stdlib: Path) -> set[Path]:
    """Modules a path the trace does not take may need: every codec (a JSON answer in UTF-16 or
    with a BOM, PYTHONIOENCODING, a non-ASCII host's punycode and IDNA with what they import), and
    what `python -m` needs."""
    files = set((stdlib / "encodings").glob("*.py"))
    for name in ("stringprep", "unicodedata", "importlib._abc"):
        spec = importlib.util.find_spec(name)
        if spec and spec.origin and spec.origin not in ("built-in", "frozen"):
            files.add(Path(spec.origin))
    return files


def copy_standard_library(files: set[Path], stdlib: Path) -> None:
    for file in sorted(files | always_kept(stdlib)):
        if file.is_relative_to(stdlib):
            (copy_compiled if file.suffix == ".py" else copy_file)(file, SYSTEM)
    copy_compiled(stdlib / "os.py", SYSTEM)  # the landmark by which the interpreter finds its library
    dynload = Path(sys.base_exec_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "lib-dynload"
    (SYSTEM / dynload.relative_to("/")).mkdir(parents=True, exist_ok=True)  # the exec_prefix landmark


def is_app(path: Path) -> bool:
    """restdemo's own files in the venv: its package, its scripts, public/."""
    relative = path.relative_to(VENV)
    return relative.parts[0] == "public" or any(
        part == "restdemo" or part.startswith(("restdemo-", "restdemo.")) for part in relative.parts
    )


# The venv's scripts the image runs; not granian's own CLI, nor the activate scripts.
SCRIPTS = {"python", "python3", f"python3.{sys.version_info[1]}", "restdemo", "restdemo-cli"}


def copy_venv() -> None:
    """The venv without bytecode caches, every .py compiled in place of its source."""
    for source in sorted(VENV.rglob("*")):
        if "__pycache__" in source.parts or (source.is_dir() and not source.is_symlink()):
            continue
        if source.parent == VENV / "bin" and source.name not in SCRIPTS:
            continue
        root = APP if is_app(source) else DEPS
        if source.suffix == ".py":
            copy_compiled(source, root)
        else:  # the venv's python links to the interpreter, which is the system layer's
            copy_file(source, root, follow=False)


def copy_interpreter() -> Path:
    """The links from the venv's python to the interpreter, and the interpreter; its path."""
    path = VENV / "bin" / "python"
    while path.is_symlink():
        if not path.is_relative_to(VENV):
            copy_file(path, SYSTEM, follow=False)
        path = link_target(path)
    copy_file(path, SYSTEM)
    return path


def fix_timestamps() -> None:
    for path in ROOT.rglob("*"):
        os.utime(path, (TIMESTAMP, TIMESTAMP), follow_symlinks=False)


def write_system_files() -> None:
    etc = SYSTEM / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text(
        f"root:x:0:0:root:/root:/sbin/nologin\nrestdemo:x:{USER_ID}:{USER_ID}::/:/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\nrestdemo:x:{USER_ID}:\n")
    if Path("/etc/ld.so.cache").exists():  # where the loader finds libraries outside its defaults
        shutil.copy2("/etc/ld.so.cache", etc / "ld.so.cache")
    (SYSTEM / "tmp").mkdir(exist_ok=True)
    os.chmod(SYSTEM / "tmp", 0o1777)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        log = exercise(Path(scratch))
    files = loaded_files(log)
    extensions = [f for f in files if f.suffix == ".so"]
    stdlib = Path(sysconfig.get_path("stdlib"))
    interpreter = copy_interpreter()
    for library in shared_libraries([interpreter, *extensions]):
        copy_file(library, SYSTEM)
    copy_standard_library(files, stdlib)
    copy_venv()
    compile_all()
    write_system_files()
    fix_timestamps()
    modules = sum(1 for f in files if f.is_relative_to(stdlib))
    print(f"collect: {modules} standard-library files, {len(extensions)} extension modules", file=sys.stderr)


if __name__ == "__main__":
    main()
