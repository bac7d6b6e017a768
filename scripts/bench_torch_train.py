#!/usr/bin/env python3
"""PyTorch side of `adain bench train`: one AdaIN decoder training step, timed on the CPU.

The architecture is the JSON that `adain bench` already sends to bench_torch.py (layer
shapes generated from adain's own layer lists), optionally with the style-loss taps:

    {"encoder": [layer, ...], "decoder": [layer, ...], "taps": [1, 4, 7, 12]}
    layer = {"kind": "conv", "cin": 64, "cout": 64, "k": 3, "relu": true}
          | {"kind": "pool"} | {"kind": "up"}

"taps" are indices into "encoder" of the convs whose ReLU outputs the style loss reads
(relu1_1 .. the cut, which is the encoder's last layer). Without it they are derived: the
first ReLU conv at each resolution.

One step, as `adain train` takes it:
  no grad:  content features at the cut, style features at every tap, the AdaIN target t
            and the style statistics (population variance, eps 1e-5 inside the sqrt);
  grad:     g = decoder(t); features of g at every tap through the frozen encoder
            (requires_grad False, gradients still flow through it to g);
            loss = cw * MSE(f_cut(g), t) + sw * sum over taps of MSE(mean) + MSE(std);
            loss.backward(); torch.optim.Adam step.
Weights are He-normal (speed does not depend on their values; the scale keeps activations
in a normal float range). 3x3 convs get reflection padding 1, pools are 2x2 max, ups 2x
nearest (the same builders as bench_torch.py).

Two modes:
  bench_torch_train.py --arch arch.json --batch 8 --crop 256 --threads 2 --runs 3
      one warm-up step, then RUNS timed steps; prints {"ms": median, "runs": [...], ...}
  bench_torch_train.py --serve --threads 2
      JSON lines on stdin, one reply line each:
        {"cmd": "load", "arch": {...}, "taps": [...], "batch": 8, "crop": 256,
         "lr": 1e-4, "content_weight": 1, "style_weight": 10}   -> {"ok": true}
        {"cmd": "run"}                                          -> {"ms": 1234.5, "loss": ...}
"""
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench_torch import adain, arg_parser, build, main_with

EPS = 1e-5


def derive_taps(layers):
    """The first ReLU conv of each resolution level: relu1_1, relu2_1, ..."""
    taps, fresh = [], True
    for i, layer in enumerate(layers):
        if layer["kind"] == "pool":
            fresh = True
        elif layer["kind"] == "conv" and layer["relu"] and fresh:
            taps.append(i)
            fresh = False
    return taps


def check_taps(layers, taps):
    if not taps:
        raise ValueError("no style taps")
    if taps != sorted(set(taps)):
        raise ValueError(f"taps must be increasing: {taps}")
    for i in taps:
        if not (0 <= i < len(layers)) or layers[i]["kind"] != "conv" or not layers[i]["relu"]:
            raise ValueError(f"tap {i} is not a conv with ReLU in the encoder")
    if taps[-1] != len(layers) - 1:
        raise ValueError(f"the last tap ({taps[-1]}) must be the encoder's last layer (the cut, {len(layers) - 1})")


def he_init(module):
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)


def mean_std(f):
    return f.mean((2, 3)), torch.sqrt(f.var((2, 3), unbiased=False) + EPS)


class TrainBench:
    def __init__(self, arch, batch, crop, taps=None, lr=1e-4, content_weight=1.0, style_weight=10.0):
        torch.manual_seed(0)
        layers = arch["encoder"]
        taps = list(taps if taps is not None else arch.get("taps") or derive_taps(layers))
        check_taps(layers, taps)
        self.taps = taps
        # One block per layer so that the taps can be read off; frozen.
        self.encoder = nn.ModuleList(build([layer]) for layer in layers)
        he_init(self.encoder)
        self.encoder.requires_grad_(False)
        self.decoder = build(arch["decoder"]).train()
        he_init(self.decoder)
        self.opt = torch.optim.Adam(self.decoder.parameters(), lr=lr)
        self.cw, self.sw = float(content_weight), float(style_weight)
        g = torch.Generator().manual_seed(crop)
        self.content = torch.rand(batch, 3, crop, crop, generator=g)
        self.style = torch.rand(batch, 3, crop, crop, generator=g)

    def features(self, x):
        """The encoder's outputs at every tap (the last is the cut)."""
        out = []
        for i, block in enumerate(self.encoder[: self.taps[-1] + 1]):
            x = block(x)
            if i in self.taps:
                out.append(x)
        return out

    def step(self):
        with torch.no_grad():
            fc = self.features(self.content)[-1]
            fs = self.features(self.style)
            t = adain(fc, fs[-1])
            stats = [mean_std(f) for f in fs]
        self.opt.zero_grad(set_to_none=True)
        g = self.decoder(t)
        fg = self.features(g)
        content = F.mse_loss(fg[-1], t)
        style = sum(F.mse_loss(m, sm) + F.mse_loss(s, ss) for (m, s), (sm, ss) in zip(map(mean_std, fg), stats))
        loss = self.cw * content + self.sw * style
        loss.backward()
        self.opt.step()
        return loss.item()

    def time_once(self):
        t0 = time.perf_counter()
        loss = self.step()
        return (time.perf_counter() - t0) * 1000, loss


def load(msg):
    return TrainBench(msg["arch"], int(msg["batch"]), int(msg["crop"]), taps=msg.get("taps"),
                      lr=msg.get("lr", 1e-4), content_weight=msg.get("content_weight", 1.0),
                      style_weight=msg.get("style_weight", 10.0))


def run(bench, msg):
    ms, loss = bench.time_once()
    return {"ms": ms, "loss": loss}


def one_shot(args, arch):
    bench = TrainBench(arch, args.batch, args.crop)
    bench.time_once()  # warm-up
    runs = [bench.time_once()[0] for _ in range(args.runs)]
    ms = statistics.median(runs)
    print(json.dumps({"ms": ms, "runs": runs, "images_per_s": args.batch * 1000 / ms, "batch": args.batch,
                      "crop": args.crop, "taps": bench.taps, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


def main():
    p = arg_parser(__doc__)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=256)
    main_with(p, 3, load, run, one_shot)


if __name__ == "__main__":
    main()
