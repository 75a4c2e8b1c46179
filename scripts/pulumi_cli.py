"""Install the pinned Pulumi CLI into .tools/ (what `make up` does when no `pulumi` is on PATH).

The release archive for this machine is downloaded into a temporary directory inside the
destination, checked against the SHA-256 pinned in scripts/pulumi-cli.sha256 before anything is
unpacked, and only then moved into place: a failed download or a wrong checksum leaves nothing
behind. Standard library only: it runs before the virtual environment exists.

    python3 scripts/pulumi_cli.py [DEST]    (default .tools; PULUMI_RELEASES_URL for a mirror,
                                             which serves the same archives: the pins still apply)
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKSUMS = REPO / "scripts" / "pulumi-cli.sha256"
RELEASES = "https://get.pulumi.com/releases/sdk"
# Pulumi's archive names: Go's amd64 is x64 (the release's own asset names).
ARCHITECTURES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


class InstallError(Exception):
    """One line for the user: what failed and what to do."""


def pinned(checksums_text: str, system: str, machine: str) -> tuple[str, str]:
    """(archive name, sha256) pinned for this platform."""
    suffix = f"-{system.lower()}-{ARCHITECTURES.get(machine.lower(), machine.lower())}.tar.gz"
    for line in checksums_text.splitlines():
        digest, _, name = line.strip().partition("  ")
        if name.endswith(suffix):
            return name, digest
    raise InstallError(
        f"no pinned Pulumi CLI for {system} {machine} in {CHECKSUMS.relative_to(REPO)}; "
        "install it yourself: https://www.pulumi.com/docs/install/"
    )


def download(url: str, into: Path) -> str:
    """Write `url` to `into`; its SHA-256."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, into.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as error:
        raise InstallError(f"could not download {url}: HTTP {error.code} {error.reason}") from None
    except OSError as error:  # URLError too: no route, no name, refused
        raise InstallError(f"could not download {url}: {getattr(error, 'reason', error)}") from None
    return digest.hexdigest()


def unpack(archive: Path, into: Path) -> None:
    """Regular files and directories under pulumi/ only: no absolute path, no `..`, no link, no
    device. Checked here because Debian 12's Python (3.11.2) predates tarfile's extraction filters."""
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            parts = Path(member.name).parts
            if member.name.startswith("/") or ".." in parts or parts[:1] != ("pulumi",):
                raise tarfile.TarError(f"{member.name} is outside pulumi/")
            if not (member.isfile() or member.isdir()):
                raise tarfile.TarError(f"{member.name} is not a file or a directory")
        options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(into, members=members, **options)


def install(dest: Path, releases: str, checksums_text: str, system: str, machine: str) -> Path:
    """The CLI unpacked into dest/pulumi, linked from dest/bin/pulumi; its path."""
    name, expected = pinned(checksums_text, system, machine)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".pulumi-download-") as work:
        archive = Path(work) / name
        got = download(f"{releases.rstrip('/')}/{name}", archive)
        if got != expected:
            raise InstallError(
                f"{name} has SHA-256 {got}, not the {expected} pinned in {CHECKSUMS.relative_to(REPO)}: "
                "refused, nothing installed"
            )
        try:
            unpack(archive, Path(work))
        except (tarfile.TarError, OSError) as error:
            raise InstallError(f"{name} does not unpack ({error}): refused, nothing installed") from None
        unpacked = Path(work) / "pulumi"
        if not (unpacked / "pulumi").is_file():
            raise InstallError(f"{name} holds no pulumi/pulumi: refused, nothing installed")
        shutil.rmtree(dest / "pulumi", ignore_errors=True)
        unpacked.rename(dest / "pulumi")
    link = dest / "bin" / "pulumi"
    link.parent.mkdir(exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(Path("..") / "pulumi" / "pulumi")
    return link


def main(argv: list[str]) -> int:
    dest = Path(argv[1] if len(argv) > 1 else REPO / ".tools")
    releases = os.environ.get("PULUMI_RELEASES_URL") or RELEASES
    try:
        link = install(dest, releases, CHECKSUMS.read_text(), platform.system(), platform.machine())
    except InstallError as error:
        print(f"restdemo: the Pulumi CLI: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # one line at the start of make up, never a traceback
        print(f"restdemo: the Pulumi CLI: not installed ({type(error).__name__}: {error})", file=sys.stderr)
        return 1
    print(f"restdemo: installed the pinned Pulumi CLI in {link.parent.parent / 'pulumi'} (on PATH for make)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
