use super::*;
use crate::probe::rng::SplitMix64;

fn random(rng: &mut SplitMix64, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.next_f64() * 2.0 - 1.0).collect()
}

fn tensor(data: &[f64], rows: i64) -> Tensor {
    Tensor::from_slice(data)
        .reshape([rows, -1])
        .to_kind(Kind::Float)
}

/// DINO's weighted kNN in plain Rust: normalised votes per class for each query.
fn brute_force(
    train: &[Vec<f64>],
    labels: &[i64],
    query: &[f64],
    classes: usize,
    k: usize,
    t: f64,
) -> Vec<f64> {
    let unit = |v: &[f64]| {
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        v.iter().map(|x| x / n).collect::<Vec<_>>()
    };
    let q = unit(query);
    let mut sims: Vec<(f64, i64)> = train
        .iter()
        .zip(labels)
        .map(|(x, &l)| (unit(x).iter().zip(&q).map(|(a, b)| a * b).sum(), l))
        .collect();
    sims.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut votes = vec![0.0; classes];
    for (s, l) in sims.iter().take(k) {
        votes[*l as usize] += (s / t).exp();
    }
    let total: f64 = votes.iter().sum();
    votes.iter().map(|v| v / total).collect()
}

#[test]
fn matches_brute_force_on_random_data() -> Result<(), ProbeError> {
    let (n, m, d, classes) = (200usize, 40usize, 8usize, 5usize);
    let mut rng = SplitMix64::new(7);
    let train: Vec<Vec<f64>> = (0..n).map(|_| random(&mut rng, d)).collect();
    let labels: Vec<i64> = (0..n)
        .map(|_| (rng.next_u64() % classes as u64) as i64)
        .collect();
    let queries: Vec<Vec<f64>> = (0..m).map(|_| random(&mut rng, d)).collect();
    let qlabels: Vec<i64> = (0..m)
        .map(|_| (rng.next_u64() % classes as u64) as i64)
        .collect();
    let config = KnnConfig {
        k: 10,
        temperature: 0.07,
        chunk: 7, // several blocks, the last one short
    };
    let knn = KnnClassifier::new(
        &tensor(&train.concat(), n as i64),
        &Tensor::from_slice(&labels),
        classes as i64,
        config,
    )?;
    let scores = knn.scores(&tensor(&queries.concat(), m as i64))?;
    let scores = Vec::<f64>::try_from(scores.to_kind(Kind::Double).reshape([-1]))?;
    let outs = knn.predict(
        &tensor(&queries.concat(), m as i64),
        &Tensor::from_slice(&qlabels),
    )?;
    for (i, q) in queries.iter().enumerate() {
        let want = brute_force(&train, &labels, q, classes, 10, 0.07);
        let got = &scores[i * classes..(i + 1) * classes];
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "query {i}: {got:?} vs {want:?}");
        }
        let best = (0..classes).max_by(|&a, &b| want[a].total_cmp(&want[b]));
        assert_eq!(Some(outs[i].prediction as usize), best, "query {i}");
        assert!((outs[i].confidence - want[outs[i].prediction as usize]).abs() < 1e-4);
        assert_eq!(outs[i].top5.len(), 5);
        assert_eq!(outs[i].correct, outs[i].prediction == qlabels[i]);
    }
    Ok(())
}

#[test]
fn k_larger_than_the_bank_uses_every_sample() -> Result<(), ProbeError> {
    // Two training points of class 0 and 1; a query equal to the first: both vote, class 0
    // with weight e^(1/T), class 1 with e^(0/T) = 1 (orthogonal).
    let train = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]).reshape([2, 2]);
    let knn = KnnClassifier::new(
        &train,
        &Tensor::from_slice(&[0i64, 1]),
        2,
        KnnConfig::default(),
    )?;
    let s = knn.scores(&Tensor::from_slice(&[2.0f32, 0.0]).reshape([1, 2]))?;
    let s = Vec::<f64>::try_from(s.to_kind(Kind::Double).reshape([-1]))?;
    let e = (1.0f64 / 0.07).exp();
    assert!((s[0] - e / (e + 1.0)).abs() < 1e-6, "{s:?}");
    Ok(())
}

#[test]
fn rejects_bad_shapes_and_labels() {
    let train = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]).reshape([2, 2]);
    let bad_label = KnnClassifier::new(
        &train,
        &Tensor::from_slice(&[0i64, 3]),
        2,
        KnnConfig::default(),
    );
    assert!(bad_label.is_err());
    let short = KnnClassifier::new(
        &train,
        &Tensor::from_slice(&[0i64]),
        2,
        KnnConfig::default(),
    );
    assert!(short.is_err());
    let knn = KnnClassifier::new(
        &train,
        &Tensor::from_slice(&[0i64, 1]),
        2,
        KnnConfig::default(),
    );
    let wrong_dim = knn.map(|k| k.scores(&Tensor::from_slice(&[1.0f32, 0.0, 0.0]).reshape([1, 3])));
    assert!(matches!(wrong_dim, Ok(Err(ProbeError::Shape(_)))));
}
