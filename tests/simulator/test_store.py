"""Non-volatile memory on disk: round trip, atomic writes, crash repair, a meter rebuilt on its folder."""

from __future__ import annotations

import errno
import json
import logging
import os
from dataclasses import fields
from pathlib import Path

import pytest

from iemdcr_twin.simulator.model import NonVolatile, Refusal, SignedRecord, StorageError
from iemdcr_twin.simulator.model.energy import REGISTER_WRAP_UJ, UJ_PER_MWH, parse_kwh
from iemdcr_twin.simulator.model.memory import RECORD_RULES, REGISTER, STATE_RULES, reconcile
from iemdcr_twin.simulator.ocmf import Signer
from iemdcr_twin.simulator.store import DamagedMemory, FileMemory, FolderInUse, WrongProfile, write_atomic
from tests.support.clock import FakeTime
from tests.support.meter import GW, SERIAL, USER, assert_verifies, charge, make_meter, metervalue, ready_meter

PEM = Signer.from_seed("tests", SERIAL, 0).to_pem()
STATE = NonVolatile(SERIAL, "iem-dcr-125", PEM, 0, 123_456_789, 42, 5, "OCMF|{}|{}")


def record(pagination: int, fingerprint: str = "f" * 16, end_rv: str = "00000004.000") -> SignedRecord:
    ocmf = f'OCMF|{{"PG":"T{pagination}"}}|sig'  # the store checks the payload's PG against the file's
    return SignedRecord(pagination, "E", ocmf, fingerprint, "tm0", "tm1", "00000000.000", end_rv)


def stray_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.startswith(".") or path.name.endswith(".tmp")]


class CountingMemory(FileMemory):
    """FileMemory that counts how often the whole history is read."""

    history_reads = 0

    def history(self) -> list[SignedRecord]:
        self.history_reads += 1
        return super().history()


class Crash(Exception):
    """The process died here."""


def reopen(memory: FileMemory) -> FileMemory:
    """The folder of ``memory`` opened again, as by the next process: the old one lets it go first (as the kernel
    releases the lock of a process that ends)."""
    memory.close()
    return FileMemory(memory.folder.parent, memory.folder.name)


# ---- FileMemory --------------------------------------------------------------------------------------


