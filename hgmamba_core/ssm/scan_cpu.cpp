// Fused selective scan for the CPU: one walk over L with the state in local memory, one walk
// back for the gradient; parallel over (batch, block of W channels) with ATen's thread pool.
//
// SIMD lanes run over W = 16 channels of one batch row, so the n state updates of a step are
// n independent vector FMAs (no horizontal sums on the forward path) and the recurrence is
// never latency-bound. Inputs are read in time chunks of TC steps and transposed into small
// (TC, W) tiles; softplus, the silu gate and exp are vectorizable (no libm calls per element).
//
// Layouts (all contiguous): u, delta, z, out: (b, d, L); A: (d, n); Bt, Ct: (b, L, n)
// (B and C transposed so one step's n values are adjacent); D, delta_bias: (d,) or empty.
//
// mixer_forward (eval only, no autograd) is the CPU fast path's kernel (model/fast_eval.py):
// all four scans of one shuffle-Mamba block in one call, channel-last; see its comment below.
// torch/types.h + the pybind casters, not torch/extension.h (the whole C++ frontend): the
// build takes 26 s of CPU instead of 45 s here, and a first build is what a newcomer waits for.
#include <torch/types.h>
#include <torch/csrc/utils/pybind.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

constexpr int64_t W = 16;   // channels per task = SIMD lanes
constexpr int64_t TC = 16;  // time steps per tile
constexpr int64_t kMaxState = 256;

// 2^x the compiler can vectorize (libm's exp2f is a scalar call). Round to nearest by the
// 1.5 * 2^23 trick, then a degree-6 Taylor polynomial of 2^f on [-0.5, 0.5] (relative error
// < 2e-7); exactly 0 below 2^-126 (no denormals), saturating at 2^127. The scan's decays are
// exp(dt A) = 2^(dt A2) with A2 = A log2(e) scaled once per task (measured against a Cephes
// natural-base exp inline: forward scan 10-13 % faster, backward 5-8 %).
inline float vexp2(float x) {
  const float xc = std::min(std::max(x, -127.0f), 127.0f);
  const float kf = xc + 12582912.0f;
  const float k = kf - 12582912.0f;
  const float f = xc - k;
  float p = 1.5403530393381606e-4f;
  p = p * f + 1.3333558146428443e-3f;
  p = p * f + 9.6181291076284772e-3f;
  p = p * f + 5.5504108664821580e-2f;
  p = p * f + 2.4022650695910071e-1f;
  p = p * f + 6.9314718055994531e-1f;
  p = p * f + 1.0f;
  int32_t kb;
  std::memcpy(&kb, &kf, sizeof(kb));
  const int32_t bits = (kb - 0x4B400000 + 127) << 23;  // k + 127 in the exponent field
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

inline double vexp2(double x) { return std::exp2(x); }

// e^x for softplus and sigmoid.
inline float vexp(float x) { return vexp2(x * 1.44269504088896341f); }

inline double vexp(double x) { return std::exp(x); }

// log(1 + e) for e in [0, 1] via 2 atanh(e / (2 + e)); series error < 1e-8.
inline float vlog1p_unit(float e) {
  const float s = e / (2.0f + e);
  const float s2 = s * s;
  float p = 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}

inline double vlog1p_unit(double e) { return std::log1p(e); }

// out[i] = sum over w of rows[i * 16 + w], for 16 rows of 16 floats.
inline void row_sums_16(const float* rows, float* out) {
#if defined(__AVX512F__)
  // Transpose-and-add in four rounds (46 shuffles/adds instead of 16 horizontal sums).
  __m512 s1[8], s2[4], s3[2];
  for (int k = 0; k < 8; ++k) {  // lanes 0-7: row k partials, 8-15: row k + 8
    const __m512 a = _mm512_loadu_ps(rows + 16 * k), b = _mm512_loadu_ps(rows + 16 * (k + 8));
    s1[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  }
  for (int k = 0; k < 4; ++k)  // 128-bit blocks: rows k, k + 8, k + 4, k + 12
    s2[k] = _mm512_add_ps(_mm512_shuffle_f32x4(s1[k], s1[k + 4], 0x88),
                          _mm512_shuffle_f32x4(s1[k], s1[k + 4], 0xDD));
  for (int k = 0; k < 2; ++k)
    s3[k] = _mm512_add_ps(_mm512_shuffle_ps(s2[k], s2[k + 2], 0x44),
                          _mm512_shuffle_ps(s2[k], s2[k + 2], 0xEE));
  const __m512 s4 = _mm512_add_ps(_mm512_shuffle_ps(s3[0], s3[1], 0x88),
                                  _mm512_shuffle_ps(s3[0], s3[1], 0xDD));
  // s4 holds rows 0 2 1 3 8 10 9 11 4 6 5 7 12 14 13 15; put them in order.
  const __m512i pos = _mm512_setr_epi32(0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15);
  _mm512_storeu_ps(out, _mm512_permutexvar_ps(pos, s4));
#else
  for (int i = 0; i < 16; ++i) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int w = 0; w < 16; ++w) acc += rows[i * 16 + w];
    out[i] = acc;
  }
#endif
}

