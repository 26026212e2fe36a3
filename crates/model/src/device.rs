//! `--device cpu|cuda:N`.

use candle_core::Device;

use crate::error::{ModelError, Result};

/// Parses and opens a device. `cuda` means `cuda:0`. Without the `cuda` cargo feature a CUDA
/// device is refused with a pointer to the CUDA build.
pub fn open(name: &str) -> Result<Device> {
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match name.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| bad(name))?,
        None => return Err(bad(name)),
    };
    open_cuda(ordinal)
}

fn bad(name: &str) -> ModelError {
    ModelError::config(format!("--device {name:?}: expected cpu, cuda or cuda:N"))
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Device::new_cuda(ordinal)
        .map_err(|e| ModelError::config(format!("cannot open CUDA device {ordinal}: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Err(ModelError::config(format!(
        "--device cuda:{ordinal}: this trainer was built without CUDA support; build it with \
         scripts/build-cuda.sh (cargo feature `cuda`)"
    )))
}

/// For a process that runs every tensor op from one thread (the trainer's loop): on CUDA, stops
/// cudarc from creating and recording two events for every allocation, which only order work
/// between streams and cost about as much as the small ops themselves. A no-op on the CPU.
pub fn single_stream(device: &Device) {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        // SAFETY: candle puts every op of this device on the calling thread's stream, and the
        // caller issues all of them from one thread: there is no second stream to order against.
        unsafe { d.disable_event_tracking() };
    }
    #[cfg(not(feature = "cuda"))]
    let _ = device;
}

/// `cpu` or `cuda:N`, for records.
pub fn describe(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert!(open("cpu").unwrap().is_cpu());
        assert!(
            open("gpu")
                .unwrap_err()
                .to_string()
                .contains("expected cpu")
        );
        assert!(open("cuda:x").is_err());
        #[cfg(not(feature = "cuda"))]
        assert!(
            open("cuda:0")
                .unwrap_err()
                .to_string()
                .contains("without CUDA")
        );
    }
}
