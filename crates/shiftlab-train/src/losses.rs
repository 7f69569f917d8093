//! The published losses, as functions of embeddings, so each is testable on hand-made input.

use tch::{Kind, Tensor};

/// Rows scaled to unit L2 norm.
pub fn l2_normalize(x: &Tensor) -> Tensor {
    let n = x
        .norm_scalaropt_dim(2, [1i64].as_slice(), true)
        .clamp_min(1e-12);
    x / n
}

/// SimCLR's NT-Xent over the 2B embeddings: each view's positive is the other view of the
/// same image, the other 2B − 2 are negatives; cosine similarity / `temperature`.
pub fn nt_xent(z1: &Tensor, z2: &Tensor, temperature: f64) -> Tensor {
    let b = z1.size()[0];
    let z = l2_normalize(&Tensor::cat(&[z1, z2], 0));
    let sim = z.matmul(&z.tr()) / temperature;
    let eye = Tensor::eye(2 * b, (Kind::Bool, z.device()));
    let sim = sim.masked_fill(&eye, f64::NEG_INFINITY);
    let idx = Tensor::arange(2 * b, (Kind::Int64, z.device()));
    let target = (idx + b).remainder(2 * b);
    cross_entropy(&sim, &target)
}

/// Mean cross-entropy of `logits` `[N, K]` against class indices `[N]`.
pub fn cross_entropy(logits: &Tensor, target: &Tensor) -> Tensor {
    let logp = logits.log_softmax(1, Kind::Float);
    -logp
        .gather(1, &target.unsqueeze(1), false)
        .mean(Kind::Float)
}

/// SimSiam's symmetrised negative cosine; the target branch `z` is detached (stop-gradient).
pub fn simsiam(p1: &Tensor, p2: &Tensor, z1: &Tensor, z2: &Tensor) -> Tensor {
    let d = |p: &Tensor, z: &Tensor| -cosine(p, &z.detach()).mean(Kind::Float);
    (d(p1, z2) + d(p2, z1)) * 0.5
}

/// BYOL's symmetrised regression `2 − 2·cos(p, t)` against the (detached) target projections.
pub fn byol(p1: &Tensor, p2: &Tensor, t1: &Tensor, t2: &Tensor) -> Tensor {
    let r = |p: &Tensor, t: &Tensor| (-cosine(p, &t.detach()) * 2.0 + 2.0).mean(Kind::Float);
    r(p1, t2) + r(p2, t1)
}

fn cosine(a: &Tensor, b: &Tensor) -> Tensor {
    (l2_normalize(a) * l2_normalize(b)).sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
}

/// Barlow Twins: cross-correlation `C` of the batch-normalised embeddings (biased variance,
/// as BatchNorm1d without affine), `Σ(1 − C_ii)² + λ Σ_{i≠j} C_ij²`.
pub fn barlow_twins(z1: &Tensor, z2: &Tensor, lambda: f64) -> Tensor {
    let n = z1.size()[0] as f64;
    let norm = |z: &Tensor| {
        let mean = z.mean_dim([0i64].as_slice(), true, Kind::Float);
        let var = z.var_correction([0i64].as_slice(), 0, true);
        (z - mean) / (var + 1e-5).sqrt()
    };
    let c = norm(z1).tr().matmul(&norm(z2)) / n;
    let diag = c.diagonal(0, 0, 1);
    let on = (-&diag + 1.0).square().sum(Kind::Float);
    let off = c.square().sum(Kind::Float) - diag.square().sum(Kind::Float);
    on + off * lambda
}

/// SwAV's Sinkhorn-Knopp: codes `[B, K]` whose columns (prototypes) share the batch equally and
/// whose rows (samples) each sum to 1, from prototype scores `[B, K]`.
pub fn sinkhorn(scores: &Tensor, epsilon: f64, iterations: usize) -> Tensor {
    let _guard = tch::no_grad_guard();
    let (b, k) = (scores.size()[0] as f64, scores.size()[1] as f64);
    let s = scores / epsilon;
    let mut q = (&s - s.max()).exp().tr();
    q = &q / q.sum(Kind::Float);
    for _ in 0..iterations {
        q = &q / q.sum_dim_intlist([1i64].as_slice(), true, Kind::Float) / k;
        q = &q / q.sum_dim_intlist([0i64].as_slice(), true, Kind::Float) / b;
    }
    (q * b).tr()
}

/// SwAV's swapped prediction: the codes of one view are predicted from the other's scores.
pub fn swav(s1: &Tensor, s2: &Tensor, q1: &Tensor, q2: &Tensor, temperature: f64) -> Tensor {
    let ce = |q: &Tensor, s: &Tensor| {
        let logp = (s / temperature).log_softmax(1, Kind::Float);
        -(q * logp)
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
            .mean(Kind::Float)
    };
    (ce(q1, s2) + ce(q2, s1)) * 0.5
}

