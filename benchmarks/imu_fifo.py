"""MPU-6050 FIFO plausibility: what each check catches, and what it costs at 200 Hz.

1. Catch rates. The real driver (``hal.mpu6050``) reads the register-level chip
   (``sim.mpu6050_sim``) through the fake bus, which damages one read per trial
   in one of several ways (random bytes, one changed byte, lost or doubled bytes,
   a bit slip, a stuck data line, the burst's register pointer misread, random
   bytes in any read of a poll). A trial is *caught* when the read raises, *passed*
   when at least one sample the chip never took reached the caller, *harmless*
   when the damage changed no sample. Each variant of the checks gets the same
   trials: none (the driver before), the temperature channel, the register
   cross-check, and both (the driver now). Walking backward, sensor noise, a die
   at ``--die`` °C (36.5 °C, where TEMP_OUT is zero, is the temperature check's
   blind spot), bus transactions taking their time at 100 kHz. Polls on the
   loop's schedule (189/s: one or two frames each) and late polls (2-10 frames).
   The four clean polls after each trial count errors and wrong samples there.
2. Cost at 200 Hz with the loop's ~189 polls/s: I2C bytes on the wire per second
   (address bytes included) and the bus time at 100 and 400 kHz, from a clean
   run (which raises on any false alarm); CPU per poll of the driver with real
   ``smbus2`` on a replay of that run (``ioctl`` answered from the recording, so
   the kernel and the wire cost nothing here). The Pi Zero 2 W is 6-8x slower
   than this machine.

    .venv/bin/python benchmarks/imu_fifo.py [--trials 300] [--die 30 36.5] [--json FILE]

About 5 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import smbus2.smbus2 as smbus2_module  # noqa: E402
from smbus2 import SMBus  # noqa: E402

from core.clock import SimClock  # noqa: E402
from core.samples import ImuSample  # noqa: E402
from hal import mpu6050_registers as reg  # noqa: E402
from hal.config import ImuConfig  # noqa: E402
from hal.errors import ImuError  # noqa: E402
from hal.mpu6050 import Mpu6050  # noqa: E402
from hal.mpu6050_check import FifoChecks  # noqa: E402
from sim import scenarios  # noqa: E402
from sim.i2c_bus import (  # noqa: E402
    BusTiming,
    Corruption,
    FakeI2cBus,
    bit_slip,
    flip_one_byte,
    shift_bytes,
    stuck_line,
    xor_every_byte,
)
from sim.mpu6050_sim import SimulatedMpu6050, raw_motion  # noqa: E402

RATE = 200.0
PERIOD = 1.0 / RATE
POLLS_PER_S = 189.0
"""What the monitor's loop does today at 200 Hz (issue 12)."""
CLEAN_POLLS = 4
"""Clean polls after each trial: they re-align after a detection, and show after-effects."""
BIT_RATE_HZ = 100_000.0
"""The Pi's default I2C clock, which the wiring guide's 1 m belt cable is rated for."""
CALL_OVERHEAD_S = 100e-6
"""Host time per I2C call on a Pi Zero 2 W (system call, smbus2), roughly."""
JITTER_S = 0.5e-3
"""How late the loop's thread may wake for a poll."""

VARIANTS: dict[str, FifoChecks] = {
    "none": FifoChecks(temperature=False, registers=False),
    "temperature": FifoChecks(temperature=True, registers=False),
    "registers": FifoChecks(temperature=False, registers=True),
    "both": FifoChecks(temperature=True, registers=True),
}

MISREAD_TARGETS = (reg.ACCEL_XOUT_H, reg.GYRO_XOUT_H, reg.FIFO_COUNTH, 0x00, reg.SMPLRT_DIV)
"""Where a misread FIFO_R_W pointer lands: the data registers, the count, config."""


@dataclass(frozen=True)
class Damage:
    """One way to damage one read of a poll."""

    name: str
    corrupt: Corruption | None = None
    register: int | None = reg.FIFO_R_W
    """Only reads that start here (``None``: whichever read of the poll comes first)."""
    misread: bool = False

    def inject(self, bus: FakeI2cBus, rng: random.Random) -> None:
        if self.misread:
            target = rng.choice(MISREAD_TARGETS)
            bus.inject_misread(1, register=reg.FIFO_R_W, read_from=target)
        elif self.register is None:
            # Any one of the poll's reads: status (+ data registers), count, or the burst.
            for _ in range(rng.randrange(3)):
                bus.inject_garbage(1, corrupt=_untouched)
            assert self.corrupt is not None
            bus.inject_garbage(1, corrupt=self.corrupt)
        else:
            assert self.corrupt is not None
            bus.inject_garbage(1, register=self.register, corrupt=self.corrupt)


