//! Does this run belong with this cache, or with these photos? Every check names the field and
//! both values, so a user can see which side to change.

use ballast_format::cache_files::CacheIndex;
use ballast_model::classifier::TrainedRun;
use ballast_model::run_files::RunConfig;
use ballast_packer::preprocess::{LUMA, RESIZE};

use crate::error::{Result, ScoreError};

/// The differences between what the run was trained on and what `index` holds: class names
/// and order, sample size, and the preprocessing steps (when the run recorded them).
pub fn cache_differences(run: &RunConfig, index: &CacheIndex) -> Vec<String> {
    let mut out = Vec::new();
    let d = &run.data;
    if d.classes != index.classes {
        out.push(format!(
            "classes: the run has [{}], the cache has [{}]",
            d.classes.join(", "),
            index.classes.join(", ")
        ));
    }
    if d.size != index.size as usize {
        out.push(format!(
            "size: the run was trained on {0}x{0} samples, the cache holds {1}x{1}",
            d.size, index.size
        ));
    }
    for (field, ran, has) in [
        ("luma", &d.luma, &index.params.luma),
        ("resize", &d.resize, &index.params.resize),
    ] {
        if !ran.is_empty() && ran != has {
            out.push(format!(
                "preprocessing ({field}): the run's samples were made with {ran:?}, the \
                 cache's with {has:?}"
            ));
        }
    }
    out
}

/// Refuses a cache that differs from the run's data in classes, size or preprocessing.
pub fn check_cache(run: &TrainedRun, index: &CacheIndex, cache_desc: &str) -> Result<()> {
    let diffs = cache_differences(&run.config, index);
    if diffs.is_empty() {
        return Ok(());
    }
    Err(ScoreError::usage(format!(
        "the cache {cache_desc} does not match run {}: {}",
        run.dir.display(),
        diffs.join("; ")
    )))
}

/// The model file and config must name the same classes (the scorer reports by name).
pub fn check_run(run: &TrainedRun) -> Result<()> {
    if run.meta.classes != run.config.data.classes {
        return Err(ScoreError::file(
            run.dir.join(ballast_model::run_files::MODEL_FILE),
            format!(
                "its classes [{}] differ from config.json's [{}]",
                run.meta.classes.join(", "),
                run.config.data.classes.join(", ")
            ),
        ));
    }
    if run.config.data.size != run.config.spec.model.size {
        return Err(ScoreError::file(
            run.dir.join(ballast_model::run_files::CONFIG_FILE),
            format!(
                "data size {} differs from the model's input size {}",
                run.config.data.size, run.config.spec.model.size
            ),
        ));
    }
    Ok(())
}

