#!/usr/bin/env python3
"""Per-call cost of the connreg Python binding, next to a Python dict.

    PYTHONPATH=build/python python3 bindings/python/bench/bench_calls.py [--ids N] [--repeat R]

Each figure is one call inside a `for k in keys:` loop over N distinct
16-byte ids (so the loop's own cost, shown on its own line, is included in
every row), in ns per call: the median of R runs, and the best run. The
registry and the dict hold the same N ids. Prints a Markdown table.
"""
import argparse
import os
import platform
import statistics
import time

import connreg


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure(fn, n_calls, repeat):
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        runs.append((time.perf_counter_ns() - t0) / n_calls)
    return statistics.median(runs), min(runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ids", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    n = args.ids

    keys = [b"conn-%011d" % i for i in range(n)]
    str_keys = [k.decode() for k in keys]
    missing = [b"miss-%011d" % i for i in range(n)]
    d = {k: i for i, k in enumerate(keys)}
    name = "/connreg-py-bench-%d" % os.getpid()
    reg = connreg.Registry.create(name, capacity=n, key_max=32)
    try:
        for i, k in enumerate(keys):
            reg.register(k, i)
        get, dget = reg.get, d.get
        lib_get = connreg._lib.connreg_get_transport
        out = connreg._ffi.new("uint64_t *")
        h = reg._h
        batch = 64
        chunks = [keys[i:i + batch] for i in range(0, n, batch)]

        def empty_loop():
            for k in keys:
                pass

        def dict_get():
            for k in keys:
                dget(k)

        def dict_index():
            for k in keys:
                d[k]

        def dict_set():
            for k in keys:
                d[k] = 1

        def reg_get():
            for k in keys:
                get(k)

        def reg_get_str():
            for k in str_keys:
                get(k)

        def reg_index():
            for k in keys:
                reg[k]

        def reg_contains():
            for k in keys:
                k in reg

        def reg_get_miss():
            for k in missing:
                get(k)

        def raw_cffi_call():
            for k in keys:
                lib_get(h, k, 16, out)

        def reg_register_update():
            for k in keys:
                reg.register(k, 1)

        def reg_update():
            for k in keys:
                reg.update(k, 2)

        def reg_get_many():
            for c in chunks:
                reg.get_many(c)

        def reg_get_many_all():
            reg.get_many(keys)

        def reg_iterate():
            for _ in reg:
                pass

        rows = [
            ("`for k in keys: pass` (the loop alone)", empty_loop),
            ("dict: `d.get(k)`", dict_get),
            ("dict: `d[k]`", dict_index),
            ("dict: `d[k] = v` (existing key)", dict_set),
            ("connreg: `reg.get(k)`, bytes id, hit", reg_get),
            ("connreg: `reg.get(k)`, str id, hit", reg_get_str),
            ("connreg: `reg[k]`, hit", reg_index),
            ("connreg: `k in reg`, hit", reg_contains),
            ("connreg: `reg.get(k)`, miss", reg_get_miss),
            ("raw cffi call `lib.connreg_get_transport(h, k, 16, out)`", raw_cffi_call),
            ("connreg: `reg.register(k, t)` (id live: an update)", reg_register_update),
            ("connreg: `reg.update(k, t)`", reg_update),
            ("connreg: `reg.get_many(64 ids)`, per id", reg_get_many),
            ("connreg: `reg.get_many(%d ids)`, per id" % n, reg_get_many_all),
            ("connreg: `for id, t in reg`, per id", reg_iterate),
        ]
        print("CPU: %s; Python %s; %d ids of 16 bytes; median (best) of %d runs"
              % (cpu_model(), platform.python_version(), n, args.repeat))
        print()
        print("| call | ns per call: median (best) |")
        print("|---|---|")
        for label, fn in rows:
            fn()  # warm up: reader slot, caches
            med, best = measure(fn, n, args.repeat)
            print("| %s | %.0f (%.0f) |" % (label, med, best))
    finally:
        reg.close()
        connreg.unlink(name)


if __name__ == "__main__":
    main()
