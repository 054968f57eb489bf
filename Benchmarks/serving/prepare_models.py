#!/usr/bin/env python3
"""Makes the serving benchmark's models when they are missing, in a cache directory outside the repository.

    python prepare_models.py --size 125m --cache DIR [--int8]

Writes, under DIR:
  gpt-neo-SIZE-random/       the random checkpoint (Benchmarks/EngineBenchmark/make_random_125m.py, seeded) with
                             the GPT-2 tokenizer files of the bundled model, so our server can load it
  gpt-neo-SIZE-random-onnx/  optimum's ONNX export, task text-generation-with-past (decoding feeds the KV cache)
  gpt-neo-SIZE-random-onnx-int8/  onnxruntime.quantization.quantize_dynamic of that export, weights QInt8
Each directory is built under a temporary name and renamed when complete, so an interrupted run leaves no
half-written model behind. Prints the paths as JSON, on the last line of standard output.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

REPOSITORY = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKENIZER_FILES = ["vocab.json", "merges.txt"]
BUNDLED_MODEL = os.path.join(REPOSITORY, "Tests", "Fixtures", "tiny-gpt-neo")


def build(directory, make):
    """Runs make(temporary_directory) unless directory exists, then renames the result into place."""
    if os.path.isdir(directory):
        return directory
    partial = directory + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    print(f"making {directory}", file=sys.stderr, flush=True)
    make(partial)
    os.rename(partial, directory)
    return directory


def make_checkpoint(size, output):
    script = os.path.join(REPOSITORY, "Benchmarks", "EngineBenchmark", "make_random_125m.py")
    subprocess.run([sys.executable, script, "--size", size, output], check=True, stdout=sys.stderr)
    # The random model keeps GPT-2's vocabulary (50257), which is the bundled model's tokenizer.
    for name in TOKENIZER_FILES:
        shutil.copy(os.path.join(BUNDLED_MODEL, name), os.path.join(output, name))


def export_onnx(checkpoint, output, size):
    from optimum.exporters.onnx import main_export
    # optimum's post-processing (dropping the LM head's copy of the tied embedding) serializes the whole
    # model as one protobuf, which fails beyond 2 GB: the 1.3B export keeps the copy (412 MB more).
    main_export(checkpoint, output=output, task="text-generation-with-past", device="cpu",
                no_post_process=size != "125m")


def quantize_int8(onnx_directory, output):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    os.makedirs(output)
    for name in os.listdir(onnx_directory):
        if not name.endswith(".onnx") and not name.endswith(".onnx_data"):
            shutil.copy(os.path.join(onnx_directory, name), os.path.join(output, name))
    # Models over 2 GB (the 1.3B shape) keep their tensors in an external data file.
    quantize_dynamic(os.path.join(onnx_directory, "model.onnx"), os.path.join(output, "model.onnx"),
                     weight_type=QuantType.QInt8, use_external_data_format=os.path.exists(
                         os.path.join(onnx_directory, "model.onnx_data")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["125m", "1.3b"], default="125m")
    parser.add_argument("--cache", required=True)
    parser.add_argument("--int8", action="store_true", help="also make the quantize_dynamic QInt8 model")
    arguments = parser.parse_args()
    os.makedirs(arguments.cache, exist_ok=True)
    base = os.path.join(arguments.cache, f"gpt-neo-{arguments.size}-random")
    checkpoint = build(base, lambda out: make_checkpoint(arguments.size, out))
    onnx = build(base + "-onnx", lambda out: export_onnx(checkpoint, out, arguments.size))
    paths = {"checkpoint": checkpoint, "onnx": onnx}
    if arguments.int8:
        paths["onnx_int8"] = build(base + "-onnx-int8", lambda out: quantize_int8(onnx, out))
    print(json.dumps(paths))


if __name__ == "__main__":
    main()
