"""Speed: the seed's exact training (UCI digits 1797 x 64, 64-32-2-32-64 sigmoid, Adam 0.001,
MSE, batch 8, 500 epochs) with Keras `fit` and with reducer's engine, plus the command line's
start-up and a whole `reducer run jobs/digits.toml`. One run, one machine:

    python benchmarks/speed.py                 # everything (fit takes about two minutes)
    python benchmarks/speed.py --skip-fit      # the rest only
    python benchmarks/speed.py --epochs 50     # a quick look (fit and engine both)
    python benchmarks/speed.py --tiny          # a smoke test: 2 epochs everywhere, one run of each part

--e2e-epochs N runs the end-to-end job with N epochs (a copy of jobs/digits.toml in the temporary
folder), --e2e-runs and --startup-repeats set how many end-to-end runs and start-up repeats,
--skip-cache leaves out the engine's two runs with TensorFlow's persistent XLA cache.

Each part is a fresh process so that neither side inherits the other's settings: `fit` runs as
the seed ran it (plain `import keras`, TensorFlow's default threads and XLA options), the
engine as `reducer run` runs it (reducer/engine/tf_setup.py). Both start from the same weights
(reducer/engine/model.py, seed 1). Prints a Markdown table; nothing here is asserted anywhere.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "Data" / "digits_uci_test_1797.txt"
HIDDEN, LATENT, BATCH, LEARNING_RATE, SEED = (32,), 2, 8, 0.001, 1


def load_digits():
    import numpy as np

    return (np.loadtxt(DATA, delimiter=",")[:, :64] / 16.0).astype("float32")  # the seed's pixels / 16


def build(keras_model_module):
    from reducer.config import ModelConfig

    config = ModelConfig(hidden=HIDDEN, latent=LATENT, activation="sigmoid", output_activation="sigmoid")
    return keras_model_module.build(64, config, SEED, "sigmoid")[2]


def part_fit(epochs):
    """The seed's way: model.fit(batch_size=8, epochs=500)."""
    import keras

    from reducer.engine import model as model_lib

    x = load_digits()
    keras.utils.set_random_seed(SEED)
    autoencoder = build(model_lib)
    autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="mse")
    started = time.perf_counter()
    history = autoencoder.fit(x, x, batch_size=BATCH, epochs=epochs, verbose=0)
    return {"seconds": time.perf_counter() - started, "final_loss": history.history["loss"][-1]}


