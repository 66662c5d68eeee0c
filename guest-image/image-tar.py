#!/usr/bin/env python3
"""Writes the guest image as a `docker save` tarball, without a Docker engine or a registry.

    image-tar.py ARCH BASE_ROOTFS_TAR GUEST_BINARY TAG OUT_TAR

The image: two layers, the base rootfs (Debian minbase + iptables + iproute2, from
scripts/docker-env/base-rootfs.sh) cut down to what the guest runs (`slim_base`), and
/usr/local/bin/dockroute-guest; entrypoint the guest;
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
import struct
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


# What the guest runs (iptables/ip6tables in both backends, `ip -j route`), what the tests and
# a user debugging run in it (`docker exec dockroute-guest cat|stat|sh`), and the xtables
# extensions iptables dlopens. Everything their ELF headers need comes with them; /etc stays
# whole (small: alternatives, protocols, iproute2's tables). The rest of minbase (apt, dpkg,
# perl, gconv, …) is ~80 % of the bytes an engine must load before the first guest can start.
SLIM_ROOTS = ("usr/sbin/xtables-legacy-multi", "usr/sbin/xtables-nft-multi", "bin/ip", "bin/cat", "bin/stat", "bin/sh")
SLIM_DLOPENED_DIRS = ("usr/lib/x86_64-linux-gnu/xtables/", "usr/lib/aarch64-linux-gnu/xtables/")
LIB_DIRS = ("usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu",
            "usr/lib", "lib", "usr/lib64", "lib64")


def elf_needs(data):
    """The interpreter and DT_NEEDED names of a 64-bit little-endian ELF file; () for anything else."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return ()
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    loads, dynamic, out = [], None, []
    for i in range(phnum):
        off = phoff + i * phentsize
        if off + 56 > len(data):
            break
        p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data, off)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
        elif p_type == 3:
            out.append(data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode())
    if dynamic is None:
        return out
    entries, strtab = [], None
    for off in range(dynamic[0], dynamic[0] + dynamic[1] - 15, 16):
        tag, val = struct.unpack_from("<qQ", data, off)
        if tag == 0:
            break
        if tag == 5:
            strtab = next((o + val - v for v, o, n in loads if v <= val < v + n), None)
        elif tag == 1:
            entries.append(val)
    for name in entries if strtab is not None else ():
        end = data.index(b"\0", strtab + name)
        out.append(data[strtab + name:end].decode())
    return out


def slim_base(base, path):
    """Writes `base` (a rootfs tar) to `path` with only directories, symlinks, /etc and the
    files SLIM_ROOTS and the xtables extensions need (their ELF closure). Member order and
    metadata are kept, so the output stays reproducible."""
    with tarfile.open(base) as src:
        members = src.getmembers()
        by_name = {m.name.lstrip("./").rstrip("/"): m for m in members}

        def resolve(name, depth=0):
            """`name` with every symlink on the way followed inside the rootfs."""
            parts, done = [p for p in name.split("/") if p not in ("", ".")], []
            while parts:
                part = parts.pop(0)
                if part == "..":
                    done = done[:-1]
                    continue
                here = "/".join(done + [part])
                m = by_name.get(here)
                if m is not None and m.issym() and depth < 40:
                    target = m.linkname
                    base_parts = [] if target.startswith("/") else done
                    parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                    done = list(base_parts)
                    depth += 1
                    continue
                done.append(part)
            return "/".join(done)

        keep, todo = set(), []
        for root in SLIM_ROOTS:
            real = resolve(root)
            if real not in by_name or not by_name[real].isfile():
                sys.exit(f"image-tar.py: the base rootfs has no {root}")
            todo.append(real)
        todo += [n for n, m in by_name.items() if m.isfile() and n.startswith(SLIM_DLOPENED_DIRS)]
        while todo:
            name = todo.pop()
            if name in keep:
                continue
            keep.add(name)
            data = src.extractfile(by_name[name]).read()
            for need in elf_needs(data):
                cands = [need] if "/" in need else [d + "/" + need for d in LIB_DIRS]
                found = next((r for r in map(resolve, cands) if r in by_name and by_name[r].isfile()), None)
                if found is None:
                    sys.exit(f"image-tar.py: {name} needs {need}, which the base rootfs lacks")
                todo.append(found)
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as out:
            for m in members:
                name = m.name.lstrip("./").rstrip("/")
                if m.isdir() or m.issym():
                    out.addfile(m)
                elif m.islnk():
                    if m.linkname.lstrip("./") in keep:
                        out.addfile(m)
                elif m.isfile() and (name in keep or name.startswith("etc/")):
                    out.addfile(m, src.extractfile(m))


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
        slim = os.path.join(work, "base.tar")
        slim_base(base, slim)
        layers = [(slim, sha256_file(slim)), (top, sha256_file(top))]
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
                {"created": created, "created_by": "base rootfs: debian bookworm minbase + iptables + iproute2, what the guest runs"},
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
