"""An in-memory I2C bus with the ``smbus2.SMBus`` methods the drivers use.

There is no ``/dev/i2c-*`` on a development machine, and ``i2c-stub`` cannot be
loaded in a container. So the simulated chips live in Python, behind the
same calls a real ``SMBus`` offers. Drivers run unchanged against either
one, and the tests exercise the real driver code.

Devices are modelled the way an I2C slave works. A write message sets the
register pointer (its first byte) and stores any further bytes. A read
message returns bytes from the pointer onward. Each SMBus call maps to
those two primitives exactly as the kernel's SMBus emulation does.

Fault injection covers the failures the treadmill motor causes: bursts of
errno 121/5, a device that vanishes, corrupted bytes (:meth:`FakeI2cBus.inject_garbage`
with one of the corruptions below) and a register pointer misread by the device
(:meth:`FakeI2cBus.inject_misread`).
"""

from __future__ import annotations

import ctypes
import errno as errno_codes
import os
import random
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from smbus2 import i2c_msg
from smbus2.smbus2 import I2C_M_RD

from core.clock import Clock
from hal.mpu6050_registers import SMBUS_BLOCK_MAX


class I2cDevice(Protocol):
    """A simulated I2C slave, seen as its two bus primitives."""

    def i2c_write(self, data: bytes) -> None:
        """Handle a write message: ``data[0]`` is the register pointer, the rest are values."""
        ...

    def i2c_read(self, length: int) -> bytes:
        """Handle a read message of ``length`` bytes from the current register pointer."""
        ...


Corruption = Callable[[bytes, random.Random], bytes]
"""What a noisy line does to the bytes of one read: given them and the bus's random source."""


def xor_every_byte(data: bytes, rng: random.Random) -> bytes:
    """Random bytes: every byte is XORed with a non-zero mask, so each one changes."""
    return bytes(b ^ rng.randint(1, 255) for b in data)


def flip_one_byte(data: bytes, rng: random.Random) -> bytes:
    """One byte, anywhere in the read, is changed; the rest arrive intact."""
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + bytes((data[at] ^ rng.randint(1, 255),)) + data[at + 1 :]


def shift_bytes(by: int) -> Corruption:
    """From a random point on, the bytes arrive ``by`` places early (> 0: bytes were lost, the
    last one repeats at the end) or ``-by`` places late (< 0: a byte was seen twice)."""

    def corrupt(data: bytes, rng: random.Random) -> bytes:
        if len(data) < 2:
            return data
        at = rng.randrange(len(data) - 1)
        if by > 0:
            rest = data[at + by :]
            return (data[:at] + rest + data[-1:] * len(data))[: len(data)]
        return (data[:at] + data[at : at + 1] * -by + data[at:])[: len(data)]

    return corrupt


def bit_slip(data: bytes, rng: random.Random) -> bytes:
    """The device missed a clock edge: from a random bit on, every bit arrives one place late."""
    if not data:
        return data
    bits = len(data) * 8
    value = int.from_bytes(data, "big")
    at = rng.randrange(1, bits)  # bits from here to the end are delayed by one
    keep = value >> (bits - at) << (bits - at)
    rest = value & ((1 << (bits - at)) - 1)
    slipped = keep | (rest >> 1) | (value >> (bits - at) & 1) << (bits - at - 1)
    return slipped.to_bytes(len(data), "big")


def stuck_line(level: int) -> Corruption:
    """SDA stuck from a random byte on: every byte reads ``level`` (0x00 low, 0xFF released)."""

    def corrupt(data: bytes, rng: random.Random) -> bytes:
        if not data:
            return data
        at = rng.randrange(len(data))
        return data[:at] + bytes((level,)) * (len(data) - at)

    return corrupt


@dataclass(frozen=True, slots=True)
class BusTiming:
    """How long transactions take, for simulations where the order of events matters.

    Without it a transaction takes no time. With it, each one sleeps on ``clock``: the
    host's per-call overhead and the header (address, register pointer, repeated start)
    before the device acts, the data bytes after. So a sample can land between two reads,
    as on a real bus. A byte is 9 clocks (8 bits and the acknowledge).
    """

    clock: Clock
    bit_rate_hz: float = 100_000.0
    """The Pi's default I2C clock, and what a 1 m belt cable allows (wiring/README.md)."""
    overhead_s: float = 0.0
    """Host time per call outside the wire: system call, driver, Python."""

    def before(self, header_bytes: int) -> None:
        self.clock.sleep(self.overhead_s + (9 * header_bytes + 2) / self.bit_rate_hz)

    def after(self, data_bytes: int) -> None:
        self.clock.sleep((9 * data_bytes + 1) / self.bit_rate_hz)


