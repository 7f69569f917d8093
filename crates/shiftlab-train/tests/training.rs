//! Each method's loss goes down on a fixed batch; EMA targets move towards the online network;
//! runs are reproducible and resumable; the output loads in `shiftlab_model::Encoder`.

use std::path::Path;

use shiftlab_model::{Architecture, Encoder, ModelConfig, Normalize, RuntimeOptions};
use shiftlab_train::augment::Augment;
use shiftlab_train::data::TrainData;
use shiftlab_train::optim::Sgd;
use shiftlab_train::rng::Rng;
use shiftlab_train::{train, Hyper, Learner, Method, TrainConfig, Trunk};
use tch::{Device, Kind, Tensor};

const SIDE: i64 = 32;

/// `n` grey images with some structure (blobs of random brightness) and labels 0..4.
fn images(n: i64, seed: u64) -> (Tensor, Tensor) {
    images_of(n, seed, SIDE)
}

/// `n` images of `side` pixels (whole-run tests use 16 px: four times cheaper).
fn images_of(n: i64, seed: u64, side: i64) -> (Tensor, Tensor) {
    let mut rng = Rng::new(seed);
    let mut px = Vec::with_capacity((n * side * side) as usize);
    for _ in 0..n {
        let (cx, cy, r) = (
            rng.range(0.25, 0.75) * side as f64,
            rng.range(0.25, 0.75) * side as f64,
            rng.range(0.1, 0.3) * side as f64,
        );
        let level = rng.range(80.0, 255.0);
        for y in 0..side {
            for x in 0..side {
                let d = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
                let v = if d < r { level } else { 20.0 } + rng.range(0.0, 20.0);
                px.push(v as u8);
            }
        }
    }
    let labels: Vec<i64> = (0..n).map(|i| i % 4).collect();
    (
        Tensor::from_slice(&px).view([n, 1, side, side]),
        Tensor::from_slice(&labels),
    )
}

/// The zoo's trunk: the small-image ResNet-18 at width 16.
const WIDTH: i64 = 16;

fn trunk() -> Trunk {
    Trunk {
        arch: Architecture::ResNet18Small,
        width: WIDTH,
    }
}

fn learner(method: Method) -> Learner {
    learner_with(method, Hyper::tiny(method, 4))
}

fn learner_with(method: Method, hyper: Hyper) -> Learner {
    Learner::new(method, hyper, trunk(), 1, 7, Device::Cpu)
}

fn fixed_views(method: Method, x: &Tensor) -> Vec<Tensor> {
    let aug = Augment::ssl(SIDE, vec![0.3], vec![0.3]);
    let mut rng = Rng::new(11);
    (0..method.views())
        .map(|_| aug.view(x, &mut rng, Device::Cpu))
        .collect()
}

/// Loss on the same views before and after `steps` steps of `sgd`.
fn loss_before_after(
    method: Method,
    hyper: Hyper,
    steps: usize,
    lr: f64,
    mut sgd: Sgd,
) -> (f64, f64) {
    let (x, y) = images(8, 3);
    let views = fixed_views(method, &x);
    let mut l = learner_with(method, hyper);
    let mut first = None;
    for i in 0..steps {
        let loss = shiftlab_train::train::step(&mut l, &mut sgd, &views, &y, lr);
        first.get_or_insert(loss);
        l.after_step(i as f64 / 100.0);
    }
    let after = l.loss(&views, &y).double_value(&[]);
    (first.unwrap_or(f64::NAN), after)
}

/// A small learning rate: a few steps on one batch are a descent test, not training.
fn assert_decreases(method: Method) {
    let mut hyper = Hyper::tiny(method, 4);
    // DINO's centre moves the targets; hold it so that the loss before and after compare.
    hyper.center_momentum = 1.0;
    let (before, after) = loss_before_after(method, hyper, 3, 0.002, Sgd::new(0.9, 0.0));
    assert!(
        after < before && after.is_finite(),
        "{method}: loss {before} -> {after}"
    );
}

#[test]
fn simclr_loss_decreases() {
    assert_decreases(Method::Simclr);
}

#[test]
fn simsiam_loss_decreases() {
    assert_decreases(Method::Simsiam);
}

#[test]
fn byol_loss_decreases() {
    assert_decreases(Method::Byol);
}

#[test]
fn barlow_twins_loss_decreases() {
    assert_decreases(Method::BarlowTwins);
}

#[test]
fn swav_loss_decreases() {
    assert_decreases(Method::Swav);
}

#[test]
fn dino_loss_decreases() {
    assert_decreases(Method::Dino);
}

#[test]
fn supervised_loss_decreases() {
    assert_decreases(Method::Supervised);
}

