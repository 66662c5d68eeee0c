#!/usr/bin/env python3
"""Writes the guest image as a `docker save` tarball, without a Docker engine or a registry.

    image-tar.py ARCH BASE_ROOTFS_TAR GUEST_BINARY TAG OUT_TAR

The image: two layers, the base rootfs (Debian minbase + iptables + iproute2, from
scripts/docker-env/base-rootfs.sh) and /usr/local/bin/dockroute-guest; entrypoint the guest;
config "architecture" ARCH (amd64 or arm64), so an engine runs it on that CPU only and a
loader can tell the two apart. The format is what `docker save` writes and every `docker load`
reads (manifest.json naming the config and the layers; each layer's sha256 is the config's
rootfs.diff_ids entry). The output is byte-for-byte reproducible for the same inputs and
SOURCE_DATE_EPOCH.
"""

import datetime
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile

ARCHES = {"amd64": {}, "arm64": {"variant": "v8"}}
ENTRYPOINT = "/usr/local/bin/dockroute-guest"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def guest_layer(binary, path, mtime):
    """A layer tar holding the guest binary at ENTRYPOINT (root-owned, 0755)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for d in ("usr", "usr/local", "usr/local/bin"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            t.addfile(info)
        info = tarfile.TarInfo(ENTRYPOINT.lstrip("/"))
        info.size, info.mode, info.mtime = os.path.getsize(binary), 0o755, mtime
        with open(binary, "rb") as f:
            t.addfile(info, f)


def add_bytes(t, name, data, mtime):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, mtime
    t.addfile(info, io.BytesIO(data))


def main(argv):
    if len(argv) != 6 or argv[1] not in ARCHES:
        sys.exit("usage: image-tar.py ARCH BASE_ROOTFS_TAR GUEST_BINARY TAG OUT_TAR  (ARCH: amd64 or arm64)")
    arch, base, binary, tag, out = argv[1:]
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    created = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as work:
        top = os.path.join(work, "guest.tar")
        guest_layer(binary, top, mtime)
        layers = [(base, sha256_file(base)), (top, sha256_file(top))]
        config = {
            "architecture": arch,
            **ARCHES[arch],
            "os": "linux",
            "created": created,
            "config": {
                "Entrypoint": [ENTRYPOINT],
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for _, d in layers]},
            "history": [
                {"created": created, "created_by": "base rootfs: debian bookworm minbase + iptables + iproute2"},
                {"created": created, "created_by": "COPY dockroute-guest " + ENTRYPOINT},
            ],
        }
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [d + "/layer.tar" for _, d in layers]}]
        name, _, version = tag.rpartition(":")
        partial = os.path.join(work, "image.tar")
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as t:
            for path, digest in layers:
                info = tarfile.TarInfo(digest)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
                t.addfile(info)
                add_bytes(t, digest + "/VERSION", b"1.0", mtime)
                info = t.gettarinfo(path, arcname=digest + "/layer.tar")
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode, info.mtime = 0o644, mtime
                with open(path, "rb") as f:
                    t.addfile(info, f)
            add_bytes(t, config_name, config_bytes, mtime)
            add_bytes(t, "manifest.json", json.dumps(manifest, separators=(",", ":")).encode(), mtime)
            add_bytes(t, "repositories", json.dumps({name: {version: layers[-1][1]}}).encode(), mtime)
        shutil.move(partial, out)
    print(f"{out}: {tag} ({arch}), layers {', '.join(d[:12] for _, d in layers)}")


if __name__ == "__main__":
    main(sys.argv)
