#!/usr/bin/env python3
"""Compares bulk-audit's resources.csv with another rows file on
(export_id, client_id, patient_id, resource_type, resource_id, version_id).

  compare_rows.py BULK_AUDIT_RESOURCES_CSV OTHER_CSV [LABEL]      exit 1 when they differ
"""
import csv
import sys

COLS = ["export_id", "client_id", "patient_id", "resource_type", "resource_id", "version_id"]


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        return [tuple(row[c] or "" for c in COLS) for row in csv.DictReader(f)]


def main():
    ours, other = load(sys.argv[1]), load(sys.argv[2])
    label = sys.argv[3] if len(sys.argv) > 3 else sys.argv[2]
    a, b = set(ours), set(other)
    missing, extra = sorted(b - a), sorted(a - b)
    same = not missing and not extra and len(ours) == len(other) == len(a)
    print(f"bulk-audit vs {label}: {len(ours)} rows vs {len(other)}; missing {len(missing)}, extra {len(extra)} -> {'EQUAL' if same else 'DIFFERENT'}")
    for tag, rows in (("missing", missing), ("extra", extra)):
        for r in rows[:5]:
            print(f"  {tag}: {','.join(r)}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
