//! Weighted k-nearest-neighbour classifier, as in DINO's `eval_knn.py`.
//!
//! Features are L2-normalised, so the dot product is the cosine similarity. For each query the
//! k most similar training samples vote for their class with weight exp(similarity / T); the
//! prediction is the class with the largest summed vote. Scores are the votes normalised to sum
//! to 1 per query, so the confidence is the winning class's vote share.
//!
//! Ties: neighbours with equal similarity at the k-th place, and classes with equal votes, are
//! ordered as libtorch's `topk` orders them (unspecified). Continuous features make both rare.

use tch::{Kind, Tensor};

use super::error::{check_labels, matrix_dims, ProbeError};
use super::outputs::{outputs_from_scores, SampleOutput};

/// kNN settings; the defaults are DINO's (k = 20, T = 0.07).
#[derive(Clone, Debug, PartialEq)]
pub struct KnnConfig {
    /// Number of neighbours (capped at the training-set size).
    pub k: i64,
    /// Temperature T of the vote weights exp(sim / T).
    pub temperature: f64,
    /// Queries per similarity block; bounds memory to `chunk x N_train` similarities.
    pub chunk: i64,
}

impl Default for KnnConfig {
    fn default() -> Self {
        Self {
            k: 20,
            temperature: 0.07,
            chunk: 1024,
        }
    }
}

/// A kNN classifier over a normalised training bank (kept on the training features' device).
#[derive(Debug)]
pub struct KnnClassifier {
    bank: Tensor,
    labels: Tensor,
    classes: i64,
    config: KnnConfig,
}

impl KnnClassifier {
    /// Builds the bank from training features `[N, D]` and labels `[N]` in 0..classes.
    pub fn new(
        features: &Tensor,
        labels: &Tensor,
        classes: i64,
        config: KnnConfig,
    ) -> Result<Self, ProbeError> {
        if config.k < 1 || config.chunk < 1 || config.temperature <= 0.0 {
            return Err(ProbeError::Config(format!(
                "k and chunk must be >= 1 and temperature > 0, got {config:?}"
            )));
        }
        let (n, _) = matrix_dims(features, "training features")?;
        check_labels(labels, n, classes)?;
        let device = features.device();
        Ok(Self {
            bank: l2_normalize(features),
            labels: labels.to_kind(Kind::Int64).to_device(device),
            classes,
            config,
        })
    }

    /// Normalised class votes `[M, C]` for query features `[M, D]`.
    pub fn scores(&self, features: &Tensor) -> Result<Tensor, ProbeError> {
        let (m, d) = matrix_dims(features, "query features")?;
        if d != self.bank.size()[1] {
            return Err(ProbeError::Shape(format!(
                "query features have {d} dimensions, the training bank {}",
                self.bank.size()[1]
            )));
        }
        let queries = l2_normalize(&features.to_device(self.bank.device()));
        let blocks: Vec<Tensor> = (0..m)
            .step_by(self.config.chunk as usize)
            .map(|start| {
                let len = self.config.chunk.min(m - start);
                self.votes(&queries.narrow(0, start, len))
            })
            .collect::<Result<_, _>>()?;
        Ok(Tensor::f_cat(&blocks, 0)?)
    }

    /// Per-sample outputs for query features `[M, D]` and their labels `[M]`.
    pub fn predict(
        &self,
        features: &Tensor,
        labels: &Tensor,
    ) -> Result<Vec<SampleOutput>, ProbeError> {
        outputs_from_scores(&self.scores(features)?, labels)
    }

    /// Votes of one block of normalised queries.
    fn votes(&self, queries: &Tensor) -> Result<Tensor, ProbeError> {
        let k = self.config.k.min(self.bank.size()[0]);
        let sim = queries.f_matmul(&self.bank.tr())?;
        let (top_sim, top_idx) = sim.f_topk(k, 1, true, true)?;
        let neighbour_labels = self.labels.f_index_select(0, &top_idx.reshape([-1]))?;
        let neighbour_labels = neighbour_labels.reshape(top_idx.size());
        let weights = (top_sim / self.config.temperature).exp();
        let rows = queries.size()[0];
        let zeros = Tensor::zeros([rows, self.classes], (Kind::Double, queries.device()));
        let votes = zeros.f_scatter_add(1, &neighbour_labels, &weights)?;
        let total = votes.sum_dim_intlist(1, true, Kind::Double);
        Ok(votes / total)
    }
}

/// Rows scaled to unit L2 norm, in float64 so that scores do not depend (beyond float32
/// rounding) on how many rows a call holds or how many threads libtorch uses; zero rows stay zero.
pub(crate) fn l2_normalize(features: &Tensor) -> Tensor {
    let x = features.to_kind(Kind::Double);
    let norm = x.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
    x / norm
}

#[cfg(test)]
mod tests;
