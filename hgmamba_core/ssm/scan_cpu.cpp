// Fused selective scan for the CPU: one walk over L per (batch, channel) with the state in a
// local array, one walk back for the gradient. Parallel over (batch, channel) with ATen's pool.
//
// Layouts (all contiguous): u, delta, z, out: (b, d, L); A: (d, n); Bt, Ct: (b, L, n)
// (B and C transposed so the inner loop over the state runs over contiguous memory);
// D, delta_bias: (d,) or empty.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr int64_t kMaxState = 256;

// exp that the compiler can vectorize inside the state loop (libm's expf is a scalar call).
// Cephes' single-precision polynomial on a range-reduced argument: about 1 ulp on [-87, 88];
// below -87 it returns exactly 0 (no denormals), above 88 it saturates.
inline float vexp(float x) {
  const float xc = std::min(std::max(x, -87.0f), 88.0f);
  const float kf = xc * 1.44269504088896341f;
  const int32_t ki = static_cast<int32_t>(kf + 128.5f) - 128;  // round to nearest, kf >= -126
  const float k = static_cast<float>(ki);
  float r = xc - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (ki + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x < -87.0f ? 0.0f : p * scale;
}

inline double vexp(double x) { return std::exp(x); }

template <typename T>
inline T softplus_fn(T x) {
  return x > T(20) ? x : std::log1p(std::exp(x));
}

template <typename T>
inline T sigmoid_fn(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

struct Dims {
  int64_t b, d, L, n;
};

template <typename T, int NT>
void forward_kernel(const T* u, const T* delta, const T* A, const T* Bt, const T* Ct, const T* D,
                    const T* z, const T* bias, bool softplus, T* out, Dims s) {
  const int64_t n = NT > 0 ? NT : s.n;
  const int64_t L = s.L;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, L * n));
  at::parallel_for(0, s.b * s.d, grain, [&](int64_t begin, int64_t end) {
    T h[kMaxState];
    T a_row[kMaxState];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bi = task / s.d;
      const int64_t di = task % s.d;
      const T* up = u + task * L;
      const T* dp = delta + task * L;
      const T* zp = z ? z + task * L : nullptr;
      const T* Bp = Bt + bi * L * n;
      const T* Cp = Ct + bi * L * n;
      T* op = out + task * L;
      const T Dd = D ? D[di] : T(0);
      const T bd = bias ? bias[di] : T(0);
      for (int64_t i = 0; i < n; ++i) {
        a_row[i] = A[di * n + i];
        h[i] = T(0);
      }
      for (int64_t t = 0; t < L; ++t) {
        T dt = dp[t] + bd;
        if (softplus) dt = softplus_fn(dt);
        const T ut = up[t];
        const T dtu = dt * ut;
        const T* Bq = Bp + t * n;
        const T* Cq = Cp + t * n;
        T y = T(0);
#pragma omp simd reduction(+ : y)
        for (int64_t i = 0; i < n; ++i) {
          const T hi = vexp(dt * a_row[i]) * h[i] + dtu * Bq[i];
          h[i] = hi;
          y += Cq[i] * hi;
        }
        y += Dd * ut;
        if (zp) {
          const T zt = zp[t];
          y *= zt * sigmoid_fn(zt);
        }
        op[t] = y;
      }
    }
  });
}