def _untouched(data: bytes, rng: random.Random) -> bytes:
    return data


DAMAGES = (
    Damage("random bytes in the burst", xor_every_byte),
    Damage("one changed byte", flip_one_byte),
    Damage("1 byte lost (shifted)", shift_bytes(1)),
    Damage("2 bytes lost (shifted)", shift_bytes(2)),
    Damage("1 byte doubled (shifted)", shift_bytes(-1)),
    Damage("bit slip", bit_slip),
    Damage("stuck low (0x00)", stuck_line(0x00)),
    Damage("stuck high (0xFF)", stuck_line(0xFF)),
    Damage("another register's bytes", misread=True),
    Damage("random bytes in any read", xor_every_byte, register=None),
)


@dataclass
class Tally:
    caught: int = 0
    passed: int = 0
    harmless: int = 0
    false_alarms: int = 0
    clean_polls: int = 0

    @property
    def trials(self) -> int:
        return self.caught + self.passed + self.harmless


def make_imu(
    checks: FifoChecks, die_c: float, seed: int, clock: SimClock
) -> tuple[Mpu6050, FakeI2cBus, SimulatedMpu6050]:
    motion = scenarios.scenario(scenarios.Walking(1e6, 0.6, "backward"), seed=seed)
    chip = SimulatedMpu6050(
        motion,
        clock,
        seed=seed,
        accel_noise_g=0.003,
        gyro_noise_dps=0.05,
        temperature_c=die_c,
        temperature_noise_c=0.03,
        keep_samples=64,
    )
    bus = FakeI2cBus({0x68: chip}, seed=seed, timing=timing(clock))
    imu = Mpu6050(bus, ImuConfig(sample_rate_hz=RATE), clock, checks=checks)
    imu.start()
    return imu, bus, chip


def timing(clock: SimClock) -> BusTiming:
    """Transactions take their wire time, so samples land between reads as on the Pi."""
    return BusTiming(clock, BIT_RATE_HZ, CALL_OVERHEAD_S)


def genuine(samples: list[ImuSample], chip: SimulatedMpu6050, imu: Mpu6050) -> bool:
    """True when every sample is one the chip took (its raw accel and gyro values)."""
    taken = set(chip.taken_motions())
    scale = imu.settings.accel_g_per_lsb, imu.settings.gyro_dps_per_lsb
    return all(raw_motion(s, *scale) in taken for s in samples)


def run_trials(
    checks: FifoChecks, damage: Damage, die_c: float, trials: int, multi: bool, seed: int
) -> Tally:
    clock = SimClock()
    imu, bus, chip = make_imu(checks, die_c, seed, clock)
    rng = random.Random(seed)
    tally = Tally()
    next_poll = clock.monotonic()

    def poll(skipped: int = 0) -> list[ImuSample]:
        # The monitor's loop: a poll every 1/189 s, give or take the scheduler's jitter
        # (``skipped`` slots left out: a late poll). The grid keeps the phase between polls
        # and samples sweeping, as it does on the Pi; a poll that runs late does not lock it.
        nonlocal next_poll
        next_poll += (1 + skipped) / POLLS_PER_S
        jitter = rng.uniform(0.0, JITTER_S)
        clock.advance(max(0.0, next_poll + jitter - clock.monotonic()))
        return list(imu.read_batch(0.0))

    for _ in range(20):
        poll()
    while tally.trials < trials:
        skipped = rng.randint(1, 9) if multi else 0
        damage.inject(bus, rng)
        try:
            batch = poll(skipped)
        except ImuError:
            tally.caught += 1
        else:
            if bus.pending_faults:
                bus.clear_faults()  # the read it was meant for did not happen: not a trial
                continue
            if genuine(batch, chip, imu):
                tally.harmless += 1
            else:
                tally.passed += 1
        bus.clear_faults()
        for _ in range(CLEAN_POLLS):
            tally.clean_polls += 1
            try:
                if not genuine(poll(), chip, imu):
                    tally.false_alarms += 1  # a wrong sample after the trial: also a miss
            except ImuError:
                tally.false_alarms += 1
    imu.close()
    return tally


# --- cost ---------------------------------------------------------------------------------


def wire_bytes(kind: str, length: int) -> int:
    """Bytes on the wire: address + register pointer (+ repeated-start address) + data."""
    return (2 if kind.startswith("write") else 3) + length


def poll_instants(seconds: float) -> Iterator[float]:
    n = int(seconds * POLLS_PER_S)
    for i in range(n):
        yield (i + 1) / POLLS_PER_S


Transactions = list[tuple[bytes, float]]
"""Each bus transaction's answer (empty for a write) and how long it took."""


