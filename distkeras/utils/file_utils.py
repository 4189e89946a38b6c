"""``utils.get_file``: a file from the cache folder, downloaded once when missing.

Files live in ``~/.keras/<cache_subdir>`` (``KERAS_HOME`` moves it), the folder Keras uses, so
files either library fetched serve both. Downloads go to a temporary file renamed into place
only once complete and verified, so an interrupted download never leaves a broken file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile


def keras_home() -> str:
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def _hash_file(path: str, algorithm: str) -> str:
    digest = hashlib.sha256() if algorithm == "sha256" else hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _algorithm(file_hash: str, hash_algorithm: str) -> str:
    if hash_algorithm in ("sha256", "md5"):
        return hash_algorithm
    if hash_algorithm != "auto":
        raise ValueError(
            f"get_file: hash_algorithm must be 'auto', 'sha256' or 'md5'. "
            f"Received: {hash_algorithm!r}"
        )
    return "sha256" if len(file_hash) == 64 else "md5"


def _extract(path: str, into: str, archive_format) -> bool:
    formats = ["tar", "zip"] if archive_format in ("auto", None) else archive_format
    formats = [formats] if isinstance(formats, str) else list(formats)
    for kind in formats:
        if kind == "tar" and tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                archive.extractall(into, filter="data")
            return True
        if kind == "zip" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                archive.extractall(into)
            return True
    return False


def get_file(
    fname: str | None = None,
    origin: str | None = None,
    untar: bool = False,
    md5_hash: str | None = None,
    file_hash: str | None = None,
    cache_subdir: str = "datasets",
    hash_algorithm: str = "auto",
    extract: bool = False,
    archive_format="auto",
    cache_dir: str | None = None,
    force_download: bool = False,
) -> str:
    """The local path of ``fname`` in the cache, downloading ``origin`` first if needed.

    Args:
        fname: the file name (default: the last part of ``origin``); an absolute path is used
            as is.
        origin: the URL to download from (``file://`` URLs included).
        file_hash: expected sha256 or md5 hex digest; a cached file that does not match is
            downloaded again, a download that does not match raises.
        extract: also extract a tar or zip archive next to it; returns the extracted folder.
        cache_dir: the cache root (default ``~/.keras``); files go in ``cache_subdir``.
    """
    if origin is None and fname is None:
        raise ValueError('get_file: pass `origin`, e.g. origin="https://example.com/a.zip".')
    fname = fname or os.path.basename(origin.split("?")[0])
    if not fname:
        raise ValueError(f"get_file: cannot name the file downloaded from origin={origin!r}.")
    file_hash = file_hash or md5_hash
    if md5_hash and hash_algorithm == "auto":
        hash_algorithm = "md5"
    directory = os.path.join(cache_dir or keras_home(), cache_subdir)
    os.makedirs(directory, exist_ok=True)
    path = fname if os.path.isabs(fname) else os.path.join(directory, fname)
    stale = force_download or not os.path.exists(path)
    if not stale and file_hash:
        stale = _hash_file(path, _algorithm(file_hash, hash_algorithm)) != file_hash
    if stale:
        if origin is None:
            raise FileNotFoundError(
                f"get_file: {path} is not in the cache and no `origin` was given to fetch it."
            )
        _download(origin, path, file_hash, hash_algorithm)
    if untar or extract:
        target = path[: -len(".tar.gz")] if untar and path.endswith(".tar.gz") else path
        target = os.path.splitext(target)[0] if target == path else target
        needed = stale or not os.path.exists(target)
        if needed and not _extract(path, target, "tar" if untar else archive_format):
            raise ValueError(f"get_file: {path} is not a {archive_format} archive.")
        return target
    return path


def _download(origin: str, path: str, file_hash, hash_algorithm: str) -> None:
    folder = os.path.dirname(path) or "."
    handle, partial = tempfile.mkstemp(dir=folder, prefix=".download-")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(origin) as response:
            shutil.copyfileobj(response, out)
        if file_hash:
            got = _hash_file(partial, _algorithm(file_hash, hash_algorithm))
            if got != file_hash:
                raise ValueError(
                    f"get_file: the file downloaded from {origin} has hash {got}, expected "
                    f"{file_hash}; it was not kept."
                )
        os.replace(partial, path)
    except OSError as err:
        raise OSError(
            f"get_file: could not download {origin} to {path}: {err}. Put the file there by "
            "hand to use it without a network."
        ) from err
    finally:
        if os.path.exists(partial):
            os.remove(partial)
