//! model.safetensors is a PyTorch state dict: names, shapes and layouts as DESIGN.md says, and
//! an independent numpy forward pass (scripts/numpy_forward.py) reproduces the trainer's logits.

mod common;

use std::path::Path;
use std::process::Command;

use ballast_format::Split;
use ballast_trainer::classifier::TrainedRun;
use ballast_trainer::data::{CacheInfo, Transfers};
use candle_core::Device;
use common::*;

fn python() -> String {
    std::env::var("BALLAST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Trains one epoch, then compares numpy's logits with candle's on val samples.
fn check_numpy_forward(extra: &[&str], size: u32, expect_names: &[(&str, Vec<usize>)]) {
    let t = tempfile::tempdir().unwrap();
    let cache = cache_with(
        t.path(),
        ballast_trainer::synthetic::SynthCache {
            size,
            train_per_class: 16,
            val_per_class: 4,
            ..Default::default()
        },
    );
    let run = t.path().join("run");
    let mut args = vec![
        "--cache".to_string(),
        s(&cache),
        "--run".into(),
        s(&run),
        "--epochs".into(),
        "1".into(),
        "--batch".into(),
        "16".into(),
        "--threads".into(),
        "1".into(),
        "-q".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    ok(&refs(&args));

    // Names and shapes, read with the safetensors crate (as PyTorch's loader sees them).
    let bytes = read(&run.join("model.safetensors"));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let mut want: Vec<String> = expect_names.iter().map(|(n, _)| n.to_string()).collect();
    want.sort();
    assert_eq!(names, want);
    for (n, shape) in expect_names {
        let v = st.tensor(n).unwrap();
        assert_eq!(v.shape(), shape.as_slice(), "{n}");
        assert_eq!(v.dtype(), safetensors::Dtype::F32);
    }

    // Inputs: every val sample, as u8 [B,1,S,S].
    let info = CacheInfo::open(&cache).unwrap();
    let val = info
        .load_split(Split::Val, &Device::Cpu, &Transfers::default())
        .unwrap();
    let images = val.images().clone();
    let host: Vec<u8> = images.flatten_all().unwrap().to_vec1::<u8>().unwrap();
    let shape: Vec<usize> = images.dims().to_vec();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::U8, shape, &host).unwrap();
    let inputs = t.path().join("inputs.safetensors");
    safetensors::serialize_to_file([("images", view)], None, &inputs).unwrap();

    let trained = TrainedRun::load(&run, &Device::Cpu).unwrap();
    let ours: Vec<Vec<f32>> = trained
        .logits(&images)
        .unwrap()
        .tensor()
        .to_vec2::<f32>()
        .unwrap();

    let out = t.path().join("numpy.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/numpy_forward.py");
    let o = Command::new(python())
        .arg(&script)
        .arg(&run)
        .arg(&inputs)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run scripts/test.sh, which installs numpy and safetensors, \
                 or set BALLAST_PYTHON",
                python()
            )
        });
    assert!(
        o.status.success(),
        "numpy_forward.py failed (run scripts/test.sh, which installs numpy and safetensors, or \
         set BALLAST_PYTHON): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&read(&out)).unwrap();
    let theirs = theirs["logits"].as_array().unwrap();
    assert_eq!(theirs.len(), ours.len());
    let mut max_diff = 0f64;
    let mut spread = 0f64;
    for (a, b) in ours.iter().zip(theirs) {
        let b = b.as_array().unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            let y = y.as_f64().unwrap();
            max_diff = max_diff.max((*x as f64 - y).abs());
            spread = spread.max(y.abs());
        }
    }
    assert!(
        max_diff <= 1e-4,
        "numpy and candle logits differ by {max_diff}"
    );
    // The logits are not trivially zero (the comparison means something).
    assert!(spread > 1e-2, "logits all near zero: {spread}");
}

#[test]
fn default_network_matches_numpy_at_32() {
    check_numpy_forward(
        &[],
        32,
        &[
            ("conv1.weight", vec![6, 1, 5, 5]),
            ("conv1.bias", vec![6]),
            ("conv2.weight", vec![16, 6, 5, 5]),
            ("conv2.bias", vec![16]),
            ("conv3.weight", vec![32, 16, 5, 5]),
            ("conv3.bias", vec![32]),
            // same padding: 32→32→16→16→8→8→4, flatten 32·4·4.
            ("fc1.weight", vec![128, 512]),
            ("fc1.bias", vec![128]),
            ("fc2.weight", vec![64, 128]),
            ("fc2.bias", vec![64]),
            ("fc3.weight", vec![32, 64]),
            ("fc3.bias", vec![32]),
            ("fc4.weight", vec![4, 32]),
            ("fc4.bias", vec![4]),
        ],
    );
}

#[test]
fn valid_padding_with_odd_maps_matches_numpy() {
    // 20→18→9→7→3: odd maps pooled with the last row and column dropped.
    check_numpy_forward(
        &[
            "--padding",
            "valid",
            "--kernel",
            "3",
            "--conv",
            "4,6",
            "--fc",
            "10",
            "--dropout",
            "0.3",
        ],
        20,
        &[
            ("conv1.weight", vec![4, 1, 3, 3]),
            ("conv1.bias", vec![4]),
            ("conv2.weight", vec![6, 4, 3, 3]),
            ("conv2.bias", vec![6]),
            ("fc1.weight", vec![10, 54]),
            ("fc1.bias", vec![10]),
            ("fc2.weight", vec![4, 10]),
            ("fc2.bias", vec![4]),
        ],
    );
}

#[test]
fn trained_run_loading_errors_are_named() {
    let t = tempfile::tempdir().unwrap();
    let e = TrainedRun::load(t.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("config.json") && e.contains("not a trainer run folder"),
        "{e}"
    );

    let cache = small_cache(t.path());
    let run = t.path().join("r");
    ok(&refs(&small_args(&cache, &run, 1)));
    let model = run.join("model.safetensors");
    let good = read(&model);
    let loaded = TrainedRun::load(&run, &Device::Cpu).unwrap();
    assert_eq!(loaded.classes().len(), 4);
    let probs = loaded
        .probabilities(
            &candle_core::Tensor::zeros((2, 1, 16, 16), candle_core::DType::U8, &Device::Cpu)
                .unwrap(),
        )
        .unwrap()
        .sum(1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(probs.iter().all(|p| (p - 1.0).abs() < 1e-5));

    std::fs::write(&model, &good[..good.len() - 7]).unwrap();
    common::rerecord(&model);
    let e = TrainedRun::load(&run, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("not a valid safetensors"),
        "{e}"
    );

    std::fs::remove_file(&model).unwrap();
    let e = TrainedRun::load(&run, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("missing"),
        "{e}"
    );

    // A tensor missing or of the wrong shape.
    let mut f = ballast_trainer::tensor_file::decode(&model, &good).unwrap();
    f.tensors.remove("fc2.bias");
    ballast_trainer::tensor_file::write(&model, &f.tensors, &f.metadata).unwrap();
    common::rerecord(&model);
    let e = TrainedRun::load(&run, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing tensor `fc2.bias`"), "{e}");
    let mut f = ballast_trainer::tensor_file::decode(&model, &good).unwrap();
    f.tensors.get_mut("conv1.weight").unwrap().shape = vec![4, 1, 25, 1];
    ballast_trainer::tensor_file::write(&model, &f.tensors, &f.metadata).unwrap();
    common::rerecord(&model);
    let e = TrainedRun::load(&run, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("conv1.weight") && e.contains("[4, 1, 25, 1]"),
        "{e}"
    );
}