// Gradients. Per task (one batch row, a block of channels) the kernel recomputes the forward
// states into a scratch buffer, then walks back. dB, dC are summed over channels, so each task
// owns a (L, n) slice of a (b, nblk, L, n) buffer; dA and dD go to (b, d, ...) partials. The
// caller sums the partials, so no two threads ever write the same memory.
template <typename T, int NT>
void backward_kernel(const T* u, const T* delta, const T* A, const T* Bt, const T* Ct,
                     const T* D, const T* z, const T* bias, bool softplus, const T* dout, T* du,
                     T* ddelta, T* dA_part, T* dB_part, T* dC_part, T* dD_part, T* dz, Dims s,
                     int64_t nblk) {
  const int64_t n = NT > 0 ? NT : s.n;
  const int64_t L = s.L;
  const int64_t dblk = (s.d + nblk - 1) / nblk;
  at::parallel_for(0, s.b * nblk, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> hs(static_cast<size_t>(L * n));   // h_t for every t
    std::vector<T> as(static_cast<size_t>(L * n));   // exp(dt_t A) for every t
    std::vector<T> dts(static_cast<size_t>(L));      // dt_t after bias and softplus
    T a_row[kMaxState];
    T h[kMaxState];
    T dh[kMaxState];
    T dA_loc[kMaxState];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bi = task / nblk;
      const int64_t blk = task % nblk;
      const int64_t d0 = blk * dblk;
      const int64_t d1 = std::min(s.d, d0 + dblk);
      const T* Bp = Bt + bi * L * n;
      const T* Cp = Ct + bi * L * n;
      T* dBp = dB_part + task * L * n;
      T* dCp = dC_part + task * L * n;
      for (int64_t di = d0; di < d1; ++di) {
        const int64_t row = bi * s.d + di;
        const T* up = u + row * L;
        const T* dp = delta + row * L;
        const T* zp = z ? z + row * L : nullptr;
        const T* gp = dout + row * L;
        T* dup = du + row * L;
        T* ddp = ddelta + row * L;
        T* dzp = dz ? dz + row * L : nullptr;
        const T Dd = D ? D[di] : T(0);
        const T bd = bias ? bias[di] : T(0);
        for (int64_t i = 0; i < n; ++i) {
          a_row[i] = A[di * n + i];
          h[i] = T(0);
          dh[i] = T(0);
          dA_loc[i] = T(0);
        }
        // Recompute the forward states.
        for (int64_t t = 0; t < L; ++t) {
          T dt = dp[t] + bd;
          if (softplus) dt = softplus_fn(dt);
          dts[t] = dt;
          const T dtu = dt * up[t];
          const T* Bq = Bp + t * n;
          T* hq = hs.data() + t * n;
          T* aq = as.data() + t * n;
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) {
            const T ai = vexp(dt * a_row[i]);
            const T hi = ai * h[i] + dtu * Bq[i];
            aq[i] = ai;
            hq[i] = hi;
            h[i] = hi;
          }
        }
        // Walk back.
        T dD_loc = T(0);
        for (int64_t t = L - 1; t >= 0; --t) {
          const T ut = up[t];
          const T dt = dts[t];
          const T* Bq = Bp + t * n;
          const T* Cq = Cp + t * n;
          const T* hq = hs.data() + t * n;
          const T* aq = as.data() + t * n;
          T g = gp[t];
          if (zp) {
            T y = T(0);
#pragma omp simd reduction(+ : y)
            for (int64_t i = 0; i < n; ++i) y += Cq[i] * hq[i];
            y += Dd * ut;
            const T zt = zp[t];
            const T sg = sigmoid_fn(zt);
            dzp[t] = g * y * sg * (T(1) + zt * (T(1) - sg));
            g *= zt * sg;
          }
          dD_loc += g * ut;
          T ddt = T(0);
          T dhB = T(0);
          T* dBq = dBp + t * n;
          T* dCq = dCp + t * n;
          const T dtu = dt * ut;
          if (t > 0) {
            const T* hp = hq - n;
#pragma omp simd reduction(+ : ddt, dhB)
            for (int64_t i = 0; i < n; ++i) {
              const T dhi = dh[i] + g * Cq[i];
              dCq[i] += g * hq[i];
              const T q = dhi * hp[i] * aq[i];
              ddt += q * a_row[i];
              dA_loc[i] += q * dt;
              dhB += dhi * Bq[i];
              dBq[i] += dhi * dtu;
              dh[i] = dhi * aq[i];
            }
          } else {
#pragma omp simd reduction(+ : dhB)
            for (int64_t i = 0; i < n; ++i) {
              const T dhi = dh[i] + g * Cq[i];
              dCq[i] += g * hq[i];
              dhB += dhi * Bq[i];
              dBq[i] += dhi * dtu;
              dh[i] = dhi * aq[i];
            }
          }
          ddt += dhB * ut;
          dup[t] = g * Dd + dhB * dt;
          if (softplus) {
            ddp[t] = ddt * sigmoid_fn(dp[t] + bd);
          } else {
            ddp[t] = ddt;
          }
        }
        for (int64_t i = 0; i < n; ++i) dA_part[row * n + i] = dA_loc[i];
        dD_part[row] = dD_loc;
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

torch::Tensor scan_forward(torch::Tensor u, torch::Tensor delta, torch::Tensor A, torch::Tensor Bt,
                           torch::Tensor Ct, torch::Tensor D, torch::Tensor z, torch::Tensor bias,
                           bool softplus) {
  check_inputs(u, delta, A, Bt, Ct);
  auto out = torch::empty_like(u);
  const Dims s{u.size(0), u.size(1), u.size(2), A.size(1)};
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "hgmamba_scan_forward", [&] {
    auto run = [&](auto kernel) {
      kernel(u.data_ptr<scalar_t>(), delta.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(),
             Bt.data_ptr<scalar_t>(), Ct.data_ptr<scalar_t>(), opt_ptr<scalar_t>(D),
             opt_ptr<scalar_t>(z), opt_ptr<scalar_t>(bias), softplus, out.data_ptr<scalar_t>(),
             s);
    };
    if (s.n == 16) {
      run(forward_kernel<scalar_t, 16>);
    } else {
      run(forward_kernel<scalar_t, 0>);
    }
  });
  return out;
}

// Returns du, ddelta, dA, dBt (b, L, n), dCt (b, L, n), dD, dz (empty tensors where absent).
std::vector<torch::Tensor> scan_backward(torch::Tensor u, torch::Tensor delta, torch::Tensor A,
                                         torch::Tensor Bt, torch::Tensor Ct, torch::Tensor D,
                                         torch::Tensor z, torch::Tensor bias, bool softplus,
                                         torch::Tensor dout) {
  check_inputs(u, delta, A, Bt, Ct);
  TORCH_CHECK(dout.sizes() == u.sizes() && dout.is_contiguous(), "bad output gradient");
  const Dims s{u.size(0), u.size(1), u.size(2), A.size(1)};
  // Split channels into blocks only when the batch alone cannot feed every thread.
  const int64_t threads = at::get_num_threads();
  const int64_t nblk = std::max<int64_t>(1, std::min<int64_t>(s.d, (2 * threads + s.b - 1) / s.b));
  auto du = torch::empty_like(u);
  auto ddelta = torch::empty_like(u);
  auto dz = z.numel() > 0 ? torch::empty_like(u) : torch::empty({0}, u.options());
  auto dA_part = torch::empty({s.b, s.d, s.n}, u.options());
  auto dD_part = torch::empty({s.b, s.d}, u.options());
  auto dB_part = torch::zeros({s.b, nblk, s.L, s.n}, u.options());
  auto dC_part = torch::zeros({s.b, nblk, s.L, s.n}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "hgmamba_scan_backward", [&] {
    auto run = [&](auto kernel) {
      kernel(u.data_ptr<scalar_t>(), delta.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(),
             Bt.data_ptr<scalar_t>(), Ct.data_ptr<scalar_t>(), opt_ptr<scalar_t>(D),
             opt_ptr<scalar_t>(z), opt_ptr<scalar_t>(bias), softplus,
             dout.data_ptr<scalar_t>(), du.data_ptr<scalar_t>(), ddelta.data_ptr<scalar_t>(),
             dA_part.data_ptr<scalar_t>(), dB_part.data_ptr<scalar_t>(),
             dC_part.data_ptr<scalar_t>(), dD_part.data_ptr<scalar_t>(),
             z.numel() > 0 ? dz.data_ptr<scalar_t>() : nullptr, s, nblk);
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
