"""Fetch HAM10000 from its official home, Harvard Dataverse (doi:10.7910/DVN/DBW86T).

The download asks Dataverse for the data set's file list (names, sizes, MD5
checksums), fetches the metadata, the two image archives and the lesion
masks with a progress bar, resumes an interrupted file where it stopped (HTTP
range requests; a server that ignores them restarts the file), checks size
and MD5 before a file is accepted, and unpacks each archive into its own
folder. Every step is atomic: a crash or Ctrl-C leaves only ``.part`` files
that the next run resumes, never a half-unpacked data set.

HAM10000 is licensed CC BY-NC-SA 4.0; cite Tschandl, Rosendahl and Kittler,
"The HAM10000 dataset", Scientific Data 5, 180161 (2018).
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from skinlib import data

DATAVERSE_SERVER = "https://dataverse.harvard.edu"
DATASET_DOI = "doi:10.7910/DVN/DBW86T"
SERVER_ENV_VAR = "SKINLIB_DATAVERSE"

WANTED = {
    "metadata": re.compile(r"^HAM10000_metadata(\.csv|\.tab)?$", re.IGNORECASE),
    "images": re.compile(r"^HAM10000_images_part_[12]\.zip$", re.IGNORECASE),
    "masks": re.compile(r"^HAM10000_segmentations_lesion_tschandl\.zip$", re.IGNORECASE),
}
"""Which Dataverse files are fetched, by name."""

ISIC2018_TEST = re.compile(r"^ISIC2018_Task3_Test_Images\.zip$", re.IGNORECASE)
"""The ISIC 2018 challenge's test images (Task 3), also published on HAM10000's record: fetched only on request
(:func:`download_isic2018_test`), since no chapter uses them."""

ISIC2018_TRUTH = re.compile(r"^ISIC2018_Task3_Test_GroundTruth(\.csv|\.tab)?$", re.IGNORECASE)
"""Their diagnoses, where the record lists them: fetched beside the images (for ``python -m skinlib score``)."""

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download failed; the message names the file, the address and the problem."""


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One file of the Dataverse data set."""

    name: str
    url: str
    size: int
    md5: str | None


def list_remote_files(server=DATAVERSE_SERVER, doi=DATASET_DOI, *, timeout=60):
    """Ask Dataverse for the data set's files: name, download address, size and MD5.

    Tabular files that Dataverse converted on upload are fetched in their
    original format (``?format=original``) and checked against the original
    size and checksum.
    """
    query = urllib.parse.urlencode({"persistentId": doi})
    url = f"{server.rstrip('/')}/api/datasets/:persistentId/versions/:latest-published/files?{query}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            listing = json.load(response)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise DownloadError(f"Could not list the files of {doi} at {url}: {error}") from None
    except json.JSONDecodeError as error:
        raise DownloadError(f"{url} did not answer with the JSON file list ({error}).") from None
    if listing.get("status") != "OK" or not isinstance(listing.get("data"), list):
        raise DownloadError(f"{url} answered {str(listing)[:200]!r}, not a Dataverse file list.")
    files = []
    for entry in listing["data"]:
        record = entry.get("dataFile", {})
        access = f"{server.rstrip('/')}/api/access/datafile/{record['id']}"
        if record.get("originalFileName"):
            files.append(RemoteFile(record["originalFileName"], access + "?format=original",
                                    int(record.get("originalFileSize") or -1), record.get("md5")))
        else:
            files.append(RemoteFile(record.get("filename") or entry.get("label"), access,
                                    int(record.get("filesize", -1)), record.get("md5")))
    return files


def select_files(files, *, masks=True):
    """Pick the metadata, the image archives and (optionally) the masks from a file list."""
    kinds = ["metadata", "images"] + (["masks"] if masks else [])
    chosen = [f for f in files if any(WANTED[kind].match(f.name) for kind in kinds)]
    for kind in kinds:
        if not any(WANTED[kind].match(f.name) for f in chosen):
            names = sorted(f.name for f in files)
            raise DownloadError(f"The data set lists no {kind} file matching {WANTED[kind].pattern}; it has {names}.")
    return chosen


def fetch(remote, folder, *, progress=True, attempts=4, timeout=60):
    """Download one file into ``folder``, resuming and verifying; return its path.

    The bytes go to ``NAME.part``; a later call continues from its end with an
    HTTP range request. The file gets its final name only after its size and
    MD5 match the listing, so an existing final file is a verified one.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final, part = folder / remote.name, folder / (remote.name + ".part")
    if final.is_file() and (remote.size < 0 or final.stat().st_size == remote.size):
        return final
    problem = None
    for _ in range(attempts):
        try:
            _transfer(remote, part, progress=progress, timeout=timeout)
        except (urllib.error.URLError, OSError, http.client.HTTPException, socket.timeout) as error:
            problem = f"transfer interrupted ({error})"
            continue
        received = part.stat().st_size if part.exists() else 0
        if 0 <= received < remote.size:  # The connection closed early: resume on the next attempt.
            problem = f"transfer stopped after {received} of {remote.size} bytes"
            continue
        problem = _verify(remote, part)
        if problem is None:
            os.replace(part, final)
            return final
        part.unlink(missing_ok=True)
    raise DownloadError(f"{remote.name} from {remote.url}: {problem}, after {attempts} attempts.")


