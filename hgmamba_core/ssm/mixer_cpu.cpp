// Eval-only kernel of the lifter's CPU fast path (model/fast_eval.py): every scan of one
// shuffle-Mamba block in one call, channel-last. A plain C ABI (raw pointers and sizes, an
// error code back) and no torch or pybind headers, so the system compiler builds it in a few
// seconds (ssm/mixer_kernel.py, loaded with ctypes) where the torch extension of the training
// scan (scan_cpu.cpp) takes ~30 s: a first `hgmamba lift` can wait for this one. Threads: built
// with -fopenmp (ssm/mixer_kernel.py does so only when the process's OpenMP runtime is torch's
// libgomp.so.1, which this library then shares: one thread team, torch's own, already awake
// after the GEMM before), else std::thread. A second thread team beside torch's spinning one
// halved this kernel's speed on 2 cores. The caller passes torch's thread count.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "scan_math.h"

namespace {

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
// softplus for one vector of lanes: max(x, 0) + log(1 + e^-|x|), as the scalar softplus_fn.
template <class S>
inline typename S::V softplus_v(typename S::V x) {
  using V = typename S::V;
  const V e = S::exp2(S::mul(S::abs(x), S::set1(-1.44269504088896341f)));
  const V s = S::div(e, S::add(e, S::set1(2.0f)));
  const V s2 = S::mul(s, s);
  V p = S::set1(1.0f / 13.0f);
  for (int j = 11; j >= 1; j -= 2) p = S::fmadd(p, s2, S::set1(1.0f / float(j)));
  return S::add(S::max(x, S::zero()), S::mul(S::add(s, s), p));
}
#endif

// G mixers (token orders), each a bidirectional pair of selective SSMs with its own weights;
// scan k = 2 g + dir (dir 0 walks the order forwards, 1 backwards). Rows are tokens in storage
// order, N = b * L. proj (2G, N, ld): row r of scan k holds u (d values) then the x_proj output
// (R dt-rank values, n B values, n C values), biases included (the caller's GEMM adds them:
// model/fast_eval.py gives it a column of ones). order (G, L): sequence position -> token row
// within one batch element. A2 (2G, d, n) = A log2(e); wdt (2G, d, R) and dt_bias (2G, d)
// make delta in-register; dskip (2G, d). gate (N, G, d); out (N, G, d) = gate * (y_fwd +
// y_bwd). Each task owns one (batch row, mixer, block of W channels) and runs both directions,
// so no two tasks write the same output and no flips or transposes are needed.
struct MixerArgs {
  const float *proj, *A2, *wdt, *dtb, *dskip, *gate;
  const uint16_t* proj16;  // the same rows as bf16 bit patterns (then proj is null), or null
  const int32_t* order;
  float* out;
  int64_t b, L, G, d, R, n, ld;
  int low;  // 1: the AVX-512 16-state scan may use the degree-3 2^x (kExp2Poly3)
};

#if defined(__SSE2__)
constexpr int64_t kAhead = 6;  // prefetch distance in tokens: temporal-first steps jump 17 rows
constexpr int64_t kChunk = 32;  // tokens per two-pass chunk of the 16-state scans

// Prefetch what the scan will read at sequence position s: the projection row's u (from channel
// c) and dt/B/C parts, and the gate and output rows (gate, out: already offset to the block).
template <class T>
inline void prefetch_token(const MixerArgs& a, const T* P, const int32_t* ord, int64_t bi,
                           int64_t s, int64_t c, const float* gate, const float* out) {
  const int64_t row = bi * a.L + ord[s];
  const char* pa = reinterpret_cast<const char*>(P + row * a.ld);
  _mm_prefetch(pa + sizeof(T) * c, _MM_HINT_T0);
  const int64_t tail = int64_t(sizeof(T)) * 48;  // 16 dt, 16 B, 16 C values at most (R <= 16)
  for (int64_t off = 0; off < tail; off += 64)
    _mm_prefetch(pa + sizeof(T) * a.d + off, _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(gate + row * a.G * a.d), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(out + row * a.G * a.d), _MM_HINT_T0);
}
#endif

// Per-(scan, channel block) constants: A2 as (n, W), wdt as (R, W), dt bias, D, and lim: the
// largest delta for which no delta * A2 of the channel falls below -126 (the AVX2 scan then
// needs no clamp before its 2^x).
struct MixerBlock {
  alignas(64) float A2[kMaxState * W];
  alignas(64) float wd[16 * W];
  alignas(64) float bias[W], Dv[W], lim[W];

