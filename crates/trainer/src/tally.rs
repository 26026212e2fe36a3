//! One epoch's training loss and correct count, and the guard against non-finite values.
//!
//! On the CPU a read of a scalar costs nothing, so each batch's loss is read as it comes and a
//! non-finite loss stops training at that batch, before its step ([`Tally::Host`], the
//! behaviour and the numbers the CPU path always had). On a GPU each read blocks until the
//! stream drains, so the sums stay on the device ([`Tally::Device`]); every [`CHECK_EVERY`]
//! batches and at the end of the epoch one scalar is read that is NaN when the loss sum or any
//! weight is not finite. (The weights are checked too because a max that drops NaN, as CUDA's
//! `fmaxf` does, can keep the loss finite while a weight is not.)

use candle_core::{DType, Device, Tensor, Var};

use crate::error::Result;

/// Batches between two device checks: a bad step is found within this many more.
pub const CHECK_EVERY: usize = 16;

pub enum Tally {
    Host {
        loss_sum: f64,
        correct: u64,
        /// The current batch's loss, read once by `before_step`.
        loss: f64,
    },
    Device {
        /// f32 scalars on the device: Σ loss·batch size, Σ correct.
        loss_sum: Tensor,
        correct: Tensor,
        /// First batch (0-based) not yet covered by a check.
        unchecked_from: usize,
    },
}

/// What a check found: the value to report and the batches it covers (1-based, for messages).
#[derive(Debug, PartialEq)]
pub struct NonFinite {
    pub value: f64,
    pub batches: String,
}

impl Tally {
    /// Host on the CPU, device sums elsewhere.
    pub fn new(device: &Device) -> Result<Tally> {
        if device.is_cpu() {
            Ok(Tally::Host {
                loss_sum: 0.0,
                correct: 0,
                loss: 0.0,
            })
        } else {
            Tally::on_device(device)
        }
    }

    /// Device sums on `device` (any device: the tests run it on the CPU).
    pub fn on_device(device: &Device) -> Result<Tally> {
        let zero = || Tensor::zeros((), DType::F32, device);
        Ok(Tally::Device {
            loss_sum: zero()?,
            correct: zero()?,
            unchecked_from: 0,
        })
    }

    /// Before batch `b`'s step: on the host, reads its loss and refuses a non-finite one.
    pub fn before_step(&mut self, b: usize, loss: &Tensor) -> Result<Option<NonFinite>> {
        match self {
            Tally::Host { loss: read, .. } => {
                let value = loss.to_scalar::<f32>()? as f64;
                *read = value;
                Ok((!value.is_finite()).then(|| NonFinite {
                    value,
                    batches: (b + 1).to_string(),
                }))
            }
            Tally::Device { .. } => Ok(None),
        }
    }

    /// After batch `b`'s step: adds its loss (mean over `len` samples) and correct count, and
    /// on the device checks the sums and `vars` every [`CHECK_EVERY`] batches and at `last`.
    pub fn after_step(
        &mut self,
        b: usize,
        last: bool,
        step: (&Tensor, &Tensor, &Tensor, usize),
        vars: &[Var],
    ) -> Result<Option<NonFinite>> {
        let (loss, logits, labels, len) = step;
        match self {
            Tally::Host {
                loss_sum,
                correct,
                loss,
            } => {
                *loss_sum += *loss * len as f64;
                *correct += hits(logits, labels)?.to_scalar::<f32>()? as u64;
                Ok(None)
            }
            Tally::Device {
                loss_sum,
                correct,
                unchecked_from,
            } => {
                *loss_sum = (&*loss_sum + loss.affine(len as f64, 0.0)?)?;
                *correct = (&*correct + hits(logits, labels)?)?;
                if !(last || (b + 1).is_multiple_of(CHECK_EVERY)) {
                    return Ok(None);
                }
                let batches = format!("{}–{}", *unchecked_from + 1, b + 1);
                *unchecked_from = b + 1;
                // x·0 is 0 for every finite x and NaN for NaN and ±inf.
                let mut probe = loss_sum.affine(0.0, 0.0)?;
                for v in vars {
                    let w = v.as_tensor();
                    probe = (probe + w.affine(0.0, 0.0)?.sum_all()?.to_dtype(DType::F32)?)?;
                }
                let probe = probe.to_scalar::<f32>()?;
                if probe.is_finite() {
                    return Ok(None);
                }
                let loss = loss_sum.to_scalar::<f32>()? as f64;
                Ok(Some(NonFinite {
                    value: if loss.is_finite() { f64::NAN } else { loss },
                    batches,
                }))
            }
        }
    }

