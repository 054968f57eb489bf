"""Tests of ceilings.py's choices, with a stand-in for the MachineCeilings binary (no OpenBLAS run):
python3 -m unittest discover -s Benchmarks/serving -p 'test_*.py' (scripts/test.sh runs it)."""
import os
import stat
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ceilings  # noqa: E402

# Answers as MachineCeilings does, one JSON line; the sgemm rate depends on the kernels OPENBLAS_CORETYPE
# selects: "Haswell" by its own detection, SkylakeX when forced, and any other forced value reported as such.
FAKE_MACHINE_CEILINGS = """
import json, os, sys
forced = os.environ.get("OPENBLAS_CORETYPE")
core = "Haswell" if forced is None else {"SKYLAKEX": "SkylakeX"}.get(forced, "forced " + forced)
if sys.argv[1] == "stream":
    print(json.dumps({"kind": "stream", "gb_per_s_best": 80.0, "gb_per_s_median": 50.0}))
elif sys.argv[1] == "touch":
    print(json.dumps({"kind": "touch", "megabytes": int(sys.argv[2]), "threads": int(sys.argv[3]), "seconds": 0.5,
                      "gb_per_s": int(sys.argv[2]) / 500}))
else:
    rows = int(sys.argv[2])
    rate = {("Haswell", 32): 240.0, ("Haswell", 512): 250.0, ("SkylakeX", 32): 230.0, ("SkylakeX", 512): 480.0}.get((core, rows), 1.0)
    print(json.dumps({"kind": "sgemm", "m": rows, "k": int(sys.argv[3]), "n": int(sys.argv[4]),
                      "gflop_per_s_best": rate, "gflop_per_s_median": rate / 2, "openblas_core": core}))
"""


class SgemmCoreTypesTests(unittest.TestCase):
    def core_types(self, flags):
        with tempfile.NamedTemporaryFile("w", suffix="cpuinfo") as cpuinfo:
            cpuinfo.write(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
            cpuinfo.flush()
            return ceilings.sgemm_core_types(cpuinfo.name)

    def test_avx512_cpu_also_tries_openblas_skylakex_kernels(self):
        self.assertEqual(self.core_types("fpu sse avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16"),
                         [None, "SKYLAKEX"])

    def test_cpu_without_every_skylake_subset_keeps_openblas_detection_only(self):
        self.assertEqual(self.core_types("fpu sse avx2 fma"), [None])
        self.assertEqual(self.core_types("fpu sse avx2 fma avx512f avx512cd"), [None])

    def test_unreadable_cpuinfo_keeps_openblas_detection_only(self):
        self.assertEqual(ceilings.sgemm_core_types("/nonexistent/cpuinfo"), [None])


class MeasureTests(unittest.TestCase):
    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.binary = os.path.join(directory.name, "MachineCeilings")
        with open(self.binary, "w") as f:
            f.write(f"#!{sys.executable}\n{FAKE_MACHINE_CEILINGS}")
        os.chmod(self.binary, os.stat(self.binary).st_mode | stat.S_IXUSR)

    def test_each_shape_keeps_its_fastest_kernels_and_records_all(self):
        # OPENBLAS_CORETYPE of the benchmark's own environment must not replace OpenBLAS's detection.
        with mock.patch.object(ceilings, "sgemm_core_types", return_value=[None, "SKYLAKEX"]), \
                mock.patch.dict(os.environ, {"OPENBLAS_CORETYPE": "Sandybridge"}):
            measured = ceilings.measure(self.binary, 768, 3072, 2, 100)
        decode, prefill = measured["sgemm_decode"], measured["sgemm_prefill"]
        self.assertEqual((decode["m"], decode["openblas_core"], decode["gflop_per_s_best"]), (32, "Haswell", 240.0))
        self.assertEqual((prefill["m"], prefill["openblas_core"], prefill["gflop_per_s_best"]), (512, "SkylakeX", 480.0))
        self.assertEqual(prefill["gflop_per_s_by_core"], {"Haswell": 250.0, "SkylakeX": 480.0})
        self.assertEqual(measured["stream"]["gb_per_s_best"], 80.0)
        self.assertEqual((measured["touch"]["megabytes"], measured["touch"]["threads"], measured["touch"]["gb_per_s"]), (100, 2, 0.2))

    def test_bandwidth_of_the_moment_is_the_short_measurement_best_pass(self):
        self.assertEqual(ceilings.bandwidth_now(self.binary, 2), 80.0)

    def test_sgemm_of_the_moment_is_the_prefill_shape_with_its_fastest_kernels(self):
        with mock.patch.object(ceilings, "sgemm_core_types", return_value=[None, "SKYLAKEX"]):
            self.assertEqual(ceilings.sgemm_now(self.binary, 768, 3072, 2), 480.0)
        with mock.patch.object(ceilings, "sgemm_core_types", return_value=[None]):
            self.assertEqual(ceilings.sgemm_now(self.binary, 768, 3072, 2), 250.0)


class BestTests(unittest.TestCase):
    def test_keeps_each_best_and_the_streaming_median_over_the_runs(self):
        def run(stream_best, stream_median, decode, prefill, core):
            return {"stream": {"gb_per_s_best": stream_best, "gb_per_s_median": stream_median},
                    "sgemm_decode": {"gflop_per_s_best": decode, "openblas_core": core},
                    "sgemm_prefill": {"gflop_per_s_best": prefill, "openblas_core": core}}
        runs = [run(60.0, 48.0, 250.0, 470.0, "SkylakeX"), run(85.0, 80.0, 240.0, 480.0, "Cooperlake"),
                run(55.0, 52.0, 245.0, 460.0, "SkylakeX")]
        best = ceilings.best(runs)
        self.assertEqual(best["stream"]["gb_per_s_best"], 85.0)
        self.assertEqual(best["stream"]["gb_per_s_median_of_runs"], 52.0)
        self.assertEqual(best["stream"]["runs"], 3)
        self.assertEqual((best["sgemm_decode"]["gflop_per_s_best"], best["sgemm_decode"]["openblas_core"]), (250.0, "SkylakeX"))
        self.assertEqual((best["sgemm_prefill"]["gflop_per_s_best"], best["sgemm_prefill"]["openblas_core"]), (480.0, "Cooperlake"))
        self.assertNotIn("runs", runs[1]["stream"], "best() must not change the runs it was given")
        self.assertNotIn("touch", best, "runs measured before the first-touch rate was")

    def test_keeps_the_spread_of_the_first_touch_rate(self):
        runs = [{"stream": {"gb_per_s_best": 80.0, "gb_per_s_median": 50.0}, "touch": {"gb_per_s": rate},
                 "sgemm_decode": {"gflop_per_s_best": 250.0}, "sgemm_prefill": {"gflop_per_s_best": 480.0}}
                for rate in (0.3, 2.5, 0.4)]
        self.assertEqual(ceilings.best(runs)["touch"], {"gb_per_s_median": 0.4, "gb_per_s_min": 0.3, "gb_per_s_max": 2.5, "runs": 3})


if __name__ == "__main__":
    unittest.main()