  void setup(const MixerArgs& a, int64_t k, int64_t c0, int64_t valid) {
    const int64_t n = a.n, R = a.R;
    for (int64_t w = 0; w < W; ++w) {
      const bool ok = w < valid;
      const int64_t c = k * a.d + c0 + w;
      for (int64_t i = 0; i < n; ++i) A2[i * W + w] = ok ? a.A2[c * n + i] : 0.0f;
      for (int64_t r = 0; r < R; ++r) wd[r * W + w] = ok ? a.wdt[c * R + r] : 0.0f;
      bias[w] = ok ? a.dtb[c] : 0.0f;
      Dv[w] = ok ? a.dskip[c] : 0.0f;
      float amax = 0.0f;
      for (int64_t i = 0; i < n; ++i) amax = std::max(amax, -A2[i * W + w]);
      lim[w] = amax > 0.0f ? 126.0f / amax : 3.0e38f;
    }
  }

  // delta (softplus applied) and u of one token row (its dt/B/C values: q = pr + a.d).
  void token(const MixerArgs& a, const float* pr, int64_t c0, int64_t valid, float* u,
             float* dt) const {
    const float* q = pr + a.d;
    for (int64_t w = 0; w < W; ++w) u[w] = w < valid ? pr[c0 + w] : 0.0f;
#pragma omp simd
    for (int64_t w = 0; w < W; ++w) dt[w] = bias[w];
    for (int64_t r = 0; r < a.R; ++r) {
      const float qr = q[r];
#pragma omp simd
      for (int64_t w = 0; w < W; ++w) dt[w] += qr * wd[r * W + w];
    }
#pragma omp simd
    for (int64_t w = 0; w < W; ++w) dt[w] = softplus_fn(dt[w]);
  }
};

#if defined(__AVX512F__)
// 2^x for 16 lanes: the scalar vexp2's rounding and polynomial, with vscalefps doing the 2^k
// (no clamp needed: very negative x gives 0, and x <= 0 here). A degree-5 minimax polynomial
// (one FMA fewer) measured no faster on this kernel, so the two stay identical. Low: the
// degree-3 polynomial (three FMAs fewer; relative error 1e-4, for bf16 callers).
template <bool Low>
inline __m512 vexp2_16(__m512 x) {
  const __m512 k = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, k);
  const float* c = Low ? kExp2Poly3 : kExp2Poly;
  const int deg = Low ? 3 : 6;
  __m512 p = _mm512_set1_ps(c[0]);
  for (int j = 1; j <= deg; ++j) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c[j]));
  return _mm512_scalef_ps(p, k);
}

// The vector ops the width-generic softplus needs, for 16 lanes.
template <bool Low>
struct Lanes16 {
  using V = __m512;
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V zero() { return _mm512_setzero_ps(); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V abs(V x) { return _mm512_abs_ps(x); }
  static V exp2(V x) { return vexp2_16<Low>(x); }
};

// 16 lanes of a row (masked where `mask` is not all lanes), as float; bf16 rows (bit
// patterns) widened.
// Masked loads and stores only where a lane really is missing: on AMD Zen 4 / 5 one masked
// load or store per token cost more than the 16 states' arithmetic (all-lane masks included;
// the kernel took 1.7-2x the time of plain ones, bitwise the same output).
constexpr __mmask16 kAllLanes = 0xFFFF;
inline __m512 proj_load16(__mmask16 mask, const float* p) {
  return mask == kAllLanes ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask, p);
}
#if defined(__AVX512BW__) && defined(__AVX512VL__)
inline __m512 proj_load16(__mmask16 mask, const uint16_t* p) {
  const __m256i raw = mask == kAllLanes
                          ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                          : _mm256_maskz_loadu_epi16(mask, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}
#endif

// Adds v (dir 1) or writes it (dir 0) to lanes [skip, 16) of an output row whose lanes `mask`
// exist: lanes below skip belong to the channel block before (see mixer_task's shifted last
// block), written by their own task, so they are left alone (a scalar tail, no masked store).
inline void store_out16(float* p, __m512 v, __mmask16 mask, int64_t skip, int dir) {
  if (mask == kAllLanes && skip == 0) {
    _mm512_storeu_ps(p, dir == 0 ? v : _mm512_add_ps(_mm512_loadu_ps(p), v));
  } else if (mask != kAllLanes) {
    _mm512_mask_storeu_ps(p, mask, dir == 0 ? v : _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), v));
  } else {
    alignas(64) float tmp[16];
    _mm512_store_ps(tmp, v);
    for (int64_t w = skip; w < W; ++w) p[w] = dir == 0 ? tmp[w] : p[w] + tmp[w];
  }
}