/// The head tensors of a learner's online network, by name, with their shapes.
fn head_shapes(l: &Learner) -> std::collections::BTreeMap<String, Vec<i64>> {
    l.state()
        .into_iter()
        .filter(|(k, _)| k.starts_with("online.projector.") || k.starts_with("online.prototypes."))
        .map(|(k, v)| (k, v.size()))
        .collect()
}

#[test]
fn the_projector_has_the_layers_and_batch_norm_asked_for() {
    let method = Method::Dino;
    let paper = head_shapes(&learner(method));
    let mut hyper = Hyper::tiny(method, 4);
    assert_eq!(
        (hyper.proj_layers, hyper.proj_bn),
        (3, false),
        "DINO's paper head"
    );
    assert!(paper.contains_key("online.projector.2.weight"));
    assert!(!paper.keys().any(|k| k.contains(".bn")), "{paper:?}");
    // lightly's CIFAR-10 DINO head: 2 layers, BatchNorm after the hidden one.
    (hyper.proj_layers, hyper.proj_bn, hyper.prototypes) = (2, true, 24);
    let (hidden, out) = (hyper.proj_hidden, hyper.proj_out);
    let small = head_shapes(&learner_with(method, hyper.clone()));
    assert!(
        !small.contains_key("online.projector.2.weight"),
        "{small:?}"
    );
    assert_eq!(small["online.projector.1.weight"], vec![out, hidden]);
    assert_eq!(small["online.projector.bn0.weight"], vec![hidden]);
    assert!(
        !small.contains_key("online.projector.bn1.weight"),
        "no BN on the output"
    );
    assert_eq!(small["online.prototypes.weight"], vec![24, out]);
    hyper.center_momentum = 1.0;
    let (before, after) = loss_before_after(method, hyper, 3, 0.002, Sgd::new(0.9, 0.0));
    assert!(
        after < before && after.is_finite(),
        "loss {before} -> {after}"
    );
    // Every other method keeps BatchNorm in its projector.
    for m in [
        Method::Simclr,
        Method::Byol,
        Method::BarlowTwins,
        Method::Swav,
    ] {
        assert!(Hyper::for_method(m, 0).proj_bn, "{m}");
    }
}

#[test]
fn barlow_twins_loss_decreases_with_lars() {
    let method = Method::BarlowTwins;
    let lars = Sgd::lars(0.9, 1e-4, shiftlab_train::LARS_ETA);
    let (before, after) = loss_before_after(method, Hyper::tiny(method, 4), 3, 0.05, lars);
    assert!(
        after < before && after.is_finite(),
        "{method} with LARS: loss {before} -> {after}"
    );
}

#[test]
fn loss_scale_multiplies_the_loss() {
    let (x, y) = images(8, 3);
    let views = fixed_views(Method::BarlowTwins, &x);
    let mut hyper = Hyper::tiny(Method::BarlowTwins, 4);
    let plain = learner_with(Method::BarlowTwins, hyper.clone())
        .loss(&views, &y)
        .double_value(&[]);
    hyper.loss_scale = 0.1;
    let scaled = learner_with(Method::BarlowTwins, hyper)
        .loss(&views, &y)
        .double_value(&[]);
    assert!(
        (scaled - 0.1 * plain).abs() < 1e-6 * plain.abs(),
        "{scaled} vs {plain}"
    );
}

/// Squared distance between the target's and the online network's parameters.
fn target_distance(l: &Learner) -> f64 {
    let online = l.online.parameters();
    let target = l.target.as_ref().map(|t| t.state()).unwrap_or_default();
    online
        .iter()
        .map(|(k, o)| {
            (&target[k] - o)
                .square()
                .sum(Kind::Double)
                .double_value(&[])
        })
        .sum()
}

#[test]
fn ema_target_moves_towards_the_online_network() {
    for method in [Method::Byol, Method::Dino] {
        let (x, y) = images(8, 5);
        let views = fixed_views(method, &x);
        let mut l = learner(method);
        assert_eq!(
            target_distance(&l),
            0.0,
            "{method}: target starts as a copy"
        );
        shiftlab_train::train::step(&mut l, &mut Sgd::new(0.9, 0.0), &views, &y, 0.1);
        let before = target_distance(&l);
        let tau = l.tau(0.0);
        l.after_step(0.0);
        let after = target_distance(&l);
        assert!(before > 0.0, "{method}: the step moved the online network");
        let want = before * tau * tau;
        assert!(
            (after - want).abs() <= 1e-3 * want,
            "{method}: {before} -> {after}, want {want}"
        );
    }
}

#[test]
fn tau_schedule_runs_from_base_to_one() {
    let l = learner(Method::Byol);
    assert!((l.tau(0.0) - 0.99).abs() < 1e-12);
    assert!((learner(Method::Dino).tau(0.0) - 0.996).abs() < 1e-12);
    assert!((l.tau(1.0) - 1.0).abs() < 1e-12);
    assert!(l.tau(0.3) < l.tau(0.6));
}