template <typename T>
inline T softplus_fn(T x) {
  return std::max(x, T(0)) + vlog1p_unit(vexp(-std::abs(x)));
}

template <typename T>
inline T sigmoid_fn(T x) {
  return T(1) / (T(1) + vexp(-x));
}

struct Dims {
  int64_t b, d, L, n;
};

struct Optional {
  bool D, z, bias, softplus;
};

// Copy rows [c0, c0 + W) x [t0, t0 + tl) of a (b, d, L) tensor into tile[t][w]; missing
// channels (past d) read as zero.
template <typename T>
inline void load_tile(const T* src, int64_t row0, int64_t valid, int64_t L, int64_t t0,
                      int64_t tl, T* tile) {
  for (int64_t w = 0; w < W; ++w) {
    if (w < valid) {
      const T* s = src + (row0 + w) * L + t0;
      for (int64_t t = 0; t < tl; ++t) tile[t * W + w] = s[t];
    } else {
      for (int64_t t = 0; t < tl; ++t) tile[t * W + w] = T(0);
    }
  }
}

template <typename T>
inline void store_tile(const T* tile, int64_t row0, int64_t valid, int64_t L, int64_t t0,
                       int64_t tl, T* dst) {
  for (int64_t w = 0; w < valid; ++w) {
    T* s = dst + (row0 + w) * L + t0;
    for (int64_t t = 0; t < tl; ++t) s[t] = tile[t * W + w];
  }
}

// Per-task constants and the tiles of one time chunk.
template <typename T>
struct Block {
  int64_t bi, c0, valid, row0;
  std::vector<T> A;     // (n, W)
  std::vector<T> A2;    // (n, W): A * log2(e), the decays' exponent for vexp2
  T D[W], bias[W];
  T raw[TC * W];        // delta + bias
  T dt[TC * W];         // after softplus
  T u[TC * W];
  T dtu[TC * W];
  T z[TC * W];

  Block(int64_t n) : A(static_cast<size_t>(n * W)), A2(static_cast<size_t>(n * W)) {}

  void setup(const T* A_, const T* D_, const T* bias_, Dims s, int64_t task, int64_t nblk) {
    bi = task / nblk;
    c0 = (task % nblk) * W;
    valid = std::min<int64_t>(W, s.d - c0);
    row0 = bi * s.d + c0;
    for (int64_t i = 0; i < s.n; ++i)
      for (int64_t w = 0; w < W; ++w) {
        A[i * W + w] = w < valid ? A_[(c0 + w) * s.n + i] : T(0);
        A2[i * W + w] = A[i * W + w] * T(1.4426950408889634);
      }
    for (int64_t w = 0; w < W; ++w) {
      D[w] = (D_ && w < valid) ? D_[c0 + w] : T(0);
      bias[w] = (bias_ && w < valid) ? bias_[c0 + w] : T(0);
    }
  }

  // dt and dt*u for steps [t0, t0 + tl); z too when given.
  void load(const T* u_, const T* delta_, const T* z_, bool softplus, Dims s, int64_t t0,
            int64_t tl) {
    load_tile(delta_, row0, valid, s.L, t0, tl, raw);
    load_tile(u_, row0, valid, s.L, t0, tl, u);
    if (z_) load_tile(z_, row0, valid, s.L, t0, tl, z);
    for (int64_t t = 0; t < tl; ++t) {
#pragma omp simd
      for (int64_t w = 0; w < W; ++w) {
        const T x = raw[t * W + w] + bias[w];
        raw[t * W + w] = x;
        const T v = softplus ? softplus_fn(x) : x;
        dt[t * W + w] = v;
        dtu[t * W + w] = v * u[t * W + w];
      }
    }
  }
};

