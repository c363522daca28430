"""Shards of one run, for array jobs: each job extracts a contiguous block of the inputs
(shard_of) into its own file (shard_path) with a record of what made it
(write_shard_record); merge_shards checks every shard against its record and joins them,
in order, into the file one run over all the inputs would have written.
"""
import csv
import glob
import io
import json
import re
from pathlib import Path

import numpy as np

from refimpl._util.atomic import atomic_open, atomic_path
from refimpl._util.digest import file_digest, text_digest
from refimpl.errors import UsageError
from refimpl.features.formats import ROW_GROUP, output_format, parquet_modules

__all__ = ["shard_path", "shard_of", "find_shards", "merge_shards", "write_shard_record",
           "shard_record_path", "SHARD_RECORD"]

SHARD_RECORD = "refimpl shard 1"     # the kind and version of a shard's record


def shard_path(output, index, count):
    """Where shard `index` of `count` of OUT.SUFFIX is written: OUT.shard-I-of-N.SUFFIX
    beside it."""
    output = Path(output)
    return output.with_name(f"{output.stem}.shard-{index}-of-{count}{output.suffix}")


def shard_of(items, index, count):
    """Shard `index` (from 0) of `count`: a contiguous block of the items, so that the
    shards joined in order are the items in order."""
    items = list(items)
    return items[len(items) * index // count:len(items) * (index + 1) // count]


def find_shards(output):
    """The shard files of `output` (shard_path), in order; a UsageError when there are
    none, when they come from different splits, or when one is missing."""
    output = Path(output)
    name = re.compile(re.escape(output.stem) + r"\.shard-(\d+)-of-(\d+)" +
                      re.escape(output.suffix) + "$")
    found = {}
    for path in output.parent.glob(f"{glob.escape(output.stem)}.shard-*-of-*"
                                   f"{glob.escape(output.suffix)}"):
        if m := name.match(path.name):
            found[int(m[1]), int(m[2])] = path
    if not found:
        raise UsageError(f"{output}: no shards to merge beside it (named like "
                         f"{shard_path(output, 0, 2).name})")
    counts = sorted({n for _, n in found})
    if len(counts) > 1:
        raise UsageError(f"{output}: shards of different splits beside it (of "
                         f"{', '.join(map(str, counts))}); remove the stale ones")
    count = counts[0]
    missing = [i for i in range(count) if (i, count) not in found]
    if missing:
        raise UsageError(f"{output}: {len(missing)} of {count} shards missing, e.g. "
                         f"{shard_path(output, missing[0], count)} (a shard whose files all "
                         f"failed writes nothing)")
    return [found[i, count] for i in range(count)]


def shard_record_path(shard):
    """Where the record of what made a shard is kept: SHARD.json beside it."""
    shard = Path(shard)
    return shard.with_name(shard.name + ".json")


def write_shard_record(shard, config, index, count, all_inputs, inputs, rows):
    """Record beside `shard` what made it: the configuration (config_id), shard `index`
    of `count`, the names of every input of the whole run (their count and digest) and of
    this shard's, its rows and its own SHA-256. merge_shards checks the shards against
    their records, so a truncated, duplicated, renamed or foreign shard is refused."""
    record = {"record": SHARD_RECORD, "shard": [int(index), int(count)],
              "config_id": config.config_id(), "inputs_total": len(all_inputs),
              "inputs_sha256": text_digest(json.dumps([a.name for a in all_inputs]), 64),
              "files": [a.name for a in inputs], "rows": int(rows),
              "sha256": file_digest(shard)}
    with atomic_open(shard_record_path(shard), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


def _shard_record(shard, index, count):
    """The record of `shard` (write_shard_record), checked against the file."""
    where = shard_record_path(shard)
    try:
        record = json.loads(where.read_text(encoding="utf-8"))
        if record.get("record") != SHARD_RECORD:
            raise ValueError("not a shard record")
    except FileNotFoundError:
        raise UsageError(f"{shard}: no record of what made it ({where.name} is missing: "
                         f"made by an older refimpl, or copied without it); extract the "
                         f"shard again") from None
    except (OSError, ValueError, AttributeError) as e:
        raise UsageError(f"{where}: not a readable shard record ({e})") from None
    if record["shard"] != [index, count]:
        raise UsageError(f"{shard}: holds shard {record['shard'][0]} of "
                         f"{record['shard'][1]}, not {index} of {count} (copied or renamed?)")
    if file_digest(shard) != record["sha256"]:
        raise UsageError(f"{shard}: not the file that was written (cut short or changed "
                         f"since: its SHA-256 differs from {where.name}'s)")
    return record


def _check_records(output, shards, records):
    """The shards make one whole run: one configuration, one set of inputs, each input in
    exactly one shard."""
    first, seen = records[0], {}
    for shard, record in zip(shards, records):
        if record["config_id"] != first["config_id"]:
            ours, theirs = record["config_id"].split(), first["config_id"].split()
            diff = [w for w in ours if w not in theirs][:2]
            raise UsageError(f"{shard}: made with another configuration than {shards[0]} "
                             f"({', '.join(diff) or 'settings differ'})")
        if (record["inputs_sha256"], record["inputs_total"]) != (first["inputs_sha256"],
                                                                 first["inputs_total"]):
            raise UsageError(f"{shard}: cut from other inputs than {shards[0]} "
                             f"({record['inputs_total']} files there, "
                             f"{first['inputs_total']} here)")
        for name in record["files"]:
            if name in seen:
                raise UsageError(f"{shard}: {name} is also in {seen[name]} (a shard twice?)")
            seen[name] = shard
    if len(seen) != first["inputs_total"]:
        raise UsageError(f"{output}: the shards hold {len(seen)} of the run's "
                         f"{first['inputs_total']} inputs")


def _text_header(fmt, lines, shard):
    """A CSV or ARFF shard's header lines (CSV: the first; ARFF: up to @data)."""
    if fmt == "csv":
        return lines[:1]
    for i, line in enumerate(lines):
        if line.strip().lower() == b"@data":
            return lines[:i + 1]
    raise UsageError(f"{shard}: not an ARFF file (no @data line)")


def _text_rows(fmt, head, body, shard):
    """The rows of a CSV or ARFF shard's body, each checked to have the header's number
    of columns; a UsageError naming the shard and the row otherwise."""
    try:
        text, top = body.decode("utf-8"), b"".join(head).decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{shard}: not UTF-8 text (byte {e.start})") from None
    if fmt == "csv":
        width = len(next(csv.reader([top.strip("\r\n")])))
        reader = csv.reader(io.StringIO(text, newline=""))
    else:
        width = sum(ln.lower().startswith("@attribute") for ln in top.splitlines())
        reader = csv.reader(io.StringIO(text, newline=""), quotechar="'", escapechar="\\",
                            doublequote=False)
    rows = 0
    try:
        for row in reader:
            if not row:
                continue
            rows += 1
            if len(row) != width:
                raise UsageError(f"{shard}: row {rows} has {len(row)} columns, the header "
                                 f"{width} (a cut-off or damaged shard)")
    except csv.Error as e:
        raise UsageError(f"{shard}: row {rows + 1} cannot be read ({e})") from None
    return rows


def merge_shards(output, format=None):
    """Join the shards of `output` (find_shards) into `output`, in order, atomically.

    Each shard is first checked against its record (write_shard_record): its own SHA-256
    (a shard cut short or changed), its place (a shard copied over another), one
    configuration and one set of inputs for all, every input in exactly one shard; and
    every row against the header's width. Anything else is a UsageError naming the shard.
    CSV and ARFF: the header once (every shard's must be the same) and then each shard's
    rows as they were written: the very bytes of one run over all the inputs. Parquet and
    .npz are read and written again: the same columns and values. Returns (the shard
    files, the rows written)."""
    fmt = output_format(output, format)
    shards = find_shards(output)
    records = [_shard_record(shard, i, len(shards)) for i, shard in enumerate(shards)]
    _check_records(output, shards, records)
    rows = 0
    with atomic_path(output) as tmp:
        if fmt in ("csv", "arff"):
            header = None
            with open(tmp, "wb") as out:
                for shard, record in zip(shards, records):
                    data = Path(shard).read_bytes()
                    head = _text_header(fmt, data.splitlines(keepends=True), shard)
                    if header is None:
                        header = head
                        out.writelines(header)
                    elif head != header:
                        raise UsageError(f"{shard}: its header differs from "
                                         f"{shards[0]}'s (another configuration or label "
                                         f"file?)")
                    body = data[sum(map(len, head)):]
                    count = _text_rows(fmt, head, body, shard)
                    if count != record["rows"]:
                        raise UsageError(f"{shard}: holds {count} rows, its record "
                                         f"{record['rows']}")
                    out.write(body)
                    rows += count
        elif fmt == "parquet":
            pa, pq = parquet_modules()
            tables = [pq.read_table(shard) for shard in shards]
            for shard, table in zip(shards[1:], tables[1:]):
                if not table.schema.equals(tables[0].schema):
                    raise UsageError(f"{shard}: its columns differ from {shards[0]}'s")
            merged = pa.concat_tables(tables)
            pq.write_table(merged, tmp, row_group_size=ROW_GROUP)
            rows = merged.num_rows
        else:
            parts = []
            for shard in shards:
                with np.load(shard, allow_pickle=False) as z:
                    parts.append({k: z[k] for k in z.files})
                part = parts[-1]
                if (part["features"].ndim != 2 or len(part["name"]) != len(part["features"])
                        or part["features"].shape[1] != len(part["feature_names"])):
                    raise UsageError(f"{shard}: features {part['features'].shape} do not fit "
                                     f"its {len(part['name'])} names and "
                                     f"{len(part['feature_names'])} columns")
            fixed = ("feature_names", "label_names")
            for shard, part in zip(shards[1:], parts[1:]):
                if part.keys() != parts[0].keys() or any(
                        not np.array_equal(part[k], parts[0][k]) for k in fixed):
                    raise UsageError(f"{shard}: its arrays differ from {shards[0]}'s")
            merged = {k: parts[0][k] if k in fixed else np.concatenate([p[k] for p in parts])
                      for k in parts[0]}
            with open(tmp, "wb") as f:
                np.savez(f, **merged)
            rows = len(merged["name"])
    return shards, rows
