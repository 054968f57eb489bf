"""Tests of report.py's by-round lines: python3 -m unittest discover -s Benchmarks/serving -p 'test_*.py'
(scripts/test.sh runs it)."""
import os
import sys
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402


def run(streams, tokens_per_second, bandwidth=None):
    value = {"streams": streams, "tokens": 64 * streams, "seconds": 64 * streams / tokens_per_second}
    if bandwidth:
        value["stream_gb_per_s"] = list(bandwidth)
    return value


class RoundsTextTests(unittest.TestCase):
    plan = types.SimpleNamespace(streams=[1, 8, 32])

    def test_each_memory_bound_round_pairs_ours_with_ort_and_both_bandwidths(self):
        ours = {"float32": {"runs": [run(1, 120.0, (80.2, 79.6)), run(8, 600.0, (50.0, 51.0)), run(32, 900.0),
                                     run(1, 90.0, (49.0, 50.4)), run(8, 560.0, (52.0, 50.0)), run(32, 950.0)]}}
        ort = {"runs": [run(1, 60.0, (48.0, 49.0)), run(8, 400.0, (50.0, 50.0)), run(32, 600.0),
                        run(1, 66.0, (81.0, 80.0)), run(8, 380.0, (50.0, 49.0)), run(32, 610.0)]}
        text = report.rounds_text(self.plan, ["float32"], ours, {"float32": {"onnxruntime": ort}})
        lines = text.splitlines()
        self.assertEqual(len(lines), 3, text)
        self.assertEqual(lines[1], "- float32, 1 stream: round 1: ours 120.0 tokens/s (80→80 GB/s), ORT 60.0 tokens/s "
                                   "(48→49 GB/s), 2.00×; round 2: ours 90.0 tokens/s (49→50 GB/s), ORT 66.0 tokens/s "
                                   "(81→80 GB/s), 1.36×.")
        self.assertTrue(lines[2].startswith("- float32, 8 streams: round 1: ours 600.0 tokens/s (50→51 GB/s)"), lines[2])
        self.assertNotIn("32 streams", text, "compute-bound runs carry no bandwidth and get no line")

    def test_our_runs_show_their_share_of_the_roofline_at_their_lower_bandwidth(self):
        ours = {"float32": {"runs": [run(1, 90.0, (50.0, 45.0))]}}
        ort = {"runs": [run(1, 60.0, (50.0, 50.0))]}
        asked = []

        def bound(mode, streams, gb_per_s):
            asked.append((mode, streams, gb_per_s))
            return 2 * gb_per_s  # tokens/s of a 500 MB model, roughly
        text = report.rounds_text(self.plan, ["float32"], ours, {"float32": {"onnxruntime": ort}}, bound=bound)
        self.assertIn("ours 90.0 tokens/s (50→45 GB/s, 100 % of its roofline), ORT 60.0 tokens/s (50→50 GB/s), 1.50×", text)
        self.assertEqual(asked, [("float32", 1, 45.0)])

    def test_nothing_without_measurements_or_without_our_result(self):
        ours = {"float32": {"runs": [run(1, 120.0)]}, "int8": "failed: it stopped"}
        baselines = {"float32": {"onnxruntime": {"runs": [run(1, 60.0)]}},
                     "int8": {"onnxruntime": {"runs": [run(1, 60.0, (50.0, 50.0))]}}}
        self.assertEqual(report.rounds_text(self.plan, ["float32", "int8"], ours, baselines), "")


class PrefillRoundsTextTests(unittest.TestCase):
    plan = types.SimpleNamespace(prefill_repeats=2, prefill_prompt=[0] * 512)

    def test_each_round_gives_its_median_prefill_and_its_share_at_the_mean_sgemm_rate(self):
        # Round 1: ours 0.25 and 0.27 s (median 0.26 s, 1969 tokens/s) at 400→420 GFLOP/s; round 2: 0.5 s.
        ours = {"float32": {"prefill_seconds": [0.25, 0.27, 0.5, 0.5], "prefill_sgemm_gflop_per_s": [[400.0, 420.0], [200.0, 200.0]]}}
        ort = {"prefill_seconds": [0.4, 0.4, 0.8, 0.8], "prefill_sgemm_gflop_per_s": [[380.0, 380.0], [190.0, 210.0]]}
        asked = []

        def bound(mode, gflop_per_s):
            asked.append((mode, gflop_per_s))
            return 6 * gflop_per_s  # tokens/s of a prefill at that rate
        text = report.prefill_rounds_text(self.plan, ["float32"], ours, {"float32": {"onnxruntime": ort}}, bound)
        lines = text.splitlines()
        self.assertEqual(len(lines), 2, text)
        self.assertEqual(lines[1], "- float32: round 1: ours 1969 tokens/s (400→420 GFLOP/s, 80 %), ORT 1280 tokens/s "
                                   "(380→380 GFLOP/s, 56 %); round 2: ours 1024 tokens/s (200→200 GFLOP/s, 85 %), "
                                   "ORT 640 tokens/s (190→210 GFLOP/s, 53 %); median share ours 83 %, ORT 55 %.")
        self.assertIn(("float32", 410.0), asked)

    def test_a_round_without_its_timed_prefills_is_left_out(self):
        ours = {"float32": {"prefill_seconds": [0.25, 0.27, 0.5], "prefill_sgemm_gflop_per_s": [[400.0, 420.0], [200.0, 200.0]]}}
        ort = {"prefill_seconds": [0.4, 0.4, 0.8, 0.8], "prefill_sgemm_gflop_per_s": [[380.0, 380.0], [190.0, 210.0]]}
        text = report.prefill_rounds_text(self.plan, ["float32"], ours, {"float32": {"onnxruntime": ort}}, lambda m, g: 6 * g)
        self.assertIn("round 1:", text)
        self.assertNotIn("round 2:", text)

    def test_nothing_without_measurements_baseline_or_result(self):
        ours = {"float32": {"prefill_seconds": [0.25, 0.27]}, "int8": "failed: it stopped"}
        baselines = {"float32": {"onnxruntime": {"prefill_seconds": [0.4, 0.4]}},
                     "int8": {"onnxruntime": {"prefill_seconds": [0.4, 0.4], "prefill_sgemm_gflop_per_s": [[1.0, 1.0]]}}}
        self.assertEqual(report.prefill_rounds_text(self.plan, ["float32", "int8"], ours, baselines, lambda m, g: g), "")


