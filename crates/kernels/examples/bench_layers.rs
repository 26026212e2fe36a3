//! Times one training step of the report CNN in candle: forward of the conv stack (through
//! `ballast_kernels::conv_relu_pool` or the plain-candle reference) and the FC head (candle_nn
//! Linear), cross-entropy, backward, and a momentum-SGD update, on random data.
//!
//! Used by scripts/bench-kernels.sh, which compares it with scripts/bench_kernels_torch.py in the
//! same run. Threads: RAYON_NUM_THREADS. Prints one JSON line (same keys as the Python side):
//!   cargo run --release -p ballast-kernels --example bench_layers -- \
//!       --impl fused --batch 64 --size 64 [--steps 20] [--warmup 3] [--phases]
//! `--phases` adds the median forward / backward / update split to the line. `--layers` instead
//! times each conv block alone (forward, and forward + backward; the first block's input is data
//! and needs no gradient, the others' do), one JSON line per block, with the GEMM work done.

use std::time::Instant;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{Linear, Module};

#[derive(Clone, Copy, PartialEq)]
enum Impl {
    Fused,
    Reference,
}

struct Args {
    imp: Impl,
    batch: usize,
    size: usize,
    steps: usize,
    warmup: usize,
    classes: usize,
    phases: bool,
    layers: bool,
}

fn parse() -> std::result::Result<Args, String> {
    let mut a = Args {
        imp: Impl::Fused,
        batch: 64,
        size: 64,
        steps: 20,
        warmup: 3,
        classes: 5,
        phases: false,
        layers: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--phases" || flag == "--layers" {
            a.phases |= flag == "--phases";
            a.layers |= flag == "--layers";
            continue;
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--impl" => {
                a.imp = match v.as_str() {
                    "fused" => Impl::Fused,
                    "reference" => Impl::Reference,
                    _ => return Err(format!("--impl fused|reference, not {v}")),
                }
            }
            "--batch" => a.batch = num()?,
            "--size" => a.size = num()?,
            "--steps" => a.steps = num()?,
            "--warmup" => a.warmup = num()?,
            "--classes" => a.classes = num()?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !a.size.is_multiple_of(8) || a.batch == 0 || a.steps == 0 {
        return Err("--size must be a multiple of 8; --batch and --steps > 0".into());
    }
    Ok(a)
}

/// Deterministic uniform numbers (splitmix64), enough for benchmark data and init.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }
    fn uniform(&mut self, n: usize, bound: f32) -> Vec<f32> {
        (0..n).map(|_| (self.next() * 2.0 - 1.0) * bound).collect()
    }
}

/// Weight and bias with PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
fn param(rng: &mut Rng, shape: &[usize], fan_in: usize) -> Result<(Var, Var)> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    let n: usize = shape.iter().product();
    let w = Var::from_vec(rng.uniform(n, bound), shape, &Device::Cpu)?;
    let b = Var::from_vec(rng.uniform(shape[0], bound), shape[0], &Device::Cpu)?;
    Ok((w, b))
}

struct Net {
    convs: Vec<(Var, Var)>,
    fcs: Vec<(Var, Var)>,
    imp: Impl,
}

