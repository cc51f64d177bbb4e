"""Read a W&B offline run file (RUN/wandb/offline-run-*/run-*.wandb) back, for the logger test.

The file is W&B's record log: a 7-byte header (``:W&B``, magic, version), then LevelDB-log
blocks of 32 KiB whose records (4-byte checksum, 2-byte length, 1-byte type: full, first,
middle, last) carry W&B's own protobuf ``Record`` messages, decoded here with wandb's classes.
"""

import json
import struct
from pathlib import Path

BLOCK = 32768


def records(path: Path):
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:  # padding to the end of a block
            pos += left
            continue
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def run_contents(path: Path) -> tuple[dict, list[dict], dict]:
    """(config, history rows, summary) of one offline run file."""
    config, history, summary = {}, [], {}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            config |= {u.key: json.loads(u.value_json) for u in record.run.config.update}
        elif kind == "config":
            config |= {u.key: json.loads(u.value_json) for u in record.config.update}
        elif kind == "history":
            history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            summary |= {u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in record.summary.update}
    return config, history, summary
