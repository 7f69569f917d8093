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

#[test]
fn each_setting_is_checked_and_zero_weight_decay_is_allowed() {
    let (x, y) = blobs(5, 6);
    let bad = [
        LinearProbeConfig {
            epochs: 0,
            ..quick()
        },
        LinearProbeConfig {
            batch_size: 0,
            ..quick()
        },
        LinearProbeConfig {
            learning_rate: 0.0,
            ..quick()
        },
        LinearProbeConfig {
            learning_rate: -0.1,
            ..quick()
        },
        LinearProbeConfig {
            weight_decay: -1e-4,
            ..quick()
        },
    ];
    for config in bad {
        let err = LinearProbe::train(&x, &y, 3, &config).expect_err("refused");
        assert!(matches!(err, ProbeError::Config(_)), "{config:?}: {err}");
    }
    let one_class = LinearProbe::train(
        &x,
        &Tensor::zeros([15], (Kind::Int64, tch::Device::Cpu)),
        1,
        &quick(),
    );
    assert!(matches!(one_class, Err(ProbeError::Config(_))));
    let no_decay = LinearProbeConfig {
        weight_decay: 0.0,
        batch_size: 1,
        epochs: 1,
        ..quick()
    };
    LinearProbe::train(&x, &y, 3, &no_decay).expect("weight decay 0 and batches of 1 are valid");
}

#[test]
fn epoch_losses_are_sample_weighted_means_starting_at_ln_c() -> Result<(), ProbeError> {
    // A rate so small the weights stay at zero: every logit is 0, so every sample's loss is
    // ln 3, and so is the epoch mean over batches of 4 and 1 (15 samples: 4 + 4 + 4 + 3).
    let (x, y) = blobs(5, 7);
    let still = LinearProbeConfig {
        epochs: 2,
        batch_size: 4,
        learning_rate: 1e-12,
        ..quick()
    };
    let probe = LinearProbe::train(&x, &y, 3, &still)?;
    for loss in probe.loss_history() {
        assert!(
            (loss - 3f64.ln()).abs() < 1e-9,
            "{:?}",
            probe.loss_history()
        );
    }
    Ok(())
}

#[test]
fn the_bias_learns_the_class_prior_of_uninformative_features() -> Result<(), ProbeError> {
    // Constant features standardise to 0, so only the bias can fit: the maximum-likelihood
    // softmax is the class frequency, 4 of 5 samples in class 0.
    let x = Tensor::ones([5, 2], (Kind::Float, tch::Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 0, 1, 0, 0]);
    let config = LinearProbeConfig {
        epochs: 300,
        batch_size: 5,
        learning_rate: 0.05,
        weight_decay: 0.0,
        seed: 0,
    };
    let probe = LinearProbe::train(&x, &y, 2, &config)?;
    let outs = probe.predict(&x, &y)?;
    for o in &outs {
        assert_eq!(o.prediction, 0);
        assert!((o.confidence - 0.8).abs() < 1e-3, "{o:?}");
    }
    Ok(())
}

#[test]
fn a_class_numbered_100_is_learned_like_any_other() -> Result<(), ProbeError> {
    // libtorch's cross-entropy ignores the target -100 by default: nothing may ignore 100.
    let classes = 101;
    let x = Tensor::eye(classes, (Kind::Float, tch::Device::Cpu));
    let y = Tensor::arange(classes, (Kind::Int64, tch::Device::Cpu));
    let config = LinearProbeConfig {
        epochs: 100,
        batch_size: 101,
        learning_rate: 0.1,
        ..quick()
    };
    let probe = LinearProbe::train(&x, &y, classes, &config)?;
    let outs = probe.predict(&x, &y)?;
    assert!(outs.iter().all(|o| o.correct), "{:?}", outs[100]);
    Ok(())
}