template <typename T, int NT>
void forward_kernel(const T* u, const T* delta, const T* A, const T* Bt, const T* Ct, const T* D,
                    const T* z, const T* bias, bool softplus, T* out, T* ckpt, Dims s) {
  const int64_t n = NT > 0 ? NT : s.n;
  const int64_t nblk = (s.d + W - 1) / W;
  const int64_t nchunks = (s.L + TC - 1) / TC;
  at::parallel_for(0, s.b * nblk, 1, [&](int64_t begin, int64_t end) {
    Block<T> blk(n);
    std::vector<T> hv(static_cast<size_t>(n * W));
    T* h = hv.data();
    T y[TC * W];
    for (int64_t task = begin; task < end; ++task) {
      blk.setup(A, D, bias, s, task, nblk);
      const T* A2 = blk.A2.data();
      std::fill(hv.begin(), hv.end(), T(0));
      for (int64_t t0 = 0; t0 < s.L; t0 += TC) {
        const int64_t tl = std::min(TC, s.L - t0);
        if (ckpt) std::memcpy(ckpt + (task * nchunks + t0 / TC) * n * W, h, sizeof(T) * n * W);
        blk.load(u, delta, z, softplus, s, t0, tl);
        for (int64_t t = 0; t < tl; ++t) {
          const T* Bq = Bt + (blk.bi * s.L + t0 + t) * n;
          const T* Cq = Ct + (blk.bi * s.L + t0 + t) * n;
          const T* dtt = blk.dt + t * W;
          const T* dtut = blk.dtu + t * W;
          T acc[W];
#pragma omp simd
          for (int64_t w = 0; w < W; ++w) acc[w] = blk.D[w] * blk.u[t * W + w];
          for (int64_t i = 0; i < n; ++i) {
            const T bq = Bq[i];
            const T cq = Cq[i];
            T* hi = h + i * W;
            const T* ai = A2 + i * W;
#pragma omp simd
            for (int64_t w = 0; w < W; ++w) {
              const T hn = vexp2(dtt[w] * ai[w]) * hi[w] + dtut[w] * bq;
              hi[w] = hn;
              acc[w] += cq * hn;
            }
          }
          if (z) {
#pragma omp simd
            for (int64_t w = 0; w < W; ++w) {
              const T zz = blk.z[t * W + w];
              acc[w] *= zz * sigmoid_fn(zz);
            }
          }
          std::memcpy(y + t * W, acc, sizeof(acc));
        }
        store_tile(y, blk.row0, blk.valid, s.L, t0, tl, out);
      }
    }
  });
}

