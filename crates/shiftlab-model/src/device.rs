//! Where and in which precision a model runs: parsed from config strings, checked against the
//! machine before any weights are loaded.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use crate::error::{ModelError, Result};
use crate::runtime::{load_cuda_backend, CudaBackend};

/// Requested device: `"auto"` (CUDA when usable, else CPU), `"cpu"`, `"cuda"` or `"cuda:N"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSpec {
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || ModelError::Device(format!("'{s}' is not one of auto, cpu, cuda, cuda:N"));
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            other => {
                let index = other.strip_prefix("cuda:").ok_or_else(bad)?;
                index.parse().map(DeviceSpec::Cuda).map_err(|_| bad())
            }
        }
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<DeviceSpec> for String {
    fn from(d: DeviceSpec) -> String {
        d.to_string()
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => f.write_str("auto"),
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl DeviceSpec {
    /// The concrete device. Loads the CUDA backend first: without it tch reports no CUDA.
    pub fn resolve(self) -> Result<Device> {
        if self == DeviceSpec::Cpu {
            return Ok(Device::Cpu);
        }
        let backend = load_cuda_backend();
        let count = if tch::Cuda::is_available() {
            tch::Cuda::device_count()
        } else {
            0
        };
        match self {
            DeviceSpec::Auto if count > 0 => Ok(Device::Cuda(0)),
            DeviceSpec::Auto => Ok(Device::Cpu),
            DeviceSpec::Cuda(i) if (i as i64) < count => Ok(Device::Cuda(i)),
            DeviceSpec::Cuda(i) => Err(ModelError::Device(format!(
                "cuda:{i} requested but {count} CUDA device(s) usable{}",
                match backend {
                    CudaBackend::Unavailable(why) => format!(" (libtorch_cuda.so: {why})"),
                    CudaBackend::Loaded(_) => String::new(),
                }
            ))),
            DeviceSpec::Cpu => Ok(Device::Cpu),
        }
    }
}

/// Floating-point precision of weights and activations. Outputs are always float32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
    /// CUDA only: libtorch's CPU kernels for half precision are missing or very slow.
    Fp16,
}

impl FromStr for Precision {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Ok(Precision::Fp32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "fp16" | "float16" | "half" => Ok(Precision::Fp16),
            _ => Err(ModelError::Precision(format!(
                "'{s}' is not one of fp32, bf16, fp16"
            ))),
        }
    }
}

impl TryFrom<String> for Precision {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Precision> for String {
    fn from(p: Precision) -> String {
        p.to_string()
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        })
    }
}

impl Precision {
    /// The tch kind for weights and activations.
    pub fn kind(self) -> Kind {
        match self {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
            Precision::Fp16 => Kind::Half,
        }
    }

    /// Rejects combinations libtorch cannot run well (fp16 on the CPU).
    pub fn check_device(self, device: Device) -> Result<()> {
        if self == Precision::Fp16 && device == Device::Cpu {
            return Err(ModelError::Precision(
                "fp16 needs a CUDA device; on the CPU use fp32 or bf16".to_string(),
            ));
        }
        Ok(())
    }
}

/// Device and precision for a run (pipeline-level settings, the same for every model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeOptions {
    #[serde(default)]
    pub device: DeviceSpec,
    #[serde(default)]
    pub precision: Precision,
}

impl RuntimeOptions {
    /// Resolves the device and checks the precision fits it.
    pub fn resolve(&self) -> Result<(Device, Kind)> {
        let device = self.device.resolve()?;
        self.precision.check_device(device)?;
        Ok((device, self.precision.kind()))
    }
}

/// `cpu` or `cuda:N`, for descriptions and the `runs` table.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".to_string(),
        Device::Vulkan => "vulkan".to_string(),
        Device::Cpu => "cpu".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings() {
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert_eq!("CPU".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", ""] {
            let err = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(
                err.contains("not one of auto, cpu, cuda, cuda:N"),
                "{bad}: {err}"
            );
        }
        assert_eq!(DeviceSpec::Cuda(2).to_string(), "cuda:2");
    }

    #[test]
    fn precision_strings_and_fp16_on_cpu() {
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert!("fp8".parse::<Precision>().is_err());
        let err = Precision::Fp16
            .check_device(Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fp16 needs a CUDA device"), "{err}");
        assert!(Precision::Bf16.check_device(Device::Cpu).is_ok());
    }

    #[test]
    fn options_deserialise_from_strings() {
        let opts: RuntimeOptions =
            serde_json::from_str(r#"{"device": "cpu", "precision": "bf16"}"#).unwrap();
        assert_eq!(
            opts,
            RuntimeOptions {
                device: DeviceSpec::Cpu,
                precision: Precision::Bf16
            }
        );
        assert!(serde_json::from_str::<RuntimeOptions>(r#"{"device": "tpu"}"#).is_err());
        let missing_cuda = RuntimeOptions {
            device: DeviceSpec::Cuda(64),
            ..Default::default()
        };
        assert!(missing_cuda
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("cuda:64 requested"));
    }
}