// A token's dt, B and C values (count <= 48) as floats the scan broadcasts from memory: float
// rows in place; bf16 rows widened into buf first (three vector stores: broadcasting each of
// the 36 values straight from bf16 bits took more time than the float rows saved).
inline const float* token_values(const float* q, int64_t, float*) { return q; }
#if defined(__AVX512BW__) && defined(__AVX512VL__)
inline const float* token_values(const uint16_t* q, int64_t count, float* buf) {
  for (int64_t o = 0; o < count; o += 16) {
    const int64_t m = std::min<int64_t>(16, count - o);
    _mm512_store_ps(buf + o, proj_load16(__mmask16((1u << m) - 1u), q + o));
  }
  return buf;
}
#endif

// One direction of one scan, n = 16: the 16 states live in registers, everything per token
// is a handful of vector ops (masked loads only where d < 16). Lanes [0, skip) are computed
// but not stored (a shifted last block). T: float or bf16 (uint16_t bits) projection rows;
// Low: the degree-3 2^x.
template <bool Low, class T>
void mixer_scan_dir16(const MixerArgs& a, const T* proj, const MixerBlock& blk, int64_t bi,
                      int64_t g, int64_t c0, int64_t valid, int64_t skip, int dir) {
  const int64_t k = 2 * g + dir;
  const int64_t L = a.L, ld = a.ld, d = a.d, R = a.R;
  const int64_t GD = a.G * a.d;
  const __mmask16 mask = valid >= W ? kAllLanes : __mmask16((1u << valid) - 1u);
  const __m512 Dv = _mm512_load_ps(blk.Dv);
  const __m512 bias = _mm512_load_ps(blk.bias);
  __m512 h[16];
  for (int i = 0; i < 16; ++i) h[i] = _mm512_setzero_ps();
  const T* P = proj + k * a.b * L * ld;
  const int32_t* ord = a.order + g * L;
  const float* gate = a.gate + g * d + c0;
  float* out = a.out + g * d + c0;
  // Two passes per chunk of kChunk tokens: first delta, delta * u and D * u of every token
  // (independent across tokens, so they run at full throughput), then the recurrence, whose
  // per-token dependency chain is only 2^x -> h -> y: with the softplus inline, one token's
  // chain (~3x longer) did not fit the out-of-order window beside the next token's work.
  alignas(64) float dts[kChunk * W], dtus[kChunk * W], dus[kChunk * W];
  for (int64_t s0 = 0; s0 < L; s0 += kChunk) {
    const int64_t cn = std::min<int64_t>(kChunk, L - s0);
    for (int64_t t = 0; t < cn; ++t) {
      const int64_t step = s0 + t;
      const int64_t row = bi * L + ord[dir ? L - 1 - step : step];
      const T* pr = P + row * ld;
      alignas(64) float buf[16];
      const float* q = token_values(pr + d, R, buf);
      const __m512 uv = proj_load16(mask, pr + c0);
      __m512 raw = bias;
      for (int64_t r = 0; r < R; ++r)
        raw = _mm512_fmadd_ps(_mm512_set1_ps(q[r]), _mm512_load_ps(blk.wd + r * W), raw);
      const __m512 dtv = softplus_v<Lanes16<Low>>(raw);
      _mm512_store_ps(dts + t * W, dtv);
      _mm512_store_ps(dtus + t * W, _mm512_mul_ps(dtv, uv));
      _mm512_store_ps(dus + t * W, _mm512_mul_ps(Dv, uv));
    }
    for (int64_t t = 0; t < cn; ++t) {
      const int64_t step = s0 + t;
      const int64_t row = bi * L + ord[dir ? L - 1 - step : step];
      const T* pr = P + row * ld;
      if (step + kAhead < L)
        prefetch_token(a, P, ord, bi, dir ? L - 1 - step - kAhead : step + kAhead, c0, gate, out);
      alignas(64) float buf[32];
      const float* Bq = token_values(pr + d + R, 32, buf);  // 16 B, then 16 C
      const float* Cq = Bq + 16;
      const __m512 dtv = _mm512_load_ps(dts + t * W);
      const __m512 dtu = _mm512_load_ps(dtus + t * W);
      __m512 acc[4] = {_mm512_load_ps(dus + t * W), _mm512_setzero_ps(), _mm512_setzero_ps(),
                       _mm512_setzero_ps()};
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) {
        const __m512 decay = vexp2_16<Low>(_mm512_mul_ps(dtv, _mm512_load_ps(blk.A2 + i * W)));
        h[i] = _mm512_fmadd_ps(decay, h[i], _mm512_mul_ps(dtu, _mm512_set1_ps(Bq[i])));
        acc[i & 3] = _mm512_fmadd_ps(_mm512_set1_ps(Cq[i]), h[i], acc[i & 3]);
      }
      const __m512 y =
          _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
      const __m512 gy = _mm512_mul_ps(proj_load16(mask, gate + row * GD), y);
      store_out16(out + row * GD, gy, mask, skip, dir);
    }
  }
}