// Gradients. Each task first runs forward keeping the state at every chunk start, then walks
// the chunks backwards: recompute the chunk's states and decays, then step back through it.
// dB, dC are sums over channels: each task writes its own (L, n) slice of a (b, nblk, L, n)
// buffer; dA, dD go to (b, d, ...) partials. The caller sums partials: no shared writes.
template <typename T, int NT>
void backward_kernel(const T* u, const T* delta, const T* A, const T* Bt, const T* Ct,
                     const T* D, const T* z, const T* bias, bool softplus, const T* saved,
                     const T* dout, T* du,
                     T* ddelta, T* dA_part, T* dB_part, T* dC_part, T* dD_part, T* dz, Dims s) {
  const int64_t n = NT > 0 ? NT : s.n;
  const int64_t nblk = (s.d + W - 1) / W;
  const int64_t nchunks = (s.L + TC - 1) / TC;
  const int64_t nw = n * W;
  at::parallel_for(0, s.b * nblk, 1, [&](int64_t begin, int64_t end) {
    Block<T> blk(n);
    std::vector<T> own(saved ? 0 : static_cast<size_t>(nchunks * nw));  // states entering chunks
    std::vector<T> hbuf(static_cast<size_t>(TC * nw));       // h_t in the chunk, then g h_t
    std::vector<T> abuf(static_cast<size_t>(TC * nw));       // exp(dt A), then dh dt u
    std::vector<T> hv(static_cast<size_t>(nw)), dhv(static_cast<size_t>(nw));
    std::vector<T> dAv(static_cast<size_t>(nw));
    T* h = hv.data();
    T* dh = dhv.data();
    T* dAl = dAv.data();
    T g[TC * W], du_t[TC * W], dd_t[TC * W], dz_t[TC * W];
    for (int64_t task = begin; task < end; ++task) {
      blk.setup(A, D, bias, s, task, nblk);
      const T* Ab = blk.A.data();
      const T* A2 = blk.A2.data();
      const T* Bb = Bt + blk.bi * s.L * n;
      const T* Cb = Ct + blk.bi * s.L * n;
      T* dBb = dB_part + task * s.L * n;
      T* dCb = dC_part + task * s.L * n;
      const T* ckpt = saved ? saved + task * nchunks * nw : own.data();
      // Forward again for the checkpoints unless the forward pass saved them.
      std::fill(hv.begin(), hv.end(), T(0));
      for (int64_t c = 0; !saved && c < nchunks; ++c) {
        const int64_t t0 = c * TC;
        const int64_t tl = std::min(TC, s.L - t0);
        std::memcpy(own.data() + c * nw, h, sizeof(T) * nw);
        if (c == nchunks - 1) break;
        blk.load(u, delta, nullptr, softplus, s, t0, tl);
        for (int64_t t = 0; t < tl; ++t) {
          const T* Bq = Bb + (t0 + t) * n;
          const T* dtt = blk.dt + t * W;
          const T* dtut = blk.dtu + t * W;
          for (int64_t i = 0; i < n; ++i) {
            const T bq = Bq[i];
            T* hi = h + i * W;
            const T* ai = A2 + i * W;
#pragma omp simd
            for (int64_t w = 0; w < W; ++w) hi[w] = vexp2(dtt[w] * ai[w]) * hi[w] + dtut[w] * bq;
          }
        }
      }
      // Backward, chunk by chunk.
      std::fill(dhv.begin(), dhv.end(), T(0));
      std::fill(dAv.begin(), dAv.end(), T(0));
      T dDl[W];
      for (int64_t w = 0; w < W; ++w) dDl[w] = T(0);
      for (int64_t c = nchunks - 1; c >= 0; --c) {
        const int64_t t0 = c * TC;
        const int64_t tl = std::min(TC, s.L - t0);
        blk.load(u, delta, z, softplus, s, t0, tl);
        load_tile(dout, blk.row0, blk.valid, s.L, t0, tl, g);
        // Recompute states and decays of this chunk (and y where the gate needs it).
        std::memcpy(h, ckpt + c * nw, sizeof(T) * nw);
        for (int64_t t = 0; t < tl; ++t) {
          const T* Bq = Bb + (t0 + t) * n;
          const T* Cq = Cb + (t0 + t) * n;
          const T* dtt = blk.dt + t * W;
          const T* dtut = blk.dtu + t * W;
          T* ht = hbuf.data() + t * nw;
          T* at = abuf.data() + t * nw;
          T acc[W];
#pragma omp simd
          for (int64_t w = 0; w < W; ++w) acc[w] = blk.D[w] * blk.u[t * W + w];
          for (int64_t i = 0; i < n; ++i) {
            const T bq = Bq[i];
            const T cq = Cq[i];
            T* hi = h + i * W;
            const T* ai = A2 + i * W;
#pragma omp simd
            for (int64_t w = 0; w < W; ++w) {
              const T a = vexp2(dtt[w] * ai[w]);
              const T hn = a * hi[w] + dtut[w] * bq;
              hi[w] = hn;
              at[i * W + w] = a;
              ht[i * W + w] = hn;
              acc[w] += cq * hn;
            }
          }
          if (z) {
#pragma omp simd
            for (int64_t w = 0; w < W; ++w) {
              const T zz = blk.z[t * W + w];
              const T sg = sigmoid_fn(zz);
              const T gg = g[t * W + w];
              dz_t[t * W + w] = gg * acc[w] * sg * (T(1) + zz * (T(1) - sg));
              g[t * W + w] = gg * zz * sg;
            }
          }
        }
        // Step back through the chunk.
        for (int64_t t = tl - 1; t >= 0; --t) {
          const T* Bq = Bb + (t0 + t) * n;
          const T* Cq = Cb + (t0 + t) * n;
          const T* dtt = blk.dt + t * W;
          const T* dtut = blk.dtu + t * W;
          const T* ut = blk.u + t * W;
          const T* gt = g + t * W;
          T* ht = hbuf.data() + t * nw;
          T* at = abuf.data() + t * nw;
          const T* hp = t > 0 ? hbuf.data() + (t - 1) * nw : ckpt + c * nw;
          T ddt[W], dhB[W];
#pragma omp simd
          for (int64_t w = 0; w < W; ++w) {
            ddt[w] = T(0);
            dhB[w] = T(0);
            dDl[w] += gt[w] * ut[w];
          }
          for (int64_t i = 0; i < n; ++i) {
            const T bq = Bq[i];
            const T cq = Cq[i];
            T* dhi = dh + i * W;
            T* dai = dAl + i * W;
            const T* ai = Ab + i * W;
#pragma omp simd
            for (int64_t w = 0; w < W; ++w) {
              const T dhn = dhi[w] + gt[w] * cq;
              const T a = at[i * W + w];
              const T q = dhn * hp[i * W + w] * a;
              ddt[w] += q * ai[w];
              dai[w] += q * dtt[w];
              dhB[w] += dhn * bq;
              ht[i * W + w] *= gt[w];          // -> g h_t, summed into dC below
              at[i * W + w] = dhn * dtut[w];   // -> dh dt u, summed into dB below
              dhi[w] = dhn * a;
            }
          }
#pragma omp simd
          for (int64_t w = 0; w < W; ++w) {
            T d = ddt[w] + dhB[w] * ut[w];
            if (softplus) d *= sigmoid_fn(blk.raw[t * W + w]);
            dd_t[t * W + w] = d;
            du_t[t * W + w] = gt[w] * blk.D[w] + dhB[w] * dtt[w];
          }
        }
        // Sum the per-channel dB, dC terms over the W lanes.
        for (int64_t t = 0; t < tl; ++t) {
          const T* ht = hbuf.data() + t * nw;
          const T* at = abuf.data() + t * nw;
          T* dCq = dCb + (t0 + t) * n;
          T* dBq = dBb + (t0 + t) * n;
          if constexpr (std::is_same_v<T, float> && NT == 16 && W == 16) {
            row_sums_16(ht, dCq);
            row_sums_16(at, dBq);
            continue;
          }
          for (int64_t i = 0; i < n; ++i) {
            T sc = T(0), sb = T(0);
#pragma omp simd reduction(+ : sc, sb)
            for (int64_t w = 0; w < W; ++w) {
              sc += ht[i * W + w];
              sb += at[i * W + w];
            }
            dCq[i] = sc;
            dBq[i] = sb;
          }
        }
        store_tile(du_t, blk.row0, blk.valid, s.L, t0, tl, du);
        store_tile(dd_t, blk.row0, blk.valid, s.L, t0, tl, ddelta);
        if (z) store_tile(dz_t, blk.row0, blk.valid, s.L, t0, tl, dz);
      }
      for (int64_t w = 0; w < blk.valid; ++w) {
        for (int64_t i = 0; i < n; ++i) dA_part[(blk.row0 + w) * n + i] = dAl[i * W + w];
        dD_part[blk.row0 + w] = dDl[w];
      }
    }
  });
}