/// Field photos go through this build's packer preprocessing: refuse a run trained on samples
/// made another way (a different luma or resize), which would score photos it never saw.
pub fn check_photo_preprocessing(run: &RunConfig) -> Result<()> {
    let d = &run.data;
    let mut diffs = Vec::new();
    for (field, ran, ours) in [("luma", &d.luma, LUMA), ("resize", &d.resize, RESIZE)] {
        if !ran.is_empty() && ran != ours {
            diffs.push(format!(
                "{field}: the run's samples were made with {ran:?}, this scorer makes {ours:?}"
            ));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(ScoreError::usage(format!(
            "the run's training data was not preprocessed as this scorer preprocesses photos \
             ({}); score it with the ballast version that packed its cache",
            diffs.join("; ")
        )))
    }
}

/// The window size to cut from field photos: `--tile-size`, else the one size the run's data
/// was tiled at.
pub fn tile_size(run: &RunConfig, flag: Option<u32>) -> Result<u32> {
    if let Some(t) = flag {
        if t == 0 {
            return Err(ScoreError::usage("--tile-size must be at least 1"));
        }
        return Ok(t);
    }
    match run.data.tile_sizes.as_slice() {
        [one] => Ok(*one),
        [] => Err(ScoreError::usage(
            "the run does not record the tile size its data was cut at (made before tile \
             sizes were recorded, or from a cache without a tiler manifest): give --tile-size PX, \
             the tiler's --size",
        )),
        many => Err(ScoreError::usage(format!(
            "the run's data mixes tiles of {} px: give --tile-size PX to choose the window size",
            many.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_format::cache_files::{CACHE_FORMAT, PackerParams, SplitsStats};
    use ballast_model::run_files::DataRecord;

    fn data(classes: &[&str], size: usize, luma: &str, tile_sizes: Vec<u32>) -> DataRecord {
        DataRecord {
            cache: "cache".into(),
            index_digest: "d".into(),
            classes: classes.iter().map(|s| s.to_string()).collect(),
            size,
            mean: 0.5,
            std: 0.2,
            train_samples: 1,
            val_samples: 1,
            load_image_bytes: 0,
            luma: luma.into(),
            resize: RESIZE.into(),
            tile_sizes,
        }
    }

    fn config(data: DataRecord) -> RunConfig {
        RunConfig {
            format: "ballast-run/1".into(),
            identity: "x".into(),
            spec: spec(),
            data,
            threads: 1,
        }
    }

    fn spec() -> ballast_model::spec::TrainSpec {
        use clap::Parser;
        #[derive(Parser)]
        struct A {
            #[command(flatten)]
            a: ballast_trainer::args::TrainArgs,
        }
        let a = A::parse_from(["t", "--cache", "c", "--run", "r"]).a;
        a.spec_with(1, 32, 3)
    }

    fn index(classes: &[&str], size: u32, luma: &str) -> CacheIndex {
        CacheIndex {
            format: CACHE_FORMAT.into(),
            classes: classes.iter().map(|s| s.to_string()).collect(),
            size,
            channels: 1,
            jitter: 0.0,
            copies: 1,
            seed: 0,
            manifest_digest: "m".into(),
            tile_sizes: vec![500],
            params: PackerParams {
                size,
                jitter: 0.0,
                copies: 1,
                seed: 0,
                train_shards: 1,
                val_shards: 1,
                luma: luma.into(),
                resize: RESIZE.into(),
            },
            mean: 0.5,
            std: 0.2,
            splits: SplitsStats::default(),
            shards: Vec::new(),
        }
    }

    #[test]
    fn cache_differences_name_field_and_both_values() {
        let run = config(data(&["a", "b", "c"], 32, LUMA, vec![500]));
        assert!(cache_differences(&run, &index(&["a", "b", "c"], 32, LUMA)).is_empty());
        let d = cache_differences(&run, &index(&["a", "c", "b"], 64, "other-luma"));
        assert_eq!(d.len(), 3, "{d:?}");
        assert_eq!(
            d[0],
            "classes: the run has [a, b, c], the cache has [a, c, b]"
        );
        assert!(d[1].contains("32x32") && d[1].contains("64x64"), "{}", d[1]);
        assert!(d[2].contains("\"bt601-pil\"") && d[2].contains("\"other-luma\""));
        // An old run without recorded preprocessing is not refused for it.
        let old = config(data(&["a", "b", "c"], 32, "", vec![]));
        assert!(cache_differences(&old, &index(&["a", "b", "c"], 32, "x")).is_empty());
    }

    #[test]
    fn tile_size_comes_from_the_run_or_the_flag() {
        let one = config(data(&["a", "b"], 32, LUMA, vec![500]));
        assert_eq!(tile_size(&one, None).unwrap(), 500);
        assert_eq!(tile_size(&one, Some(300)).unwrap(), 300);
        let none = config(data(&["a", "b"], 32, LUMA, vec![]));
        assert!(
            tile_size(&none, None)
                .unwrap_err()
                .to_string()
                .contains("--tile-size")
        );
        let many = config(data(&["a", "b"], 32, LUMA, vec![300, 500]));
        let e = tile_size(&many, None).unwrap_err().to_string();
        assert!(e.contains("300, 500") && e.contains("--tile-size"), "{e}");
        assert!(tile_size(&one, Some(0)).is_err());
    }

    #[test]
    fn photo_preprocessing_must_be_this_packers() {
        let ok = config(data(&["a", "b"], 32, LUMA, vec![500]));
        assert!(check_photo_preprocessing(&ok).is_ok());
        let synthetic = config(data(&["a", "b"], 32, "synthetic", vec![]));
        let e = check_photo_preprocessing(&synthetic)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"synthetic\"") && e.contains(LUMA), "{e}");
    }
}
