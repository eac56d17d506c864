"""A real Orthanc (Debian's package) on loopback with a temporary configuration: the PACS the
gateway is tested against."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
PLUGINS = Path("/usr/share/orthanc/plugins")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Orthanc:
    def __init__(self, modalities: dict[str, list[Any]], *, dicomweb: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="orthanc-"))
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.aet = "ORTHANC"
        config = {
            "Name": "StrokeAIDTest",
            "StorageDirectory": str(self.dir / "db"),
            "IndexDirectory": str(self.dir / "db"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomModalities": modalities,
            "DicomScuTimeout": 15,
            "StableAge": 1,
            "Plugins": [str(PLUGINS / "libOrthancDicomWeb.so")] if dicomweb else [],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        (self.dir / "orthanc.json").write_text(json.dumps(config))
        self.log = (self.dir / "orthanc.log").open("wb")
        self.process = subprocess.Popen(
            [ORTHANC, str(self.dir / "orthanc.json")], stdout=self.log, stderr=subprocess.STDOUT
        )
        self.url = f"http://127.0.0.1:{self.http_port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.get("/system")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("Orthanc did not start: " + (self.dir / "orthanc.log").read_text())

    def request(self, method: str, path: str, body: bytes | None = None) -> Any:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        with urllib.request.urlopen(req, timeout=60) as response:
            data = response.read()
        return json.loads(data) if data[:1] in (b"{", b"[") else data

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: bytes | str | dict[str, Any]) -> Any:
        raw = (
            body
            if isinstance(body, bytes)
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        return self.request("POST", path, raw)

    def upload(self, files: list[Path]) -> str:
        """Stores the files; returns the Orthanc id of their study."""
        study = ""
        for path in files:
            study = str(self.post("/instances", path.read_bytes())["ParentStudy"])
        return study

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
