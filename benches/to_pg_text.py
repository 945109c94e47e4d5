#!/usr/bin/env python3
"""Writes a world's history (resources with meta and DELETE entries, one JSON document per line,
as make-world --format fhir writes it) again in PostgreSQL's text format, as Aidbox's tables hold
it: a `$dump-sql` TSV per file (no header: id, txid, ts, cts, resource_type, status, resource) and
one plain pg_dump file with a COPY block per file. For measuring the TSV and COPY readers on the
same versions (BENCHMARKS.md).

    benches/to_pg_text.py WORLD_DIR OUT_DIR
"""
import json
import os
import sys


def escape(text):
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def rows(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            doc = json.loads(line)
            if "request" in doc and doc["request"].get("method") == "DELETE":
                rtype, rid, _, vid = doc["request"]["url"].split("/")
                ts = doc["response"]["lastModified"]
                yield [rid, vid, ts, ts, rtype, "deleted", "{}"]
            else:
                meta = doc["meta"]
                ts = meta["lastUpdated"]
                yield [doc["id"], meta["versionId"], ts, ts, doc["resourceType"], "updated", line.rstrip("\n")]


def main(world, out):
    history = os.path.join(world, "history")
    tsv_dir = os.path.join(out, "tsv")
    os.makedirs(tsv_dir, exist_ok=True)
    columns = "id, txid, ts, cts, resource_type, status, resource"
    with open(os.path.join(out, "dump.sql"), "w", encoding="utf-8") as dump:
        dump.write("--\n-- PostgreSQL database dump\n--\n\nSET client_encoding = 'UTF8';\n\n")
        for name in sorted(os.listdir(history)):
            table = name.split(".")[0].lower() + "_history"
            with open(os.path.join(tsv_dir, name + ".tsv"), "w", encoding="utf-8") as tsv:
                dump.write(f"COPY public.{table} ({columns}) FROM stdin;\n")
                for r in rows(os.path.join(history, name)):
                    text = "\t".join(escape(str(c)) for c in r) + "\n"
                    tsv.write(text)
                    dump.write(text)
                dump.write("\\.\n\n\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