    /// The epoch's loss sum and correct count (one read each on the device).
    pub fn totals(&self) -> Result<(f64, u64)> {
        match self {
            Tally::Host {
                loss_sum, correct, ..
            } => Ok((*loss_sum, *correct)),
            Tally::Device {
                loss_sum, correct, ..
            } => Ok((
                loss_sum.to_scalar::<f32>()? as f64,
                correct.to_scalar::<f32>()? as u64,
            )),
        }
    }
}

/// Correct predictions (argmax of the logits `[B, classes]`, as [`crate::model::Logits`]
/// predicts) in a batch, as an f32 scalar on the logits' device.
pub(crate) fn hits(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    Ok(logits
        .argmax(1)?
        .eq(labels)?
        .to_dtype(DType::F32)?
        .sum_all()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three batches of (loss, logits, labels): the device sums equal the host's.
    fn batches() -> Vec<(Tensor, Tensor, Tensor, usize)> {
        let d = Device::Cpu;
        (0..40)
            .map(|i| {
                let z = Tensor::new(&[[i as f32 * 0.1, 1.0], [2.0, -(i as f32)]], &d).unwrap();
                let y = Tensor::new(&[(i % 2) as u32, 0], &d).unwrap();
                let loss = Tensor::new(0.5f32 + i as f32 / 7.0, &d).unwrap();
                (loss, z, y, 2)
            })
            .collect()
    }

    fn run(
        t: &mut Tally,
        data: &[(Tensor, Tensor, Tensor, usize)],
        vars: &[Var],
    ) -> Option<NonFinite> {
        for (b, (loss, z, y, len)) in data.iter().enumerate() {
            if let Some(bad) = t.before_step(b, loss).unwrap() {
                return Some(bad);
            }
            let last = b + 1 == data.len();
            if let Some(bad) = t.after_step(b, last, (loss, z, y, *len), vars).unwrap() {
                return Some(bad);
            }
        }
        None
    }

    #[test]
    fn device_sums_equal_the_host_sums() {
        let data = batches();
        let w = Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let mut host = Tally::new(&Device::Cpu).unwrap();
        assert!(matches!(host, Tally::Host { .. }));
        let mut dev = Tally::on_device(&Device::Cpu).unwrap();
        assert_eq!(run(&mut host, &data, std::slice::from_ref(&w)), None);
        assert_eq!(run(&mut dev, &data, std::slice::from_ref(&w)), None);
        let ((hl, hc), (dl, dc)) = (host.totals().unwrap(), dev.totals().unwrap());
        assert_eq!(hc, dc);
        assert!(hc > 0 && hc < 80, "{hc}");
        assert!((hl - dl).abs() <= 1e-5 * hl, "{hl} vs {dl}");
    }

    #[test]
    fn a_bad_loss_stops_the_host_at_its_batch_and_the_device_at_its_check() {
        let mut data = batches();
        data[20].0 = Tensor::new(f32::INFINITY, &Device::Cpu).unwrap();
        let w = Var::new(&[1.0f32], &Device::Cpu).unwrap();
        let host = run(
            &mut Tally::new(&Device::Cpu).unwrap(),
            &data,
            std::slice::from_ref(&w),
        )
        .unwrap();
        assert_eq!(host.batches, "21");
        assert_eq!(host.value, f64::INFINITY);
        let dev = run(
            &mut Tally::on_device(&Device::Cpu).unwrap(),
            &data,
            std::slice::from_ref(&w),
        )
        .unwrap();
        assert_eq!(dev.batches, "17–32");
        assert_eq!(dev.value, f64::INFINITY);
    }

    #[test]
    fn a_bad_weight_is_found_on_the_device_even_with_a_finite_loss() {
        let data = batches();
        let good = Var::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
        let bad = Var::new(&[1.0f32, f32::NAN], &Device::Cpu).unwrap();
        let found = run(
            &mut Tally::on_device(&Device::Cpu).unwrap(),
            &data,
            &[good, bad.clone()],
        );
        let found = found.unwrap();
        assert_eq!(found.batches, "1–16");
        assert!(found.value.is_nan());
        // The last, partial window is checked too.
        let short = &data[..5];
        let found = run(&mut Tally::on_device(&Device::Cpu).unwrap(), short, &[bad]).unwrap();
        assert_eq!(found.batches, "1–5");
    }
}
