//! ImageNet-C corruptions (placeholder until the corruption engine lands).
