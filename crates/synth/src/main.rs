//! `synth`: renders the demo data set. Argument parsing only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use ballast_synth::gradation::{MAX_CLASSES, REFERENCE_HEIGHT, REFERENCE_WIDTH};
use ballast_synth::run::{MAX_SIDE, MIN_SIDE};
use ballast_synth::{Options, PhotoFormat};

/// Render photos of densely packed grains whose gradation (size distribution) is the class,
/// as an ImageFolder tree OUT/<class>/<class>-NNNN.jpg with OUT/synth.json and
/// OUT/class-map.toml. Same arguments, same bytes, whatever --threads.
#[derive(Debug, Parser)]
#[command(name = "synth", version)]
struct Args {
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Number of classes: up to 5 the default gradations g1-fine … g5-coarse in order; more
    /// are interpolated evenly between the finest and the coarsest (named gNN-dMIN-MAX).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=MAX_CLASSES as i64))]
    classes: u32,
    /// Photos per class.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    per_class: u32,
    /// Photo width in pixels. Grain sizes scale with the photo: a smaller photo shows the same
    /// scene at lower resolution.
    #[arg(long, default_value_t = REFERENCE_WIDTH, value_parser = clap::value_parser!(u32).range(MIN_SIDE as i64..=MAX_SIDE as i64))]
    width: u32,
    /// Photo height in pixels.
    #[arg(long, default_value_t = REFERENCE_HEIGHT, value_parser = clap::value_parser!(u32).range(MIN_SIDE as i64..=MAX_SIDE as i64))]
    height: u32,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// File format of the photos.
    #[arg(long, value_enum, default_value_t = PhotoFormat::Jpg)]
    format: PhotoFormat,
    /// JPEG quality, 1-100.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Worker threads (photos rendered in parallel); default RAYON_NUM_THREADS or all cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Re-render every photo even if it is up to date.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    common: ballast_cli::CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let classify: ballast_cli::Classifier = |e| {
        use ballast_format::Classify;
        e.downcast_ref::<ballast_synth::error::SynthError>()
            .map(Classify::kind)
    };
    ballast_cli::run_main_with(classify, || {
        ballast_cli::init_logging(&args.common);
        ballast_cli::init_threads(args.threads)?;
        let opts = Options {
            out: args.out.clone(),
            classes: args.classes as usize,
            per_class: args.per_class,
            width: args.width,
            height: args.height,
            seed: args.seed,
            format: args.format,
            quality: args.quality,
            force: args.force,
            quiet: args.common.quiet,
        };
        ballast_synth::run(&opts).with_context(|| format!("synth into {}", opts.out.display()))?;
        Ok(ExitCode::SUCCESS)
    })
}
