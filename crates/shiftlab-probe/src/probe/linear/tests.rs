use super::*;

/// Three well-separated Gaussian-ish blobs in 6 dimensions (plain-Rust generator).
fn blobs(n_per_class: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = SplitMix64::new(seed);
    let centres = [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]];
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (c, centre) in centres.iter().enumerate() {
        for _ in 0..n_per_class {
            for k in 0..6 {
                let noise = rng.next_f64() * 2.0 - 1.0;
                x.push(centre.get(k).copied().unwrap_or(0.0) + noise);
            }
            y.push(c as i64);
        }
    }
    let x = Tensor::from_slice(&x).reshape([-1, 6]).to_kind(Kind::Float);
    (x, Tensor::from_slice(&y))
}

fn quick() -> LinearProbeConfig {
    LinearProbeConfig {
        epochs: 30,
        batch_size: 32,
        ..LinearProbeConfig::default()
    }
}

#[test]
fn separable_data_is_learned_and_loss_decreases() -> Result<(), ProbeError> {
    let (x, y) = blobs(100, 1);
    let probe = LinearProbe::train(&x, &y, 3, &quick())?;
    let (tx, ty) = blobs(50, 2);
    let outs = probe.predict(&tx, &ty)?;
    let acc = outs.iter().filter(|o| o.correct).count() as f64 / outs.len() as f64;
    assert!(acc >= 0.99, "accuracy {acc}");
    let losses = probe.loss_history();
    assert_eq!(losses.len(), 30);
    // Zero init: the first epoch starts at ln 3 = 1.0986 and falls from there.
    assert!(losses[0] < 3f64.ln());
    assert!(losses[29] < 0.5 * losses[0], "{losses:?}");
    assert!(outs.iter().all(|o| o.top5.len() == 3 && o.top5_correct));
    Ok(())
}

#[test]
fn training_is_deterministic_under_a_seed() -> Result<(), ProbeError> {
    let (x, y) = blobs(40, 3);
    let a = LinearProbe::train(&x, &y, 3, &quick())?;
    let b = LinearProbe::train(&x, &y, 3, &quick())?;
    assert!(a.weight().equal(b.weight()));
    assert_eq!(a.loss_history(), b.loss_history());
    let other = LinearProbeConfig { seed: 9, ..quick() };
    let c = LinearProbe::train(&x, &y, 3, &other)?;
    assert!(!a.weight().equal(c.weight()));
    Ok(())
}

#[test]
fn rejects_bad_input() {
    let (x, y) = blobs(5, 4);
    assert!(
        LinearProbe::train(&x, &y, 2, &quick()).is_err(),
        "labels up to 2 with 2 classes"
    );
    let zero_epochs = LinearProbeConfig {
        epochs: 0,
        ..quick()
    };
    assert!(LinearProbe::train(&x, &y, 3, &zero_epochs).is_err());
    let probe = LinearProbe::train(&x, &y, 3, &quick());
    let wrong = probe.map(|p| p.logits(&Tensor::zeros([2, 5], (Kind::Float, tch::Device::Cpu))));
    assert!(matches!(wrong, Ok(Err(ProbeError::Shape(_)))));
}

#[test]
fn queries_are_standardised_like_the_training_features() -> Result<(), ProbeError> {
    // The blobs moved far from 0 and squeezed (x 0.01 + 100): the probe learns on standardised
    // features, so queries must be standardised too, or every logit is dominated by the offset.
    let (x, y) = blobs(100, 4);
    let shifted = |t: &Tensor| t.to_kind(Kind::Double) * 0.01 + 100.0;
    let probe = LinearProbe::train(&shifted(&x), &y, 3, &quick())?;
    let (tx, ty) = blobs(50, 5);
    let outs = probe.predict(&shifted(&tx), &ty)?;
    let acc = outs.iter().filter(|o| o.correct).count() as f64 / outs.len() as f64;
    assert!(acc >= 0.99, "accuracy {acc}");
    // The same probe trained on the unmoved blobs gives the same logits (in float64).
    let plain = LinearProbe::train(&x, &y, 3, &quick())?;
    let diff = (probe.logits(&shifted(&tx))? - plain.logits(&tx)?)
        .abs()
        .max();
    assert!(diff.double_value(&[]) < 1e-6, "{diff}");
    Ok(())
}
