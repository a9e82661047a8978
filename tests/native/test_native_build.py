"""fusionlab.native: C kernels compiled on first use, cached per machine, optional.

The kernels' numbers are checked where they are used (``tests/models/test_blocks.py``
compares the native window attention with the literal definition); here: the build, its
cache, the fallback when there is no compiler, and the dynamic work sharing.
"""
from __future__ import annotations

import platform
import shutil
import threading
import time

import pytest
import torch

from fusionlab import native
from fusionlab.models import blocks, kernels
from support import benchmark_module

needs_compiler = pytest.mark.skipif(native._compiler() is None, reason="no C compiler (cc/gcc/clang) on PATH")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache folder and no library or function loaded yet in this process."""
    monkeypatch.setenv("FUSIONLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "_libraries", {})
    monkeypatch.setattr(native, "_functions", {})
    monkeypatch.setattr(native, "_warned", set())
    return tmp_path


@needs_compiler
def test_build_is_cached_and_keyed_by_source(fresh_cache, monkeypatch):
    path = native.build("window_attention")
    assert path.parent == fresh_cache / "native" and path.suffix == ".so"
    stamp = path.stat().st_mtime_ns
    assert native.build("window_attention") == path and path.stat().st_mtime_ns == stamp  # not rebuilt
    # another CPU (or compiler, flags, source) -> another file: a stale binary is never loaded
    real_cpu_id = native._cpu_id
    monkeypatch.setattr(native, "_cpu_id", lambda: "flags : some other cpu")
    assert native.library_path("window_attention", native._compiler()) != path
    monkeypatch.setattr(native, "_cpu_id", real_cpu_id)
    # a changed shared header (included by the .c files) -> another file as well
    src = fresh_cache / "src"
    shutil.copytree(native.SOURCE_DIR, src, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setattr(native, "SOURCE_DIR", src)
    before = native.library_path("window_attention", "cc")
    (src / "vecmath.h").write_text((src / "vecmath.h").read_text() + "\n/* changed */\n")
    assert native.library_path("window_attention", "cc") != before
    assert not list((fresh_cache / "native").glob("*.tmp"))  # the atomic rename left nothing behind


def test_no_compiler_falls_back_to_torch_with_one_warning(fresh_cache, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-fusionlab")
    with pytest.raises(RuntimeError, match="no C compiler"):
        native.build("window_attention")
    with pytest.warns(RuntimeWarning, match="unavailable .*no C compiler.*torch code"):
        assert native.load("window_attention") is None
    assert native.load("window_attention") is None  # cached: no second warning, no second try
    attn = blocks.OverlapWindowAttention(16, heads=2).eval()
    ffn = blocks.GatedDconvFFN(16, 2.0).eval()
    x = torch.randn(1, 16, 24, 24)
    with torch.no_grad():
        got = attn(x)  # the torch kernels instead of the C layer (already warned about above)
        with pytest.warns(RuntimeWarning, match="'restormer' unavailable"):
            got_ffn = ffn(x)
        with kernels.use_fast_kernels(False):
            want, want_ffn = attn(x), ffn(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got_ffn, want_ffn, atol=1e-5, rtol=1e-4)


@needs_compiler
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the AVX-512 switch is an x86 compiler flag")
def test_kernels_built_without_avx512_keep_the_torch_code(fresh_cache, monkeypatch):
    # 16-float vectors spill on AVX2 (15-40x slower than with AVX-512, slower than torch): a
    # library built for such a target says so and the torch kernels run, with one warning
    monkeypatch.setenv("CC", f"{native._compiler()} -mno-avx512f")
    with pytest.warns(RuntimeWarning, match="'restormer' unavailable .*no AVX-512"):
        assert native.load("restormer") is None
    assert native.load("metrics") is not None  # 4-double vectors: fine on AVX2, kept
    ffn = blocks.GatedDconvFFN(16, 2.0).eval()
    x = torch.randn(1, 16, 12, 20)
    with torch.no_grad():
        got = ffn(x)
        with kernels.use_fast_kernels(False):
            want = ffn(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_compiler_error_is_reported_in_one_line(fresh_cache, monkeypatch):
    monkeypatch.setenv("CC", "false")  # exists, always fails
    with pytest.raises(RuntimeError, match=r"^false failed on window_attention\.c"):
        native.build("window_attention")
    assert not list((fresh_cache / "native").glob("*"))  # no half-written library


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("FUSIONLAB_NATIVE", "0")
    assert not native.enabled() and native.load("window_attention") is None
    attn = blocks.OverlapWindowAttention(16, heads=2).eval()
    assert kernels._attend_native(attn, torch.zeros(1, 8, 8, 32), torch.zeros(1, 12, 12, 64)) is None


@needs_compiler
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_native_attention_matches_torch_kernel(monkeypatch, threads):
    """Same output as the torch inference kernel on every window-head, whatever the thread
    count (the work is shared through a counter), on strided q views like the band's."""
    torch.manual_seed(threads)
    attn = blocks.OverlapWindowAttention(16, heads=3).eval()
    qkv = torch.randn(2, 24, 40, 3 * 48)
    q = qkv[..., :48]  # a strided view, as window_attention passes it
    kv = torch.randn(2, 24 + 4, 40 + 4, 96)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    with torch.no_grad():
        got = kernels._attend_native(attn, q, kv)
        monkeypatch.setenv("FUSIONLAB_NATIVE", "0")
        want = kernels._attend_chunked(attn, q, kv)
    assert got is not None
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_run_threads_shares_one_counter():
    """Every task runs exactly once however the threads interleave."""
    counter, done, lock = [0], [], threading.Lock()

    def work():
        while True:
            with lock:
                t = counter[0]
                counter[0] += 3
            if t >= 100:
                return
            done.extend(range(t, min(100, t + 3)))

    native.run_threads(work, 3)
    assert sorted(done) == list(range(100))


