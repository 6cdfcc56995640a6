r"""Where datasets live: find a copy, verify it, download it atomically, and the cache.

Every loader of :mod:`recsys_ref.data` resolves the folder of its raw files in the same
order:

1. the ``data_dir`` argument, if given (a folder that *holds* ``<name>/``, or
   ``<name>/`` itself);
2. the environment variable ``RECSYS_REF_DATA`` (same meaning);
3. the cache folder ``$RECSYS_REF_CACHE`` (default ``~/.cache/recsys_ref``), where a
   download lands.

A folder named by 1. or 2. that lacks the dataset is an error (never a silent download).
When nothing is found and ``download=True``, every publisher file of the dataset
(:class:`Source`) is downloaded into a temporary folder beside the target, checked against
the publisher's MD5 where one is published, archives are extracted, every required file is
checked against its SHA-256, and only then is the folder renamed into place: an interrupted
download never leaves a half-written dataset.

**Checksums.** :attr:`DatasetSpec.sha256` pins the files as they are in the project's
offline mirror (``../shared/data``), which are the publisher's files. For a ``.gz`` file
the digest is that of its *decompressed* bytes, so a copy re-compressed with other
settings (another gzip header) still verifies. Loaders check the counts of what they
parse first (the more telling message) and the checksums last.

Every failure raises :class:`DataError`; its message names the file, what was wrong, the
environment variable and the download URL.

The same module owns the package's one cache root, :func:`cache_dir`, and its one atomic
file write, :func:`atomic_write` (text embeddings and language-model outputs use both).

Used in: every chapter, through the loaders (first in ``chapters/01_recsys_basics``).
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import IO, Any

import pandas as pd

__all__ = [
    "DATA_ENV_VAR", "CACHE_ENV_VAR", "DataError", "Source", "DatasetSpec", "DATASETS",
    "register", "cache_root", "cache_dir", "atomic_write", "atomic_dir", "find_dataset", "download_dataset",
    "verify_checksums", "file_sha256", "read_table", "check_counts", "how_to_fix",
]

DATA_ENV_VAR = "RECSYS_REF_DATA"
CACHE_ENV_VAR = "RECSYS_REF_CACHE"


class DataError(ValueError):
    """A dataset or interaction table is missing, incomplete or not what it claims to be."""


@dataclass(frozen=True)
class Source:
    """One file to fetch from the publisher.

    Args:
        url: the download address (``https://``, or ``file://`` for a local mirror).
        archive: extract this zip or tar file instead of keeping it (default ``False``).
        member_dir: the folder inside the archive that holds the dataset's files
            (``"ml-100k"``; default ``""``: the archive's top level).
        md5: the publisher's checksum of this download, when one is published.
    """

    url: str
    archive: bool = False
    member_dir: str = ""
    md5: str = ""

    @property
    def filename(self) -> str:
        """The file name at the end of the URL (``ml-100k.zip``)."""
        return PurePosixPath(urllib.parse.urlparse(self.url).path).name


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and what a complete copy holds.

    Args:
        name: folder name of the dataset (``ml-100k``).
        url: the publisher's archive or page, named in every error message.
        files: files that must exist in the folder.
        sources: what to download; default one archive at ``url`` holding ``name/``.
        sha256: expected SHA-256 per file (of the decompressed bytes for ``.gz`` files);
            files without an entry are checked for presence only.
        citation: how to cite the dataset.
    """

    name: str
    url: str
    files: tuple[str, ...]
    sources: tuple[Source, ...] = ()
    sha256: Mapping[str, str] = field(default_factory=dict, hash=False)
    citation: str = ""

    def __post_init__(self) -> None:
        if not self.sources:
            object.__setattr__(self, "sources", (Source(self.url, True, self.name),))

    def url_of(self, fname: str) -> str:
        """The download URL of ``fname`` (its own source, else :attr:`url`)."""
        hits = [s.url for s in self.sources if s.filename == fname and not s.archive]
        return hits[0] if hits else self.url


DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to :data:`DATASETS` (each loader module registers its datasets)."""
    DATASETS[spec.name] = spec
    return spec


# -- cache and atomic writes -----------------------------------------------------------

def cache_root() -> Path:
    """``$RECSYS_REF_CACHE``, default ``~/.cache/recsys_ref`` (not created)."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env) if env else Path.home() / ".cache" / "recsys_ref"


def cache_dir(sub: str = "") -> Path:
    """``cache_root() / sub``, created if needed (``cache_dir("text_emb")``)."""
    path = cache_root() / sub
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(
    path: str | os.PathLike, writer: Callable[[IO[Any]], object], mode: str = "wb"
) -> Path:
    """Write ``path`` all at once or not at all.

    ``writer(fh)`` writes into a temporary file beside ``path`` (same folder, so the rename
    cannot cross file systems); the file is flushed, ``fsync``-ed and renamed over ``path``
    with :func:`os.replace`. If ``writer`` raises, the temporary file is removed and
    ``path`` is left as it was. A reader never sees a half-written file.

    Args:
        path: the target file (its folder must exist).
        writer: called with the open temporary file, e.g. ``lambda fh: np.save(fh, arr)``.
        mode: ``"wb"`` (default) or ``"w"`` (UTF-8 text).

    Example:
        >>> atomic_write(p, lambda fh: json.dump(obj, fh), mode="w")  # doctest: +SKIP
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; a cache entry is an ordinary file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Build a folder all at once or not at all: ``with atomic_dir(out) as tmp:`` write
    files into ``tmp`` (a temporary folder beside ``out``); on a clean exit ``tmp``
    replaces ``out`` (an existing ``out`` is removed first), on an error it is deleted
    and ``out`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700 folders
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- finding and verifying a copy ------------------------------------------------------

def how_to_fix(spec: DatasetSpec, fname: str | None = None) -> str:
    """The sentence every :class:`DataError` ends with: env var, ``data_dir``, URL."""
    url = spec.url_of(fname) if fname else spec.url
    return (
        f"Set the environment variable {DATA_ENV_VAR} to a folder that holds "
        f"'{spec.name}/' (for example the project's ../shared/data), pass data_dir=..., "
        f"or let the loader download it (download=True) from {url}."
    )


def _spec(name: str | DatasetSpec) -> DatasetSpec:
    if isinstance(name, DatasetSpec):
        return name
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


def _check_files(folder: Path, spec: DatasetSpec) -> None:
    for fname in spec.files:
        path = folder / fname
        if not path.is_file():
            raise DataError(f"{path}: file is missing from the {spec.name} folder. "
                            f"{how_to_fix(spec, fname)}")
        if path.stat().st_size == 0:
            raise DataError(f"{path}: file is empty (truncated copy?). "
                            f"{how_to_fix(spec, fname)}")


def find_dataset(
    name: str | DatasetSpec, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Path:
    """Return the folder holding dataset ``name``, downloading it if needed.

    Args:
        name: a key of :data:`DATASETS` (``"ml-100k"``) or a :class:`DatasetSpec`.
        data_dir: a folder holding ``name/`` (or ``name/`` itself). Overrides
            ``$RECSYS_REF_DATA``. An explicit folder that lacks the data is an error:
            we never silently fall back to a download when the user named a place.
        download: download into the cache when no copy is found (default ``True``).

    Raises:
        ValueError: for an unknown name.
        DataError: when no complete copy is found and none can be downloaded.
    """
    spec = _spec(name)
    if data_dir is not None:
        places = [("data_dir argument", Path(data_dir))]
    elif os.environ.get(DATA_ENV_VAR):
        places = [(f"${DATA_ENV_VAR}", Path(os.environ[DATA_ENV_VAR]))]
    else:
        places = []
    places.append(("cache", cache_root()))
    for label, base in places:
        folder = base if base.name == spec.name and base.is_dir() else base / spec.name
        if folder.is_dir():
            _check_files(folder, spec)
            return folder
        if label != "cache":
            hint = (f" To download it into the cache instead, unset {DATA_ENV_VAR}."
                    if label.startswith("$") else "")
            raise DataError(f"{folder}: no '{spec.name}' folder here (looked because of the "
                            f"{label}).{hint} {how_to_fix(spec)}")
    if not download:
        raise DataError(f"dataset {spec.name} not found in {cache_root()}. {how_to_fix(spec)}")
    return download_dataset(spec, cache_root())


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    opener = gzip.open if algo == "sha256" and path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except (OSError, EOFError) as err:  # a truncated or corrupted gzip stream
        raise DataError(f"{path}: cannot be read ({err}); the file is truncated or "
                        "corrupted") from err
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file; of its decompressed bytes when it ends in ``.gz``."""
    return _digest(Path(path), "sha256")


def verify_checksums(folder: str | os.PathLike, spec: DatasetSpec) -> None:
    """Compare every file of ``spec.sha256`` in ``folder`` with its expected digest.

    Raises:
        DataError: naming the file, both digests, the env var and the URL.
    """
    for fname, expected in spec.sha256.items():
        path = Path(folder) / fname
        try:
            digest = file_sha256(path)
        except DataError as err:
            raise DataError(f"{err}. {how_to_fix(spec, fname)}") from err
        if digest != expected:
            raise DataError(
                f"{path}: SHA-256 is {digest}, expected {expected} (the file was changed, "
                f"truncated or corrupted). Delete the folder and download it again. "
                f"{how_to_fix(spec, fname)}")


def read_table(path: Path, spec: DatasetSpec, **kw: Any) -> pd.DataFrame:
    """:func:`pandas.read_csv` whose parse errors become a :class:`DataError`."""
    try:
        return pd.read_csv(path, **kw)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, EOFError) as err:
        raise DataError(f"{path}: cannot be parsed ({err}). {how_to_fix(spec, path.name)}"
                        ) from err


def check_counts(path: Path, spec: DatasetSpec, counts: Mapping[str, tuple[int, int]]) -> None:
    """Raise if any ``found != expected`` in ``counts = {"ratings": (found, expected)}``.

    The message lists every mismatch (``"5,000 ratings, expected 100,000"``).
    """
    problems = [f"{found:,} {what}, expected {exp:,}"
                for what, (found, exp) in counts.items() if found != exp]
    if problems:
        raise DataError(f"{path}: content is not a complete {spec.name} copy: "
                        f"{'; '.join(problems)} (truncated or corrupted file?). "
                        f"{how_to_fix(spec, path.name)}")


# -- downloading -----------------------------------------------------------------------

def _safe_relpath(member: str, archive: str) -> PurePosixPath:
    rel = PurePosixPath(member)
    if rel.is_absolute() or ".." in rel.parts:
        raise DataError(f"{archive}: unsafe member path {member!r} in the archive")
    return rel


def _extract(archive: Path, out: Path, src: Source) -> int:
    """Copy the files under ``src.member_dir`` of a zip or tar archive into ``out``."""
    prefix = src.member_dir.strip("/") + "/" if src.member_dir else ""
    with contextlib.ExitStack() as stack:
        if zipfile.is_zipfile(archive):
            zf = stack.enter_context(zipfile.ZipFile(archive))
            members = [(m.filename, m) for m in zf.infolist() if not m.is_dir()]
            open_member: Callable[[Any], IO[bytes]] = zf.open
        elif tarfile.is_tarfile(archive):
            tf = stack.enter_context(tarfile.open(archive))
            members = [(m.name, m) for m in tf.getmembers() if m.isfile()]
            open_member = tf.extractfile  # type: ignore[assignment]
        else:
            raise DataError(f"{src.url}: the download is neither a zip nor a tar archive")
        count = 0
        for name, member in members:
            if not name.startswith(prefix) or name.startswith("__MACOSX/"):
                continue
            dest = out / _safe_relpath(name[len(prefix):], src.url)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open_member(member) as fin, open(dest, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            count += 1
    return count


def download_dataset(
    name: str | DatasetSpec, root: str | os.PathLike, url: str | None = None
) -> Path:
    """Download every publisher file of ``name`` into ``root/name`` atomically.

    The files go to a temporary folder beside the target; each is checked against the
    publisher's MD5 when known, archives are extracted, the required files and their
    SHA-256 are checked, and the folder is renamed to ``root/name``. On any failure the
    temporary folder is removed and nothing is left half-written. If another process
    finished the same download first, its copy is kept.

    Args:
        name: a key of :data:`DATASETS` or a :class:`DatasetSpec`.
        root: the folder that will hold ``name/``.
        url: override the address of a single-source dataset (a mirror, or a ``file://``
            URL in tests).
    """
    spec = _spec(name)
    if url is not None:
        if len(spec.sources) != 1:
            raise ValueError(f"{spec.name} has {len(spec.sources)} sources; url= only "
                             "overrides a single one: pass a DatasetSpec with new sources")
        spec = replace(spec, sources=(replace(spec.sources[0], url=url),))
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / spec.name
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=root))
    try:
        out = tmp_dir / spec.name
        out.mkdir()
        for src in spec.sources:
            dest = (tmp_dir / "archive") if src.archive else (out / src.filename)
            try:
                with urllib.request.urlopen(src.url, timeout=60) as resp, \
                        open(dest, "wb") as fh:
                    shutil.copyfileobj(resp, fh)
            except OSError as err:
                raise DataError(f"could not download {src.url} ({err}). Offline? "
                                f"{how_to_fix(spec)}") from err
            if src.md5 and (digest := _digest(dest, "md5")) != src.md5:
                raise DataError(f"{src.url}: downloaded file has MD5 {digest}, expected "
                                f"{src.md5} (corrupted or changed download). "
                                f"{how_to_fix(spec)}")
            if src.archive:
                if _extract(dest, out, src) == 0:
                    raise DataError(f"{src.url}: archive has no top-level "
                                    f"'{src.member_dir}/' folder")
                dest.unlink()
        _check_files(out, spec)
        verify_checksums(out, spec)
        if target.exists():  # another process won the race; keep theirs
            return target
        os.replace(out, target)
        return target
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
