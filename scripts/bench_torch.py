#!/usr/bin/env python3
"""PyTorch side of `adain bench`: the same AdaIN architecture, timed on the CPU.

The architecture comes in as JSON generated from adain's own layer lists, so both sides
run the same network by construction:

    {"encoder": [layer, ...], "decoder": [layer, ...]}
    layer = {"kind": "conv", "cin": 64, "cout": 64, "k": 3, "relu": true}
          | {"kind": "pool"} | {"kind": "up"}

3x3 convs get reflection padding 1, pools are 2x2 max, ups 2x nearest; AdaIN uses the
population variance. Weights are random (speed does not depend on their values).
One stylisation = encode content + encode style + AdaIN + decode, under torch.no_grad().

Two modes:
  bench_torch.py --arch arch.json --size 512 --threads 2 --runs 5
      one warm-up, then RUNS timed runs; prints {"ms": median, "runs": [...], ...}
  bench_torch.py --serve --threads 2
      JSON lines on stdin, one reply line each, so that the caller can interleave these
      runs with its own on a noisy machine:
        {"cmd": "load", "arch": {...}}  -> {"ok": true}
        {"cmd": "run", "size": 512}     -> {"ms": 123.4}
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn

ADAIN_EPS = 1e-5


def build(layers):
    mods = []
    for layer in layers:
        kind = layer["kind"]
        if kind == "conv":
            if layer["k"] == 3:
                mods.append(nn.ReflectionPad2d(1))
            mods.append(nn.Conv2d(layer["cin"], layer["cout"], layer["k"]))
            if layer["relu"]:
                mods.append(nn.ReLU())
        elif kind == "pool":
            mods.append(nn.MaxPool2d(2, 2))
        elif kind == "up":
            mods.append(nn.Upsample(scale_factor=2, mode="nearest"))
        else:
            raise ValueError(f"unknown layer kind {kind!r}")
    return nn.Sequential(*mods).eval()


def stats(f):
    return f.mean((2, 3), keepdim=True), torch.sqrt(f.var((2, 3), keepdim=True, unbiased=False) + ADAIN_EPS)


def adain_stats(content, style_mean, style_std):
    cm, cs = stats(content)
    return (content - cm) / cs * style_std + style_mean


def adain(content, style):
    return adain_stats(content, *stats(style))


class Bench:
    def __init__(self, arch):
        torch.manual_seed(0)
        self.encoder = build(arch["encoder"])
        self.decoder = build(arch["decoder"])
        self.inputs = {}

    def images(self, size):
        if size not in self.inputs:
            g = torch.Generator().manual_seed(size)
            self.inputs[size] = (torch.rand(1, 3, size, size, generator=g), torch.rand(1, 3, size, size, generator=g))
        return self.inputs[size]

    def time_once(self, size):
        content, style = self.images(size)
        with torch.no_grad():
            t0 = time.perf_counter()
            self.decoder(adain(self.encoder(content), self.encoder(style)))
            return (time.perf_counter() - t0) * 1000

    def time_frame(self, size):
        """One frame of a stream: the style's statistics computed once, before the timing."""
        content, style = self.images(size)
        with torch.no_grad():
            key = ("stats", size)
            if key not in self.inputs:
                self.inputs[key] = stats(self.encoder(style))
            t0 = time.perf_counter()
            self.decoder(adain_stats(self.encoder(content), *self.inputs[key]))
            return (time.perf_counter() - t0) * 1000


SETTLE_POLL_S = 0.01
SETTLE_QUIET_FRACTION = 0.2
SETTLE_MAX_S = 0.5


def settle():
    """Returns once this process stops using CPU: OpenMP threads spin for a while after a
    parallel region, and the caller's next measurement should not compete with them."""
    start = time.perf_counter()
    while time.perf_counter() - start < SETTLE_MAX_S:
        c0, t0 = time.process_time(), time.perf_counter()
        time.sleep(SETTLE_POLL_S)
        if time.process_time() - c0 < SETTLE_QUIET_FRACTION * (time.perf_counter() - t0):
            return


def set_threads(n):
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # only settable before any parallel work; harmless when already 1


def serve(load, run):
    """The --serve loop both benchmark scripts share: JSON lines on stdin, one reply line each.
    {"cmd": "load", ...} builds a bench with load(msg) -> {"ok": true}; {"cmd": "run", ...}
    -> run(bench, msg), a reply dict, after which the process settles. An exception becomes
    {"error": "..."} and the loop goes on."""
    bench = None
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            if msg["cmd"] == "load":
                bench = None  # free the previous model's buffers first
                bench = load(msg)
                reply = {"ok": True}
            elif msg["cmd"] == "run":
                if bench is None:
                    raise RuntimeError("run before load")
                reply = run(bench, msg)
                settle()
            else:
                raise ValueError(f"unknown command {msg['cmd']!r}")
        except Exception as e:  # report, keep serving: the caller decides what to do
            reply = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def arg_parser(doc):
    """The options both scripts start with; the script adds its own, then calls main_with()."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--serve", action="store_true", help="JSON-lines protocol on stdin/stdout")
    p.add_argument("--arch", help="architecture JSON file (one-shot mode)")
    return p


def main_with(p, default_runs, load, run, one_shot):
    """Adds --threads and --runs, parses and pins the threads; then serves (see serve()) or,
    with --arch, calls one_shot(args, arch)."""
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--runs", type=int, default=default_runs)
    args = p.parse_args()
    set_threads(args.threads)
    if args.serve:
        serve(load, run)
        return
    if not args.arch:
        p.error("--arch is required without --serve")
    with open(args.arch) as f:
        arch = json.load(f)
    one_shot(args, arch)


def one_shot(args, arch):
    bench = Bench(arch)
    bench.time_once(args.size)  # warm-up
    runs = [bench.time_once(args.size) for _ in range(args.runs)]
    print(json.dumps({"ms": statistics.median(runs), "runs": runs, "size": args.size,
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


def main():
    p = arg_parser(__doc__)
    p.add_argument("--size", type=int, default=512)
    main_with(p, 5, lambda msg: Bench(msg["arch"]), lambda bench, msg: {"ms": (bench.time_frame if msg.get("frame") else bench.time_once)(int(msg["size"]))}, one_shot)


if __name__ == "__main__":
    main()