// The 16-state scan with the caller's choices (precision of 2^x, projection element type).
inline void mixer_scan16(const MixerArgs& a, const MixerBlock& blk, int64_t bi, int64_t g,
                         int64_t c0, int64_t valid, int64_t skip, int dir) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  if (a.proj16) {
    if (a.low)
      mixer_scan_dir16<true>(a, a.proj16, blk, bi, g, c0, valid, skip, dir);
    else
      mixer_scan_dir16<false>(a, a.proj16, blk, bi, g, c0, valid, skip, dir);
    return;
  }
#endif
  if (a.low)
    mixer_scan_dir16<true>(a, a.proj, blk, bi, g, c0, valid, skip, dir);
  else
    mixer_scan_dir16<false>(a, a.proj, blk, bi, g, c0, valid, skip, dir);
}
#endif

#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
// The AVX2 + FMA build (most laptops: no AVX-512): 8 lanes, so a task's W = 16 channels run as
// two halves, each a pass over the tokens with its 16 states in registers. Measured on a 2-core
// AMD EPYC (Zen 3, no AVX-512): the portable loops took 36 % of the XS forward pass.
// 2^x for 8 lanes, x <= 0, rounding by the magic-number add: k lands in the low bits of
// x + 1.5 * 2^23, so one shift makes k << 23, and one integer add of it to the bits of p, a
// degree-5 minimax polynomial of 2^f on [-0.5, 0.5] (relative error 3.3e-7; the degree-6
// Taylor one has 2.4e-7), scales p by 2^k exactly (no round / convert, and no multiply: the
// FMA pipes carry the rest of the scan; measured: the kernel 0.90x the time of p * 2^k). Clamp:
// x below -126 gives at most 2^-126 (0 after FTZ / DAZ); without it x must be >= -126, where
// p's exponent field (126 or 127) plus k stays >= 0 (the scan checks).
template <bool Clamp>
inline __m256 vexp2_8(__m256 x) {
  if (Clamp) x = _mm256_max_ps(x, _mm256_set1_ps(-126.0f));
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256 kf = _mm256_add_ps(x, magic);
  const __m256 f = _mm256_sub_ps(x, _mm256_sub_ps(kf, magic));
  __m256 p = _mm256_set1_ps(kExp2Poly5[0]);
  for (int j = 1; j < 6; ++j) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2Poly5[j]));
  const __m256i k23 = _mm256_slli_epi32(_mm256_castps_si256(kf), 23);
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), k23));
}

// The vector ops the width-generic softplus needs, for 8 lanes.
struct Lanes8 {
  using V = __m256;
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V zero() { return _mm256_setzero_ps(); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V abs(V x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
  static V exp2(V x) { return vexp2_8<true>(x); }
};

// Lanes [0, nv) of 8 as a maskload / maskstore mask.
inline __m256i lane_mask8(int64_t nv) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(nv)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 8 lanes of a row: plain loads and stores for a full half, masked loads and a scalar tail
// store for a partial one (a vmaskmovps store is microcoded on AMD Zen: with one per token it
// took more time than the 16 states' arithmetic).
template <bool Full>
inline __m256 load8(const float* p, __m256i mask) {
  return Full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

template <bool Full>
inline void store8(float* p, __m256 v, int64_t nv) {
  if (Full) {
    _mm256_storeu_ps(p, v);
  } else {
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, v);
    for (int64_t w = 0; w < nv; ++w) p[w] = tmp[w];
  }
}

// The 16 states of one token: h = 2^(delta A2) h + delta u B, y += C h (into two accumulators).
template <bool Clamp>
inline void states16(const float* A2, __m256 dtv, __m256 dtu, const float* Bq, const float* Cq,
                     __m256* h, __m256& acc0, __m256& acc1) {
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) {
    const __m256 decay = vexp2_8<Clamp>(_mm256_mul_ps(dtv, _mm256_load_ps(A2 + i * W)));
    h[i] = _mm256_fmadd_ps(decay, h[i], _mm256_mul_ps(dtu, _mm256_set1_ps(Bq[i])));
    if (i & 1)
      acc1 = _mm256_fmadd_ps(_mm256_set1_ps(Cq[i]), h[i], acc1);
    else
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(Cq[i]), h[i], acc0);
  }
}