void check_inputs(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                  const torch::Tensor& Bt, const torch::Tensor& Ct) {
  TORCH_CHECK(u.device().is_cpu(), "fused selective scan runs on the CPU only");
  TORCH_CHECK(u.dim() == 3 && delta.sizes() == u.sizes(), "u and delta must be (b, d, L)");
  TORCH_CHECK(A.dim() == 2 && A.size(0) == u.size(1), "A must be (d, n)");
  TORCH_CHECK(A.size(1) <= kMaxState, "state size n must be <= 256");
  TORCH_CHECK(Bt.dim() == 3 && Bt.size(0) == u.size(0) && Bt.size(1) == u.size(2) &&
                  Bt.size(2) == A.size(1),
              "B must be (b, n, L)");
  TORCH_CHECK(Ct.sizes() == Bt.sizes(), "C must be (b, n, L)");
  for (const auto* t : {&u, &delta, &A, &Bt, &Ct}) {
    TORCH_CHECK(t->is_contiguous() && t->scalar_type() == u.scalar_type(),
                "fused selective scan expects contiguous tensors of one dtype");
  }
}

template <typename T>
const T* opt_ptr(const torch::Tensor& t) {
  return t.numel() > 0 ? t.data_ptr<T>() : nullptr;
}

// Returns y and, when `save` is set, the state entering every time chunk (what backward needs
// to skip its own forward pass): (b * ceil(d / W), ceil(L / TC), n, W).
std::vector<torch::Tensor> scan_forward(torch::Tensor u, torch::Tensor delta, torch::Tensor A,
                                        torch::Tensor Bt, torch::Tensor Ct, torch::Tensor D,
                                        torch::Tensor z, torch::Tensor bias, bool softplus,
                                        bool save) {
  check_inputs(u, delta, A, Bt, Ct);
  auto out = torch::empty_like(u);
  const Dims s{u.size(0), u.size(1), u.size(2), A.size(1)};
  const int64_t nblk = (s.d + W - 1) / W;
  const int64_t nchunks = (s.L + TC - 1) / TC;
  auto ckpt = save ? torch::empty({s.b * nblk, nchunks, s.n, W}, u.options())
                   : torch::empty({0}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "hgmamba_scan_forward", [&] {
    auto run = [&](auto kernel) {
      kernel(u.data_ptr<scalar_t>(), delta.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(),
             Bt.data_ptr<scalar_t>(), Ct.data_ptr<scalar_t>(), opt_ptr<scalar_t>(D),
             opt_ptr<scalar_t>(z), opt_ptr<scalar_t>(bias), softplus, out.data_ptr<scalar_t>(),
             save ? ckpt.data_ptr<scalar_t>() : nullptr, s);
    };
    if (s.n == 16) {
      run(forward_kernel<scalar_t, 16>);
    } else {
      run(forward_kernel<scalar_t, 0>);
    }
  });
  return {out, ckpt};
}