class _Garbage(NamedTuple):
    register: int | None
    corrupt: Corruption


class _Misread(NamedTuple):
    register: int
    read_from: int


class _Fault(NamedTuple):
    errno: int
    kind: str | None
    register: int | None

    def matches(self, kind: str, register: int | None) -> bool:
        return (self.kind is None or self.kind == kind) and (
            self.register is None or self.register == register
        )


class BusOp(NamedTuple):
    """One recorded transaction, for tests that check what a driver did."""

    kind: str
    """SMBus method name: ``read_byte_data``, ``write_byte_data``, ``i2c_rdwr``..."""
    address: int
    register: int | None
    """The register the transaction started at (for i2c_rdwr, the write message's first byte)."""
    length: int
    """Bytes read or written (for i2c_rdwr, the bytes read)."""
    ok: bool


class FakeI2cBus:
    """A bus of simulated devices, addressed like ``smbus2.SMBus``.

    One transaction is one SMBus call (one ``i2c_rdwr`` with all its
    messages counts as one). Injected faults act on whole transactions,
    before the device sees them, just as a NACK aborts a real transfer.

    ``log`` keeps the last ``log_size`` transactions and ``counts`` counts
    every transaction by kind. Tests use both to check bus traffic, for
    example that FIFO bursts over 32 bytes go through ``i2c_rdwr``.
    """

    def __init__(
        self,
        devices: dict[int, I2cDevice] | None = None,
        *,
        seed: int = 0,
        log_size: int = 10_000,
        timing: BusTiming | None = None,
    ) -> None:
        self._devices: dict[int, I2cDevice] = dict(devices or {})
        self._timing = timing
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._pending_errors: list[_Fault] = []
        self._garbage: list[_Garbage] = []
        self._misreads: list[_Misread] = []
        self._disconnected = False
        self.closed = False
        self.log: deque[BusOp] = deque(maxlen=log_size)
        self.counts: Counter[str] = Counter()

    # --- wiring -------------------------------------------------------------
    def attach(self, address: int, device: I2cDevice) -> None:
        """Put ``device`` on the bus at the 7-bit ``address``."""
        with self._lock:
            self._devices[address] = device

    def detach(self, address: int) -> None:
        """Remove the device at ``address`` (later transactions to it get errno 121)."""
        with self._lock:
            self._devices.pop(address, None)

    # --- fault injection ------------------------------------------------------
    def inject_errors(
        self,
        count: int,
        errno: int = errno_codes.EREMOTEIO,
        *,
        kind: str | None = None,
        register: int | None = None,
    ) -> None:
        """Make the next ``count`` transactions fail with ``OSError(errno)``.

        ``kind`` (an SMBus method name) and ``register`` (the register the
        transaction starts at) narrow which transactions fail. Other
        transactions pass, so a test can fail only the FIFO burst, say.
        """
        with self._lock:
            self._pending_errors.extend([_Fault(errno, kind, register)] * count)

    def clear_faults(self) -> None:
        """Drop injected errors and garbage that have not been used yet (not a disconnect)."""
        with self._lock:
            self._pending_errors.clear()
            self._garbage.clear()
            self._misreads.clear()

    def disconnect(self) -> None:
        """Make every transaction fail with errno 121 until :meth:`reconnect`, like a cut wire."""
        with self._lock:
            self._disconnected = True

    def reconnect(self) -> None:
        with self._lock:
            self._disconnected = False

    def inject_garbage(
        self,
        count: int = 1,
        *,
        register: int | None = None,
        corrupt: Corruption = xor_every_byte,
    ) -> None:
        """Corrupt the bytes returned by the next ``count`` read transactions.

        The device still runs the read (so FIFO bytes are popped). Only the
        bytes that reach the host are damaged, which is what a noisy line
        does. ``corrupt`` says how; by default every byte gets a non-zero XOR
        mask, so it is always changed. ``register`` narrows which reads are
        hit, as for :meth:`inject_errors` (``FIFO_R_W``: only FIFO bursts).
        """
        with self._lock:
            self._garbage.extend([_Garbage(register, corrupt)] * count)

    def inject_misread(self, count: int = 1, *, register: int, read_from: int) -> None:
        """The register pointer of the next ``count`` transactions that start at ``register``
        reaches the device as ``read_from``: it answers with the wrong registers' bytes."""
        with self._lock:
            self._misreads.extend([_Misread(register, read_from)] * count)

    @property
    def pending_faults(self) -> int:
        """Injected errors, garbage reads and misreads not yet used up."""
        with self._lock:
            return len(self._pending_errors) + len(self._garbage) + len(self._misreads)

    # --- smbus2.SMBus API -------------------------------------------------------
    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        self._wait_before(3)
        with self._lock:
            device = self._begin("read_byte_data", i2c_addr, register, 1)
            device.i2c_write(bytes((self._pointer(register),)))
            value = self._finish_read(device.i2c_read(1), register)[0]
        self._wait_after(1)
        return value

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        self._wait_before(2)
        with self._lock:
            device = self._begin("write_byte_data", i2c_addr, register, 1)
            device.i2c_write(bytes((register, value & 0xFF)))
        self._wait_after(1)

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        if length > SMBUS_BLOCK_MAX:
            # Same check and message as smbus2: the SMBus block transfer caps at 32 bytes.
            raise ValueError(f"Desired block length over {SMBUS_BLOCK_MAX} bytes")
        self._wait_before(3)
        with self._lock:
            device = self._begin("read_i2c_block_data", i2c_addr, register, length)
            device.i2c_write(bytes((self._pointer(register),)))
            data = list(self._finish_read(device.i2c_read(length), register))
        self._wait_after(length)
        return data

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: list[int], force: bool | None = None
    ) -> None:
        if len(data) > SMBUS_BLOCK_MAX:
            raise ValueError(f"Data length cannot exceed {SMBUS_BLOCK_MAX} bytes")
        self._wait_before(2)
        with self._lock:
            device = self._begin("write_i2c_block_data", i2c_addr, register, len(data))
            device.i2c_write(bytes((register, *(b & 0xFF for b in data))))
        self._wait_after(len(data))

    def i2c_rdwr(self, *i2c_msgs: i2c_msg) -> None:
        """Run combined messages. Read buffers are filled in place, as the ioctl does."""
        read_len = sum(m.len for m in i2c_msgs if m.flags & I2C_M_RD)
        written_len = sum(m.len for m in i2c_msgs if not m.flags & I2C_M_RD)
        self._wait_before(len(i2c_msgs) + written_len)
        with self._lock:
            first = i2c_msgs[0] if i2c_msgs else None
            register = None
            if first is not None and not first.flags & I2C_M_RD and first.len:
                register = ctypes.string_at(first.buf, 1)[0]
            address = first.addr if first is not None else -1
            self._begin("i2c_rdwr", address, register, read_len)
            for msg in i2c_msgs:
                device = self._device(msg.addr, "i2c_rdwr", register, read_len)
                if msg.flags & I2C_M_RD:
                    data = self._finish_read(device.i2c_read(msg.len), register)
                    ctypes.memmove(msg.buf, data, msg.len)
                else:
                    written = ctypes.string_at(msg.buf, msg.len)
                    if written:
                        written = bytes((self._pointer(written[0]),)) + written[1:]
                    device.i2c_write(written)
        self._wait_after(read_len)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeI2cBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------
    def _wait_before(self, header_bytes: int) -> None:
        if self._timing is not None:
            self._timing.before(header_bytes)

    def _wait_after(self, data_bytes: int) -> None:
        if self._timing is not None:
            self._timing.after(data_bytes)

    def _begin(self, kind: str, address: int, register: int | None, length: int) -> I2cDevice:
        """Count the transaction, apply injected faults, and find the addressed device."""
        self.counts[kind] += 1
        code: int | None = None
        for index, fault in enumerate(self._pending_errors):
            if fault.matches(kind, register):
                code = fault.errno
                del self._pending_errors[index]
                break
        if code is None and self._disconnected:
            code = errno_codes.EREMOTEIO
        if code is not None:
            self.log.append(BusOp(kind, address, register, length, False))
            raise OSError(code, os.strerror(code))
        device = self._device(address, kind, register, length)
        self.log.append(BusOp(kind, address, register, length, True))
        return device

    def _device(self, address: int, kind: str, register: int | None, length: int) -> I2cDevice:
        device = self._devices.get(address)
        if device is None:
            # No ACK for the address byte: the kernel reports ENXIO on some
            # adapters and EREMOTEIO on the Pi's. The Pi is the one that matters here.
            self.log.append(BusOp(kind, address, register, length, False))
            code = errno_codes.EREMOTEIO
            raise OSError(code, f"{os.strerror(code)} (no device at 0x{address:02x})")
        return device

    def _pointer(self, register: int) -> int:
        """The register pointer as the device receives it (see :meth:`inject_misread`)."""
        for index, misread in enumerate(self._misreads):
            if misread.register == register:
                del self._misreads[index]
                return misread.read_from
        return register

    def _finish_read(self, data: bytes, register: int | None) -> bytes:
        for index, garbage in enumerate(self._garbage):
            if garbage.register is None or garbage.register == register:
                del self._garbage[index]
                return garbage.corrupt(data, self._rng)
        return data
