//! One name space for the ImageNet-C corruptions and the synthetic shifts, so that command-line
//! tools and the pipeline dispatch to the right engine in one place.

use std::fmt;
use std::str::FromStr;

use image::DynamicImage;

use crate::{
    corrupt_dynamic, shift_dynamic, Corruption, CorruptionError, FrostAssets, Preset, Severity,
    SyntheticShift,
};

/// A corruption or a synthetic shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transform {
    Corruption(Corruption),
    Synthetic(SyntheticShift),
}

/// A name that is neither a corruption nor a synthetic shift; the message lists both sets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown corruption or shift {name:?}; valid names: corruptions: {}; synthetic shifts: {}",
    Corruption::ALL.map(|c| c.name()).join(", "),
    SyntheticShift::ALL.map(|s| s.name()).join(", ")
)]
pub struct UnknownTransform {
    pub name: String,
}

impl Transform {
    /// Whether the frost photos must be loaded.
    pub fn needs_frost(self) -> bool {
        self == Transform::Corruption(Corruption::Frost)
    }

    /// [`corrupt_dynamic`] or [`shift_dynamic`]: grey in, grey out. `preset` and `assets` are
    /// only read by corruptions.
    pub fn apply(
        self,
        img: &DynamicImage,
        severity: Severity,
        preset: Preset,
        seed: u64,
        key: u64,
        assets: &FrostAssets,
    ) -> Result<DynamicImage, CorruptionError> {
        match self {
            Transform::Corruption(c) => {
                corrupt_dynamic(img, c, severity, preset, seed, key, assets)
            }
            Transform::Synthetic(s) => shift_dynamic(img, s, severity, seed, key),
        }
    }
}

impl FromStr for Transform {
    type Err = UnknownTransform;
    /// A corruption or synthetic shift name (case ignored, `-` for `_`).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if let Ok(c) = name.parse::<Corruption>() {
            return Ok(Transform::Corruption(c));
        }
        name.parse::<SyntheticShift>()
            .map(Transform::Synthetic)
            .map_err(|_| UnknownTransform {
                name: name.to_string(),
            })
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transform::Corruption(c) => c.fmt(f),
            Transform::Synthetic(s) => s.fmt(f),
        }
    }
}