// Returns du, ddelta, dA, dBt (b, L, n), dCt (b, L, n), dD, dz (empty tensors where absent).
std::vector<torch::Tensor> scan_backward(torch::Tensor u, torch::Tensor delta, torch::Tensor A,
                                         torch::Tensor Bt, torch::Tensor Ct, torch::Tensor D,
                                         torch::Tensor z, torch::Tensor bias, bool softplus,
                                         torch::Tensor saved, torch::Tensor dout) {
  check_inputs(u, delta, A, Bt, Ct);
  TORCH_CHECK(dout.sizes() == u.sizes() && dout.is_contiguous(), "bad output gradient");
  const Dims s{u.size(0), u.size(1), u.size(2), A.size(1)};
  const int64_t nblk = (s.d + W - 1) / W;
  const int64_t nchunks = (s.L + TC - 1) / TC;
  TORCH_CHECK(saved.numel() == 0 || (saved.is_contiguous() &&
                                     saved.numel() == s.b * nblk * nchunks * s.n * W),
              "bad saved checkpoints");
  auto du = torch::empty_like(u);
  auto ddelta = torch::empty_like(u);
  auto dz = z.numel() > 0 ? torch::empty_like(u) : torch::empty({0}, u.options());
  auto dA_part = torch::empty({s.b, s.d, s.n}, u.options());
  auto dD_part = torch::empty({s.b, s.d}, u.options());
  auto dB_part = torch::empty({s.b, nblk, s.L, s.n}, u.options());
  auto dC_part = torch::empty({s.b, nblk, s.L, s.n}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "hgmamba_scan_backward", [&] {
    auto run = [&](auto kernel) {
      kernel(u.data_ptr<scalar_t>(), delta.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(),
             Bt.data_ptr<scalar_t>(), Ct.data_ptr<scalar_t>(), opt_ptr<scalar_t>(D),
             opt_ptr<scalar_t>(z), opt_ptr<scalar_t>(bias), softplus,
             opt_ptr<scalar_t>(saved), dout.data_ptr<scalar_t>(), du.data_ptr<scalar_t>(), ddelta.data_ptr<scalar_t>(),
             dA_part.data_ptr<scalar_t>(), dB_part.data_ptr<scalar_t>(),
             dC_part.data_ptr<scalar_t>(), dD_part.data_ptr<scalar_t>(),
             z.numel() > 0 ? dz.data_ptr<scalar_t>() : nullptr, s);
    };
    if (s.n == 16) {
      run(backward_kernel<scalar_t, 16>);
    } else {
      run(backward_kernel<scalar_t, 0>);
    }
  });
  auto dB = nblk > 1 ? dB_part.sum(1) : dB_part.squeeze(1);
  auto dC = nblk > 1 ? dC_part.sum(1) : dC_part.squeeze(1);
  return {du, ddelta, dA_part.sum(0), dB, dC, dD_part.sum(0), dz};
}

// ---- Eval only: every scan of one shuffle-Mamba block in one call, channel-last. ----
//
// G mixers (token orders), each a bidirectional pair of selective SSMs with its own weights;
// scan k = 2 g + dir (dir 0 walks the order forwards, 1 backwards). Rows are tokens in storage
// order, N = b * L. proj (2G, N, ld): row r of scan k holds u (d values) then the x_proj output
// (R dt-rank values, n B values, n C values); pbias (2G, ld) is added to it here (so the caller
// needs no bias pass). order (G, L): sequence position -> token row within one batch element.
// A2 (2G, d, n) = A log2(e); wdt (2G, d, R) and dt_bias (2G, d) make delta in-register;
// dskip (2G, d). gate (N, G, d); out (N, G, d) = gate * (y_fwd + y_bwd). Each task owns one
// (batch row, mixer, block of W channels) and runs both directions, so no two tasks write the
// same output and no flips or transposes are needed.
struct MixerArgs {
  const float *proj, *pbias, *A2, *wdt, *dtb, *dskip, *gate;
  const int32_t* order;
  float* out;
  int64_t b, L, G, d, R, n, ld;
};

// Per-(scan, channel block) constants: A2 as (n, W), wdt as (R, W), biases.
struct MixerBlock {
  alignas(64) float A2[kMaxState * W];
  alignas(64) float wd[16 * W];
  alignas(64) float bias[W], Dv[W], ub[W];
  float qb[16 + 2 * kMaxState];

  void setup(const MixerArgs& a, int64_t k, int64_t c0, int64_t valid) {
    const int64_t n = a.n, R = a.R;
    for (int64_t w = 0; w < W; ++w) {
      const bool ok = w < valid;
      const int64_t c = k * a.d + c0 + w;
      for (int64_t i = 0; i < n; ++i) A2[i * W + w] = ok ? a.A2[c * n + i] : 0.0f;
      for (int64_t r = 0; r < R; ++r) wd[r * W + w] = ok ? a.wdt[c * R + r] : 0.0f;
      bias[w] = ok ? a.dtb[c] : 0.0f;
      Dv[w] = ok ? a.dskip[c] : 0.0f;
      ub[w] = ok ? a.pbias[k * a.ld + c0 + w] : 0.0f;
    }
    for (int64_t j = 0; j < R + 2 * n; ++j) qb[j] = a.pbias[k * a.ld + a.d + j];
  }

