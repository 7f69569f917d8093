//! The ImageNet-C corruption names: the 15 benchmark corruptions and the 4 extra ones.

/// The 15 corruptions of the ImageNet-C benchmark; mCE averages over exactly these.
pub const BENCHMARK_15: [&str; 15] = [
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
];

/// The 4 extra (held-out / validation) corruptions shipped with ImageNet-C.
pub const EXTRA_4: [&str; 4] = ["speckle_noise", "gaussian_blur", "spatter", "saturate"];

/// Number of severity levels (1..=5).
pub const SEVERITIES: usize = 5;

/// Which corruptions an average runs over; named so reports never blur the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorruptionSet {
    /// The 15 benchmark corruptions.
    Benchmark15,
    /// The 15 benchmark corruptions plus the 4 extra ones.
    All19,
}

impl CorruptionSet {
    /// The corruption names in this set, benchmark ones first.
    pub fn names(self) -> Vec<&'static str> {
        match self {
            Self::Benchmark15 => BENCHMARK_15.to_vec(),
            Self::All19 => BENCHMARK_15.iter().chain(EXTRA_4.iter()).copied().collect(),
        }
    }

    /// A short label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::Benchmark15 => "15 benchmark corruptions",
            Self::All19 => "all 19 corruptions",
        }
    }
}

/// Whether `name` is one of the 19 known corruptions.
pub fn is_known(name: &str) -> bool {
    BENCHMARK_15.contains(&name) || EXTRA_4.contains(&name)
}

/// Whether `name` is one of the 15 benchmark corruptions.
pub fn is_benchmark(name: &str) -> bool {
    BENCHMARK_15.contains(&name)
}

/// Position of a corruption in the canonical order (benchmark 15, then extra 4); used for sorting.
pub fn canonical_index(name: &str) -> Option<usize> {
    BENCHMARK_15
        .iter()
        .chain(EXTRA_4.iter())
        .position(|n| *n == name)
}