fn config(method: Method, out: &Path, epochs: usize) -> TrainConfig {
    let mut cfg = TrainConfig::new(method, Architecture::ResNet18Small, epochs, 4, out.into());
    cfg.batch_size = 8;
    cfg.width = WIDTH;
    cfg.hyper = Hyper::tiny(method, 4);
    cfg.seed = 3;
    cfg
}

fn data() -> TrainData {
    // One batch of 8: one step per epoch keeps the whole-run tests to a few steps.
    let (x, y) = images_of(8, 9, 16);
    TrainData::from_tensors(x, y, 4)
}

fn read(path: &Path) -> Vec<(String, Tensor)> {
    let mut v = Tensor::read_safetensors(path).expect("readable output");
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn same(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && x.1.equal(&y.1))
}

#[test]
fn same_seed_same_weights_and_resume_continues_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b, c) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
        dir.path().join("c.safetensors"),
    );
    let d = data();
    train(&config(Method::Byol, &a, 2), &d, |_| {}).expect("run a");
    train(&config(Method::Byol, &b, 2), &d, |_| {}).expect("run b");
    assert!(same(&read(&a), &read(&b)), "two runs with one seed differ");
    // Interrupted after epoch 1, then resumed: the same weights as the uninterrupted run.
    let mut cfg = config(Method::Byol, &c, 2);
    cfg.stop_after = Some(1);
    let s = train(&cfg, &d, |_| {}).expect("first half");
    assert!(!s.completed && !c.exists());
    cfg.stop_after = None;
    cfg.resume = true;
    let s = train(&cfg, &d, |_| {}).expect("second half");
    assert!(s.completed && s.resumed_from_epoch == Some(1) && s.steps == 2);
    assert!(same(&read(&a), &read(&c)), "resumed run differs");
    let mut other = config(Method::Byol, &c, 1);
    other.seed = 4;
    train(&other, &d, |_| {}).expect("run with another seed");
    assert!(!same(&read(&a), &read(&c)), "the seed changes nothing");
}

#[test]
fn output_is_the_backbone_and_loads_in_the_encoder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("simclr.safetensors");
    let d = data();
    let summary = train(&config(Method::Simclr, &out, 1), &d, |_| {}).expect("train");
    let names: Vec<String> = read(&out).into_iter().map(|(k, _)| k).collect();
    assert!(names.contains(&"layer4.1.bn2.running_var".to_string()));
    assert!(
        names.iter().all(|n| !n.starts_with("projector")),
        "{names:?}"
    );
    let sidecar: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("simclr.json")).expect("sidecar"),
    )
    .expect("sidecar JSON");
    assert_eq!(sidecar["method"], "simclr");
    assert_eq!(sidecar["seed"], 3);
    assert_eq!(sidecar["steps"], 1);
    assert_eq!(sidecar["width"], WIDTH);
    if cfg!(target_os = "linux") {
        // The step's own CPU time is recorded (a training step is far above one 10 ms tick),
        // and the CPU is named as /proc/cpuinfo names it.
        let cpu = sidecar["cpu_seconds"].as_f64().expect("cpu_seconds");
        assert!(cpu > 0.0 && cpu <= summary.seconds * 64.0, "{cpu}");
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").expect("cpuinfo");
        let model = cpuinfo.lines().find_map(|l| l.strip_prefix("model name"));
        let model = model.and_then(|v| v.split_once(':')).map(|(_, v)| v.trim());
        let machine = sidecar["machine"].as_str().unwrap_or_default();
        assert!(machine.starts_with(model.unwrap_or("?")), "{machine}");
    }
    let mut cfg = ModelConfig {
        name: "trained".into(),
        architecture: Some("resnet18-small".into()),
        weights: Some(out.clone()),
        seed: None,
        stem_padding: None,
        width: None,
        pool: None,
        torchscript: None,
        input_size: None,
        resize: None,
        crop: None,
        normalize: Some(Normalize {
            mean: summary.normalize_mean.clone(),
            std: summary.normalize_std.clone(),
        }),
        channels: Some(1),
        description: None,
        paradigm: None,
    };
    // Without its width the file does not fit the default (64) trunk: the error says where.
    let err = Encoder::from_config(&cfg, dir.path(), &RuntimeOptions::default())
        .expect_err("a width-16 file in a width-64 trunk")
        .to_string();
    assert!(err.contains("set width = 16"), "{err}");
    cfg.width = Some(WIDTH as u16);
    let enc = Encoder::from_config(&cfg, dir.path(), &RuntimeOptions::default()).expect("loads");
    let pixels = d.images.narrow(0, 0, 2).permute([0, 2, 3, 1]).contiguous();
    let feats = enc.embed(&pixels).expect("embeds");
    assert_eq!(feats.size(), [2, 8 * WIDTH]);
    assert!(feats.isfinite().all().int64_value(&[]) == 1);
    // The same numbers as the trained trunk in evaluation mode.
    let mut l = learner(Method::Simclr);
    let tensors: shiftlab_train::net::Named = read(&out)
        .into_iter()
        .map(|(k, v)| (format!("online.backbone.{k}"), v))
        .collect();
    let mut st = l.state();
    st.retain(|k, _| !k.starts_with("online.backbone."));
    let mut all = tensors;
    all.extend(st);
    l.load_state(&all).expect("state");
    let x = (d.images.narrow(0, 0, 2).to_kind(Kind::Float) / 255.0 - summary.normalize_mean[0])
        / summary.normalize_std[0];
    let ours = tch::no_grad(|| l.online.features(&x, false));
    assert!(ours.allclose(&feats, 1e-4, 1e-4, false));
}

