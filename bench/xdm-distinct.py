#!/usr/bin/env python3
"""Writes N distinct copies of an XDM package for `mes bench smtp --attach FOLDER`.

Usage: bench/xdm-distinct.py PACKAGE.zip N OUT_DIR

Every XML document gets a trailing comment and every other document a counter
written at offset 100, both different in each copy; METADATA.XML gets the
matching SHA-1 and size. So no document is shared between messages and the
store cannot keep one blob for all of them (see BENCHMARKS.md, XDM section).
"""
import hashlib
import os
import sys
import zipfile


def sha1(data):
    return hashlib.sha1(data).hexdigest()


def main():
    src_path, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    src = zipfile.ZipFile(src_path)
    names = [i.filename for i in src.infolist()]
    meta_name = next(n for n in names if n.upper().endswith("METADATA.XML"))
    folder = meta_name.rsplit("/", 1)[0] + "/"
    docs = [n for n in names if n.startswith(folder) and n != meta_name]
    meta0 = src.read(meta_name).decode()
    for i in range(count):
        tag = b"%010d" % i
        meta = meta0
        contents = {}
        for name in docs:
            old = src.read(name)
            if name.upper().endswith(".XML"):
                new = old.rstrip() + b"\n<!-- copy " + tag + b" -->\n"
            else:
                new = old[:100] + tag + old[110:]
            for digest in (sha1(old), sha1(old).upper()):
                meta = meta.replace(digest, sha1(new).upper() if digest.isupper() else sha1(new))
            meta = meta.replace(">%d<" % len(old), ">%d<" % len(new))
            contents[name] = new
        contents[meta_name] = meta.encode()
        with zipfile.ZipFile(os.path.join(out, "pkg-%05d.zip" % i), "w") as z:
            for info in src.infolist():
                data = contents.get(info.filename) or src.read(info.filename)
                z.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)


if __name__ == "__main__":
    main()