impl Net {
    fn new(size: usize, classes: usize, imp: Impl) -> Result<Net> {
        let mut rng = Rng(0);
        let (conv, fc, k) = ([6, 16, 32], [128, 64, 32], 5);
        let mut convs = Vec::new();
        let mut cin = 1;
        for &c in &conv {
            convs.push(param(&mut rng, &[c, cin, k, k], cin * k * k)?);
            cin = c;
        }
        let s = size / 8;
        let mut fcs = Vec::new();
        let mut width = cin * s * s;
        for &f in fc.iter().chain([classes].iter()) {
            fcs.push(param(&mut rng, &[f, width], width)?);
            width = f;
        }
        Ok(Net { convs, fcs, imp })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (w, b) in &self.convs {
            h = match self.imp {
                Impl::Fused => ballast_kernels::conv_relu_pool(&h, w, b, 2, true)?,
                Impl::Reference => ballast_kernels::reference::conv_relu_pool(&h, w, b, 2, true)?,
            };
        }
        let mut h = h.flatten_from(1)?;
        let last = self.fcs.len() - 1;
        for (i, (w, b)) in self.fcs.iter().enumerate() {
            h = Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone())).forward(&h)?;
            if i < last {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    fn vars(&self) -> impl Iterator<Item = &Var> {
        self.convs.iter().chain(&self.fcs).flat_map(|(w, b)| [w, b])
    }
}

/// Peak resident set size of this process, MiB (VmHWM).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// CPU time (user + system, all threads) of this process so far, ms; 10 ms resolution.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the state field.
    match (f.get(10), f.get(11)) {
        (Some(u), Some(s)) => (u + s) * 10.0,
        _ => f64::NAN,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `--layers`: each conv block of the network alone.
fn bench_blocks(a: &Args) -> Result<()> {
    let dev = Device::Cpu;
    let net = Net::new(a.size, a.classes, a.imp)?;
    let mut rng = Rng(2);
    let mut s = a.size;
    let mut cin = 1;
    for (i, (w, b)) in net.convs.iter().enumerate() {
        let cout = w.dims()[0];
        let xs = rng.uniform(a.batch * cin * s * s, 1.0);
        let x = Tensor::from_vec(xs, (a.batch, cin, s, s), &dev)?;
        // Deeper blocks' inputs take part in autograd (they come from trainable layers).
        let xv = Var::from_tensor(&x)?;
        let input = if i == 0 { x } else { xv.as_tensor().clone() };
        let block = |h: &Tensor| match a.imp {
            Impl::Fused => ballast_kernels::conv_relu_pool(h, w, b, 2, true),
            Impl::Reference => ballast_kernels::reference::conv_relu_pool(h, w, b, 2, true),
        };
        let r = block(&input)?.ones_like()?;
        let (mut fwd, mut both) = (vec![], vec![]);
        for step in 0..a.warmup + a.steps {
            let t0 = Instant::now();
            let y = block(&input)?;
            let t1 = Instant::now();
            let y2 = block(&input)?;
            let _g = (y2 * &r)?.sum_all()?.backward()?;
            let t2 = Instant::now();
            drop(y);
            if step >= a.warmup {
                fwd.push((t1 - t0).as_secs_f64() * 1e3);
                both.push((t2 - t1).as_secs_f64() * 1e3);
            }
        }
        // Multiply-adds: forward conv, dW, and dX except for the first block.
        let macs = (a.batch * cout * s * s * cin * 25) as f64;
        let passes = if i == 0 { 2.0 } else { 3.0 };
        let (f, fb) = (median(&mut fwd), median(&mut both));
        println!(
            "{{\"block\": {}, \"batch\": {}, \"in\": \"{cin}x{s}x{s}\", \"out_channels\": {cout},              \"threads\": {}, \"ms_forward\": {f:.3}, \"ms_forward_backward\": {fb:.3},              \"gflops_forward\": {:.1}, \"gflops_forward_backward\": {:.1}}}",
            i + 1,
            a.batch,
            rayon::current_num_threads(),
            2.0 * macs / f / 1e6,
            2.0 * macs * passes / fb / 1e6
        );
        s /= 2;
        cin = cout;
    }
    Ok(())
}

fn main() -> Result<()> {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_layers: {e}");
            std::process::exit(2);
        }
    };
    // What a training binary should do on glibc (see ballast_kernels::allocator); applies to
    // both the fused and the reference path.
    ballast_kernels::allocator::keep_freed_memory();
    if a.layers {
        return bench_blocks(&a);
    }
    let dev = Device::Cpu;
    let net = Net::new(a.size, a.classes, a.imp)?;
    let mut rng = Rng(1);
    let n = a.batch * a.size * a.size;
    let x = Tensor::from_vec(
        rng.uniform(n, 1.0)
            .iter()
            .map(|v| v.abs())
            .collect::<Vec<_>>(),
        (a.batch, 1, a.size, a.size),
        &dev,
    )?;
    let labels: Vec<u32> = (0..a.batch)
        .map(|_| (rng.next() * a.classes as f32) as u32 % a.classes as u32)
        .collect();
    let y = Tensor::from_vec(labels, a.batch, &dev)?;
    let (lr, mu) = (0.01, 0.9);
    let mut bufs: Vec<Option<Tensor>> = net.vars().map(|_| None).collect();
    let (mut total, mut fwd, mut bwd, mut upd) = (vec![], vec![], vec![], vec![]);
    let mut last_loss = 0.0;
    let mut cpu0 = 0.0;
    for step in 0..a.warmup + a.steps {
        if step == a.warmup {
            cpu0 = cpu_ms();
        }
        let t0 = Instant::now();
        let logits = net.forward(&x)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let t2 = Instant::now();
        // PyTorch's SGD with momentum: buf = mu·buf + g (buf = g at first), p -= lr·buf.
        for (v, buf) in net.vars().zip(bufs.iter_mut()) {
            let Some(g) = grads.get(v.as_tensor()) else {
                candle_core::bail!("no gradient for a parameter")
            };
            let nb = match buf.take() {
                Some(b) => ((b * mu)? + g)?,
                None => g.clone(),
            };
            v.set(&(v.as_tensor() - (&nb * lr)?)?)?;
            *buf = Some(nb);
        }
        let t3 = Instant::now();
        last_loss = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        if step >= a.warmup {
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
            total.push(ms(t0, t3));
            fwd.push(ms(t0, t1));
            bwd.push(ms(t1, t2));
            upd.push(ms(t2, t3));
        }
    }
    let cpu_per_step = (cpu_ms() - cpu0) / a.steps as f64;
    let threads = rayon::current_num_threads();
    let name = match a.imp {
        Impl::Fused => "ballast",
        Impl::Reference => "candle",
    };
    let min = total.iter().copied().fold(f64::INFINITY, f64::min);
    let mut line = format!(
        "{{\"impl\": \"{name}\", \"batch\": {}, \"size\": {}, \"threads\": {threads}, \
         \"ms_median\": {:.3}, \"ms_min\": {min:.3}, \"steps\": {}, \"peak_rss_mib\": {:.1}, \
         \"cpu_ms\": {cpu_per_step:.2}, \"loss\": {last_loss:.5}",
        a.batch,
        a.size,
        median(&mut total),
        a.steps,
        peak_rss_mib()
    );
    if a.phases {
        line += &format!(
            ", \"ms_forward\": {:.3}, \"ms_backward\": {:.3}, \"ms_update\": {:.3}",
            median(&mut fwd),
            median(&mut bwd),
            median(&mut upd)
        );
    }
    println!("{line}}}");
    Ok(())
}