  // delta (softplus applied) and u of one token row; q gets the row's dt/B/C values.
  void token(const MixerArgs& a, const float* pr, int64_t c0, int64_t valid, float* q,
             float* u, float* dt) const {
    const int64_t nq = a.R + 2 * a.n;
    for (int64_t j = 0; j < nq; ++j) q[j] = pr[a.d + j] + qb[j];
    for (int64_t w = 0; w < W; ++w) u[w] = w < valid ? pr[c0 + w] + ub[w] : 0.0f;
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
// (one FMA fewer) measured no faster on this kernel, so the two stay identical.
inline __m512 vexp2_16(__m512 x) {
  const __m512 k = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, k);
  __m512 p = _mm512_set1_ps(1.5403530393381606e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076284772e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108664821580e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650695910071e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718055994531e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, k);
}

// softplus for 16 lanes: max(x, 0) + log(1 + e^-|x|), as softplus_fn.
inline __m512 softplus16(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 e = vexp2_16(_mm512_mul_ps(ax, _mm512_set1_ps(-1.44269504088896341f)));
  const __m512 s = _mm512_div_ps(e, _mm512_add_ps(e, _mm512_set1_ps(2.0f)));
  const __m512 s2 = _mm512_mul_ps(s, s);
  __m512 p = _mm512_set1_ps(1.0f / 13.0f);
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 11.0f));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 9.0f));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 7.0f));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 5.0f));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 3.0f));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f));
  const __m512 l = _mm512_mul_ps(_mm512_add_ps(s, s), p);
  return _mm512_add_ps(_mm512_max_ps(x, _mm512_setzero_ps()), l);
}

// One direction of one scan, n = 16: the 16 states live in registers, everything per token
// is a handful of vector ops (masked loads for the last, partial channel block).
void mixer_scan_dir16(const MixerArgs& a, const MixerBlock& blk, int64_t bi, int64_t g,
                      int64_t c0, int64_t valid, int dir) {
  const int64_t k = 2 * g + dir;
  const int64_t L = a.L, ld = a.ld, d = a.d, R = a.R;
  const int64_t GD = a.G * a.d;
  const __mmask16 mask = valid >= W ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1u);
  const int64_t nq = R + 32;  // dt values, then 16 B, then 16 C
  const __mmask16 qm[3] = {
      __mmask16(nq >= 16 ? 0xFFFF : (1u << nq) - 1u),
      __mmask16(nq >= 32 ? 0xFFFF : (1u << (nq - 16)) - 1u),
      __mmask16((1u << (nq - 32)) - 1u),  // nq <= 48
  };
  __m512 qbv[3];
  for (int j = 0; j < 3; ++j) qbv[j] = _mm512_maskz_loadu_ps(qm[j], blk.qb + 16 * j);
  const __m512 Dv = _mm512_load_ps(blk.Dv), ub = _mm512_load_ps(blk.ub);
  const __m512 bias = _mm512_load_ps(blk.bias);
  __m512 h[16];
  for (int i = 0; i < 16; ++i) h[i] = _mm512_setzero_ps();
  const float* P = a.proj + k * a.b * L * ld;
  const int32_t* ord = a.order + g * L;
  const float* gate = a.gate + g * d + c0;
  float* out = a.out + g * d + c0;
  constexpr int64_t kAhead = 6;  // prefetch distance: temporal-first steps jump 17 rows
  for (int64_t step = 0; step < L; ++step) {
    const int64_t s = dir ? L - 1 - step : step;
    const int64_t row = bi * L + ord[s];
    const float* pr = P + row * ld;
    if (step + kAhead < L) {
      const int64_t ahead = bi * L + ord[dir ? L - 1 - step - kAhead : step + kAhead];
      const char* pa = reinterpret_cast<const char*>(P + ahead * ld);
      _mm_prefetch(pa + 4 * c0, _MM_HINT_T0);
      _mm_prefetch(pa + 4 * d, _MM_HINT_T0);
      _mm_prefetch(pa + 4 * d + 64, _MM_HINT_T0);
      _mm_prefetch(pa + 4 * d + 128, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(gate + ahead * GD), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(out + ahead * GD), _MM_HINT_T0);
    }
    alignas(64) float q[48];
    for (int j = 0; j < 3; ++j)
      _mm512_store_ps(q + 16 * j,
                      _mm512_add_ps(_mm512_maskz_loadu_ps(qm[j], pr + d + 16 * j), qbv[j]));
    const __m512 uv = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, pr + c0), ub);
    __m512 raw = bias;
    for (int64_t r = 0; r < R; ++r)
      raw = _mm512_fmadd_ps(_mm512_set1_ps(q[r]), _mm512_load_ps(blk.wd + r * W), raw);
    const __m512 dtv = softplus16(raw);
    const __m512 dtu = _mm512_mul_ps(dtv, uv);
    __m512 acc[4] = {_mm512_mul_ps(Dv, uv), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    const float* Bq = q + R;
    const float* Cq = q + R + 16;
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      const __m512 decay = vexp2_16(_mm512_mul_ps(dtv, _mm512_load_ps(blk.A2 + i * W)));
      h[i] = _mm512_fmadd_ps(decay, h[i], _mm512_mul_ps(dtu, _mm512_set1_ps(Bq[i])));
      acc[i & 3] = _mm512_fmadd_ps(_mm512_set1_ps(Cq[i]), h[i], acc[i & 3]);
    }
    const __m512 y = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    const __m512 gy = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, gate + row * GD), y);
    float* orow = out + row * GD;
    if (dir == 0) {
      _mm512_mask_storeu_ps(orow, mask, gy);
    } else {
      _mm512_mask_storeu_ps(orow, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, orow), gy));
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
    alignas(64) float q[16 + 2 * kMaxState], u[W], dt[W], dtu[W], acc[W];
    blk.token(a, P + row * a.ld, c0, valid, q, u, dt);
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