// One direction of one scan, n = 16, channels [c0 + h0, c0 + h0 + nv) of the task's block
// (Full: nv = 8).
template <bool Full>
void mixer_scan_half16(const MixerArgs& a, const MixerBlock& blk, int64_t bi, int64_t g,
                       int64_t c0, int64_t h0, int64_t nv, int dir) {
  const int64_t k = 2 * g + dir;
  const int64_t L = a.L, ld = a.ld, d = a.d, R = a.R;
  const int64_t GD = a.G * a.d;
  const __m256i mask = lane_mask8(nv);
  const __m256 Dv = _mm256_load_ps(blk.Dv + h0);
  const __m256 bias = _mm256_load_ps(blk.bias + h0), lim = _mm256_load_ps(blk.lim + h0);
  __m256 h[16];
  for (int i = 0; i < 16; ++i) h[i] = _mm256_setzero_ps();
  const float* P = a.proj + k * a.b * L * ld;
  const int32_t* ord = a.order + g * L;
  const float* gate = a.gate + g * d + c0 + h0;
  float* out = a.out + g * d + c0 + h0;
  // two passes per chunk of tokens, as the AVX-512 scan (mixer_scan_dir16): delta, delta * u,
  // D * u and whether the 2^x needs its clamp first, then the recurrence
  alignas(32) float dts[kChunk * 8], dtus[kChunk * 8], dus[kChunk * 8];
  bool clamp[kChunk];
  for (int64_t s0 = 0; s0 < L; s0 += kChunk) {
    const int64_t cn = std::min<int64_t>(kChunk, L - s0);
    for (int64_t t = 0; t < cn; ++t) {
      const int64_t step = s0 + t;
      const float* pr = P + (bi * L + ord[dir ? L - 1 - step : step]) * ld;
      const float* pq = pr + d;
      const __m256 uv = load8<Full>(pr + c0 + h0, mask);
      __m256 raw = bias;
      for (int64_t r = 0; r < R; ++r)
        raw = _mm256_fmadd_ps(_mm256_set1_ps(pq[r]), _mm256_load_ps(blk.wd + r * W + h0), raw);
      const __m256 dtv = softplus_v<Lanes8>(raw);
      _mm256_store_ps(dts + t * 8, dtv);
      _mm256_store_ps(dtus + t * 8, _mm256_mul_ps(dtv, uv));
      _mm256_store_ps(dus + t * 8, _mm256_mul_ps(Dv, uv));
      // no clamp in the 2^x when no lane's delta passes its lim (one compare per token)
      clamp[t] = _mm256_movemask_ps(_mm256_cmp_ps(dtv, lim, _CMP_GT_OQ)) != 0;
    }
    for (int64_t t = 0; t < cn; ++t) {
      const int64_t step = s0 + t;
      const int64_t row = bi * L + ord[dir ? L - 1 - step : step];
      const float* pq = P + row * ld + d;  // dt, then 16 B, then 16 C values of this token
      if (step + kAhead < L)
        prefetch_token(a, P, ord, bi, dir ? L - 1 - step - kAhead : step + kAhead, c0 + h0,
                       gate, out);
      const __m256 dtv = _mm256_load_ps(dts + t * 8), dtu = _mm256_load_ps(dtus + t * 8);
      __m256 acc0 = _mm256_load_ps(dus + t * 8), acc1 = _mm256_setzero_ps();
      if (clamp[t])
        states16<true>(blk.A2 + h0, dtv, dtu, pq + R, pq + R + 16, h, acc0, acc1);
      else
        states16<false>(blk.A2 + h0, dtv, dtu, pq + R, pq + R + 16, h, acc0, acc1);
      const __m256 gy =
          _mm256_mul_ps(load8<Full>(gate + row * GD, mask), _mm256_add_ps(acc0, acc1));
      float* orow = out + row * GD;
      store8<Full>(orow, dir == 0 ? gy : _mm256_add_ps(load8<Full>(orow, mask), gy), nv);
    }
  }
}
#endif

