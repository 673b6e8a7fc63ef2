"""Generate the Python stubs (and their .pyi) for proto/routerisk/v1, and the Connect
(HTTP/JSON, gRPC-Web) services and clients of protoc-gen-connectrpc (``*_connect.py``, on
google.protobuf messages) that service.http serves.

Stubs are committed under ``routerisk/v1`` (the proto package's own path, so
their imports work unpatched). ``--check`` regenerates into a scratch folder and
exits 1 when the committed stubs differ, so stale stubs fail CI.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path("routerisk") / "v1"


def proto_files() -> list[str]:
    """The contract's .proto files, relative to the proto root."""
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))


def include_dirs() -> list[str]:
    """Our protos, protobuf's well-known types, and googleapis-common-protos (google/rpc)."""
    import google.rpc  # noqa: F401  (googleapis-common-protos ships the .proto files)

    wkt = Path(grpc_tools.__file__).parent / "_proto"
    rpc_root = Path(sys.modules["google.rpc"].__path__[0]).parent.parent
    return [str(PROTO_ROOT), str(wkt), str(rpc_root)]


def generate(out_dir: Path) -> None:
    """Run protoc with the python, pyi, grpc, typed-grpc and Connect generators into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    env_path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["PATH"] = env_path  # protoc finds protoc-gen-mypy_grpc and protoc-gen-connectrpc here
    args = ["protoc", *(f"-I{d}" for d in include_dirs())]
    args += [f"--python_out={out_dir}", f"--pyi_out={out_dir}"]
    args += [f"--grpc_python_out={out_dir}", f"--mypy_grpc_out={out_dir}"]
    # protobuf=google: the Connect code uses the same message classes as the gRPC stubs
    args += [f"--connectrpc_out={out_dir}", "--connectrpc_opt=protobuf=google"]
    if protoc.main([*args, *proto_files()]) != 0:
        raise SystemExit("protoc failed")
    for pkg in (out_dir / "routerisk", out_dir / PACKAGE_DIR):
        (pkg / "__init__.py").touch()


def stale_files(generated: Path) -> list[str]:
    """Files whose committed copy differs from a fresh generation (or is missing)."""
    fresh = sorted(p.relative_to(generated) for p in generated.rglob("*") if p.is_file())
    return [
        str(rel)
        for rel in fresh
        if not (ROOT / rel).exists() or not filecmp.cmp(generated / rel, ROOT / rel, shallow=False)
    ]


def lint() -> int:
    """Run ``buf lint`` (rules from buf.yaml) on an image built by protoc.

    buf cannot resolve ``google/rpc`` without the Buf registry, so protoc builds
    the image from the installed googleapis-common-protos and buf lints only our files.
    """
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "image.binpb"
        args = ["protoc", *(f"-I{d}" for d in include_dirs()), "--include_imports", "--include_source_info"]
        if protoc.main([*args, f"--descriptor_set_out={image}", *proto_files()]) != 0:
            return 1
        buf = shutil.which("buf", path=str(Path(sys.executable).parent)) or "buf"
        paths = [arg for f in proto_files() for arg in ("--path", f)]
        cmd = [buf, "lint", str(image), *paths, "--config", str(ROOT / "buf.yaml")]
        return subprocess.run(cmd, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed stubs are stale")
    parser.add_argument("--lint", action="store_true", help="run buf lint on the contract")
    opts = parser.parse_args()
    if opts.lint:
        return lint()
    check = opts.check
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        if check:
            stale = stale_files(Path(tmp))
            for rel in stale:
                print(f"stale: {rel} (run python proto/generate.py)", file=sys.stderr)
            return 1 if stale else 0
        for src in Path(tmp).rglob("*"):
            if src.is_file():
                dst = ROOT / src.relative_to(tmp)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