def test_empty_folder_loads_as_factory_new(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    assert memory.folder == tmp_path / SERIAL
    assert memory.load() is None and memory.history() == []


def test_round_trip(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    memory.save(STATE)
    memory.add_record(record(1))
    memory.add_record(record(2))
    reopened = reopen(memory)
    assert reopened.load() == STATE
    assert reopened.history() == [record(1), record(2)]


def test_save_replaces_the_state(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    memory.save(STATE)
    newer = NonVolatile(SERIAL, "iem-dcr-125", PEM, 0, 999, 0, 6, None)
    memory.save(newer)
    assert memory.load() == newer


def test_meters_live_in_their_own_folders(tmp_path: Path) -> None:
    FileMemory(tmp_path, SERIAL).save(STATE)
    other = FileMemory(tmp_path, "1ISA0200000002")
    assert other.load() is None and other.history() == []


def test_a_folder_is_held_by_one_memory_at_a_time_until_it_is_closed(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    with pytest.raises(FolderInUse) as held:
        FileMemory(tmp_path, SERIAL)
    assert str(held.value) == (
        f"{tmp_path / SERIAL}: another iemdcr-sim (pid {os.getpid()}, this process) holds this meter's folder (its "
        "lock file is locked); two twins on one folder would sign the same PG twice. Stop that twin first, or give "
        "this one another --state-dir"
    )
    assert FileMemory(tmp_path, "1ISA0200000002").load() is None  # another meter's folder is free
    memory.close()
    memory.close()  # idempotent
    FileMemory(tmp_path, SERIAL).close()


def test_a_record_file_is_never_replaced(tmp_path: Path) -> None:
    """A second line of defence behind the lock: a file already at a new record's name (another writer got
    there first) stays as it is, and the record is refused like any failed write (503 storage_error)."""
    memory = FileMemory(tmp_path, SERIAL)
    memory.add_record(record(1))
    taken = memory.folder / "records" / "00000001-ffffffffffffffff-T0000000002.json"
    taken.write_text(EARLIER_RECORD_FILE)
    with pytest.raises(StorageError) as refused:
        memory.add_record(record(2))
    assert refused.value.path == str(taken)
    assert "File exists" in refused.value.message
    assert taken.read_text() == EARLIER_RECORD_FILE
    assert stray_files(tmp_path) == []


def test_without_hard_links_a_taken_name_is_still_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: object, target: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "record.json"
    write_atomic(target, b"one", replace=False)
    with pytest.raises(FileExistsError):
        write_atomic(target, b"two", replace=False)
    assert target.read_bytes() == b"one"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["record.json"]


def test_a_folder_of_another_profile_is_refused_naming_both(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL, profile="iem-dcr-125")
    memory.save(STATE)
    assert memory.load() == STATE
    memory.close()
    with pytest.raises(WrongProfile) as refused:
        FileMemory(tmp_path, SERIAL, profile="iem-dcr-1500").load()
    assert str(refused.value).startswith(
        f"{tmp_path / SERIAL / 'state.json'}: holds a meter of profile iem-dcr-125, not iem-dcr-1500 as asked"
    )
    assert f"move {tmp_path / SERIAL} away" in str(refused.value)


def test_atomic_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    for n in range(1, 4):
        memory.save(STATE)
        memory.add_record(record(n))
    assert stray_files(tmp_path) == []
    target = tmp_path / "plain.bin"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(path.name for path in tmp_path.iterdir()) == [SERIAL, "plain.bin"]


def test_a_torn_temporary_file_is_ignored(tmp_path: Path) -> None:
    """A crash mid-write leaves only the temp file: the old state is still what loads."""
    memory = FileMemory(tmp_path, SERIAL)
    memory.save(STATE)
    (memory.folder / ".state.json.tmp").write_bytes(b'{"serial": "1IS')
    assert memory.load() == STATE


def test_unreadable_state_names_the_file(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    (memory.folder / "state.json").write_text("[1, 2]")
    with pytest.raises(DamagedMemory, match=r"state\.json: unreadable meter state \(.*JSON object"):
        memory.load()
    (memory.folder / "state.json").write_text("{not json")
    with pytest.raises(DamagedMemory, match=r"state\.json: unreadable meter state"):
        memory.load()


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"{torn", "Expecting"), (b"[1]", "JSON object"), (b'{"pagination": 1}', "missing")],
)
def test_unreadable_record_names_its_file_and_the_problem(tmp_path: Path, content: bytes, problem: str) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    memory.add_record(record(1))
    name = "00000001-ffffffffffffffff-T0000000002.json"
    (memory.folder / "records" / name).write_bytes(content)
    with pytest.raises(DamagedMemory, match=rf"{name}: unreadable signed record \(.*{problem}"):
        memory.load()  # start-up checks every record
    with pytest.raises(DamagedMemory, match=rf"{name}: unreadable signed record \(.*{problem}"):
        memory.history()


@pytest.mark.parametrize(
    ("field", "ocmf_pg", "said"),
    [(7, "T1", "T1 in the file name, 7 in 'pagination', T1 in the signed OCMF"),
     (1, "T7", "T1 in the file name, 1 in 'pagination', T7 in the signed OCMF"),
     (1, None, "T1 in the file name, 1 in 'pagination', none in the signed OCMF")],
)  # fmt: skip
def test_a_record_whose_pg_disagrees_with_its_name_or_signed_payload_is_refused(
    tmp_path: Path, field: int, ocmf_pg: str | None, said: str
) -> None:
    time = FakeTime()
    memory = FileMemory(tmp_path, SERIAL)
    charge(ready_meter(time, memory), time)
    (path,) = (memory.folder / "records").iterdir()
    assert path.name.endswith("-T0000000001.json")
    data = json.loads(path.read_text())
    data["pagination"] = field
    if ocmf_pg != "T1":
        data["ocmf"] = data["ocmf"].replace('"PG":"T1"', f'"PG":"{ocmf_pg}"' if ocmf_pg else '"XX":"T1"')
    path.write_text(json.dumps(data))
    with pytest.raises(DamagedMemory) as damaged:
        make_meter(time, reopen(memory))  # start-up
    assert str(damaged.value).startswith(f"{path}: damaged signed record: its PG disagrees ({said})")
    assert "restore the file from a backup" in str(damaged.value)
    with pytest.raises(DamagedMemory, match="its PG disagrees"):
        memory.history()  # a read while running names it the same way


def test_a_state_of_another_serial_than_its_folder_is_refused_naming_both(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    memory.save(STATE)
    data = json.loads((memory.folder / "state.json").read_text())
    data["serial"] = "OTHER"
    (memory.folder / "state.json").write_text(json.dumps(data))
    with pytest.raises(DamagedMemory) as damaged:
        reopen(memory).load()
    message = str(damaged.value)
    assert message.startswith(f"{memory.folder / 'state.json'}: holds meter 'OTHER', but its folder is '{SERIAL}'")
    assert f"Move the folder to {tmp_path / 'OTHER'}" in message


def test_a_missing_state_beside_records_refuses_to_start_a_new_meter(tmp_path: Path) -> None:
    time = FakeTime()
    memory = FileMemory(tmp_path, SERIAL)
    charge(ready_meter(time, memory), time)
    (tmp_path / SERIAL / "state.json").unlink()
    with pytest.raises(DamagedMemory) as damaged:
        make_meter(time, reopen(memory))
    message = str(damaged.value)
    assert message.startswith(
        f"{tmp_path / SERIAL / 'state.json'}: missing, but {tmp_path / SERIAL / 'records'} holds 1"
    )
    assert f"move {tmp_path / SERIAL} away" in message
    assert not (tmp_path / SERIAL / "state.json").exists()  # nothing was written over it


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"import_uj": -5}, f"key 'import_uj' must be {REGISTER[0]}, not -5"),
        ({"import_uj": REGISTER_WRAP_UJ}, f"key 'import_uj' must be {REGISTER[0]}, not {REGISTER_WRAP_UJ}"),
        ({"export_uj": "12"}, f"key 'export_uj' must be {REGISTER[0]}, not '12'"),
        ({"next_pagination": 1.5}, "key 'next_pagination' must be a whole number from 0, not 1.5"),
        ({"key_generation": True}, "key 'key_generation' must be a whole number from 0, not True"),
        ({"last_transaction": 7}, "key 'last_transaction' must be a string or null, not 7"),
        ({"serial": None}, "key 'serial' must be a string, not None"),
        ({"key_pem": "-----PEM-----"}, "key 'key_pem' is not a PEM private key"),
        ({"next_pagination": None, "drop": "next_pagination"}, "key 'next_pagination' is missing"),
    ],
)
def test_a_state_key_of_the_wrong_type_or_range_is_named(
    tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    memory.save(STATE)
    data = json.loads((memory.folder / "state.json").read_text())
    data.update({key: value for key, value in change.items() if key != "drop"})
    data.pop(str(change.get("drop")), None)
    (memory.folder / "state.json").write_text(json.dumps(data))
    with pytest.raises(DamagedMemory) as damaged:
        reopen(memory).load()
    assert str(damaged.value).startswith(f"{memory.folder / 'state.json'}: ")
    assert problem in str(damaged.value)


def test_every_stored_field_has_a_check() -> None:
    assert list(STATE_RULES) == [field.name for field in fields(NonVolatile)]
    assert list(RECORD_RULES) == list(record(1).as_dict())
    assert len(RECORD_RULES) == len(fields(SignedRecord))


# A record file as every twin before the fields took OCMF's names wrote it (json.dumps of the dataclass's fields).
EARLIER_RECORD_FILE = (
    '{"pagination": 5, "reason": "E", "ocmf": "OCMF|{\\"PG\\":\\"T5\\"}|sig", "key_fingerprint": "ffffffffffffffff", '
    '"begin_tm": "tm0", "end_tm": "tm1", "begin_rv": "00000000.000", "end_rv": "00000004.000", "public_key": "", '
    '"import_uj": 0, "export_uj": 0}'
)


def test_record_files_keep_their_keys_so_an_upgraded_twin_starts_on_its_state_dir(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    memory.save(STATE)
    memory.add_record(record(5))
    (path,) = (memory.folder / "records").iterdir()
    assert path.read_text() == EARLIER_RECORD_FILE  # what this twin writes, an earlier one reads
    path.write_text(EARLIER_RECORD_FILE)
    (loaded,) = reopen(memory).history()
    assert loaded == record(5)
    assert (loaded.begin_TM, loaded.end_TM, loaded.begin_RV, loaded.end_RV) == (
        "tm0",
        "tm1",
        "00000000.000",
        "00000004.000",
    )


def test_stray_files_in_records_are_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="iemdcr.store")
    memory = FileMemory(tmp_path, SERIAL)
    memory.save(STATE)
    memory.add_record(record(5))
    records = memory.folder / "records"
    (records / "notes.txt").write_text("lab notes")
    (records / "backup.json").write_text("{}")
    (records / "00000009-ffffffffffffffff-T0000000009.json.bak").write_text("{}")
    (records / "subfolder").mkdir()
    (records / ".00000001-ffffffffffffffff-T0000000006.json.tmp").write_bytes(b"{torn")  # a killed write
    reopened = reopen(memory)
    assert reopened.load() == STATE
    assert reopened.history() == [record(5)]
    warned = sorted(r.getMessage().split(" is not")[0] for r in caplog.records if r.levelname == "WARNING")
    assert warned == [
        str(records / name)
        for name in ("00000009-ffffffffffffffff-T0000000009.json.bak", "backup.json", "notes.txt", "subfolder")
    ]
    reopened.add_record(record(6))
    assert [r.pagination for r in reopen(reopened).history()] == [5, 6]


def test_the_next_record_follows_the_highest_sequence_when_one_was_moved_away(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    for pagination in (1, 2, 3):
        memory.add_record(record(pagination))
    (memory.folder / "records" / "00000001-ffffffffffffffff-T0000000002.json").unlink()
    restarted = reopen(memory)
    restarted.add_record(record(1, fingerprint="a" * 16))  # a new key's first record
    assert [(r.key_fingerprint[0], r.pagination) for r in reopen(restarted).history()] == [
        ("f", 1),
        ("f", 3),
        ("a", 1),
    ]


def test_records_since_reads_only_what_the_state_may_not_count(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    for pagination in range(5):
        memory.add_record(record(pagination))
    memory.add_record(record(3, fingerprint="a" * 16))  # another key's record
    for name in ("00000001-ffffffffffffffff-T0000000001.json", "00000002-ffffffffffffffff-T0000000002.json"):
        (memory.folder / "records" / name).write_bytes(b"{torn")  # older: records_since does not open them
    assert [r.pagination for r in memory.records_since("f" * 16, 3)] == [3, 4]
    assert [r.pagination for r in memory.records_since("a" * 16, 0)] == [3]
    assert memory.records_since("f" * 16, 5) == []


def test_records_load_in_sequence_order_whatever_the_listing_order(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    for pagination in range(12):  # sequence numbers 0..11: 00000010 sorts after 00000009 as text too
        memory.add_record(record(pagination, fingerprint="ab" * 8 if pagination % 2 else "cd" * 8))
    assert [r.pagination for r in reopen(memory).history()] == list(range(12))


def test_state_file_is_json(tmp_path: Path) -> None:
    memory = FileMemory(tmp_path, SERIAL)
    memory.save(STATE)
    assert json.loads((memory.folder / "state.json").read_text())["next_pagination"] == 5


# ---- reconcile ---------------------------------------------------------------------------------------


def test_reconcile_without_own_records_changes_nothing() -> None:
    assert reconcile(STATE, [], "a" * 16) == STATE
    assert reconcile(STATE, [record(9, "b" * 16, "99999999.000")], "a" * 16) == STATE


def test_reconcile_after_a_crash_between_record_and_state() -> None:
    own = "a" * 16
    records = [record(4, own, "00000010.000"), record(5, own, "00000020.500"), record(9, "b" * 16)]
    repaired = reconcile(STATE, records, own)
    assert repaired.next_pagination == 6
    assert repaired.last_transaction == record(5).ocmf
    assert repaired.import_uj == parse_kwh("00000020.500") * UJ_PER_MWH
    assert (repaired.export_uj, repaired.key_pem) == (STATE.export_uj, STATE.key_pem)


def test_reconcile_when_the_state_was_written_keeps_it() -> None:
    own = "a" * 16
    records = [record(3, own, "00000000.000"), record(4, own, "00000000.000")]
    assert reconcile(STATE, records, own) == STATE


def test_reconcile_across_the_wrap_takes_the_record_ahead_of_the_state() -> None:
    """State saved at B just below the wrap, then a record signed after the wrap: the record is ahead, although
    its number is smaller; a record from before the optional registers existed (0) pulls nothing back."""
    own = "a" * 16
    before_wrap = REGISTER_WRAP_UJ - 5 * UJ_PER_MWH * 1_000_000  # 99999995.000 kWh
    state = NonVolatile(SERIAL, "iem-dcr-125", PEM, 0, before_wrap, 0, 5, None)
    after_wrap = SignedRecord(
        5, "E", "OCMF|T5|sig", own, "tm0", "tm1", "99999995.000", "00000002.000", "", 2_000_000 * UJ_PER_MWH, 0
    )
    legacy = SignedRecord(6, "E", "OCMF|T6|sig", own, "tm0", "tm1", "00000002.000", "00000002.000")
    repaired = reconcile(state, [after_wrap, legacy], own)
    assert repaired.import_uj == 2_000_000 * UJ_PER_MWH
    assert repaired.next_pagination == 7


# ---- a meter on FileMemory ---------------------------------------------------------------------------


def test_meter_rebuilt_on_the_same_folder_is_the_same_meter(tmp_path: Path) -> None:
    time = FakeTime()
    memory = FileMemory(tmp_path, SERIAL)
    meter = ready_meter(time, memory)
    charge(meter, time)
    last = charge(meter, time, 50.0, 400.0, 360)
    meter.set_load(-10.0, 400.0)
    time.advance(360)
    meter.set_load(0.0)
    meter.power_off()
    key = meter.get_publickey()
    again = make_meter(time, reopen(memory))
    assert again.get_publickey() == key
    assert again.registers.next_pagination == 3
    assert again.get_transaction() == last
    assert again.records == meter.records
    value = metervalue(again)
    assert (value["RD"][0]["RV"], value["RD"][1]["RV"]) == ("00000006.000", "00000000.400")
    assert value["RD"][2]["WV"] == "00000000.000"
    again.post_gw(dict(GW))
    again.post_user(dict(USER))
    record3 = charge(again, time)
    assert json.loads(record3.split("|")[1])["PG"] == "T3"
    assert_verifies(record3, key.PK)


def test_meter_reads_its_history_only_when_first_asked_and_keeps_it_whole(tmp_path: Path) -> None:
    time = FakeTime()
    first_memory = FileMemory(tmp_path, SERIAL)
    first = charge(ready_meter(time, first_memory), time)
    first_memory.close()
    memory = CountingMemory(tmp_path, SERIAL)
    again = make_meter(time, memory)
    assert memory.history_reads == 0  # start-up did not read the history
    again.post_gw(dict(GW))
    again.post_user(dict(USER))
    second = charge(again, time)  # signed before anyone asked: memory has it
    assert [r.ocmf for r in again.records] == [first, second] and memory.history_reads == 1
    third = charge(again, time)  # signed after: appended to what was read
    assert [r.ocmf for r in again.records] == [first, second, third] and memory.history_reads == 1


def test_meter_repairs_a_crash_after_the_record_before_the_state(tmp_path: Path) -> None:
    time = FakeTime()
    memory = FileMemory(tmp_path, SERIAL)
    meter = ready_meter(time, memory)
    charge(meter, time)

    def crash(state: NonVolatile) -> None:
        raise Crash

    meter.post_receipt({"TX": "B"})
    memory.save = crash  # type: ignore[method-assign]  # the state file never changes again: killed after E
    meter.set_load(100.0, 400.0)
    time.advance(360)
    meter.set_load(0.0)
    meter.post_receipt({"TX": "E"})  # acknowledged on the strength of the record file alone
    signed = meter.records[-1]
    assert signed.pagination == 2
    restarted = reopen(memory)
    again = make_meter(time, restarted)
    assert again.registers.next_pagination == 3
    assert again.get_transaction() == signed.ocmf
    assert again.registers.import_mwh >= parse_kwh(signed.end_RV)
    assert metervalue(again)["RD"][0]["RV"] == "00000008.000"
    assert [r.pagination for r in again.records] == [1, 2]
    on_disk = reopen(restarted).load()
    assert on_disk is not None and on_disk.next_pagination == 3  # the repair was written back


def test_power_loss_record_survives_a_restart(tmp_path: Path) -> None:
    time = FakeTime()
    memory = FileMemory(tmp_path, SERIAL)
    meter = ready_meter(time, memory)
    meter.post_receipt({"TX": "B"})
    meter.set_load(100.0, 400.0)
    time.advance(360)
    meter.power_off()
    again = make_meter(time, reopen(memory))
    payload = json.loads(again.get_transaction().split("|")[1])
    assert payload["RD"][1]["TX"] == "P"
    assert_verifies(again.get_transaction(), again.get_publickey().PK)


def test_records_stay_in_signing_order_across_factory_resets_and_restarts(tmp_path: Path) -> None:
    time = FakeTime()
    memory = FileMemory(tmp_path, SERIAL)
    meter = make_meter(time, memory)
    order = []
    for _ in range(3):
        meter.post_gw(dict(GW))
        meter.post_user(dict(USER))
        charge(meter, time)
        order.append((meter.signer.fingerprint, meter.records[-1].pagination))
        meter.factory_reset()
    again = make_meter(time, reopen(memory))
    assert [(r.key_fingerprint, r.pagination) for r in again.records] == order
    assert again.records == meter.records
    assert again.signer.fingerprint == meter.signer.fingerprint
    assert again.registers.next_pagination == 1
    with pytest.raises(Refusal, match="never") as refused:  # the new key has no record yet
        again.get_transaction()
    assert (refused.value.status, refused.value.code) == (404, "no_record")