void mixer_kernel(const MixerArgs& a) {
  const int64_t nblk = (a.d + W - 1) / W;
  at::parallel_for(0, a.b * a.G * nblk, 1, [&](int64_t begin, int64_t end) {
#if defined(__AVX512F__)
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040);  // flush denormals (decays near 2^-126) to zero in this task
#endif
    MixerBlock blk;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bi = task / (a.G * nblk);
      const int64_t g = (task / nblk) % a.G;
      const int64_t c0 = (task % nblk) * W;
      const int64_t valid = std::min<int64_t>(W, a.d - c0);
      for (int dir = 0; dir < 2; ++dir) {
        blk.setup(a, 2 * g + dir, c0, valid);
#if defined(__AVX512F__)
        if (a.n == 16) {
          mixer_scan_dir16(a, blk, bi, g, c0, valid, dir);
          continue;
        }
#endif
        mixer_scan_dir(a, blk, bi, g, c0, valid, dir);
      }
    }
#if defined(__AVX512F__)
    _mm_setcsr(csr);
#endif
  });
}

torch::Tensor mixer_forward(torch::Tensor proj, torch::Tensor pbias, torch::Tensor order,
                            torch::Tensor A2, torch::Tensor wdt, torch::Tensor dt_bias,
                            torch::Tensor dskip, torch::Tensor gate) {
  for (const auto* t : {&proj, &pbias, &A2, &wdt, &dt_bias, &dskip, &gate}) {
    TORCH_CHECK(t->device().is_cpu() && t->is_contiguous() &&
                    t->scalar_type() == torch::kFloat32,
                "mixer scan expects contiguous float32 CPU tensors");
  }
  TORCH_CHECK(order.is_contiguous() && order.scalar_type() == torch::kInt32 && order.dim() == 2,
              "order must be contiguous int32 (G, L)");
  TORCH_CHECK(A2.dim() == 3 && wdt.dim() == 3 && gate.dim() == 3 && proj.dim() == 3,
              "bad mixer scan shapes");
  const int64_t G = order.size(0), L = order.size(1);
  const int64_t d = A2.size(1), n = A2.size(2), R = wdt.size(2), ld = proj.size(2);
  const int64_t N = proj.size(1);
  TORCH_CHECK(A2.size(0) == 2 * G && proj.size(0) == 2 * G && wdt.size(0) == 2 * G &&
                  wdt.size(1) == d && dt_bias.numel() == 2 * G * d &&
                  dskip.numel() == 2 * G * d && pbias.numel() == 2 * G * ld,
              "mixer scan weights must hold 2 scans per mixer");
  TORCH_CHECK(n <= kMaxState && R <= 16 && ld >= d + R + 2 * n, "bad mixer scan sizes");
  TORCH_CHECK(L > 0 && N % L == 0, "token rows must be a whole number of sequences");
  TORCH_CHECK(gate.size(0) == N && gate.size(1) == G && gate.size(2) == d, "bad gate shape");
  const int32_t* ord = order.data_ptr<int32_t>();
  for (int64_t j = 0; j < G * L; ++j) TORCH_CHECK(ord[j] >= 0 && ord[j] < L, "bad token order");
  auto out = torch::empty_like(gate);
  const MixerArgs a{proj.data_ptr<float>(), pbias.data_ptr<float>(), A2.data_ptr<float>(),
                    wdt.data_ptr<float>(),  dt_bias.data_ptr<float>(), dskip.data_ptr<float>(),
                    gate.data_ptr<float>(), order.data_ptr<int32_t>(), out.data_ptr<float>(),
                    N / L, L, G, d, R, n, ld};
  mixer_kernel(a);
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &scan_forward, "fused selective scan forward (CPU)");
  m.def("backward", &scan_backward, "fused selective scan backward (CPU)");
  m.def("mixer_forward", &mixer_forward, "all scans of a shuffle-Mamba block, eval (CPU)");
}