class RecordingBus:
    """The fake bus, remembering each transaction's answer and duration in order, for the replay."""

    def __init__(self, bus: FakeI2cBus, clock: SimClock) -> None:
        self.bus = bus
        self.clock = clock
        self.transactions: Transactions = []

    def _done(self, began: float, answer: bytes = b"") -> None:
        self.transactions.append((answer, self.clock.monotonic() - began))

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        began = self.clock.monotonic()
        value = self.bus.read_byte_data(i2c_addr, register)
        self._done(began, bytes((value,)))
        return value

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        began = self.clock.monotonic()
        self.bus.write_byte_data(i2c_addr, register, value)
        self._done(began)

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        began = self.clock.monotonic()
        data = self.bus.read_i2c_block_data(i2c_addr, register, length)
        self._done(began, bytes(data))
        return data

    def i2c_rdwr(self, *msgs: Any) -> None:
        began = self.clock.monotonic()
        self.bus.i2c_rdwr(*msgs)
        reads = [m for m in msgs if m.flags & smbus2_module.I2C_M_RD]
        self._done(began, b"".join(ctypes.string_at(m.buf, m.len) for m in reads))

    def close(self) -> None:
        self.bus.close()


def record(
    checks: FifoChecks, seconds: float
) -> tuple[list[tuple[bytes, float]], dict[str, float]]:
    """Run the monitor's polling pattern on the simulation; return the transactions and figures."""
    clock = SimClock()
    motion = scenarios.scenario(scenarios.Walking(1e6, 0.6, "backward"), seed=1)
    chip = SimulatedMpu6050(motion, clock, seed=1, accel_noise_g=0.003, gyro_noise_dps=0.05)
    bus = FakeI2cBus({0x68: chip}, log_size=1_000_000, timing=timing(clock))
    recorder = RecordingBus(bus, clock)
    imu = Mpu6050(recorder, ImuConfig(sample_rate_hz=RATE), clock, checks=checks)
    imu.start()
    bus.log.clear()  # the transactions keep the start-up: the replay starts the driver too
    start = clock.monotonic()
    samples = 0
    for at in poll_instants(seconds):
        clock.advance(max(0.0, start + at - clock.monotonic()))
        samples += len(imu.read_batch(0.0))  # any error here is a false alarm: it raises
    ops = list(bus.log)
    total = sum(wire_bytes(op.kind, op.length) for op in ops)
    transactions = len(ops)
    # 9 clocks a byte, plus ~3 for START, repeated START and STOP of each transaction.
    clocks = 9 * total + 3 * transactions
    figures = {
        "bytes_per_s": total / seconds,
        "transactions_per_s": transactions / seconds,
        "samples_per_s": samples / seconds,
        "follow_ups_per_s": imu.follow_ups / seconds,
        "polls_per_s": POLLS_PER_S,
        "bus_busy_100khz": clocks / seconds / 100_000,
        "bus_busy_400khz": clocks / seconds / 400_000,
    }
    return recorder.transactions, figures