// One direction of one scan, any n (portable; the compiler vectorizes over the W lanes).
void mixer_scan_dir(const MixerArgs& a, const MixerBlock& blk, int64_t bi, int64_t g,
                    int64_t c0, int64_t valid, int dir) {
  const int64_t n = a.n;
  const int64_t k = 2 * g + dir;
  const int64_t N = a.b * a.L;
  alignas(64) float h[kMaxState * W];
  std::fill(h, h + n * W, 0.0f);
  const float* P = a.proj + k * N * a.ld;
  const int32_t* ord = a.order + g * a.L;
  const int64_t GD = a.G * a.d;
  for (int64_t step = 0; step < a.L; ++step) {
    const int64_t s = dir ? a.L - 1 - step : step;
    const int64_t row = bi * a.L + ord[s];
    alignas(64) float u[W], dt[W], dtu[W], acc[W];
    const float* q = P + row * a.ld + a.d;
    blk.token(a, P + row * a.ld, c0, valid, u, dt);
#pragma omp simd
    for (int64_t w = 0; w < W; ++w) {
      dtu[w] = dt[w] * u[w];
      acc[w] = blk.Dv[w] * u[w];
    }
    const float* Bq = q + a.R;
    const float* Cq = q + a.R + n;
    for (int64_t i = 0; i < n; ++i) {
      const float bq = Bq[i], cq = Cq[i];
      float* hi = h + i * W;
      const float* ai = blk.A2 + i * W;
#pragma omp simd
      for (int64_t w = 0; w < W; ++w) {
        const float hn = vexp2(dt[w] * ai[w]) * hi[w] + dtu[w] * bq;
        hi[w] = hn;
        acc[w] += cq * hn;
      }
    }
    const float* gr = a.gate + row * GD + g * a.d + c0;
    float* orow = a.out + row * GD + g * a.d + c0;
    for (int64_t w = 0; w < valid; ++w) orow[w] = (dir ? orow[w] : 0.0f) + gr[w] * acc[w];
  }
}

// One task: batch row, mixer, block of W channels; both directions (dir 1 adds onto dir 0).
void mixer_task(const MixerArgs& a, MixerBlock& blk, int64_t task, int64_t nblk) {
  const int64_t bi = task / (a.G * nblk);
  const int64_t g = (task / nblk) % a.G;
  const int64_t c0 = (task % nblk) * W;
  const int64_t valid = std::min<int64_t>(W, a.d - c0);
  for (int dir = 0; dir < 2; ++dir) {
#if defined(__AVX512F__)
    if (a.n == 16) {
      // a partial last block (XS: d = 99 = 6 x 16 + 3) runs shifted back to end at d, all 16
      // lanes real channels, so its loads need no mask; only its own lanes are stored
      const int64_t skip = valid < W && a.d >= W ? W - valid : 0;
      blk.setup(a, 2 * g + dir, c0 - skip, valid + skip);
      mixer_scan16(a, blk, bi, g, c0 - skip, valid + skip, skip, dir);
      continue;
    }
#endif
    blk.setup(a, 2 * g + dir, c0, valid);
#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
    if (a.n == 16) {
      for (int64_t h0 = 0; h0 < valid; h0 += 8) {
        const int64_t nv = std::min<int64_t>(8, valid - h0);
        if (nv == 8)
          mixer_scan_half16<true>(a, blk, bi, g, c0, h0, nv, dir);
        else
          mixer_scan_half16<false>(a, blk, bi, g, c0, h0, nv, dir);
      }
      continue;
    }
#endif
    mixer_scan_dir(a, blk, bi, g, c0, valid, dir);
  }
}

// Tasks handed out one at a time from a shared counter (a busy core takes fewer of them).
void mixer_worker(const MixerArgs& a, std::atomic<int64_t>& next, int64_t ntask, int64_t nblk) {
#if defined(__SSE2__)
  // Flush denormals to zero in this thread (FTZ | DAZ): decays near 2^-126 and states that
  // fade out are otherwise denormal, and each denormal operation costs a microcode assist.
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040);
#endif
  MixerBlock blk;
  for (int64_t task = next.fetch_add(1); task < ntask; task = next.fetch_add(1))
    mixer_task(a, blk, task, nblk);