def _late_run_threads(fn, threads):
    """native.run_threads with the first thread 50 ms late: the others take its band, going up
    from its bottom row (rows.h sched_row), before it arrives."""
    def late():
        time.sleep(0.05)
        fn()
    workers = [threading.Thread(target=late)] + [threading.Thread(target=fn) for _ in range(threads - 1)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


@needs_compiler
@pytest.mark.parametrize("h", [1, 3, 8, 21])
def test_ring_kernels_give_the_same_rows_however_threads_share_them(monkeypatch, h):
    """The FFN and channel-attention kernels share an image's rows by bands, each thread
    running down its own and then up another's from the bottom (with its 3-row ring filled the
    other way round). Any thread count, and a thread that arrives after the others took its
    rows, gives the one-thread output: bitwise for the FFN (each row is computed the same way),
    within float rounding for the channel attention (its Gram sums add rows in another order)."""
    monkeypatch.setenv("FUSIONLAB_NATIVE", "1")
    torch.manual_seed(h)
    dim = 16
    x = torch.randn(1, dim, h, 13).contiguous(memory_format=torch.channels_last)
    norm, ffn, ca = blocks.LayerNorm2d(dim), blocks.GatedDconvFFN(dim, 2.0), blocks.ChannelAttention(dim, heads=2)
    results, on_time = {}, native.run_threads
    with torch.no_grad():
        for threads, late in [(1, False), (2, False), (3, False), (4, False), (2, True), (3, True)]:
            monkeypatch.setattr(torch, "get_num_threads", lambda n=threads: n)
            monkeypatch.setattr(native, "run_threads", _late_run_threads if late else on_time)
            got_ffn = kernels._ffn_native(ffn, x, norm, residual=True)
            got_ca = kernels._channel_stats_native(ca, kernels._nhwc(x), norm)
            assert got_ffn is not None and got_ca is not None, "the C kernels did not run"
            results[threads, late] = got_ffn, got_ca
    want_ffn, want_ca = results[1, False]
    with kernels.use_fast_kernels(False):
        torch.testing.assert_close(want_ffn, ffn(norm(x)) + x, atol=1e-5, rtol=1e-4)
    for key, (got_ffn, got_ca) in results.items():
        assert torch.equal(got_ffn, want_ffn), f"FFN rows differ with {key}"
        for g, w in zip(got_ca, want_ca):
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5, msg=f"channel attention with {key}")


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_run_threads_works_in_a_forked_child():
    """A child forked after the pool exists (a DataLoader worker) gets threads of its own
    instead of the parent's executor, whose threads it does not have (it would hang)."""
    import multiprocessing as mp

    native.run_threads(lambda: None, 2)  # the parent's pool exists now
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply_async(_threads_in_child).get(timeout=60) == 2


