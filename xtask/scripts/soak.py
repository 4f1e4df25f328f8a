#!/usr/bin/env python3
"""Soak: fio at full speed under `aio-trace snoop --json > /dev/null` for a
while, sampling the tracer's RSS and how full each of its maps is.

Run as root from the repository, after a release build:

    sudo python3 xtask/scripts/soak.py --seconds 600 --every 30 --file /var/tmp/soak.dat

The maps are found through the tracer's own file descriptors
(/proc/PID/fdinfo: map_id) and read with the bpf(2) syscall: hash maps by
walking their keys, the set-associative tables (array maps) by counting the
entries whose key is not zero (`TableEntry { seq, key, value }`).
"""

import argparse
import ctypes
import mmap
import os
import subprocess
import sys
import time

BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_GET_NEXT_KEY = 4
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_PERCPU_HASH = 5
BPF_MAP_TYPE_PERCPU_ARRAY = 6
BPF_MAP_TYPE_LRU_HASH = 9
SYS_BPF = 321  # x86_64

# Key size of each table (after the 8-byte seq of every entry).
TABLE_KEYS = {"INFLIGHT": 24, "BIO_OWNER": 8, "DIO_OWNER": 8, "RQ_ISSUE": 8, "SUBMITS": 8,
              "SYNC_CALLS": 8, "DEV_STATS": 8, "PID_FILTER": 8, "SAVED_ARGS": 8}
HASHES = {"COUNTERS", "AIO_PIDS"}

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    ret = libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return ret


class MapInfo(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
                ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32),
                ("map_flags", ctypes.c_uint32), ("name", ctypes.c_char * 16), ("rest", ctypes.c_uint8 * 64)]


def map_fd(map_id):
    attr = (ctypes.c_uint32 * 4)(map_id, 0, 0, 0)
    return bpf(BPF_MAP_GET_FD_BY_ID, attr)


def map_info(fd):
    info = MapInfo()
    attr = (ctypes.c_uint64 * 3)()
    attr[0] = fd | (ctypes.sizeof(info) << 32)
    attr[1] = ctypes.addressof(info)
    bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    return info


def hash_entries(fd, key_size):
    count = 0
    key = ctypes.create_string_buffer(key_size)
    nxt = ctypes.create_string_buffer(key_size)
    attr = (ctypes.c_uint64 * 3)(fd, 0, ctypes.addressof(nxt))
    while True:
        try:
            bpf(BPF_MAP_GET_NEXT_KEY, attr)
        except OSError:
            return count
        count += 1
        ctypes.memmove(key, nxt, key_size)
        attr[1] = ctypes.addressof(key)


def table_entries(fd, info, key_size, cpus=1):
    """Entries of a table whose key (bytes 8..8+key_size of the value) is set
    (on any CPU, for a table per CPU)."""
    size = info.value_size
    if info.map_flags & 0x400:  # BPF_F_MMAPABLE: read the mapping.
        length = size * info.max_entries
        length += -length % mmap.PAGESIZE
        with mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ) as m:
            return sum(1 for i in range(info.max_entries)
                       if any(m[i * size + 8:i * size + 8 + key_size]))
    stride = size + -size % 8  # per-CPU values are 8-byte aligned
    value = ctypes.create_string_buffer(stride * cpus)
    index = ctypes.c_uint32()
    attr = (ctypes.c_uint64 * 3)(fd, ctypes.addressof(index), ctypes.addressof(value))
    count = 0
    for i in range(info.max_entries):
        index.value = i
        bpf(BPF_MAP_LOOKUP_ELEM, attr)
        if any(any(value.raw[c * stride + 8:c * stride + 8 + key_size]) for c in range(cpus)):
            count += 1
    return count


def possible_cpus():
    """CPUs the kernel sizes per-CPU map values for (/sys/devices/system/cpu/possible)."""
    with open("/sys/devices/system/cpu/possible") as f:
        last = f.read().strip().split(",")[-1].split("-")[-1]
    return int(last) + 1


def maps_of(pid):
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("map_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def occupancy(pid):
    out = {}
    for map_id in sorted(maps_of(pid)):
        fd = map_fd(map_id)
        try:
            info = map_info(fd)
            name = info.name.decode()
            if name in TABLE_KEYS and info.type == BPF_MAP_TYPE_ARRAY:
                out[name] = table_entries(fd, info, TABLE_KEYS[name])
            elif name in TABLE_KEYS and info.type == BPF_MAP_TYPE_PERCPU_ARRAY:
                out[name] = table_entries(fd, info, TABLE_KEYS[name], possible_cpus())
            elif name in HASHES:
                out[name] = hash_entries(fd, info.key_size)
        finally:
            os.close(fd)
    return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=600)
    p.add_argument("--every", type=int, default=30)
    p.add_argument("--file", default="/var/tmp/aio-trace-soak.dat")
    p.add_argument("--binary", default="target/release/aio-trace")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak.py: run as root (it loads eBPF and reads maps)")
    if not os.path.exists(args.file):
        subprocess.run(["fio", "--name=fill", "--rw=write", "--bs=1M", "--size=1G",
                        f"--filename={args.file}", "--output=/dev/null"], check=True)
    tracer = subprocess.Popen([args.binary, "snoop", "--json"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    tracer.stderr.readline()  # "Tracing AIO..." once attached
    fio = subprocess.Popen(["fio", "--name=soak", "--ioengine=libaio", "--direct=1", "--rw=randread",
                            "--bs=4k", "--iodepth=32", f"--filename={args.file}", "--time_based",
                            f"--runtime={args.seconds}", "--output-format=json", "--output=/dev/null"])
    start = time.monotonic()
    rows = []
    try:
        while True:
            t = round(time.monotonic() - start)
            rows.append((t, rss_kib(tracer.pid), occupancy(tracer.pid)))
            print(f"t={t:4d}s rss={rows[-1][1]} KiB {rows[-1][2]}", flush=True)
            if fio.poll() is not None:
                break
            time.sleep(max(0, args.every - (time.monotonic() - start - t)))
    finally:
        fio.wait()
        tracer.send_signal(2)
        tracer.wait()
    names = sorted({n for _, _, occ in rows for n in occ})
    print("\n| t (s) | " + " | ".join(str(t) for t, _, _ in rows) + " |")
    print("| --- " * (len(rows) + 1) + "|")
    print("| RSS (KiB) | " + " | ".join(str(r) for _, r, _ in rows) + " |")
    for n in names:
        print(f"| {n} | " + " | ".join(str(occ.get(n, "")) for _, _, occ in rows) + " |")


if __name__ == "__main__":
    main()
