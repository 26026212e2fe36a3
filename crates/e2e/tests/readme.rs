//! The README's examples are tested the way doc-tests keep Rust examples true: every ```sh and
//! ```python block is extracted and run, in README order, in a scratch folder laid out as a
//! user's checkout after `scripts/demo.sh` (the quick start's first block makes that layout,
//! with small settings). A block whose info string says `no_run` is not run; the README says
//! why next to it. A second test checks that every flag of every binary's `--help` is in the
//! README or in the flag reference it links, and that the reference is the binaries' own help.

use std::path::{Path, PathBuf};
use std::process::Command;

use ballast_e2e::{bin_dir, root};

/// A fenced code block of the README.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    no_run: bool,
    body: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        if let Some(info) = line.strip_prefix("```") {
            match open.take() {
                Some(b) => out.push(b),
                None => {
                    let words: Vec<&str> = info.split_whitespace().collect();
                    open = Some(Block {
                        line: i + 1,
                        lang: words.first().unwrap_or(&"").to_string(),
                        no_run: words.contains(&"no_run"),
                        body: String::new(),
                    });
                }
            }
        } else if let Some(b) = open.as_mut() {
            b.body.push_str(line);
            b.body.push('\n');
        }
    }
    assert!(open.is_none(), "README has an unclosed code block");
    out
}

/// The Python the tests use (numpy, safetensors; torch for the PyTorch example).
fn python() -> String {
    std::env::var("BALLAST_PYTHON_README")
        .or_else(|_| std::env::var("BALLAST_PYTHON"))
        .unwrap_or_else(|_| "python3".into())
}

/// A scratch folder that looks like the repository root to the examples: `scripts` is the
/// real scripts folder, everything else is made by the examples themselves.
fn scratch() -> PathBuf {
    let dir = root().join("target/readme-examples");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(root().join("scripts"), dir.join("scripts")).unwrap();
    dir
}

/// The environment the examples run in: the test build's binaries instead of a release
/// build, and demo/pipeline settings small enough for a test.
fn example_env(cmd: &mut Command) {
    let bin = bin_dir();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path)
        .env("BIN", bin)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        // scripts/demo.sh
        .env("CLASSES", "3")
        .env("PER_CLASS", "6")
        .env("WIDTH", "408")
        .env("HEIGHT", "272")
        .env("TILE", "64")
        .env("EPOCHS", "2")
        // scripts/pipeline.mk (environment variables fill its `?=` settings)
        .env("TILE_SIZE", "64")
        .env("EPOCHS", "2")
        .env("THREADS", "2")
        // both
        .env("SIZE", "32");
}

#[test]
fn readme_examples_run() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let dir = scratch();
    let mut ran = 0;
    for b in blocks(&text) {
        let (program, flag): (String, &str) = match b.lang.as_str() {
            "sh" | "bash" => ("bash".into(), "-c"),
            "python" => (python(), "-c"),
            _ => continue,
        };
        if b.no_run {
            continue;
        }
        let script = if program == "bash" {
            format!("set -euo pipefail\n{}", b.body)
        } else {
            b.body.clone()
        };
        let mut cmd = Command::new(&program);
        cmd.arg(flag).arg(&script).current_dir(&dir);
        example_env(&mut cmd);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "README.md:{} ({}) failed with {}:\n{}\n--- stdout\n{}\n--- stderr\n{}",
            b.line,
            b.lang,
            out.status,
            b.body,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 4, "only {ran} README examples ran");
}

#[test]
fn readme_blocks_are_found() {
    let md = "text\n```sh\necho a\n```\n```python no_run\nx = 1\n```\n";
    let b = blocks(md);
    assert_eq!(b.len(), 2);
    assert_eq!(
        (b[0].lang.as_str(), b[0].no_run, b[0].line),
        ("sh", false, 2)
    );
    assert_eq!(b[0].body, "echo a\n");
    assert!(b[1].no_run);
}

/// `--flags` of a help text.
fn flags_in(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=') {
        let w = word.trim_end_matches([']', '.', ')', ':', '>']);
        if w.len() > 2
            && w.starts_with("--")
            && w[2..].chars().all(|c| c.is_ascii_lowercase() || c == '-')
        {
            out.push(w.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

fn help_of(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).arg("--help").output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} --help failed",
        bin.display()
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every (binary, subcommand) the README documents.
const COMMANDS: [(&str, &[&str]); 9] = [
    ("synth", &[]),
    ("tiler", &[]),
    ("packer", &[]),
    ("packer", &["verify"]),
    ("trainer", &[]),
    ("trainer", &["runs"]),
    ("scorer", &[]),
    ("scorer", &["eval"]),
    ("scorer", &["photos"]),
];

/// The flag reference: each command's `--help`, as the binaries print it.
fn flag_reference() -> String {
    let mut out = String::from(
        "# Flag reference\n\nEvery command's `--help`, exactly as the binaries print it \
         (`scripts/flag-reference.sh` writes this file; a test checks it is current).\n",
    );
    for (bin, sub) in COMMANDS {
        let title = std::iter::once(bin)
            .chain(sub.iter().copied())
            .collect::<Vec<_>>();
        out.push_str(&format!("\n## `{}`\n\n```text\n", title.join(" ")));
        out.push_str(help_of(&bin_dir().join(bin), sub).trim_end());
        out.push_str("\n```\n");
    }
    out
}

#[test]
fn every_flag_is_documented() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let reference_path = root().join("docs/flags.md");
    let expected = flag_reference();
    if std::env::var_os("BALLAST_WRITE_FLAG_REFERENCE").is_some() {
        std::fs::create_dir_all(reference_path.parent().unwrap()).unwrap();
        std::fs::write(&reference_path, &expected).unwrap();
    }
    let reference = std::fs::read_to_string(&reference_path).unwrap_or_default();
    assert!(
        readme.contains("docs/flags.md"),
        "README does not link the flag reference docs/flags.md"
    );
    assert!(
        reference == expected,
        "docs/flags.md is not the binaries' current --help; run scripts/flag-reference.sh"
    );
    let mut missing = Vec::new();
    for (bin, sub) in COMMANDS {
        for flag in flags_in(&help_of(&bin_dir().join(bin), sub)) {
            if flag == "--help" || flag == "--version" {
                continue;
            }
            let documented = |text: &str| {
                text.match_indices(&flag).any(|(i, _)| {
                    let after = text[i + flag.len()..].chars().next();
                    !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
                })
            };
            if !documented(&readme) {
                missing.push(format!("{bin} {} {flag}", sub.join(" ")));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags in --help but not in README.md:\n{}",
        missing.join("\n")
    );
}