/// DINO: cross-entropy between the centred, sharpened teacher distribution of each view and
/// the student's of every other view, averaged over pairs.
pub fn dino(
    student: &[Tensor],
    teacher: &[Tensor],
    center: &Tensor,
    student_temp: f64,
    teacher_temp: f64,
) -> Tensor {
    let q: Vec<Tensor> = teacher
        .iter()
        .map(|t| ((t.detach() - center) / teacher_temp).softmax(1, Kind::Float))
        .collect();
    let mut total = Tensor::zeros([], (Kind::Float, center.device()));
    let mut pairs = 0;
    for (i, qi) in q.iter().enumerate() {
        for (j, s) in student.iter().enumerate() {
            if i == j {
                continue;
            }
            let logp = (s / student_temp).log_softmax(1, Kind::Float);
            let ce = -(qi * logp).sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
            total += ce.mean(Kind::Float);
            pairs += 1;
        }
    }
    total / pairs.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32], shape: [i64; 2]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    #[test]
    fn nt_xent_by_hand() {
        // Two images, orthogonal; each view equals its pair: positive cos 1, negatives 0, 0.
        let z = t(&[1.0, 0.0, 0.0, 1.0], [2, 2]);
        let got = nt_xent(&z, &(&z * 3.0), 0.5).double_value(&[]);
        let want = (1.0 + 2.0 * (-2.0f64).exp()).ln();
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        // Swapping the second view's rows makes every positive orthogonal: a larger loss.
        let swapped = t(&[0.0, 1.0, 1.0, 0.0], [2, 2]);
        let worse = nt_xent(&z, &swapped, 0.5).double_value(&[]);
        let want = (2.0 + 2.0f64.exp()).ln();
        assert!((worse - want).abs() < 1e-6, "{worse} vs {want}");
    }

    #[test]
    fn barlow_twins_is_zero_for_identical_decorrelated_embeddings() {
        let z = t(&[1., 1., 1., -1., -1., 1., -1., -1.], [4, 2]);
        let loss = barlow_twins(&z, &z, 5e-3).double_value(&[]);
        assert!(loss.abs() < 1e-6, "{loss}");
        let correlated = t(&[1., 1., 1., 1., -1., -1., -1., -1.], [4, 2]);
        assert!(barlow_twins(&correlated, &correlated, 5e-3).double_value(&[]) > 1e-3);
    }

    #[test]
    fn sinkhorn_marginals_are_uniform() {
        let v: Vec<f32> = (0..16 * 5)
            .map(|i| ((i * 7919 % 97) as f32 / 48.5) - 1.0)
            .collect();
        let scores = t(&v, [16, 5]);
        let q = sinkhorn(&scores, 0.5, 50);
        let rows = q.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        let cols = q.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
        assert!(rows.allclose(&Tensor::ones([16], tch::kind::FLOAT_CPU), 1e-3, 1e-3, false));
        let want = Tensor::full([5], 16.0 / 5.0, tch::kind::FLOAT_CPU);
        assert!(cols.allclose(&want, 1e-3, 1e-3, false), "{cols}");
        // The published setting (3 iterations, ε = 0.05): rows exact, columns near uniform.
        let q = sinkhorn(&(scores * 0.2), 0.05, 3);
        let rows = q.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        assert!(rows.allclose(&Tensor::ones([16], tch::kind::FLOAT_CPU), 1e-4, 1e-4, false));
    }

    #[test]
    fn simsiam_target_branch_gets_no_gradient() {
        let leaf = |s: f32| t(&[s, 1.0, 2.0, s], [2, 2]).set_requires_grad(true);
        let (p1, p2, z1, z2) = (leaf(0.5), leaf(1.5), leaf(-1.0), leaf(3.0));
        simsiam(&p1, &p2, &z1, &z2).backward();
        assert!(p1.grad().defined() && p2.grad().defined());
        assert!(!z1.grad().defined() && !z2.grad().defined());
    }

    #[test]
    fn dino_loss_is_small_when_student_matches_sharp_teacher() {
        let a = t(&[10.0, 0.0, 0.0, 10.0], [2, 2]);
        let zero = Tensor::zeros([2], tch::kind::FLOAT_CPU);
        let same = dino(
            &[a.copy(), a.copy()],
            &[a.copy(), a.copy()],
            &zero,
            0.1,
            0.04,
        );
        let flipped = a.flip([1i64]);
        let other = dino(&[flipped.copy(), flipped], &[a.copy(), a], &zero, 0.1, 0.04);
        assert!(same.double_value(&[]) < 1e-3 && other.double_value(&[]) > 10.0);
    }
}