#[test]
fn half_weights_are_float16_and_embed_like_the_float32_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = data();
    let full = dir.path().join("full.safetensors");
    let half = dir.path().join("half.safetensors");
    train(&config(Method::Supervised, &full, 1), &d, |_| {}).expect("train");
    let mut cfg = config(Method::Supervised, &half, 1);
    cfg.half_weights = true;
    train(&cfg, &d, |_| {}).expect("train half");
    let (f, h) = (read(&full), read(&half));
    assert_eq!(f.len(), h.len());
    for ((name, a), (_, b)) in f.iter().zip(&h) {
        if name.ends_with("running_var") || name.ends_with("running_mean") {
            assert_eq!(
                b.kind(),
                Kind::Float,
                "{name}: BatchNorm statistics stay float32"
            );
            assert!(a.equal(b), "{name}");
        } else if a.is_floating_point() {
            assert_eq!(b.kind(), Kind::Half, "{name}");
            // float16 keeps ~3 significant digits of every weight.
            let diff = (a - b.to_kind(Kind::Float)).abs().max().double_value(&[]);
            let scale = a.abs().max().double_value(&[]).max(1e-3);
            assert!(diff <= scale * 1e-3, "{name}: {diff} vs {scale}");
        } else {
            assert!(a.equal(b), "{name}");
        }
    }
    assert!(
        std::fs::metadata(&half).expect("half").len() * 10
            < std::fs::metadata(&full).expect("full").len() * 6
    );
}

#[test]
fn a_diverging_run_stops_with_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("x.safetensors");
    let mut cfg = config(Method::Supervised, &out, 2);
    cfg.lr = Some(1e30);
    let err = format!("{:#}", train(&cfg, &data(), |_| {}).unwrap_err());
    assert!(err.contains("lower --lr"), "{err}");
    assert!(!out.exists());
}

#[test]
fn rgb_images_train_with_colour_jitter() {
    let (grey, y) = images_of(8, 2, 16);
    let half = (&grey / 2).to_kind(Kind::Uint8);
    let rgb = Tensor::cat(&[&grey, &half, &(255 - &grey)], 1);
    let aug = Augment::ssl(16, vec![0.4; 3], vec![0.3; 3]);
    let mut rng = Rng::new(1);
    let views: Vec<Tensor> = (0..2)
        .map(|_| aug.view(&rgb, &mut rng, Device::Cpu))
        .collect();
    let hyper = Hyper::tiny(Method::Simclr, 4);
    let mut l = Learner::new(Method::Simclr, hyper, trunk(), 3, 1, Device::Cpu);
    let loss = shiftlab_train::train::step(&mut l, &mut Sgd::new(0.9, 1e-4), &views, &y, 0.002);
    assert!(loss.is_finite());
    assert_eq!(l.online.channels(), 3);
}

#[test]
fn blur_p_sets_the_blur_of_the_ssl_views_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
    );
    let d = data();
    let s = train(&config(Method::Simclr, &a, 1), &d, |_| {}).expect("default blur");
    assert_eq!(s.augment.blur_p, 0.5);
    let mut cfg = config(Method::Simclr, &b, 1);
    cfg.blur_p = Some(0.0);
    let s = train(&cfg, &d, |_| {}).expect("no blur");
    assert_eq!((s.augment.blur_p, s.config.blur_p), (0.0, Some(0.0)));
    assert!(!same(&read(&a), &read(&b)), "--blur-p 0 changed nothing");
    // The supervised recipe has no blur, whatever the flag says.
    let mut cfg = config(Method::Supervised, &b, 1);
    cfg.blur_p = Some(1.0);
    let s = train(&cfg, &d, |_| {}).expect("supervised");
    assert_eq!(s.augment.blur_p, 0.0);
}