def _transfer(remote, part, *, progress, timeout):
    """Append the missing bytes of ``remote`` to ``part``."""
    from tqdm import tqdm

    offset = part.stat().st_size if part.exists() else 0
    if remote.size >= 0 and offset >= remote.size:
        if offset == remote.size:
            return
        part.unlink()
        offset = 0
    request = urllib.request.Request(remote.url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # The range is past the end: the partial file is wrong, so start over.
            part.unlink(missing_ok=True)
        raise
    with response:
        if offset and response.status != 206:  # The server ignored the range: restart the file.
            offset = 0
        mode = "ab" if offset else "wb"
        total = remote.size if remote.size >= 0 else None
        with open(part, mode) as handle, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                              unit_divisor=1024, desc=remote.name, disable=not progress) as bar:
            while chunk := response.read(CHUNK):
                handle.write(chunk)
                bar.update(len(chunk))


def _verify(remote, path):
    """Return None when ``path`` has the listed size and MD5, else what is wrong."""
    size = path.stat().st_size
    if remote.size >= 0 and size != remote.size:
        return f"got {size} bytes, expected {remote.size}"
    if remote.md5:
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != remote.md5.lower():
            return f"MD5 {digest.hexdigest()} does not match the listed {remote.md5}"
    return None


def unpack(archive, folder):
    """Unpack a zip archive into ``folder/<archive name>/``, all or nothing; return that folder."""
    archive, folder = Path(archive), Path(folder)
    target = folder / Path(archive.name).stem
    if target.is_dir():
        return target
    partial = folder / f".{target.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                if member.startswith(("/", "\\")) or ".." in Path(member).parts:
                    raise DownloadError(f"{archive}: refuses to unpack the unsafe path {member!r}.")
            bundle.extractall(partial)
    except zipfile.BadZipFile as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise DownloadError(f"{archive}: not a valid zip archive ({error}); delete it and download again.") from None
    os.replace(partial, target)
    return target


def download_ham10000(folder=None, *, server=None, doi=DATASET_DOI, masks=True, progress=True, keep_archives=False):
    """Download HAM10000 into ``folder`` and return it, ready for :func:`skinlib.data.load_metadata`.

    Parameters
    ----------
    folder : str or Path, default=None
        Where the data goes; default ``$SKINLIB_DATA`` or ``data/ham10000``.
    server : str, default=None
        Dataverse address; default ``$SKINLIB_DATAVERSE`` or
        https://dataverse.harvard.edu.
    doi : str, default="doi:10.7910/DVN/DBW86T"
    masks : bool, default=True
        Also fetch the lesion segmentation masks.
    progress : bool, default=True
        Show a progress bar per file.
    keep_archives : bool, default=False
        Keep the zip archives after unpacking (about 3 GB).

    Returns
    -------
    Path
    """
    folder = Path(folder or os.environ.get(data.ENV_VAR) or data.default_data_dir()).expanduser()
    server = server or os.environ.get(SERVER_ENV_VAR) or DATAVERSE_SERVER
    downloads = folder / "downloads"
    for remote in select_files(list_remote_files(server, doi), masks=masks):
        if remote.name.lower().endswith(".zip"):
            if (folder / Path(remote.name).stem).is_dir():
                continue
            archive = fetch(remote, downloads, progress=progress)
            unpack(archive, folder)
            if not keep_archives:
                archive.unlink()
        elif not (folder / remote.name).is_file():
            os.replace(fetch(remote, downloads, progress=progress), folder / remote.name)
    if not keep_archives:
        shutil.rmtree(downloads, ignore_errors=True)
    data.find_data_dir(folder)
    return folder


