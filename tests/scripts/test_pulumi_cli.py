"""scripts/pulumi_cli.py: `make up` installs the pinned Pulumi CLI into .tools/ when none is on PATH.
Against a local HTTP server serving a fake release: a good archive installs and runs, a wrong
checksum or a missing archive is refused in one line, and nothing is left behind."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import platform
import subprocess
import sys
import tarfile
import threading
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.pulumi_program import REPO

pytestmark = pytest.mark.unit

SCRIPT = REPO / "scripts" / "pulumi_cli.py"
sys.path.insert(0, str(SCRIPT.parent))
import pulumi_cli  # noqa: E402

PLATFORMS = ("linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64")
VERSION = "3.253.0"


def fake_release() -> bytes:
    """A release archive as Pulumi's: pulumi/ with the CLI and its language host."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in (
            ("pulumi/pulumi", f"#!/bin/sh\necho v{VERSION}\n"),
            ("pulumi/pulumi-language-python", "#!/bin/sh\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def release_server(directory):
    handler = functools.partial(QuietHandler, directory=str(directory))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/releases/sdk"
    finally:
        httpd.shutdown()


@pytest.fixture
def release(tmp_path):
    """The fake archive under every platform's name, and a checksum file pinning it."""
    served = tmp_path / "served" / "releases" / "sdk"
    served.mkdir(parents=True)
    archive = fake_release()
    lines = []
    for os_arch in PLATFORMS:
        name = f"pulumi-v{VERSION}-{os_arch}.tar.gz"
        (served / name).write_bytes(archive)
        lines.append(f"{hashlib.sha256(archive).hexdigest()}  {name}")
    pins = tmp_path / "pins.sha256"
    pins.write_text("\n".join(lines) + "\n")
    with release_server(tmp_path / "served") as url:
        yield url, pins


def run_script(dest, url: str) -> subprocess.CompletedProcess:
    """The script as make up runs it, with the repository's own pins."""
    env = {**os.environ, "PULUMI_RELEASES_URL": url}
    return subprocess.run([sys.executable, str(SCRIPT), str(dest)], capture_output=True, text=True, env=env, timeout=60)


def install(dest, url: str, pins) -> Path:
    """The installer with the fake release's pins (the script itself only ever reads the repository's)."""
    return pulumi_cli.install(dest, url, pins.read_text(), platform.system(), platform.machine())


@pytest.mark.parametrize("extraction_filters", [True, False], ids=["tarfile-filters", "debian-12-python"])
def test_a_good_archive_installs_a_cli_that_runs(tmp_path, release, monkeypatch, extraction_filters):
    url, pins = release
    if not extraction_filters:  # Python before 3.11.4, Debian 12's 3.11.2 among them
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    dest = tmp_path / ".tools"
    link = install(dest, url, pins)
    assert link == dest / "bin" / "pulumi"
    ran = subprocess.run([str(link)], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == f"v{VERSION}"
    assert sorted(p.name for p in dest.iterdir()) == ["bin", "pulumi"]  # no download left over


def test_a_wrong_checksum_is_refused_and_nothing_is_left_behind(tmp_path, release):
    url, _ = release
    dest = tmp_path / ".tools"
    result = run_script(dest, url)  # the repository's real pins: the fake does not match
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"restdemo: the Pulumi CLI: pulumi-v{VERSION}-")
    assert line.endswith("pinned in scripts/pulumi-cli.sha256: refused, nothing installed")
    assert list(dest.iterdir()) == []


def test_a_missing_archive_is_one_line_and_nothing_is_left_behind(tmp_path, release):
    url, _ = release
    dest = tmp_path / ".tools"
    result = run_script(dest, url.replace("/releases/sdk", "/nowhere"))
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("restdemo: the Pulumi CLI: could not download http://127.0.0.1:")
    assert line.endswith(": HTTP 404 File not found")
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("member", ["../../escaped", "/tmp/escaped", "pulumi/../../escaped", "elsewhere/pulumi"])
def test_an_archive_with_members_outside_pulumi_is_refused(tmp_path, release, member):
    url, pins = release
    served = tmp_path / "served" / "releases" / "sdk"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    for archive in served.iterdir():
        archive.write_bytes(buffer.getvalue())
    pins.write_text("".join(f"{digest}  {a.name}\n" for a in served.iterdir()))
    dest = tmp_path / "deep" / ".tools"
    with pytest.raises(
        pulumi_cli.InstallError, match="does not unpack .*outside pulumi/.*: refused, nothing installed"
    ):
        install(dest, url, pins)
    assert not (tmp_path / "escaped").exists() and list(dest.iterdir()) == []


def test_a_link_in_the_archive_is_refused(tmp_path, release):
    url, pins = release
    served = tmp_path / "served" / "releases" / "sdk"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("pulumi/pulumi")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    for archive in served.iterdir():
        archive.write_bytes(buffer.getvalue())
    pins.write_text("".join(f"{digest}  {a.name}\n" for a in served.iterdir()))
    dest = tmp_path / ".tools"
    with pytest.raises(pulumi_cli.InstallError, match="is not a file or a directory"):
        install(dest, url, pins)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize(
    ("system", "machine", "archive"),
    [
        ("Linux", "x86_64", "pulumi-v3.253.0-linux-x64.tar.gz"),
        ("Linux", "aarch64", "pulumi-v3.253.0-linux-arm64.tar.gz"),
    ],
)
def test_the_pins_name_the_archive_for_each_linux_machine(system, machine, archive):
    name, digest = pulumi_cli.pinned(pulumi_cli.CHECKSUMS.read_text(), system, machine)
    assert name == archive and len(digest) == 64 and int(digest, 16) >= 0


def test_a_machine_without_a_pin_is_told_where_to_install_it_from():
    with pytest.raises(pulumi_cli.InstallError) as caught:
        pulumi_cli.pinned(pulumi_cli.CHECKSUMS.read_text(), "Darwin", "arm64")
    assert str(caught.value) == (
        "no pinned Pulumi CLI for Darwin arm64 in scripts/pulumi-cli.sha256; "
        "install it yourself: https://www.pulumi.com/docs/install/"
    )


def test_make_tools_names_the_cli_it_finds_and_how_to_put_it_on_path(tmp_path):
    """The AWS quickstart's first step: the CLI before `pulumi login`; one on PATH is kept."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "pulumi").chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    tools = tmp_path / "tools"
    result = subprocess.run(
        ["make", "-s", "tools"],
        cwd=REPO,
        env={**os.environ, "PATH": path, "RESTDEMO_TOOLS_DIR": str(tools)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"restdemo: the Pulumi CLI is {bin_dir}/pulumi; for pulumi login and the AWS CLI steps in this shell: "
        f'export PATH="{tools}/bin:$PATH"'
    )
    assert not tools.exists()  # nothing downloaded


def test_make_tools_without_a_cli_it_can_fetch_is_one_line(tmp_path):
    path = ":".join(d for d in os.environ["PATH"].split(":") if not os.path.exists(os.path.join(d, "pulumi")))
    result = subprocess.run(
        ["make", "-s", "tools"],
        cwd=REPO,
        env={
            **os.environ,
            "PATH": path,
            "PULUMI_RELEASES_URL": "http://127.0.0.1:9/releases",
            "RESTDEMO_TOOLS_DIR": str(tmp_path / "tools"),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert [line for line in result.stderr.splitlines() if not line.startswith("make")] == [
        "restdemo: the Pulumi CLI: could not download "
        "http://127.0.0.1:9/releases/pulumi-v3.253.0-linux-x64.tar.gz: [Errno 111] Connection refused"
    ]
    assert not list((tmp_path / "tools").glob("pulumi*"))  # nothing left behind
