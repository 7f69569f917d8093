//! The seven methods: their heads, hyper-parameters and loss on a batch of views, and what
//! happens after each optimiser step (EMA target, DINO centre, SwAV prototype normalisation).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use shiftlab_model::Architecture;
use tch::{Device, Kind, Tensor};

use crate::losses;
use crate::net::{ema_update, Mlp, Named, Net};
use crate::rng::Rng;

/// The trunk to train: a native ResNet and the channels of its first stage (torchvision: 64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trunk {
    pub arch: Architecture,
    pub width: i64,
}

impl Trunk {
    /// `arch` at torchvision's width.
    pub fn new(arch: Architecture) -> Trunk {
        Trunk {
            arch,
            width: shiftlab_model::DEFAULT_WIDTH,
        }
    }
}

/// A training method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Simclr,
    Simsiam,
    Byol,
    BarlowTwins,
    Swav,
    Dino,
    Supervised,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::Simclr,
        Method::Simsiam,
        Method::Byol,
        Method::BarlowTwins,
        Method::Swav,
        Method::Dino,
        Method::Supervised,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Simclr => "simclr",
            Method::Simsiam => "simsiam",
            Method::Byol => "byol",
            Method::BarlowTwins => "barlow_twins",
            Method::Swav => "swav",
            Method::Dino => "dino",
            Method::Supervised => "supervised",
        }
    }

    /// Base learning rate for SGD at batch 256 (scaled linearly with the batch size).
    pub fn default_lr(self) -> f64 {
        match self {
            Method::Simsiam => 0.05,
            Method::Dino => 0.03,
            Method::Supervised => 0.1,
            _ => 0.3,
        }
    }

    /// Weight decay (not applied to biases and BatchNorm parameters).
    pub fn default_weight_decay(self) -> f64 {
        match self {
            Method::Simsiam | Method::Supervised => 5e-4,
            _ => 1e-4,
        }
    }

    /// Views per image.
    pub fn views(self) -> usize {
        if self == Method::Supervised {
            1
        } else {
            2
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Method::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown method '{s}' (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// Head sizes and loss constants; defaults follow the papers' small-image (CIFAR) settings,
/// narrowed where the paper's width only pays off at ImageNet scale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hyper {
    pub proj_hidden: i64,
    pub proj_out: i64,
    /// Linear layers of the projector (SimSiam, Barlow Twins, DINO 3; the others 2).
    pub proj_layers: usize,
    /// BatchNorm after the projector's hidden layers (every method but DINO, whose paper head
    /// has none; lightly's CIFAR-10 DINO benchmark puts it back, with 2 layers).
    pub proj_bn: bool,
    pub pred_hidden: i64,
    /// SimCLR NT-Xent temperature (0.5).
    pub temperature: f64,
    /// Barlow Twins off-diagonal weight (5e-3).
    pub lambda: f64,
    /// SwAV prototypes / DINO output dimension.
    pub prototypes: i64,
    pub sinkhorn_iterations: usize,
    pub sinkhorn_epsilon: f64,
    /// SwAV temperature (0.1); also DINO's student temperature.
    pub swav_temperature: f64,
    pub student_temperature: f64,
    pub teacher_temperature: f64,
    pub center_momentum: f64,
    /// BYOL/DINO EMA rate at step 0, raised to 1 along a cosine.
    pub tau_base: f64,
    /// Factor on the loss (1). With SGD it is a learning-rate change (and weight decay ÷ it);
    /// with LARS it only moves the weight decay's share of each layer's step and the size of
    /// the bias/BatchNorm steps (solo-learn trains Barlow Twins with 0.1).
    pub loss_scale: f64,
    /// Classes for `supervised`.
    pub classes: i64,
}

impl Hyper {
    pub fn for_method(method: Method, classes: i64) -> Hyper {
        let (proj_hidden, proj_out, pred_hidden) = match method {
            Method::Simsiam => (2048, 2048, 512),
            Method::Byol => (4096, 256, 4096),
            Method::BarlowTwins => (2048, 2048, 0),
            Method::Dino => (2048, 256, 0),
            _ => (2048, 128, 0),
        };
        Hyper {
            proj_hidden,
            proj_out,
            proj_layers: match method {
                Method::Simsiam | Method::BarlowTwins | Method::Dino => 3,
                _ => 2,
            },
            proj_bn: method != Method::Dino,
            pred_hidden,
            temperature: 0.5,
            lambda: 5e-3,
            prototypes: if method == Method::Dino { 4096 } else { 3000 },
            sinkhorn_iterations: 3,
            sinkhorn_epsilon: 0.05,
            swav_temperature: 0.1,
            student_temperature: 0.1,
            teacher_temperature: 0.04,
            center_momentum: 0.9,
            // solo-learn's small-image BYOL starts at 0.99: a target that averages over ~100
            // steps rather than ~250 keeps up on short runs (the zoo: 75.6 % -> 78.1 % linear
            // at 936 steps); DINO keeps its paper's 0.996.
            tau_base: if method == Method::Byol { 0.99 } else { 0.996 },
            loss_scale: 1.0,
            classes,
        }
    }

    /// Narrow heads, for tests and quick checks.
    pub fn tiny(method: Method, classes: i64) -> Hyper {
        Hyper {
            proj_hidden: 64,
            proj_out: 32,
            pred_hidden: 16,
            prototypes: 16,
            ..Hyper::for_method(method, classes)
        }
    }

    fn projector(&self, method: Method) -> Mlp {
        Mlp {
            layers: self.proj_layers,
            hidden: self.proj_hidden,
            out: self.proj_out,
            hidden_bn: self.proj_bn,
            out_bn: method == Method::Simsiam,
            gelu: method == Method::Dino,
        }
    }

    fn predictor(&self) -> Mlp {
        Mlp {
            layers: 2,
            hidden: self.pred_hidden,
            out: self.proj_out,
            hidden_bn: true,
            out_bn: false,
            gelu: false,
        }
    }
}

/// A method's networks and state.
#[derive(Debug)]
pub struct Learner {
    pub method: Method,
    pub hyper: Hyper,
    pub online: Net,
    /// BYOL target / DINO teacher (EMA of `online`).
    pub target: Option<Net>,
    /// DINO's running centre of the teacher outputs.
    pub center: Option<Tensor>,
    /// Teacher output mean of the last loss, folded into the centre after the step.
    pending_center: Option<Tensor>,
}

impl Learner {
    /// Builds the networks from `seed` (trunk: `ResNet::init_seeded`; heads: our generator).
    pub fn new(
        method: Method,
        hyper: Hyper,
        trunk: Trunk,
        channels: i64,
        seed: u64,
        device: Device,
    ) -> Learner {
        let mut online = Net::new(trunk.arch, trunk.width, channels, seed, device);
        let mut rng = Rng::new(seed ^ 0x4ead);
        let dim = online.dim();
        match method {
            Method::Supervised => online.add_linear("fc", dim, hyper.classes, true, &mut rng),
            _ => online.add_mlp("projector", dim, hyper.projector(method), &mut rng),
        }
        match method {
            Method::Simsiam | Method::Byol => {
                online.add_mlp("predictor", hyper.proj_out, hyper.predictor(), &mut rng)
            }
            Method::Swav | Method::Dino => online.add_linear(
                "prototypes",
                hyper.proj_out,
                hyper.prototypes,
                false,
                &mut rng,
            ),
            _ => {}
        }
        let target = matches!(method, Method::Byol | Method::Dino).then(|| online.frozen_copy());
        let center = (method == Method::Dino)
            .then(|| Tensor::zeros([hyper.prototypes], (Kind::Float, device)));
        let learner = Learner {
            method,
            hyper,
            online,
            target,
            center,
            pending_center: None,
        };
        learner.normalize_prototypes();
        learner
    }

    /// The loss of a batch (`views`: one or two normalised `[B, C, H, W]` tensors).
    pub fn loss(&mut self, views: &[Tensor], labels: &Tensor) -> Tensor {
        // × 1.0 is exact: the default changes no bit of the loss or its gradients.
        self.objective(views, labels) * self.hyper.loss_scale
    }

    fn objective(&mut self, views: &[Tensor], labels: &Tensor) -> Tensor {
        let h = &self.hyper;
        let feats: Vec<Tensor> = views
            .iter()
            .map(|v| self.online.features(v, true))
            .collect();
        match self.method {
            Method::Supervised => {
                let logits = self.online.linear("fc", &feats[0]);
                losses::cross_entropy(&logits, &labels.to_device(logits.device()))
            }
            Method::Simclr => {
                let z = self.project(&feats);
                losses::nt_xent(&z[0], &z[1], h.temperature)
            }
            Method::BarlowTwins => {
                let z = self.project(&feats);
                losses::barlow_twins(&z[0], &z[1], h.lambda)
            }
            Method::Simsiam => {
                let z = self.project(&feats);
                let p = self.predict(&z);
                losses::simsiam(&p[0], &p[1], &z[0], &z[1])
            }
            Method::Byol => self.byol_loss(views, &feats),
            Method::Swav => self.swav_loss(&feats),
            Method::Dino => self.dino_loss(views, &feats),
        }
    }

    fn project(&self, feats: &[Tensor]) -> Vec<Tensor> {
        let mlp = self.hyper.projector(self.method);
        feats
            .iter()
            .map(|f| self.online.mlp("projector", f, mlp, true))
            .collect()
    }

    fn predict(&self, z: &[Tensor]) -> Vec<Tensor> {
        let mlp = self.hyper.predictor();
        z.iter()
            .map(|z| self.online.mlp("predictor", z, mlp, true))
            .collect()
    }

    fn byol_loss(&self, views: &[Tensor], feats: &[Tensor]) -> Tensor {
        let p = self.predict(&self.project(feats));
        let t = self.target_outputs(views, |net, f| {
            net.mlp("projector", f, self.hyper.projector(Method::Byol), true)
        });
        losses::byol(&p[0], &p[1], &t[0], &t[1])
    }

    fn swav_loss(&self, feats: &[Tensor]) -> Tensor {
        let h = &self.hyper;
        let scores: Vec<Tensor> = self
            .project(feats)
            .iter()
            .map(|z| self.online.linear("prototypes", &losses::l2_normalize(z)))
            .collect();
        let q: Vec<Tensor> = scores
            .iter()
            .map(|s| losses::sinkhorn(&s.detach(), h.sinkhorn_epsilon, h.sinkhorn_iterations))
            .collect();
        losses::swav(&scores[0], &scores[1], &q[0], &q[1], h.swav_temperature)
    }

    fn dino_loss(&mut self, views: &[Tensor], feats: &[Tensor]) -> Tensor {
        let student: Vec<Tensor> = self
            .project(feats)
            .iter()
            .map(|z| dino_prototypes(&self.online, z))
            .collect();
        let mlp = self.hyper.projector(Method::Dino);
        let teacher = self.target_outputs(views, |net, f| {
            dino_prototypes(net, &net.mlp("projector", f, mlp, true))
        });
        let h = &self.hyper;
        let center = self.center.as_ref().expect("DINO learner has a centre");
        let loss = losses::dino(
            &student,
            &teacher,
            center,
            h.student_temperature,
            h.teacher_temperature,
        );
        let mean = Tensor::cat(&teacher, 0).mean_dim([0i64].as_slice(), false, Kind::Float);
        self.pending_center = Some(mean);
        loss
    }

    /// Target/teacher outputs per view, without gradients (BatchNorm on batch statistics).
    fn target_outputs(
        &self,
        views: &[Tensor],
        head: impl Fn(&Net, &Tensor) -> Tensor,
    ) -> Vec<Tensor> {
        let net = self
            .target
            .as_ref()
            .expect("EMA method has a target network");
        let _guard = tch::no_grad_guard();
        views
            .iter()
            .map(|v| head(net, &net.features(v, true)))
            .collect()
    }

    /// After the optimiser step at `progress` (0 at the first step, 1 at the end of training):
    /// EMA of the target with the cosine tau schedule, DINO's centre, SwAV's prototypes.
    pub fn after_step(&mut self, progress: f64) {
        if let Some(target) = &self.target {
            ema_update(target, &self.online, self.tau(progress));
        }
        if let (Some(center), Some(mean)) = (&mut self.center, self.pending_center.take()) {
            let _guard = tch::no_grad_guard();
            let m = self.hyper.center_momentum;
            *center = &*center * m + mean * (1.0 - m);
        }
        self.normalize_prototypes();
    }

    /// `1 − (1 − tau_base)·(cos(π·progress) + 1)/2`: from `tau_base` to 1 (BYOL).
    pub fn tau(&self, progress: f64) -> f64 {
        let p = progress.clamp(0.0, 1.0);
        1.0 - (1.0 - self.hyper.tau_base) * ((std::f64::consts::PI * p).cos() + 1.0) / 2.0
    }

    /// SwAV keeps its prototypes on the unit sphere (normalised after each step).
    fn normalize_prototypes(&self) {
        if self.method != Method::Swav {
            return;
        }
        if let Some(w) = self.online.heads.get("prototypes.weight") {
            let _guard = tch::no_grad_guard();
            w.shallow_clone().copy_(&losses::l2_normalize(w));
        }
    }

    /// Every tensor of the learner under stable names (for checkpoints).
    pub fn state(&self) -> Named {
        let mut out: Named = self
            .online
            .state()
            .into_iter()
            .map(|(k, v)| (format!("online.{k}"), v))
            .collect();
        if let Some(t) = &self.target {
            out.extend(
                t.state()
                    .into_iter()
                    .map(|(k, v)| (format!("target.{k}"), v)),
            );
        }
        if let Some(c) = &self.center {
            out.insert("center".into(), c.shallow_clone());
        }
        out
    }

    /// Overwrites the state from a checkpoint's tensors (the DINO centre is replaced).
    pub fn load_state(&mut self, tensors: &Named) -> anyhow::Result<()> {
        let _guard = tch::no_grad_guard();
        for (k, v) in self.state() {
            let src = tensors
                .get(&k)
                .ok_or_else(|| anyhow::anyhow!("checkpoint lacks tensor '{k}'"))?;
            if src.size() != v.size() {
                anyhow::bail!(
                    "checkpoint tensor '{k}' has shape {:?}, expected {:?}",
                    src.size(),
                    v.size()
                );
            }
            v.shallow_clone().f_copy_(&src.to_device(v.device()))?;
        }
        Ok(())
    }
}

/// DINO's last layer: L2-normalised bottleneck through a weight-normalised linear map.
fn dino_prototypes(net: &Net, z: &Tensor) -> Tensor {
    let w = losses::l2_normalize(&net.heads["prototypes.weight"]);
    losses::l2_normalize(z).linear(&w, None::<Tensor>)
}