@dataclasses.dataclass(frozen=True)
class ChallengeTest:
    """Where :func:`download_isic2018_test` left the ISIC 2018 challenge's test images."""

    images: Path
    """The folder of the images."""
    count: int
    """How many images it holds."""
    truth: Path | None
    """Their ground-truth file, where the record listed one."""


def download_isic2018_test(folder=None, *, server=None, doi=DATASET_DOI, progress=True, keep_archives=False):
    """Download the ISIC 2018 challenge's test images (Task 3) from HAM10000's record; return the folder of images.

    They are not among HAM10000's 10,015 images, and no chapter trains or chooses anything on them: they are there
    to answer with the lesion checker and score against their diagnoses (``python -m skinlib predict FOLDER --csv
    answers.csv``, then ``python -m skinlib score answers.csv --truth DIAGNOSES``), a test set the model has never
    seen. Their diagnoses are not part of the archive; where the record lists them (a file named like
    ``ISIC2018_Task3_Test_GroundTruth.csv``), that file is fetched into ``folder`` too.

    Parameters
    ----------
    folder : str or Path, default=None
        Where the images go; default ``isic2018_task3_test`` beside the HAM10000 folder (``$SKINLIB_DATA`` or
        ``data/ham10000``).
    server, doi, progress, keep_archives
        As for :func:`download_ham10000`.

    Returns
    -------
    ChallengeTest
        The folder of the images, how many it holds, and their ground-truth file (None where the record lists none).
    """
    home = Path(os.environ.get(data.ENV_VAR) or data.default_data_dir()).expanduser()
    folder = Path(folder).expanduser() if folder else home.parent / "isic2018_task3_test"
    target = folder / "ISIC2018_Task3_Test_Images"
    if not target.is_dir():  # Already unpacked: no network needed.
        server = server or os.environ.get(SERVER_ENV_VAR) or DATAVERSE_SERVER
        files = list_remote_files(server, doi)
        remote = next((f for f in files if ISIC2018_TEST.match(f.name)), None)
        if remote is None:
            raise DownloadError(f"The data set {doi} lists no file matching {ISIC2018_TEST.pattern}; it has "
                                f"{sorted(f.name for f in files)}.")
        downloads = folder / "downloads_isic2018_test"  # Its own, so HAM10000's partial downloads are never touched.
        target = unpack(fetch(remote, downloads, progress=progress), folder)
        for truth in (f for f in files if ISIC2018_TRUTH.match(f.name)):  # The diagnoses, where the record has them.
            os.replace(fetch(truth, downloads, progress=progress), folder / truth.name)
        if not keep_archives:
            shutil.rmtree(downloads, ignore_errors=True)
    images = sorted(path for path in target.rglob("*") if path.suffix.lower() in data.IMAGE_EXTENSIONS
                    and "__MACOSX" not in path.parts and not path.name.startswith("."))
    if not images:
        raise DownloadError(f"The ISIC 2018 test archive unpacked into {target} holds no JPEG or PNG image.")
    truth = next((path for path in sorted(folder.iterdir()) if ISIC2018_TRUTH.match(path.name)), None)
    return ChallengeTest(images[0].parent, sum(path.parent == images[0].parent for path in images), truth)


def ensure_data(folder=None, **options):
    """Return the data folder, downloading HAM10000 first when none is found."""
    try:
        return data.find_data_dir(folder)
    except FileNotFoundError as error:
        print(f"{error}\nDownloading HAM10000 (about 3 GB) from Harvard Dataverse ...", flush=True)
        return download_ham10000(folder, **options)