def part_engine(epochs):
    """reducer's engine as `reducer run` calls it; also the time to the first chunk's losses
    (tracing + XLA compilation + that chunk) and the steady per-step cost after it."""
    from reducer.engine import model as model_lib
    from reducer.engine import train
    from reducer.config import TrainingConfig
    from reducer.engine.tf_setup import configure, keras

    configure()
    x = load_digits()
    keras.utils.set_random_seed(SEED)
    autoencoder = build(model_lib)
    marks = []
    started = time.perf_counter()
    history = train.train(autoencoder, x, TrainingConfig(epochs=epochs, batch_size=BATCH,
                                                        learning_rate=LEARNING_RATE, seed=SEED),
                          progress=lambda losses: marks.append((time.perf_counter(), len(losses))))
    seconds = time.perf_counter() - started
    steps_per_epoch = -(-len(x) // BATCH)
    first_time, first_epochs = marks[0]
    rest_steps = (epochs - first_epochs) * steps_per_epoch
    return {"seconds": seconds, "final_loss": history.final_loss, "first_call_seconds": first_time - started,
            "steady_us_per_step": (marks[-1][0] - first_time) / rest_steps * 1e6 if rest_steps else None,
            "threads": os.environ.get("REDUCER_THREADS", "1"), "xla_flags": os.environ.get("XLA_FLAGS", "")}


def run_part(name, epochs, env=None):
    command = [sys.executable, __file__, "--part", name, "--epochs", str(epochs)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        sys.exit(f"part {name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def timed_process(command, cwd=REPO):
    """(wall seconds, peak RSS MiB, stdout+stderr) of one fresh process, from fork to exit."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} exited {process.returncode}:\n{output[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, output


def startup_times(repeats=3):
    """Best of `repeats` wall seconds for the commands that must not import TensorFlow, and
    whether TensorFlow was imported (python -X importtime lists every module imported)."""
    reducer = [sys.executable, "-m", "reducer"]
    rows = {}
    for args in (["--help"], ["datasets"], ["check", "jobs/digits.toml"]):
        best = min(timed_process(reducer + args)[0] for _ in range(repeats))
        imports = subprocess.run([sys.executable, "-X", "importtime", "-m", "reducer", *args], cwd=REPO,
                                 capture_output=True, text=True).stderr
        rows["reducer " + " ".join(args)] = (best, bool(re.search(r"\|\s+tensorflow$", imports, re.M)))
    return rows


def digits_job(folder, epochs=None):
    """jobs/digits.toml, or a copy of it in `folder` with `epochs` epochs (its data path made absolute)."""
    job = REPO / "jobs" / "digits.toml"
    if epochs is None:
        return "jobs/digits.toml"
    text = job.read_text(encoding="utf-8")
    text, changed = re.subn(r"(?m)^epochs = \d+", f"epochs = {epochs}", text)
    text, moved = re.subn(r'(?m)^path = "\.\./Data/', f'path = "{REPO / "Data"}/', text)
    if (changed, moved) != (1, 1):
        sys.exit(f"{job}: cannot set its epochs and data path for --e2e-epochs")
    copy = Path(folder) / "jobs" / "digits.toml"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(text, encoding="utf-8")
    return copy


def end_to_end(folder, job="jobs/digits.toml"):
    """`reducer run jobs/digits.toml` into a temporary outputs/models folder; wall, RSS, stages,
    final loss. The first run starts with an empty compiled-code cache (outputs/.cache/xla),
    later runs into the same folder find the training loop there, as every night after the first."""
    outputs, models = Path(folder) / "outputs", Path(folder) / "Models"
    # Each run a first night (the compiled-code cache kept): a later night of the same input would be
    # skipped as unchanged, and one of new input warm-started, neither of which is the seed's training.
    shutil.rmtree(outputs / "digits", ignore_errors=True)
    for old in models.glob("digits.*"):
        old.unlink()
    seconds, rss, output = timed_process([sys.executable, "-m", "reducer", "run", job,
                                          "--outputs", outputs, "--models", models])
    manifest = json.loads((outputs / "digits" / "manifest.json").read_text())
    return seconds, rss, manifest["seconds"], manifest["training"]["final_loss"], output


def flop_count(rows=1797, widths=(64, 32, 2, 32, 64), batch=BATCH, epochs=500):
    """Floating-point operations of the whole training, counted by hand (a multiply-add is 2):
    forward matmuls, the backward matmuls (no input gradient for the first layer), and about
    12 operations per weight for bias, activation, loss and Adam's update (small next to the
    matmuls at these widths)."""
    layers = list(zip(widths[:-1], widths[1:]))
    matmul = sum(a * b for a, b in layers)
    per_row = 2 * matmul + 2 * matmul + 2 * (matmul - widths[0] * widths[1])
    weights = sum(a * b + b for a, b in layers)
    steps = -(-rows // batch) * epochs
    return rows * epochs * per_row + steps * 12 * weights


def machine_note():
    load = os.getloadavg()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    from importlib import metadata

    tensorflow = next((f"{name} {metadata.version(name)}" for name in ("tensorflow-cpu", "tensorflow")
                       if _installed(name)), "?")
    return (f"{os.cpu_count()} x {cpu}, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, "
            f"Python {platform.python_version()}, {tensorflow}, keras {metadata.version('keras')}")


def _installed(name):
    from importlib import metadata

    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--skip-fit", action="store_true")
    parser.add_argument("--e2e-epochs", type=int, help="epochs of the end-to-end job (default: jobs/digits.toml's)")
    parser.add_argument("--e2e-runs", type=int, default=3, help="end-to-end runs (the first with an empty cache)")
    parser.add_argument("--startup-repeats", type=int, default=3)
    parser.add_argument("--skip-cache", action="store_true", help="leave out the engine with the XLA cache")
    parser.add_argument("--tiny", action="store_true",
                        help="a smoke test: --epochs 2 --e2e-epochs 2 --e2e-runs 1 --startup-repeats 1 --skip-cache")
    parser.add_argument("--part", choices=["fit", "engine"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tiny:
        args.epochs, args.e2e_epochs, args.e2e_runs, args.startup_repeats, args.skip_cache = 2, 2, 1, 1, True
    if args.part:
        print(json.dumps((part_fit if args.part == "fit" else part_engine)(args.epochs)))
        return

    print(f"machine: {machine_note()}", flush=True)
    engine = run_part("engine", args.epochs)
    print(f"engine: {engine}", flush=True)
    # fit without reducer's XLA options (model.py imports tf_setup, which would set them)
    fit = None if args.skip_fit else run_part("fit", args.epochs, env={"REDUCER_XLA_DEFAULTS": "0"})
    print(f"fit: {fit}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        # TensorFlow's persistent XLA cache as reducer uses it (xla_cache.py), the engine alone
        cache = {"TF_XLA_FLAGS": f"--tf_xla_persistent_cache_directory={Path(folder) / 'xla'}",
                 "TF_CPP_MIN_LOG_LEVEL": "3"}
        engine_cached = [] if args.skip_cache else [run_part("engine", args.epochs, env=cache) for _ in range(2)]
        print(f"engine with the cache, empty then filled: {engine_cached}", flush=True)
        job = digits_job(folder, args.e2e_epochs)
        e2e = [end_to_end(folder, job) for _ in range(args.e2e_runs)]  # an empty compiled-code cache, then filled
    startup = startup_times(args.startup_repeats)
    flops = flop_count(epochs=args.epochs)

    print("\n| what | wall s | final loss | notes |\n| --- | ---: | ---: | --- |")
    if fit:
        print(f"| Keras fit, batch {BATCH}, {args.epochs} epochs | {fit['seconds']:.1f} | {fit['final_loss']:.6f} | |")
    steady = engine["steady_us_per_step"]
    print(f"| reducer engine, same | {engine['seconds']:.2f} | {engine['final_loss']:.6f} | "
          f"first call (trace + XLA compile + first chunk) {engine['first_call_seconds']:.2f} s"
          + (f", then {steady:.1f} us/step |" if steady else " |"))
    for when, part in zip(("empty", "filled"), engine_cached):
        print(f"| reducer engine, XLA cache {when} | {part['seconds']:.2f} | {part['final_loss']:.6f} | "
              f"first call {part['first_call_seconds']:.2f} s |")
    if fit:
        print(f"| ratio fit / engine | {fit['seconds'] / engine['seconds']:.1f}x | "
              f"{engine['final_loss'] / fit['final_loss'] - 1:+.1%} | |")
    if fit and engine_cached:
        print(f"| ratio fit / engine, XLA cache filled | {fit['seconds'] / engine_cached[1]['seconds']:.1f}x | | |")
    epochs_note = f" ({args.e2e_epochs} epochs)" if args.e2e_epochs else ""
    for number, (e2e_seconds, e2e_rss, stages, e2e_loss, _) in enumerate(e2e, 1):
        cache = "empty" if number == 1 else "filled"
        print(f"| `reducer run jobs/digits.toml` end to end{epochs_note}, run {number} (compiled-code cache {cache}) | "
              f"{e2e_seconds:.1f} | {e2e_loss:.6f} | peak RSS {e2e_rss:.0f} MiB; stages: "
              f"{', '.join(f'{k} {v:.1f}' for k, v in stages.items())} |")
    for command, (seconds, imported) in startup.items():
        print(f"| `{command}` (best of {args.startup_repeats}) | {seconds:.2f} | | "
              f"TensorFlow imported: {'yes' if imported else 'no'} |")
    achieved = flops / engine["seconds"] / 1e9
    print(f"\nFLOPs of the training: {flops / 1e9:.1f} GFLOP; the engine's {engine['seconds']:.2f} s is "
          f"{achieved:.1f} GFLOP/s overall"
          + (f", {flops / 1e9 / (steady * 1e-6 * -(-1797 // BATCH) * args.epochs):.1f} "
             f"GFLOP/s in the steady loop" if steady else ""))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