class CeilingsTextTests(unittest.TestCase):
    measured = {"stream": {"gb_per_s_best": 80.0, "gb_per_s_median": 50.0},
                "sgemm_decode": {"gflop_per_s_best": 250.0, "m": 32, "k": 768, "n": 3072, "openblas_core": "SkylakeX"},
                "sgemm_prefill": {"gflop_per_s_best": 480.0, "m": 512, "k": 768, "n": 3072, "openblas_core": "SkylakeX"}}

    def test_one_measurement_gives_the_first_touch_time_of_its_buffer(self):
        measured = dict(self.measured, touch={"megabytes": 500, "seconds": 1.25, "gb_per_s": 0.4})
        self.assertTrue(report.ceilings_text(measured).endswith("; first write to fresh memory 0.40 GB/s (500 MB in 1.25 s)"))

    def test_a_runs_best_gives_the_median_and_spread_of_the_first_touch_rate(self):
        measured = dict(self.measured, touch={"gb_per_s_median": 0.4, "gb_per_s_min": 0.3, "gb_per_s_max": 2.5, "runs": 3})
        self.assertTrue(report.ceilings_text(measured).endswith(
            "; first write to fresh memory 0.40 GB/s (median; 0.30-2.50 over the 3 measurements)"))

    def test_results_without_it_read_as_before(self):
        self.assertNotIn("fresh memory", report.ceilings_text(self.measured))


class PairedRatiosTextTests(unittest.TestCase):
    plan = types.SimpleNamespace(streams=[1, 8])

    def test_each_round_divides_its_own_runs_and_the_median_is_of_the_ratios(self):
        ours = {"float32": {"runs": [run(1, 120.0), run(8, 600.0), run(1, 90.0), run(8, 560.0), run(1, 100.0), run(8, 500.0)]}}
        ort = {"runs": [run(1, 60.0), run(8, 400.0), run(1, 75.0), run(8, 350.0), run(1, 50.0), run(8, 400.0)]}
        text = report.paired_ratios_text(self.plan, ["float32"], ours, {"float32": {"onnxruntime": ort}})
        lines = text.splitlines()
        self.assertEqual(len(lines), 2, text)
        # 1 stream: 2.00, 1.20, 2.00 (median 2.00; the medians' ratio would be 100 / 60 = 1.67);
        # 8 streams: 1.50, 1.60, 1.25.
        self.assertEqual(lines[1], "- float32: 1 stream 2.00 / 1.20 / 2.00 (median 2.00×); "
                                   "8 streams 1.50 / 1.60 / 1.25 (median 1.50×).")

    def test_a_single_round_or_no_baseline_gives_nothing(self):
        one = {"float32": {"runs": [run(1, 120.0), run(8, 600.0)]}}
        ort = {"runs": [run(1, 60.0), run(8, 400.0)]}
        self.assertEqual(report.paired_ratios_text(self.plan, ["float32"], one, {"float32": {"onnxruntime": ort}}), "")
        self.assertEqual(report.paired_ratios_text(self.plan, ["float32"], one, {"float32": {}}), "")


class LoadSamplesTextTests(unittest.TestCase):
    def test_each_start_in_order_and_the_median(self):
        ours = {"float32": {"load_to_ready_seconds_each": [1.234, 0.5, 0.91], "load_to_ready_seconds": 0.91},
                "int8": {"load_to_ready_seconds_each": [0.6, 0.4], "load_to_ready_seconds": 0.5}}
        lines = report.load_samples_text(["float32", "int8"], ours, 3).splitlines()
        self.assertEqual(lines[1:], ["- float32: 1.23 / 0.50 / 0.91 s (median 0.91 s).",
                                     "- int8: 0.60 / 0.40 s (median 0.50 s)."])

    def test_one_start_or_no_result_gives_nothing(self):
        ours = {"float32": {"load_to_ready_seconds_each": [1.2], "load_to_ready_seconds": 1.2},
                "float16": "not supported by this build", "bfloat16": {"load_to_ready_seconds": 0.7}}
        self.assertEqual(report.load_samples_text(["float32", "float16", "bfloat16"], ours, 3), "")


if __name__ == "__main__":
    unittest.main()
