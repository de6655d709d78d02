"""Opt-in downloads (``--data.download true``, ``aegen evaluate --download-inception``), checked and never half-written.

The sources are torchvision's (each dataset class's mirrors, file names and md5 sums) and
torch-fidelity's (the Inception weights' address). ``$AEGEN_DOWNLOAD_MIRROR`` (a base address:
``http://``, ``https://`` or ``file://``) replaces them all: each file then comes from
``<mirror>/<key>/<file name>``, key ``mnist``, ``fashion_mnist``, ``cifar10``, ``svhn`` or ``inception``.

A file is streamed into a temporary file in its destination's folder, its length (the
Content-Length the server announced) and md5 sum are checked, and only then is it renamed into
place (``aegen.io.atomic_path``). On a failure the temporary file and any folder created for it are
removed, the next source is tried, and when none works the error is one line (``AegenError``)
naming each failure and what to do.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from aegen import __version__
from aegen.errors import AegenError
from aegen.io import atomic_path

MIRROR_ENV = "AEGEN_DOWNLOAD_MIRROR"
TIMEOUT = 60.0  # seconds without a byte before a connection counts as dropped
CHUNK = 1 << 20
RETRY = f"retry, or set ${MIRROR_ENV} to a reachable copy (files at <mirror>/<dataset>/<file>)"


class _Failed(Exception):
    """One source failed (network, length or checksum); the next one may work."""


def sources(official: Sequence[str], key: str, name: str) -> list[str]:
    """The addresses to try for file ``name``: ``$AEGEN_DOWNLOAD_MIRROR/<key>/<name>`` when set, else ``official``."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return [f"{mirror.rstrip('/')}/{key}/{name}"] if mirror else list(official)


def md5_of(path: Path) -> str:
    """The md5 hex digest of a file (an integrity check, not security)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def progress(message: str, end: str = "\n") -> None:
    """A download progress line on stderr."""
    print(f"aegen: {message}", file=sys.stderr, end=end, flush=True)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _fetch(url: str, out_path: Path, md5: str | None) -> int:
    """Stream ``url`` into ``out_path``; the byte count. _Failed on a network error, a short body or a wrong md5."""
    request = urllib.request.Request(url, headers={"User-Agent": f"aegen/{__version__}"})
    digest, received = hashlib.md5(usedforsecurity=False), 0
    live = sys.stderr.isatty()
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response, open(out_path, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as err:
                    reason = _one_line(err) or type(err).__name__
                    raise _Failed(f"connection dropped after {received} bytes ({reason})") from None
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if live and total:
                    end = "\r" if received < total else "\n"
                    progress(f"  {received / total:6.1%} of {total / 1e6:.1f} MB", end=end)
    except urllib.error.HTTPError as err:
        raise _Failed(f"HTTP {err.code} {_one_line(err.reason)}") from None
    except urllib.error.URLError as err:
        kind = "not found" if url.startswith("file:") else "network unreachable"
        raise _Failed(f"{kind} ({_one_line(err.reason)})") from None
    except (http.client.HTTPException, ConnectionError, TimeoutError) as err:
        raise _Failed(f"connection failed ({_one_line(err) or type(err).__name__})") from None
    if total is not None and received != total:
        raise _Failed(f"connection dropped after {received} of {total} bytes")
    if md5 is not None and digest.hexdigest() != md5:
        raise _Failed(f"checksum mismatch (md5 {digest.hexdigest()}, expected {md5}): the server sent another file")
    return received


def _new_folders(folder: Path) -> list[Path]:
    """The folders up to ``folder`` that do not exist yet, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def download_file(urls: Sequence[str], dest: Path, what: str, md5: str | None = None,
                  check: Callable[[Path], str | None] | None = None) -> Path:
    """Download ``dest`` from the first of ``urls`` that works, through a temporary file renamed on success.

    ``md5`` is the expected digest; ``check(path)`` may name a further problem with the downloaded
    file (None: fine). A ``dest`` already there with the right md5 is kept. Raises one AegenError
    naming each source's failure and what to do; nothing is left behind.
    """
    dest = Path(dest)
    if md5 is not None and dest.is_file() and md5_of(dest) == md5:
        return dest
    created, failures = _new_folders(dest.parent), []
    for url in urls:
        progress(f"downloading {url} -> {dest}")
        start = time.perf_counter()
        try:
            with atomic_path(dest) as tmp:
                size = _fetch(url, tmp, md5)
                problem = check(tmp) if check is not None else None
                if problem:
                    raise _Failed(problem)
        except _Failed as err:
            failures.append(f"{url}: {err}")
            continue
        except OSError as err:
            _remove_empty(created)
            raise AegenError(f"{what}: could not write {dest} ({_one_line(err)}); free some space or make the "
                             "folder writable") from None
        progress(f"downloaded {dest.name} ({size / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s)")
        return dest
    _remove_empty(created)
    raise AegenError(f"{what}: could not download {dest.name} ({'; '.join(failures)}); nothing was written; "
                     f"{RETRY}, or place {dest.name} in {dest.parent} yourself")


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed download created, deepest first, where they are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def extract_members(archive: Path, inner: str, names: Sequence[str], directory: Path, what: str) -> None:
    """Copy the regular files ``<inner>/<name>`` of a tar archive into ``directory``, each written atomically.

    Only the named members are read and they are written under names chosen here (no paths from the
    archive), so a crafted archive cannot write elsewhere. On a failure the files copied so far are
    removed and the error is one AegenError.
    """
    created, done = _new_folders(directory), []
    try:
        with tarfile.open(archive) as tar:
            for name in names:
                member = tar.extractfile(f"{inner}/{name}")
                if member is None:
                    raise KeyError(f"{inner}/{name} is not a regular file")
                with atomic_path(directory / name) as tmp, open(tmp, "wb") as out:
                    while chunk := member.read(CHUNK):
                        out.write(chunk)
                done.append(directory / name)
    except (KeyError, tarfile.TarError, OSError, EOFError, zlib.error) as err:
        for path in done:
            path.unlink(missing_ok=True)
        _remove_empty(created)
        detail = f"lacks {err.args[0]}" if isinstance(err, KeyError) else f"cannot be read ({_one_line(err)})"
        raise AegenError(f"{what}: {archive.name} {detail}; nothing was extracted into {directory}; remove {archive} "
                         f"if it is still there and {RETRY}") from None
