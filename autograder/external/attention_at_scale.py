"""Hidden tests of 10_attention_at_scale as data: ``rotary_embedding``, ``sample_next``, ``KVCache``,
``online_softmax_attention``. References are computed here, in float64; the sampler is judged on the frequencies of
many draws (correct samplers use the random generator differently), exact tokens only at temperature 0."""

from __future__ import annotations

import numpy as np
import torch

from .cases import checked_call, checked_gradients, must_raise
from .expect import all_of, creates_at_most, no_error, raises, returns, unchanged
from .probe import Result, Step, generator, method

# -- rotary_embedding --------------------------------------------------------------------------------------------------


def reference_rope(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Pairs (2i, 2i+1) of row s rotated by positions[s] · 10000^(-2i/D), written out as a rotation."""
    d = x.shape[-1]
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angle = positions.double()[:, None] * theta
    cos, sin = torch.cos(angle), torch.sin(angle)
    out = torch.empty_like(x)
    out[..., 0::2] = x[..., 0::2] * cos - x[..., 1::2] * sin
    out[..., 1::2] = x[..., 0::2] * sin + x[..., 1::2] * cos
    return out


def rope_steps(rng: np.random.Generator) -> list[Step]:
    steps = []
    for shape, positions, dtype, atol in [
        ((2, 3, 5, 8), np.arange(5), np.float32, 1e-6),
        ((4, 6), rng.integers(0, 5000, 4), np.float64, 1e-10),
        ((1, 2, 7, 16), np.arange(100, 107), np.float64, 1e-10),
        ((3, 10, 32), rng.integers(1000, 4000, 10), np.float32, 2e-5),  # angles in the thousands: float64 needed
        ((2, 1, 2), np.array([7]), np.float64, 1e-10),
        ((5, 9, 4), rng.permutation(9).astype(np.int32), np.float64, 1e-10),
    ]:
        x = rng.standard_normal(shape).astype(dtype)
        label = (f"rotary_embedding of a {np.dtype(dtype).name} x of shape {shape} at positions "
                 f"{np.asarray(positions).tolist()[:6]}{'…' if len(positions) > 6 else ''}"
                 f" ({np.asarray(positions).dtype.name})")
        steps.append(checked_call("rotary_embedding", [x, np.asarray(positions)], reference_rope, label=label,
                                  atol=atol, rtol=1e-6 if dtype == np.float32 else 1e-8))
    steps.append(checked_gradients("rotary_embedding", [rng.standard_normal((2, 6, 8)), np.arange(3, 9)],
                                   reference_rope, wrt=(0,), rng=rng, label="rotary_embedding, gradients"))
    for args, mention, label in [
        ([rng.standard_normal((4, 7)), np.arange(4)], ("7",), "x of width 7 (odd)"),
        ([rng.standard_normal(6), np.arange(1)], (), "a 1-D x"),
        ([rng.standard_normal((5, 8)), np.arange(4)], ("4",), "4 positions for 5 rows"),
        ([rng.standard_normal((5, 8)), np.arange(5.0)], (), "float positions"),
        ([rng.standard_normal((5, 8)), np.arange(10).reshape(2, 5)], (), "2-D positions"),
    ]:
        steps.append(must_raise("rotary_embedding", args, mention=mention, label=f"rotary_embedding with {label}"))
    return steps


# -- sample_next -------------------------------------------------------------------------------------------------------


def token_probabilities(logits: np.ndarray, temperature: float, top_k: int | None) -> np.ndarray:
    """softmax(logits / temperature) over each row's top_k largest logits (all of them when top_k is None)."""
    scaled = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < scaled.shape[-1]:
        kth = np.sort(scaled, axis=-1)[:, -top_k][:, None]
        scaled = np.where(scaled >= kth, scaled, -np.inf)
    weights = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def _frequencies(rows: int, probabilities: np.ndarray, *, name: str, remember: dict | None = None,
                 same_as: dict | None = None, differs_from: dict | None = None):
    """The draws for ``rows`` rows of logits that cycle through P patterns (row i has pattern i % P) follow
    ``probabilities`` (P, V): no token of probability 0, and each token's frequency within 5 standard errors of its
    probability. ``remember`` / ``same_as`` / ``differs_from``: the draws kept for, or compared with, another step's."""
    n_patterns, vocabulary = probabilities.shape

    def expect(result: Result) -> str | None:
        if result.error:
            return f"{name}: raised {result.error}"
        draws = result.value
        if not isinstance(draws, np.ndarray) or result.dtype != "int64" or draws.ndim != 1:
            return f"{name}: expected a 1-D int64 tensor of token ids, got {result.dtype} {getattr(draws, 'shape', '')}"
        if draws.shape[0] != rows:
            return f"{name}: expected {rows} tokens (one per row), got {draws.shape[0]}"
        if draws.min() < 0 or draws.max() >= vocabulary:
            return f"{name}: token ids must lie in 0 … {vocabulary - 1}, got {int(draws.min())} … {int(draws.max())}"
        if remember is not None:
            remember["draws"] = draws
        if same_as is not None and not np.array_equal(draws, same_as.get("draws")):
            return (f"{name}: two calls with generators seeded alike drew different tokens (draw with the "
                    f"generator you are given, not the global random state)")
        if differs_from is not None and np.array_equal(draws, differs_from.get("draws")):
            return f"{name}: generators seeded differently drew the very same tokens (is the generator used?)"
        for p in range(n_patterns):
            drawn = draws[p::n_patterns]
            n = drawn.shape[0]
            counts = np.bincount(drawn, minlength=vocabulary)
            impossible = np.flatnonzero((probabilities[p] == 0) & (counts > 0))
            if impossible.size:
                return (f"{name}: drew token {int(impossible[0])} {int(counts[impossible[0]])} times, but its "
                        f"probability is 0 (outside the top k)")
            frequency = counts / n
            bound = 5 * np.sqrt(probabilities[p] * (1 - probabilities[p]) / n) + 1e-3
            worst = int(np.argmax(np.abs(frequency - probabilities[p]) - bound))
            if abs(frequency[worst] - probabilities[p, worst]) > bound[worst]:
                return (f"{name}: token {worst} was drawn in {frequency[worst]:.2%} of {n:,} rows, its probability "
                        f"is {probabilities[p, worst]:.2%} (row pattern {p})")
        return None

    return expect


def _draw_case(rng, *, temperature, top_k, label, rows=12_000, vocabulary=8, scale=1.5, offset=0.0, seed=None,
               remember=None, same_as=None, differs_from=None, global_seed=0, dtype=np.float32):
    patterns = (rng.standard_normal((2, vocabulary)) * scale + offset).astype(dtype)
    logits = np.tile(patterns, (rows // 2, 1))
    probabilities = token_probabilities(patterns, temperature, top_k)
    kwargs = {"temperature": temperature, "top_k": top_k}
    if seed is not None:
        kwargs["generator"] = generator(seed)
    return Step("sample_next", [logits], kwargs, seed=global_seed, expect=all_of(
        _frequencies(logits.shape[0], probabilities, name=label, remember=remember, same_as=same_as,
                     differs_from=differs_from),
        unchanged(logits, name=label)))


def sample_steps(rng: np.random.Generator) -> list[Step]:
    steps = []
    for shape, top_k, dtype in [((5, 11), None, np.float32), ((1, 3), 2, np.float64), ((7, 50), 1, np.float32)]:
        logits = rng.standard_normal(shape).astype(dtype)
        best = rng.integers(0, shape[1], shape[0])
        logits[np.arange(shape[0]), best] = logits.max(axis=1) + 1.0  # a clear arg-max
        label = f"sample_next of {shape} logits at temperature 0{f', top_k={top_k}' if top_k else ''}"
        steps.append(Step("sample_next", [logits], {"temperature": 0.0, "top_k": top_k}, expect=all_of(
            returns(best.astype(np.int64), name=f"{label} (greedy: the arg-max of each row)", dtype="int64"),
            unchanged(logits, name=label))))
    seed = int(rng.integers(1, 2**31))
    steps += [
        _draw_case(rng, temperature=1.0, top_k=None, seed=seed,
                   label="12,000 draws at temperature 1 from two alternating rows of logits"),
        _draw_case(rng, temperature=0.5, top_k=None, seed=seed + 1, label="12,000 draws at temperature 0.5"),
        _draw_case(rng, temperature=2.5, top_k=None, seed=seed + 2, label="12,000 draws at temperature 2.5"),
        _draw_case(rng, temperature=1.0, top_k=3, seed=seed + 3, label="12,000 draws with top_k=3"),
        _draw_case(rng, temperature=0.7, top_k=5, seed=seed + 4, vocabulary=20, scale=1.0,
                   label="12,000 draws at temperature 0.7 with top_k=5 of 20 tokens"),
        _draw_case(rng, temperature=1.0, top_k=12, seed=seed + 5, label="12,000 draws with top_k=12 > V=8 (all)"),
        _draw_case(rng, temperature=1.0, top_k=None, seed=seed + 6, offset=800.0, scale=3.0,
                   label="12,000 draws from logits near 800 (exp() overflows unless the maximum is subtracted)"),
        _draw_case(rng, temperature=1.0, top_k=None, label="12,000 draws without a generator (the global one)",
                   global_seed=int(rng.integers(1, 2**31)), dtype=np.float64),
    ]
    # the generator decides: alike seeds give alike draws whatever the global state; different seeds do not
    patterns, remembered = int(rng.integers(1, 2**31)), {}
    base = dict(temperature=1.0, top_k=None, rows=4_000)
    one = _draw_case(np.random.default_rng(patterns), **base, seed=seed + 7, remember=remembered, global_seed=1,
                     label="4,000 draws with a seeded generator")
    again = _draw_case(np.random.default_rng(patterns), **base, seed=seed + 7, same_as=remembered, global_seed=2,
                       label="the same 4,000 draws again: a generator seeded alike, another global seed")
    other = _draw_case(np.random.default_rng(patterns), **base, seed=seed + 8, differs_from=remembered,
                       global_seed=1, label="4,000 draws with a generator seeded differently")
    steps += [one, again, other]
    logits = rng.standard_normal((3, 6))
    for args, kwargs, mention, label in [
        ([logits], {"temperature": -1.0}, ("-1",), "temperature -1"),
        ([logits[0]], {"temperature": 1.0}, (), "1-D logits"),
        ([logits], {"temperature": 1.0, "top_k": 0}, ("0",), "top_k=0"),
    ]:
        steps.append(must_raise("sample_next", args, kwargs=kwargs, mention=mention, label=f"sample_next with {label}"))
    return steps


# -- KVCache -----------------------------------------------------------------------------------------------------------


def _is(want, *, name: str):
    """The call returned the plain value ``want`` (an int, or None)."""

    def expect(result: Result) -> str | None:
        if result.error:
            return f"{name}: raised {result.error}"
        if want is None:
            return None if result.value is None else f"{name}: expected None, got {result.value!r}"[:300]
        if type(result.value) is not int or result.value != want:
            return f"{name}: expected {want}, got {result.value!r}"[:300]
        return None

    return expect


def _cache_sequence(rng, keep: str, *, batch, heads, d_k, d_v, pieces, dtype) -> list[Step]:
    steps = [Step("KVCache", [], keep=keep, expect=no_error(name="KVCache()")),
             Step(method(keep, "__len__"), [], expect=_is(0, name="len of a new KVCache")),
             Step(method(keep, "__getattribute__"), ["keys"], expect=_is(None, name="keys of a new KVCache"))]
    keys = np.zeros((batch, heads, 0, d_k), dtype=dtype)
    values = np.zeros((batch, heads, 0, d_v), dtype=dtype)
    for n in pieces:
        k = rng.standard_normal((batch, heads, n, d_k)).astype(dtype)
        v = rng.standard_normal((batch, heads, n, d_v)).astype(dtype)
        keys, values = np.concatenate([keys, k], axis=2), np.concatenate([values, v], axis=2)
        label = (f"KVCache.append of k {k.shape} and v {v.shape} after {keys.shape[2] - n} cached positions "
                 f"(B={batch}, H={heads})")
        steps += [
            Step(method(keep, "append"), [k, v], expect=all_of(
                returns(keys, index=0, name=f"{label}: the keys returned (new positions after the old, on dim 2)",
                        dtype=np.dtype(dtype).name, atol=0, rtol=0),
                returns(values, index=1, name=f"{label}: the values returned", dtype=np.dtype(dtype).name, atol=0,
                        rtol=0),
                unchanged(k, v, name=label))),
            Step(method(keep, "__len__"), [], expect=_is(int(keys.shape[2]), name=f"len(cache) after {label}")),
            Step(method(keep, "__getattribute__"), ["keys"], expect=returns(
                keys, name=f"cache.keys after {label}", dtype=np.dtype(dtype).name, atol=0, rtol=0)),
            Step(method(keep, "__getattribute__"), ["values"], expect=returns(
                values, name=f"cache.values after {label}", dtype=np.dtype(dtype).name, atol=0, rtol=0)),
        ]
    return steps


def cache_steps(rng: np.random.Generator) -> list[Step]:
    steps = _cache_sequence(rng, "a", batch=2, heads=3, d_k=4, d_v=5, pieces=[3, 1, 1, 2], dtype=np.float32)
    steps += _cache_sequence(rng, "b", batch=1, heads=1, d_k=6, d_v=6, pieces=[1, 1, 4], dtype=np.float64)
    # two caches are two caches: "a" still holds its own 7 positions after "b" was filled
    steps.append(Step(method("a", "__len__"), [], expect=_is(7, name="len of one cache after appending to another")))
    steps.append(Step("KVCache", [], keep="bad", expect=no_error(name="KVCache()")))
    steps.append(Step(method("bad", "append"), [rng.standard_normal((2, 3, 2, 4)), rng.standard_normal((2, 3, 2, 5))],
                      expect=no_error(name="KVCache.append of k (2, 3, 2, 4) and v (2, 3, 2, 5)")))
    for k_shape, v_shape, mention, label in [
        ((2, 3, 1, 6), (2, 3, 1, 5), ("6",), "keys of width 6 to a cache of width 4"),
        ((2, 3, 1, 4), (2, 3, 1, 7), ("7",), "values of width 7 to a cache of width 5"),
        ((2, 2, 1, 4), (2, 2, 1, 5), (), "2 heads to a cache of 3"),
        ((1, 3, 1, 4), (1, 3, 1, 5), (), "a batch of 1 to a cache of 2"),
        ((2, 3, 2, 4), (2, 3, 1, 5), (), "2 new keys but 1 new value"),
        ((2, 3, 4), (2, 3, 5), (), "3-D k and v"),
    ]:
        steps.append(Step(method("bad", "append"), [rng.standard_normal(k_shape), rng.standard_normal(v_shape)],
                          expect=raises("ValueError", mention=mention, name=f"KVCache.append of {label}")))
    refused = "len(cache) after appends that raised (a refused append must leave the cache as it was)"
    steps.append(Step(method("bad", "__len__"), [], expect=_is(2, name=refused)))
    return steps


# -- online_softmax_attention ------------------------------------------------------------------------------------------

EXERCISE = dict(forbid=("scaled_dot_product_attention", "softmax"), exercise="online_softmax_attention")


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_size: int,
                        causal: bool = False) -> torch.Tensor:
    """Softmax attention in float64; causal: query i sees keys j <= i + (S_k - S_q)."""
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if causal:
        s_q, s_k = q.shape[-2], k.shape[-2]
        allowed = torch.ones(s_q, s_k, dtype=torch.bool).tril(s_k - s_q)
        scores = scores.masked_fill(~allowed, -torch.inf)
    return torch.softmax(scores, dim=-1) @ v


def _online_case(rng, qs, ks, vs, block, *, causal=False, dtype=np.float64, scale=1.0, atol=1e-10, rtol=1e-8,
                 watch=False):
    q, k, v = ((rng.standard_normal(s) * (scale if s is not vs else 1.0)).astype(dtype) for s in (qs, ks, vs))
    label = (f"online_softmax_attention(q {qs}, k {ks}, v {vs}, block_size={block}"
             f"{', causal=True' if causal else ''}) in {np.dtype(dtype).name}"
             f"{f', inputs × {scale:g}' if scale != 1 else ''}")
    step = checked_call("online_softmax_attention", [q, k, v, block], reference_attention, label=label,
                        kwargs={"causal": causal}, atol=atol, rtol=rtol, **EXERCISE)
    if watch:
        s_q, s_k = qs[-2], ks[-2]
        step.watch = True
        step.expect = all_of(step.expect, creates_at_most(
            s_q * s_k, name=label, why=f"as many entries as the S_q × S_k = {s_q} × {s_k} matrix of scores: work "
                                       f"through the keys block by block and keep only running statistics"))
    return step


def online_steps(rng: np.random.Generator) -> list[Step]:
    steps = [
        _online_case(rng, (2, 3, 10, 8), (2, 3, 10, 8), (2, 3, 10, 5), 3),
        _online_case(rng, (2, 3, 10, 8), (2, 3, 10, 8), (2, 3, 10, 5), 5, causal=True),
        _online_case(rng, (1, 2, 6, 16), (1, 2, 11, 16), (1, 2, 11, 4), 4, causal=True),
        _online_case(rng, (3, 9, 8), (3, 9, 8), (3, 9, 3), 2, causal=True),
        _online_case(rng, (4, 7, 8), (4, 13, 8), (4, 13, 3), 1),
        _online_case(rng, (2, 5, 8), (2, 13, 8), (2, 13, 6), 50, dtype=np.float32, atol=1e-5, rtol=1e-4),
        _online_case(rng, (1, 1, 4), (1, 1, 4), (1, 1, 2), 1, causal=True),
        _online_case(rng, (2, 6, 16), (2, 12, 16), (2, 12, 3), 4, scale=30.0, atol=1e-8),
        _online_case(rng, (2, 6, 16), (2, 12, 16), (2, 12, 3), 5, scale=30.0, dtype=np.float32, causal=True,
                     atol=1e-4, rtol=1e-4),
        _online_case(rng, (2, 2, 9, 16), (2, 2, 14, 16), (2, 2, 14, 8), 4, dtype=np.float16, scale=1.5, atol=4e-3,
                     rtol=1e-2),
        _online_case(rng, (1, 3, 12, 8), (1, 3, 12, 8), (1, 3, 12, 8), 5, dtype=np.float16, scale=6.0,
                     causal=True, atol=4e-3, rtol=1e-2),
        _online_case(rng, (1, 2, 48, 8), (1, 2, 80, 8), (1, 2, 80, 8), 16, dtype=np.float32, atol=1e-5, rtol=1e-4,
                     watch=True),
        _online_case(rng, (2, 40, 4), (2, 72, 4), (2, 72, 6), 24, dtype=np.float32, causal=True, atol=1e-5,
                     rtol=1e-4, watch=True),
    ]
    for _ in range(3):  # shapes of this grading run's own
        lead = tuple(int(n) for n in rng.integers(1, 4, int(rng.integers(1, 3))))
        s_q = int(rng.integers(1, 20))
        s_k, d, d_v = s_q + int(rng.integers(0, 12)), int(rng.choice([4, 8, 16])), int(rng.integers(1, 9))
        steps.append(_online_case(rng, (*lead, s_q, d), (*lead, s_k, d), (*lead, s_k, d_v),
                                  int(rng.integers(1, s_k + 4)), causal=bool(rng.integers(0, 2))))
    q, k, v = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 7, 8)), rng.standard_normal((2, 7, 3))
    for args, mention, label in [
        ([q, k, v, 0], ("0",), "block_size 0"),
        ([q, rng.standard_normal((2, 7, 6)), v, 2], ("6",), "keys of width 6 for queries of width 8"),
        ([q, k, rng.standard_normal((2, 9, 3)), 2], ("9",), "7 keys but 9 values"),
        ([q, rng.standard_normal((3, 7, 8)), rng.standard_normal((3, 7, 3)), 2], (), "a batch of 2 queries and 3 keys"),
    ]:
        steps.append(must_raise("online_softmax_attention", args, mention=mention,
                                label=f"online_softmax_attention with {label}"))
    return steps


ITEMS = {"test_rotary_embedding": rope_steps, "test_sample_next": sample_steps, "test_KVCache": cache_steps,
         "test_online_softmax_attention": online_steps}

