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
errno 121/5, a device that vanishes, and corrupted bytes.
"""

from __future__ import annotations

import ctypes
import errno as errno_codes
import os
import random
import threading
from collections import Counter, deque
from typing import NamedTuple, Protocol

from smbus2 import i2c_msg
from smbus2.smbus2 import I2C_M_RD

from hal.mpu6050_registers import SMBUS_BLOCK_MAX


class I2cDevice(Protocol):
    """A simulated I2C slave, seen as its two bus primitives."""

    def i2c_write(self, data: bytes) -> None:
        """Handle a write message: ``data[0]`` is the register pointer, the rest are values."""
        ...

    def i2c_read(self, length: int) -> bytes:
        """Handle a read message of ``length`` bytes from the current register pointer."""
        ...


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
    ) -> None:
        self._devices: dict[int, I2cDevice] = dict(devices or {})
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._pending_errors: list[_Fault] = []
        self._garbage_reads = 0
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
            self._garbage_reads = 0

    def disconnect(self) -> None:
        """Make every transaction fail with errno 121 until :meth:`reconnect`, like a cut wire."""
        with self._lock:
            self._disconnected = True

    def reconnect(self) -> None:
        with self._lock:
            self._disconnected = False

    def inject_garbage(self, count: int = 1) -> None:
        """Corrupt every byte returned by the next ``count`` read transactions.

        The device still runs the read (so FIFO bytes are popped). Only the
        bytes that reach the host are damaged, which is what a noisy line
        does. Every byte gets a non-zero XOR mask, so it is always changed.
        """
        with self._lock:
            self._garbage_reads += count

    @property
    def pending_faults(self) -> int:
        """Injected errors and garbage reads not yet used up."""
        with self._lock:
            return len(self._pending_errors) + self._garbage_reads

    # --- smbus2.SMBus API -------------------------------------------------------
    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        with self._lock:
            device = self._begin("read_byte_data", i2c_addr, register, 1)
            device.i2c_write(bytes((register,)))
            return self._finish_read(device.i2c_read(1))[0]

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        with self._lock:
            device = self._begin("write_byte_data", i2c_addr, register, 1)
            device.i2c_write(bytes((register, value & 0xFF)))

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        if length > SMBUS_BLOCK_MAX:
            # Same check and message as smbus2: the SMBus block transfer caps at 32 bytes.
            raise ValueError(f"Desired block length over {SMBUS_BLOCK_MAX} bytes")
        with self._lock:
            device = self._begin("read_i2c_block_data", i2c_addr, register, length)
            device.i2c_write(bytes((register,)))
            return list(self._finish_read(device.i2c_read(length)))

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: list[int], force: bool | None = None
    ) -> None:
        if len(data) > SMBUS_BLOCK_MAX:
            raise ValueError(f"Data length cannot exceed {SMBUS_BLOCK_MAX} bytes")
        with self._lock:
            device = self._begin("write_i2c_block_data", i2c_addr, register, len(data))
            device.i2c_write(bytes((register, *(b & 0xFF for b in data))))

    def i2c_rdwr(self, *i2c_msgs: i2c_msg) -> None:
        """Run combined messages. Read buffers are filled in place, as the ioctl does."""
        with self._lock:
            first = i2c_msgs[0] if i2c_msgs else None
            register = None
            if first is not None and not first.flags & I2C_M_RD and first.len:
                register = ctypes.string_at(first.buf, 1)[0]
            read_len = sum(m.len for m in i2c_msgs if m.flags & I2C_M_RD)
            address = first.addr if first is not None else -1
            self._begin("i2c_rdwr", address, register, read_len)
            for msg in i2c_msgs:
                device = self._device(msg.addr, "i2c_rdwr", register, read_len)
                if msg.flags & I2C_M_RD:
                    data = self._finish_read(device.i2c_read(msg.len))
                    ctypes.memmove(msg.buf, data, msg.len)
                else:
                    device.i2c_write(ctypes.string_at(msg.buf, msg.len))

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeI2cBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------
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

    def _finish_read(self, data: bytes) -> bytes:
        if self._garbage_reads <= 0:
            return data
        self._garbage_reads -= 1
        return bytes(b ^ self._rng.randint(1, 255) for b in data)