def _threads_in_child() -> int:
    seen, lock = set(), threading.Lock()

    def work():
        with lock:
            seen.add(threading.get_ident())

    native.run_threads(work, 2)
    return len(seen)


def test_use_native_overrides_the_environment(monkeypatch):
    monkeypatch.setenv("FUSIONLAB_NATIVE", "1")
    with native.use_native(False):
        assert not native.enabled()
        with native.use_native(True):
            assert native.enabled()
        assert not native.enabled()
    assert native.enabled()
    monkeypatch.setenv("FUSIONLAB_NATIVE", "0")
    assert not native.enabled()


@needs_compiler
@pytest.mark.parametrize("define", native.MEASUREMENT_DEFINES)
def test_measurement_switches_apply_inside_the_block_only(monkeypatch, define):
    """``measurement_defines`` (benchmarks/nonfma_share.py): inside the block the kernels come
    from a library built with the switch - the student's output changes (the switch skips
    arithmetic it needs); on exit the shipped libraries are back, bitwise the same output, and a
    second visit reuses the switched library instead of building or hashing again."""
    from fusionlab.models import create_model

    if native.load("restormer") is None or native.load("window_attention") is None:
        pytest.skip("the C kernels cannot run on this CPU (no AVX-512): nothing to switch")
    torch.manual_seed(0)
    student = create_model("dtpf_student").eval()
    x = torch.rand(1, 1, 48, 64)
    shipped_lib = native.load("restormer")
    with torch.no_grad():
        want = student(x, x)
        with native.measurement_defines(define):
            switched = student(x, x)
            assert native.load("restormer") is not shipped_lib
        assert (switched - want).abs().max() > 1e-3  # the switch reached a kernel the student runs
        assert native.load("restormer") is shipped_lib
        torch.testing.assert_close(student(x, x), want, rtol=0, atol=0)
        calls = []
        monkeypatch.setattr(native, "build", lambda *a, **k: calls.append(a) or pytest.fail("rebuilt"))
        with native.measurement_defines(define):
            torch.testing.assert_close(student(x, x), switched, rtol=0, atol=0)
    assert not calls
    with pytest.raises(ValueError, match="unknown measurement switch"):
        with native.measurement_defines("FUSIONLAB_NO_SUCH_SWITCH"):
            pass


@needs_compiler
def test_nonfma_share_benchmark_smoke(capsys):
    """benchmarks/nonfma_share.py end to end on a tiny pair: every switch row, both plain-CNN
    rows and the closing sentence, with ratios that are numbers."""
    if native.load("restormer") is None:
        pytest.skip("the C kernels cannot run on this CPU (no AVX-512)")
    bench, threads = benchmark_module("nonfma_share"), torch.get_num_threads()
    bench.tune_cpu_allocator = lambda: False  # glibc settings would outlive the test in this process
    try:
        assert bench.main(["--threads", "1", "--pairs", "2", "--size", "32x48"]) == 0
    finally:
        torch.set_num_threads(threads)  # the script sets the process's thread count
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("| student")]
    assert len(rows) == 6 and all("95 % interval" in ln for ln in rows)
    assert "with it free the student would take" in out


def test_nonfma_share_benchmark_without_kernels_says_so(monkeypatch, capsys):
    monkeypatch.setenv("FUSIONLAB_NATIVE", "0")
    bench, threads = benchmark_module("nonfma_share"), torch.get_num_threads()
    bench.tune_cpu_allocator = lambda: False
    try:
        assert bench.main(["--pairs", "2", "--size", "32x48"]) == 1
    finally:
        torch.set_num_threads(threads)
    assert "C kernels are unavailable" in capsys.readouterr().err