class ReplayClock:
    """A simulated clock without a lock: the replay should cost as little as possible."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """The replayed driver polls (no data-ready line): nothing sets ``event``."""
        if not event.is_set():
            self.now += max(0.0, timeout)
        return event.is_set()


@dataclass
class Replay:
    """Stands in for the kernel: each I2C ``ioctl`` of smbus2 gets the next recorded answer,
    and takes the recorded time (so the driver decides exactly as it did then)."""

    transactions: Transactions
    clock: ReplayClock
    index: int = 0

    def ioctl(self, fd: int, request: int, arg: Any = 0) -> int:
        if request == smbus2_module.I2C_SMBUS:
            answer, took = self.transactions[self.index]
            self.index += 1
            if arg.read_write == smbus2_module.I2C_SMBUS_READ:
                union = ctypes.addressof(arg.data.contents)
                if arg.size == smbus2_module.I2C_SMBUS_BYTE_DATA:
                    ctypes.memmove(union, answer, 1)
                else:
                    ctypes.memmove(union + 1, answer, len(answer))  # block[0] is the length
            self.clock.now += took
        elif request == smbus2_module.I2C_RDWR:
            answer, took = self.transactions[self.index]
            self.index += 1
            offset = 0
            for i in range(arg.nmsgs):
                msg = arg.msgs[i]
                if msg.flags & smbus2_module.I2C_M_RD:
                    ctypes.memmove(msg.buf, answer[offset : offset + msg.len], msg.len)
                    offset += msg.len
            self.clock.now += took
        return 0  # I2C_SLAVE (set the address) needs nothing


def cpu_per_poll(checks: FifoChecks, transactions: Transactions, seconds: float) -> float:
    """CPU seconds per poll: the driver with real smbus2, the bus answered by :class:`Replay`."""
    clock = ReplayClock()
    replay = Replay(transactions, clock)
    # smbus2's stub does not declare the ioctl it imports from fcntl: set it as a module global
    names = vars(smbus2_module)
    original = names["ioctl"]
    names["ioctl"] = replay.ioctl
    try:
        bus = SMBus()
        bus.fd = -1
        imu = Mpu6050(bus, ImuConfig(sample_rate_hz=RATE), clock, checks=checks)
        imu.start()
        start = clock.monotonic()
        instants = [start + at for at in poll_instants(seconds)]
        started = time.process_time()
        for at in instants:
            clock.now = max(clock.now, at)
            imu.read_batch(0.0)
        used = time.process_time() - started
        assert replay.index == len(transactions), "the replay went out of step"
        return used / len(instants)
    finally:
        names["ioctl"] = original


# --- report ---------------------------------------------------------------------------------


def catch_table(trials: int, dies: list[float], seed: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for die_c in dies:
        for multi in (False, True):
            polls = "late polls (2-10 frames)" if multi else "the loop's polls (1-2 frames)"
            label = f"die {die_c:g} °C, {polls}"
            print(f"\n{label}: caught / passed as samples (of {trials} each)")
            print(f"{'damage':28}" + "".join(f"{name:>16}" for name in VARIANTS))
            block: dict[str, Any] = {}
            totals = {name: Tally() for name in VARIANTS}
            for index, damage in enumerate(DAMAGES):
                row = f"{damage.name:28}"
                for name, checks in VARIANTS.items():
                    tally = run_trials(checks, damage, die_c, trials, multi, seed + index)
                    block.setdefault(damage.name, {})[name] = vars(tally)
                    total = totals[name]
                    for key, value in vars(tally).items():
                        setattr(total, key, getattr(total, key) + value)
                    row += f"{tally.caught:>9} /{tally.passed:>5}"
                print(row)
            print(f"{'all':28}" + "".join(f"{t.caught:>9} /{t.passed:>5}" for t in totals.values()))
            alarms = "".join(f"{t.false_alarms:>16}" for t in totals.values())
            print(f"{f'errors in the {CLEAN_POLLS} polls after':28}{alarms}")
            results[label] = block
    return results


def cost_table(seconds: float, repeats: int) -> dict[str, Any]:
    print(f"\nCost at {RATE:g} Hz, {POLLS_PER_S:g} polls/s ({seconds:g} s simulated)")
    header = f"{'variant':12}{'bytes/s':>9}{'trans/s':>9}{'bus@100k':>10}{'bus@400k':>10}"
    print(header + f"{'us/poll':>9}{'core %':>8}{'Pi core %':>12}{'follow-ups/s':>14}")
    recorded = {name: record(checks, seconds) for name, checks in VARIANTS.items()}
    # Interleaved, fastest of the repeats: other load on the machine hits every variant alike.
    cpu = dict.fromkeys(VARIANTS, float("inf"))
    for _ in range(repeats):
        for name, checks in VARIANTS.items():
            cpu[name] = min(cpu[name], cpu_per_poll(checks, recorded[name][0], seconds))
    figures: dict[str, Any] = {}
    for name in VARIANTS:
        bus = recorded[name][1]
        core = cpu[name] * POLLS_PER_S
        figures[name] = {**bus, "cpu_s_per_poll": cpu[name], "core_fraction": core}
        print(
            f"{name:12}{bus['bytes_per_s']:>9.0f}{bus['transactions_per_s']:>9.0f}"
            f"{bus['bus_busy_100khz']:>10.1%}{bus['bus_busy_400khz']:>10.1%}"
            f"{cpu[name] * 1e6:>9.1f}{core:>8.2%}{f'{core * 6:.1%}-{core * 8:.1%}':>12}"
            f"{bus['follow_ups_per_s']:>14.1f}"
        )
    before, after = figures["none"], figures["both"]

    def ratio(key: str) -> str:
        return f"x{after[key] / before[key]:.2f}"

    print(
        f"after/before (both checks vs none): I2C bytes {ratio('bytes_per_s')}, "
        f"transactions {ratio('transactions_per_s')}, CPU {ratio('cpu_s_per_poll')}"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300, help="trials per damage and variant")
    parser.add_argument("--die", type=float, nargs="+", default=[30.0, 36.5], help="die °C")
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated time for the cost")
    parser.add_argument("--repeats", type=int, default=5, help="CPU runs; the fastest counts")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    catches = catch_table(args.trials, args.die, args.seed)
    cost = cost_table(args.seconds, args.repeats)
    if args.json:
        args.json.write_text(json.dumps({"catch": catches, "cost": cost}, indent=2))


if __name__ == "__main__":
    main()