#if defined(__SSE2__)
  _mm_setcsr(csr);
#endif
}

// The calling thread works too; a thread that cannot be started leaves its share to the rest.
void mixer_kernel(const MixerArgs& a, int threads) {
  const int64_t nblk = (a.d + W - 1) / W;
  const int64_t ntask = a.b * a.G * nblk;
  std::atomic<int64_t> next{0};
  const int64_t team = std::min<int64_t>(std::max(threads, 1), ntask);
#if defined(_OPENMP)
  if (team > 1) {
#pragma omp parallel num_threads(int(team))
    mixer_worker(a, next, ntask, nblk);
    return;
  }
#endif
  std::vector<std::thread> pool;
  try {
    for (int64_t t = 0; t + 1 < team; ++t)
      pool.emplace_back(mixer_worker, std::cref(a), std::ref(next), ntask, nblk);
  } catch (const std::system_error&) {
  }
  mixer_worker(a, next, ntask, nblk);
  for (auto& t : pool) t.join();
}

// The checks the caller (ssm/mixer_kernel.py) makes first, repeated so a bad call from
// anywhere is an error code, never a read out of bounds.
int check_args(const MixerArgs& a) {
  if (a.b < 1 || a.L < 1 || a.G < 1 || a.d < 1 || a.n < 1 || a.R < 0) return 1;
  if (a.n > kMaxState || a.R > 16 || a.ld < a.d + a.R + 2 * a.n) return 1;
  for (int64_t j = 0; j < a.G * a.L; ++j)
    if (a.order[j] < 0 || a.order[j] >= a.L) return 2;
  return 0;
}

}  // namespace

extern "C" {

// 1 when this build's 16-state scan reads bf16 projections (AVX-512 with BW and VL), else 0.
__attribute__((visibility("default"))) int hgmamba_mixer_bf16() {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  return 1;
#else
  return 0;
#endif
}

// Error codes of hgmamba_mixer_forward.
enum { kOk = 0, kBadSizes = 1, kBadOrder = 2, kFailed = 3 };

// Layouts as in the comment above MixerArgs (all contiguous float32, order int32); out must not
// alias any input. threads: how many threads to use (torch.get_num_threads()). flags: bit 0
// lets the AVX-512 16-state scan use a 2^x of relative error 1e-4 (the caller's results go on
// in bf16; the other builds compute as without it); bit 1: proj holds bf16 values (only where
// hgmamba_mixer_bf16() is 1 and n = 16, else kBadSizes).
__attribute__((visibility("default"))) int hgmamba_mixer_forward(
    const void* proj, const int32_t* order, const float* A2,
    const float* wdt, const float* dt_bias, const float* dskip, const float* gate, float* out,
    int64_t b, int64_t L, int64_t G, int64_t d, int64_t R, int64_t n, int64_t ld,
    int32_t threads, int32_t flags) {
  const bool bf16 = flags & 2;
  if (bf16 && !(hgmamba_mixer_bf16() && n == 16)) return kBadSizes;
  const MixerArgs a{bf16 ? nullptr : static_cast<const float*>(proj),
                    A2, wdt, dt_bias, dskip, gate,
                    bf16 ? static_cast<const uint16_t*>(proj) : nullptr,
                    order, out, b, L, G, d, R, n, ld, flags & 1};
  const int bad = check_args(a);
  if (bad != kOk) return bad;
  try {
    mixer_kernel(a, threads);
  } catch (...) {
    return kFailed;
  }
  return kOk;
}

// 1 when this build runs its threads in an OpenMP team, 0 for std::thread.
__attribute__((visibility("default"))) int hgmamba_mixer_openmp() {
#if defined(_OPENMP)
  return 1;
#else
  return 0;
#endif
}

// For n = 16: 2 when this build runs the AVX-512 kernel, 1 the AVX2 one, 0 the portable loops.
__attribute__((visibility("default"))) int hgmamba_mixer_simd() {
#if defined(__AVX512F__)
  return 2;
#elif defined(__AVX2__) && defined(__FMA__)
  return 1;
#else
  return 0;
#endif
}

}  // extern "C"
