"""skinlib.download against a real HTTP server on 127.0.0.1 that speaks Dataverse's API.

The server serves small archives made here, honours range requests (or not),
and can cut a transfer short, so resuming, restarting and verification are
exercised over real sockets.
"""

import hashlib
import http.server
import io
import json
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from skinlib import data, download
from tests.conftest import HEADER, jpeg_bytes

DOI = "doi:10.7910/DVN/DBW86T"


def fixture_files(count=24):
    """Archives and metadata shaped like the Dataverse deposit, 24 images of 12 lesions."""
    rows, parts, masks = [HEADER], [io.BytesIO(), io.BytesIO()], io.BytesIO()
    with zipfile.ZipFile(parts[0], "w") as one, zipfile.ZipFile(parts[1], "w") as two, \
            zipfile.ZipFile(masks, "w") as mask_zip:
        for index in range(count):
            image_id, dx = f"ISIC_{index:07d}", data.CLASSES[(index // 2) % 7]
            rows.append(f"HAM_{index // 2:07d},{image_id},{dx},histo,40,male,back")
            (one if index % 2 else two).writestr(f"{image_id}.jpg", jpeg_bytes(seed=index))
            mask_zip.writestr(f"HAM10000_segmentations_lesion_tschandl/{image_id}_segmentation.png",
                              _png_mask())
    tab = ("\n".join(rows) + "\n").encode()
    return {
        "HAM10000_images_part_1.zip": parts[0].getvalue(),
        "HAM10000_images_part_2.zip": parts[1].getvalue(),
        "HAM10000_metadata.tab": tab,
        "HAM10000_segmentations_lesion_tschandl.zip": masks.getvalue(),
        "ISIC2018_Task3_Test_Images.zip": b"not fetched",
    }


def _png_mask():
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (64, 48), 255).save(buffer, "PNG")
    return buffer.getvalue()


class FakeDataverse:
    """A threaded HTTP server with Dataverse's file-list and data-access endpoints."""

    def __init__(self, files):
        self.files = dict(files)
        self.ids = {name: 100 + number for number, name in enumerate(self.files)}
        self.md5 = {name: hashlib.md5(body).hexdigest() for name, body in self.files.items()}
        self.cut_once = set()  # Names whose next transfer stops halfway.
        self.ignore_range = False
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                if self.path.startswith("/api/datasets/:persistentId/versions/:latest-published/files"):
                    return self._listing()
                match = re.match(r"^/api/access/datafile/(\d+)", self.path)
                if match:
                    return self._file(int(match.group(1)))
                self.send_error(404)

            def _listing(self):
                if f"persistentId={DOI.replace(':', '%3A').replace('/', '%2F')}" not in self.path:
                    return self.send_error(404, "unknown dataset")
                entries = []
                for name, body in server.files.items():
                    record = {"id": server.ids[name], "md5": server.md5[name]}
                    if name.endswith(".tab"):  # Dataverse serves ingested tables as .tab with the original's facts.
                        record.update(filename=name, filesize=len(body) + 5, originalFileName=name,
                                      originalFileSize=len(body))
                    else:
                        record.update(filename=name, filesize=len(body))
                    entries.append({"label": name, "dataFile": record})
                payload = json.dumps({"status": "OK", "data": entries}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _file(self, file_id):
                name = next(n for n, i in server.ids.items() if i == file_id)
                body, start = server.files[name], 0
                wanted = self.headers.get("Range")
                if wanted and not server.ignore_range:
                    start = int(re.match(r"bytes=(\d+)-", wanted).group(1))
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if name in server.cut_once:  # Send half, then drop the connection.
                    server.cut_once.discard(name)
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def file_requests(self, name):
        return [r for r in self.requests if r[0].startswith(f"/api/access/datafile/{self.ids[name]}")]


@pytest.fixture
def server():
    with FakeDataverse(fixture_files()) as fake:
        yield fake


def test_download_unpacks_a_usable_data_set(server, tmp_path):
    folder = download.download_ham10000(tmp_path / "ham", server=server.url, progress=False)
    table = data.load_metadata(folder)
    assert len(table) == 24 and table["mask_path"].notna().all()
    assert not (folder / "downloads").exists()  # Archives are removed after unpacking.
    assert server.file_requests("ISIC2018_Task3_Test_Images.zip") == []
    assert server.file_requests("HAM10000_metadata.tab")[0][0].endswith("?format=original")
    before = len(server.requests)
    download.download_ham10000(folder, server=server.url, progress=False)
    assert len(server.requests) == before + 1  # A rerun only lists the files.


def test_a_cut_transfer_resumes_with_a_range_request(server, tmp_path):
    server.cut_once.add("HAM10000_images_part_1.zip")
    download.download_ham10000(tmp_path / "ham", server=server.url, progress=False)
    ranges = [r[1] for r in server.file_requests("HAM10000_images_part_1.zip")]
    half = len(server.files["HAM10000_images_part_1.zip"]) // 2
    assert ranges == [None, f"bytes={half}-"]
    assert len(data.load_metadata(tmp_path / "ham")) == 24


def test_a_server_that_ignores_ranges_gets_a_clean_restart(server, tmp_path):
    server.cut_once.add("HAM10000_images_part_2.zip")
    server.ignore_range = True
    download.download_ham10000(tmp_path / "ham", server=server.url, progress=False)
    assert len(server.file_requests("HAM10000_images_part_2.zip")) == 2
    assert len(data.load_metadata(tmp_path / "ham")) == 24


def test_a_left_over_partial_file_is_resumed(server, tmp_path):
    name = "HAM10000_segmentations_lesion_tschandl.zip"
    downloads = tmp_path / "ham" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / f"{name}.part").write_bytes(server.files[name][:1000])
    download.download_ham10000(tmp_path / "ham", server=server.url, progress=False)
    assert [r[1] for r in server.file_requests(name)] == ["bytes=1000-"]


def test_a_corrupt_file_is_refused_and_not_kept(server, tmp_path):
    name = "HAM10000_images_part_1.zip"
    server.md5[name] = "0" * 32  # The listing promises other bytes than the server sends.
    with pytest.raises(download.DownloadError, match=rf"{name} from http://127\.0\.0\.1.*MD5 .* does not match"):
        download.download_ham10000(tmp_path / "ham", server=server.url, progress=False)
    leftovers = [p.name for p in (tmp_path / "ham" / "downloads").iterdir()]
    assert name not in leftovers and f"{name}.part" not in leftovers


def test_a_truncated_archive_is_a_clear_error(server, tmp_path):
    name = "HAM10000_images_part_2.zip"
    server.files[name] = server.files[name][:-400]  # Listed consistently, but not a whole zip.
    server.md5[name] = hashlib.md5(server.files[name]).hexdigest()
    with pytest.raises(download.DownloadError, match=f"{name}: not a valid zip archive"):
        download.download_ham10000(tmp_path / "ham", server=server.url, progress=False)
    assert not (tmp_path / "ham" / "HAM10000_images_part_2").exists()


def test_unreachable_server_and_missing_files_are_clear(tmp_path):
    with pytest.raises(download.DownloadError, match="Could not list the files of doi:10.7910/DVN/DBW86T"):
        download.download_ham10000(tmp_path / "ham", server="http://127.0.0.1:9", progress=False)
    with FakeDataverse({"README.txt": b"hello"}) as fake:
        with pytest.raises(download.DownloadError, match=r"no metadata file .*it has \['README.txt'\]"):
            download.download_ham10000(tmp_path / "ham", server=fake.url, progress=False)


def test_unsafe_archive_paths_are_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../outside.txt", "no")
    with pytest.raises(download.DownloadError, match="unsafe path '../outside.txt'"):
        download.unpack(archive, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()


def test_command_line_download_if_missing(server, tmp_path):
    folder = tmp_path / "ham"
    command = [sys.executable, "-m", "skinlib", "download", "--dest", str(folder), "--server", server.url,
               "--if-missing"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"HAM10000 is in {folder}" in result.stdout
    assert len(data.load_metadata(folder)) == 24
    listed = len(server.requests)
    assert subprocess.run(command, capture_output=True, timeout=120).returncode == 0
    assert len(server.requests) == listed  # Found on disk: nothing asked of the server.


def test_the_challenge_test_images_are_fetched_on_request_only(tmp_path, monkeypatch, capsys):
    files = fixture_files()
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as archive:
        for index in range(3):
            archive.writestr(f"ISIC2018_Task3_Test_Images/ISIC_{34524 + index:07d}.jpg", jpeg_bytes(seed=index))
        archive.writestr("ISIC2018_Task3_Test_Images/ATTRIBUTION.txt", "CC BY-NC")
    files["ISIC2018_Task3_Test_Images.zip"] = bundle.getvalue()
    files["ISIC2018_Task3_Test_GroundTruth.csv"] = b"image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\nISIC_0034524,0,1,0,0,0,0,0\n"
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "ham10000"))
    with FakeDataverse(files) as fake:
        got = download.download_isic2018_test(server=fake.url, progress=False)
        images = got.images
        assert got.count == 3 and got.truth == tmp_path / "isic2018_task3_test" / "ISIC2018_Task3_Test_GroundTruth.csv"
        assert images.parent.parent == tmp_path / "isic2018_task3_test"  # Beside the HAM10000 folder.
        assert sorted(path.name for path in images.glob("*.jpg")) == [f"ISIC_{34524 + i:07d}.jpg" for i in range(3)]
        assert fake.file_requests("HAM10000_images_part_1.zip") == []  # Nothing of HAM10000 itself.
        assert not (tmp_path / "isic2018_task3_test" / "downloads_isic2018_test").exists()
        before = len(fake.requests)
        assert download.download_isic2018_test(server=fake.url, progress=False) == got
        assert len(fake.requests) == before  # Already there: no network needed.
        ham = tmp_path / "ham10000"  # Into the HAM10000 folder itself: its partial download is left alone.
        (ham / "downloads").mkdir(parents=True)
        (ham / "downloads" / "HAM10000_images_part_1.zip.part").write_bytes(b"half")
        download.download_isic2018_test(ham, server=fake.url, progress=False)
        assert (ham / "downloads" / "HAM10000_images_part_1.zip.part").read_bytes() == b"half"
        from skinlib.__main__ import main

        assert (tmp_path / "isic2018_task3_test" / "ISIC2018_Task3_Test_GroundTruth.csv").is_file()  # Its diagnoses.
        assert main(["download", "--isic2018-test", "--dest", str(tmp_path / "cli"), "--server", fake.url]) == 0
        assert len(list((tmp_path / "cli").rglob("*.jpg"))) == 3
        assert f"--truth {tmp_path / 'cli' / 'ISIC2018_Task3_Test_GroundTruth.csv'}" in capsys.readouterr().out
        spaced = tmp_path / "my data"  # The commands it prints can be pasted into a shell as they are.
        assert main(["download", "--isic2018-test", "--dest", str(spaced), "--server", fake.url]) == 0
        printed = capsys.readouterr().out
        assert f"predict '{spaced}" in printed and f"--truth '{spaced / 'ISIC2018_Task3_Test_GroundTruth.csv'}'" in printed
    with FakeDataverse({k: v for k, v in files.items() if not k.startswith("ISIC2018")}) as fake:
        with pytest.raises(download.DownloadError, match=r"lists no file matching \^ISIC2018_Task3_Test_Images"):
            download.download_isic2018_test(tmp_path / "elsewhere", server=fake.url, progress=False)
