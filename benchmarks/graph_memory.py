"""Peak memory of a graph's passes, with outputs let go after their last reader (what
cynet does) and with every output kept to the end of the pass (the ablation).

    python -m benchmarks.graph_memory [--model models/resnet.json] [--batch 256]

Each variant runs in a fresh child process, two training steps then two predictions, and
reports its peak RSS (``ru_maxrss``). The ablation replaces ``Network.forward`` with the
same loop minus the release; layers keep what their own backward needs either way.
"""
import argparse
import json
import os
import resource
import subprocess
import sys

from benchmarks.common import MODELS


def _keep_every_output():
    from cynet import network

    def forward(self, x, training=False):
        steps = self.steps()
        self._ran = steps
        outputs = {network.INPUT: x}
        for step in steps:
            given = [outputs[j] for j in step.inputs]
            layer = step.layer
            outputs[step.index] = layer.forward(given if layer.merges else given[0],
                                                training=training)
        return outputs[steps[-1].index]

    network.Network.forward = forward


def worker(model_path, batch, keep, what):
    import numpy as np

    import cynet

    if keep:
        _keep_every_output()
    model = cynet.Model.from_json(model_path)
    x = np.random.default_rng(0).random((batch, *model.input_shape), dtype=np.float32)
    y = np.arange(batch) % model.n_outputs
    for _ in range(2):
        if what == "train":
            model.train_step(x, y)
        else:
            model.predict(x, batch_size=batch)
    print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(MODELS, "resnet.json"))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--worker", nargs=2, metavar=("KEEP", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.model, args.batch, args.worker[0] == "keep", args.worker[1])
        return
    print(f"peak RSS, {os.path.basename(args.model)}, batch {args.batch}\n")
    print("| pass | every output kept | released after its last reader |")
    print("|---|---|---|")
    for what in ("train", "predict"):
        peaks = []
        for keep in ("keep", "release"):
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.graph_memory", "--model", args.model,
                 "--batch", str(args.batch), "--worker", keep, what],
                capture_output=True, text=True, check=True)
            peaks.append(json.loads(done.stdout.strip().splitlines()[-1])["peak_mib"])
        print(f"| {what} | {peaks[0]:.0f} MiB | {peaks[1]:.0f} MiB |")


if __name__ == "__main__":
    main()
