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
// The eval-only kernel of the CPU fast path (all four scans of a shuffle-Mamba block in one
// call) lives in mixer_cpu.cpp, without torch headers, so it compiles in seconds; the constants
// and scalar math both use are in scan_math.h.
// torch/types.h + the pybind casters, not torch/extension.h (the whole C++ frontend): the
// build takes 26 s of CPU instead of 45 s here, and a first build is what a newcomer waits for.
#include <torch/types.h>
#include <torch/csrc/utils/pybind.h>

#include <ATen/Parallel.h>

#include <type_traits>
#include <vector>

#include "scan_math.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

constexpr int64_t TC = 16;  // time steps per tile

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

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &scan_forward, "fused selective scan forward (CPU)");
  m.def("backward", &scan_backward, "fused selective scan backward (CPU)");
}
