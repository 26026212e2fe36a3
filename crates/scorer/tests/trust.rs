//! Trust under concurrency and damage, on the real binary: one writer per output, damaged
//! models, FIFOs, half-written PNG and TIFF files in watch mode, odd names in CSV, class maps
//! with a byte-order mark, exit statuses, and report.json without paths.

mod common;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ballast_scorer::csv_text::Records;
use ballast_testkit::images::{png_bytes, texture, tiff_bytes};
use ballast_testkit::tree;
use common::*;

// ---------------------------------------------------------------------------------------------
// Helpers

fn spawn(args: &[&str], stdout: impl Into<Stdio>) -> Child {
    scorer()
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("scorer starts")
}

/// A pipe whose buffer is already full: a child writing to it blocks on its first write (and
/// holds its locks there) until the test reads.
fn full_pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    let (r, mut w) = std::io::pipe().unwrap();
    let fd = w.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert!(flags >= 0);
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK), 0);
        let chunk = [b'#'; 4096];
        loop {
            match w.write(&chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling the pipe: {e}"),
            }
        }
        // Blocking again, so the child's write waits instead of failing.
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags), 0);
    }
    (r, w)
}

use ballast_testkit::signals::{wait_for_holder, wait_stopped};

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

/// Waits for a child, killing it (and failing) if it hangs: a FIFO opened for reading blocks
/// forever, so a regression shows as a failure here, not as a stuck test run.
fn finish_within(mut child: Child, secs: u64) -> (i32, String, String) {
    let t = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("scorer hung (killed after {secs} s)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        err,
    )
}

/// `scorer photos --watch DIR --out OUT` with short poll and settle times.
fn watch(dir: &Path, out: &Path, run: &Path, extra: &[&str]) -> Child {
    let args = watch_args(dir, out, run, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn(&args, Stdio::null())
}

/// The data records of a CSV output (after the header), as fields.
fn csv_records(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut recs: Vec<Vec<String>> = Records::new(&text, false)
        .map(|r| r.expect("a well-formed record").fields)
        .collect();
    recs.remove(0);
    recs
}

fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("complete JSON lines"))
        .collect()
}

/// A copy of the fixture run folder.
fn run_copy(name: &str) -> PathBuf {
    let d = scratch(name).join("run");
    std::fs::create_dir_all(&d).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "metrics.jsonl",
        "checkpoints.json",
    ] {
        std::fs::copy(fixture().run.join(f), d.join(f)).unwrap();
    }
    d
}

fn photo(rel: &str) -> PathBuf {
    fixture().photos.join(rel)
}

// ---------------------------------------------------------------------------------------------
// 1. One writer per output

#[test]
fn a_second_eval_into_a_held_folder_is_refused_and_touches_nothing() {
    let f = fixture();
    let out = scratch("lock-eval").join("eval");
    let (mut reader, writer) = full_pipe();
    let args = |extra: &'static [&'static str]| -> Vec<String> {
        let mut a: Vec<String> = ["eval", "--run", &s(&f.run), "--cache", &s(&f.cache)]
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.extend(["--out".to_string(), s(&out), "--threads".into(), "1".into()]);
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let first_args = args(&[]);
    let first_args: Vec<&str> = first_args.iter().map(String::as_str).collect();
    let first = spawn(&first_args, writer);
    let pid = first.id();
    wait_for_holder(&out.join(".ballast.lock"), pid);
    signal(pid, libc::SIGSTOP);
    wait_stopped(pid);
    let before = tree(&out);
    // Another generation (another batch size), then the very same evaluation.
    for (extra, needle) in [
        (&["--batch", "7"][..], "another scorer-eval run"),
        (
            &[][..],
            "job 0/1 of this scorer-eval build is already running",
        ),
        (&["--force"][..], "job 0/1"),
    ] {
        let a = args(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let t = Instant::now();
        fails(&a, &[needle, &format!("pid {pid}"), "started", &s(&out)]);
        assert!(t.elapsed() < Duration::from_secs(20), "not refused at once");
        assert!(
            tree(&out) == before,
            "{extra:?}: the refused run changed {}",
            out.display()
        );
    }
    signal(pid, libc::SIGCONT);
    let mut printed = String::new();
    reader.read_to_string(&mut printed).unwrap();
    let (code, _, err) = finish_within(first, 120);
    assert_eq!(code, 0, "{err}");
    assert!(printed.contains("accuracy"), "{printed}");
    // The holder's evaluation, complete: its batch size, and up to date for it.
    let r = json(&out.join("report.json"));
    assert_eq!(r["eval_batch"].as_u64(), Some(32));
    let o = ok(&first_args);
    assert!(stderr(&o).contains("up to date"), "{}", stderr(&o));
}

#[test]
fn photo_outputs_have_one_writer() {
    let f = fixture();
    let d = scratch("lock-photos");
    let incoming = d.join("in");
    std::fs::create_dir_all(&incoming).unwrap();
    std::fs::copy(photo("g1-fine/g1-fine-0000.jpg"), incoming.join("a.jpg")).unwrap();
    let out = d.join("scores.csv");
    let one = s(&photo("g3-medium/g3-medium-0001.jpg"));

    // --out: a watch holds its log for as long as it runs.
    let holder = watch(&incoming, &out, &f.run, &["--watch-timeout", "120"]);
    let pid = holder.id();
    wait_for_holder(&d.join(".scores.csv.ballast.lock"), pid);
    signal(pid, libc::SIGSTOP);
    wait_stopped(pid);
    let before = tree(&d);
    let run = s(&f.run);
    for args in [
        vec![
            "photos",
            "--run",
            &run,
            "--out",
            &s(&out),
            "--tile-size",
            "160",
            &one,
        ],
        vec![
            "photos",
            "--run",
            &run,
            "--out",
            &s(&out),
            "--watch",
            &s(&incoming),
        ],
    ] {
        fails(&args, &[&format!("pid {pid}"), "scorer-photos", &s(&out)]);
        assert!(tree(&d) == before, "{args:?} changed the folder");
    }
    signal(pid, libc::SIGCONT);
    signal(pid, libc::SIGTERM);
    let (code, _, err) = finish_within(holder, 120);
    assert_eq!(code, 0, "{err}");

    // --per-tile: a batch writing CSV to a full stdout holds its per-tile file meanwhile.
    let tiles = d.join("tiles.csv");
    let (mut reader, writer) = full_pipe();
    let holder = spawn(
        &[
            "photos",
            "--run",
            &run,
            "--threads",
            "1",
            "--per-tile",
            &s(&tiles),
            &one,
        ],
        writer,
    );
    let pid = holder.id();
    wait_for_holder(&d.join(".tiles.csv.ballast.lock"), pid);
    signal(pid, libc::SIGSTOP);
    wait_stopped(pid);
    let before = tree(&d);
    fails(
        &[
            "photos",
            "--run",
            &run,
            "--stride",
            "48",
            "--per-tile",
            &s(&tiles),
            &one,
        ],
        &[
            &format!("pid {pid}"),
            "another scorer-photos run",
            &s(&tiles),
        ],
    );
    assert!(tree(&d) == before, "the refused run changed the folder");
    signal(pid, libc::SIGCONT);
    let mut printed = String::new();
    reader.read_to_string(&mut printed).unwrap();
    let (code, _, err) = finish_within(holder, 120);
    assert_eq!(code, 0, "{err}");
    // The holder's per-tile rows: 15 windows of the run's 96 px grid, and the header.
    assert_eq!(std::fs::read_to_string(&tiles).unwrap().lines().count(), 16);
    // --out and --per-tile naming one file would overwrite each other.
    fails_with(
        &[
            "photos",
            "--run",
            &run,
            "--out",
            &s(&tiles),
            "--per-tile",
            &s(&tiles),
            &one,
        ],
        2,
        &["the same file"],
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Non-finite weights and results

/// Overwrites the last f32 of model.safetensors (the last element of its last tensor,
/// fc2.weight: tensors are stored in name order).
fn poison_last_float(run: &Path, value: f32) {
    let p = run.join("model.safetensors");
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&value.to_le_bytes());
    std::fs::write(&p, bytes).unwrap();
    // Recorded as if the trainer had written it: the value, not the digest, is under test.
    rerecord(&p);
}

#[test]
fn non_finite_weights_or_logits_stop_with_the_model_named() {
    let f = fixture();
    let one = s(&photo("g1-fine/g1-fine-0001.jpg"));
    for (name, value) in [
        ("nan", f32::NAN),
        ("inf", f32::INFINITY),
        ("-inf", f32::NEG_INFINITY),
    ] {
        let r = run_copy(&format!("model-{name}"));
        poison_last_float(&r, value);
        let model = s(&r.join("model.safetensors"));
        let out = r.join("scores.csv");
        fails(
            &["photos", "--run", &s(&r), "--out", &s(&out), &one],
            &[&model, "fc2.weight", "non-finite"],
        );
        assert!(!out.exists());
        // On stdout: not even a header, since nothing was scored.
        let o = run(&["photos", "--run", &s(&r), &one]);
        assert_eq!(code(&o), 1);
        assert_eq!(stdout(&o), "");
        let eval_out = r.join("eval");
        fails(
            &[
                "eval",
                "--run",
                &s(&r),
                "--cache",
                &s(&f.cache),
                "--out",
                &s(&eval_out),
            ],
            &[&model, "non-finite"],
        );
        assert!(!eval_out.join("report.json").exists());
    }

    // Finite weights that overflow: the logits become infinite, the probabilities NaN.
    let r = run_copy("model-overflow");
    let path = r.join("model.safetensors");
    let (mut weights, meta) = ballast_trainer::checkpoint::read_model(&path).unwrap();
    for t in ["fc2.weight", "fc2.bias"] {
        weights.get_mut(t).unwrap().data.fill(f32::MAX);
    }
    ballast_trainer::checkpoint::write_model(&path, &weights, &meta).unwrap();
    let model = s(&path);
    let out = r.join("scores.jsonl");
    fails(
        &["photos", "--run", &s(&r), "--out", &s(&out), &one],
        &[&model, "logits are not finite"],
    );
    assert!(!out.exists());
    fails(
        &[
            "eval",
            "--run",
            &s(&r),
            "--cache",
            &s(&f.cache),
            "--out",
            &s(&r.join("eval")),
        ],
        &[&model, "logits are not finite"],
    );
    assert!(!r.join("eval/predictions.csv").exists());
}

// ---------------------------------------------------------------------------------------------
// 3. Non-regular inputs

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

#[test]
fn fifos_are_refused_without_hanging() {
    let f = fixture();
    let d = scratch("fifo");
    let fifo = d.join("fifo.jpg");
    mkfifo(&fifo);
    let run = s(&f.run);
    let good = s(&photo("g1-fine/g1-fine-0002.jpg"));

    // A FIFO among good photos: an error row naming it, the rest scored.
    let out = d.join("out.csv");
    let c = spawn(
        &["photos", "--run", &run, "--out", &s(&out), &s(&fifo), &good],
        Stdio::null(),
    );
    let (code, _, err) = finish_within(c, 120);
    assert_eq!(code, 0, "{err}");
    let rows = csv_records(&out);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], s(&fifo));
    assert_eq!(rows[0].last().unwrap(), "not a regular file");
    assert_eq!(rows[1].last().unwrap(), "");
    assert!(
        err.contains(&format!("skipped {}: not a regular file", s(&fifo))),
        "{err}"
    );

    // Alone: nothing to score, exit 1; inside a folder: still listed with its reason.
    let c = spawn(&["photos", "--run", &run, &s(&fifo)], Stdio::piped());
    let (code, _, err) = finish_within(c, 120);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("none of the 1 photo(s) could be scored"),
        "{err}"
    );
    std::fs::copy(photo("g3-medium/g3-medium-0000.jpg"), d.join("b.jpg")).unwrap();
    let c = spawn(
        &["photos", "--run", &run, "--format", "jsonl", &s(&d)],
        Stdio::piped(),
    );
    let (code, text, err) = finish_within(c, 120);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(rows[1]["photo"], "fifo.jpg");
    assert_eq!(rows[1]["error"], "not a regular file");

    // A FIFO as the class map, the watch log or the model: refused by name.
    let c = spawn(
        &["photos", "--run", &run, "--class-map", &s(&fifo), &good],
        Stdio::null(),
    );
    let (code, _, err) = finish_within(c, 120);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&s(&fifo)) && err.contains("not a regular file"),
        "{err}"
    );
    let log = d.join("log.csv");
    mkfifo(&log);
    let watched = scratch("fifo-watched");
    let c = watch(&watched, &log, &f.run, &["--watch-timeout", "1"]);
    let (code, _, err) = finish_within(c, 120);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&s(&log)) && err.contains("not a regular file"),
        "{err}"
    );
    let r = run_copy("fifo-model");
    std::fs::remove_file(r.join("model.safetensors")).unwrap();
    mkfifo(&r.join("model.safetensors"));
    let c = spawn(&["photos", "--run", &s(&r), &good], Stdio::null());
    let (code, _, err) = finish_within(c, 120);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("model.safetensors: not a regular file"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Watch mode: PNG and TIFF written in two halves

#[test]
fn png_and_tiff_written_in_halves_are_scored_once_complete() {
    let f = fixture();
    let d = scratch("watch-halves");
    let dir = d.join("in");
    std::fs::create_dir_all(&dir).unwrap();
    let out = d.join("scores.jsonl");
    let img = texture(480, 320, 5);
    let files = [
        ("slow.png", png_bytes(&img)),
        ("slow.tif", tiff_bytes(&img)),
    ];
    let child = watch(
        &dir,
        &out,
        &f.run,
        &["--watch-limit", "2", "--watch-timeout", "120"],
    );
    let mut handles: Vec<std::fs::File> = Vec::new();
    for (name, bytes) in &files {
        let mut h = std::fs::File::create(dir.join(name)).unwrap();
        h.write_all(&bytes[..bytes.len() / 2]).unwrap();
        h.flush().unwrap();
        handles.push(h);
    }
    // Longer than --settle-ms: the halves look settled, and must still not be read.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        jsonl(&out).len(),
        0,
        "a half-written file was read: {:?}",
        jsonl(&out)
    );
    for ((_, bytes), mut h) in files.iter().zip(handles) {
        h.write_all(&bytes[bytes.len() / 2..]).unwrap();
    }
    let (code, _, err) = finish_within(child, 180);
    assert_eq!(code, 0, "{err}");
    let got = jsonl(&out);
    assert_eq!(got.len(), 2, "{got:?}");
    for (name, bytes) in &files {
        let rows: Vec<&serde_json::Value> = got.iter().filter(|l| l["photo"] == *name).collect();
        assert_eq!(rows.len(), 1, "{name}: {got:?}");
        assert!(rows[0].get("error").is_none(), "{}", rows[0]);
        assert_eq!(rows[0]["n_tiles"].as_u64(), Some(15));
        assert_eq!(
            rows[0]["digest"].as_str().unwrap(),
            ballast_format::digest::of_bytes(bytes)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. CSV and JSONL escaping, read back on restart

const ODD: &str = "odd\nname, \"quoted\"\ttab\u{1}ctl\r.jpg";

#[test]
fn odd_photo_and_class_names_survive_csv_jsonl_and_restarts() {
    let f = fixture();
    let d = scratch("odd-names");
    let dir = d.join("in");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(photo("g1-fine/g1-fine-0000.jpg"), dir.join(ODD)).unwrap();
    std::fs::copy(photo("g3-medium/g3-medium-0003.jpg"), dir.join("plain.jpg")).unwrap();

    // A run whose class names hold a line break, a quote, a comma and a tab.
    let r = run_copy("odd-classes");
    let classes = ["g1\nfine", "g2 \"medium\", fine", "g3\tmedium"];
    let path = r.join("model.safetensors");
    let (weights, mut meta) = ballast_trainer::checkpoint::read_model(&path).unwrap();
    meta.classes = classes.iter().map(|c| c.to_string()).collect();
    ballast_trainer::checkpoint::write_model(&path, &weights, &meta).unwrap();
    let mut cfg = json(&r.join("config.json"));
    cfg["data"]["classes"] = serde_json::json!(classes);
    std::fs::write(r.join("config.json"), cfg.to_string()).unwrap();

    for (run, ext) in [(&f.run, "csv"), (&f.run, "jsonl"), (&r, "csv")] {
        let out = d.join(format!(
            "scores-{}.{ext}",
            if *run == f.run { "a" } else { "b" }
        ));
        let c = watch(
            &dir,
            &out,
            run,
            &["--watch-limit", "2", "--watch-timeout", "120"],
        );
        let (code, _, err) = finish_within(c, 180);
        assert_eq!(code, 0, "{err}");
        let names: Vec<String> = if ext == "csv" {
            let text = std::fs::read_to_string(&out).unwrap();
            let header = Records::new(&text, false).next().unwrap().unwrap().fields;
            if *run == r {
                for c in classes {
                    assert!(header.contains(&format!("p_{c}")), "{header:?}");
                }
            }
            let rows = csv_records(&out);
            for row in &rows {
                assert_eq!(row.len(), header.len(), "{row:?}");
                assert_eq!(row.last().unwrap(), "", "{row:?}");
                if *run == r {
                    assert!(classes.contains(&row[4].as_str()), "{row:?}");
                }
            }
            rows.into_iter().map(|r| r[0].clone()).collect()
        } else {
            jsonl(&out)
                .iter()
                .map(|l| l["photo"].as_str().unwrap().to_string())
                .collect()
        };
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, [ODD, "plain.jpg"], "{out:?}");

        // A restart reads the output back exactly: nothing is scored again.
        let before = std::fs::read(&out).unwrap();
        let c = watch(&dir, &out, run, &["--watch-timeout", "2"]);
        let (code, _, err) = finish_within(c, 120);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("2 photo(s) already in the output are skipped"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            before,
            "{out:?}: a restart rescored"
        );

        // A record torn by a crash mid-write is cut off on restart, and nothing else changes.
        let mut torn = before.clone();
        torn.extend_from_slice(if ext == "csv" {
            b"\"odd\nname, torn"
        } else {
            b"{\"photo\":\"torn"
        });
        std::fs::write(&out, &torn).unwrap();
        let c = watch(&dir, &out, run, &["--watch-timeout", "2"]);
        let (code, _, err) = finish_within(c, 120);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("the last record is incomplete"), "{err}");
        assert_eq!(std::fs::read(&out).unwrap(), before, "{out:?}");
    }

    // Batch CSV on stdout quotes the name and reads back exactly.
    let o = ok(&["photos", "--run", &s(&f.run), &s(&dir)]);
    let text = stdout(&o);
    let recs: Vec<Vec<String>> = Records::new(&text, false)
        .map(|r| r.unwrap().fields)
        .collect();
    assert_eq!(recs.len(), 3, "{text}");
    assert_eq!(recs[1][0], ODD);
    assert!(text.contains("\"odd\nname, \"\"quoted\"\"\ttab\u{1}ctl\r.jpg\","));
}

// ---------------------------------------------------------------------------------------------
// 6. Class map CSV with a byte-order mark

#[test]
fn a_class_map_csv_with_a_byte_order_mark_is_accepted() {
    let f = fixture();
    let d = scratch("bom");
    let map = d.join("map.csv");
    std::fs::write(
        &map,
        "\u{feff}class,compaction,unit,label\r\ng1-fine,97.5,%,\"fine,\r\nwell graded\"\r\n\
         g2-medium-fine,96,%,\r\ng3-medium,94.5,%,\r\n",
    )
    .unwrap();
    let o = ok(&[
        "photos",
        "--run",
        &s(&f.run),
        "--class-map",
        &s(&map),
        "--format",
        "jsonl",
        &s(&photo("g1-fine/g1-fine-0000.jpg")),
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let e = v["compaction"]["expected"].as_f64().unwrap();
    assert!((94.5..=97.5).contains(&e), "{v}");
    assert_eq!(v["compaction"]["unit"], "%");
    if v["predicted"] == "g1-fine" {
        assert_eq!(v["compaction"]["predicted_label"], "fine,\r\nwell graded");
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Exit statuses

#[test]
fn exit_statuses_follow_the_error_kind() {
    let f = fixture();
    let run = s(&f.run);
    let d = scratch("exit");
    let good = s(&photo("g1-fine/g1-fine-0003.jpg"));
    // Usage: a bad flag value (clap), and choices that cannot work.
    for bad in ["-1", "nan", "inf", "soon"] {
        fails_with(
            &[
                "photos",
                "--run",
                &run,
                "--watch",
                &s(&d),
                "--watch-timeout",
                bad,
            ],
            2,
            &["--watch-timeout"],
        );
    }
    fails_with(&["photos", "--run", &run], 2, &["no photos given"]);
    fails_with(
        &[
            "photos",
            "--run",
            &run,
            "--out",
            &s(&d.join("x.txt")),
            &good,
        ],
        2,
        &["x.txt"],
    );
    // A run and a cache that do not belong together (another size).
    let c = scratch("exit-cache");
    copy_dir(&f.cache, &c);
    let mut idx = json(&c.join("index.json"));
    declare_size(&mut idx, 16);
    std::fs::write(c.join("index.json"), idx.to_string()).unwrap();
    fails_with(
        &[
            "eval",
            "--run",
            &run,
            "--cache",
            &s(&c),
            "--out",
            &s(&d.join("e")),
        ],
        2,
        &["does not match run"],
    );
    // Data: a damaged input.
    fails(
        &["photos", "--run", &s(&d.join("no-run")), &good],
        &["config.json"],
    );

    // A closed stdout (`scorer ... | head -0`) is success, not an error.
    for args in [
        vec!["photos", "--run", &run, "--threads", "1", &good],
        vec!["photos", "--run", &run, "--format", "jsonl", &good],
        vec![
            "eval",
            "--run",
            &run,
            "--cache",
            &s(&f.cache),
            "--out",
            &s(&d.join("eval")),
            "--force",
        ],
    ] {
        let (r, w) = std::io::pipe().unwrap();
        drop(r);
        let (code, _, err) = finish_within(spawn(&args, w), 120);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(!err.contains("error"), "{args:?}: {err}");
    }
    assert!(d.join("eval/report.json").is_file());
}

// ---------------------------------------------------------------------------------------------
// 8. report.json holds no paths

fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(m) => m.iter().for_each(|(k, x)| {
            out.push(k.clone());
            strings(x, out)
        }),
        _ => {}
    }
}

#[test]
fn report_json_holds_digests_and_names_not_paths() {
    let f = fixture();
    let d = scratch("no-paths");
    let (a, b) = (d.join("a"), d.join("b"));
    ok(&[
        "eval",
        "--run",
        &s(&f.run),
        "--cache",
        &s(&f.cache),
        "--out",
        &s(&a),
        "--threads",
        "1",
    ]);
    // The same run and cache named another way: relative, through `..`.
    let root = f.root.parent().unwrap();
    let rel = |p: &Path| {
        Path::new("x/..")
            .join(p.strip_prefix(root).unwrap())
            .display()
            .to_string()
    };
    std::fs::create_dir_all(root.join("x")).unwrap();
    let o = ballast_testkit::ok(scorer().current_dir(root).args([
        "eval",
        "--run",
        &rel(&f.run),
        "--cache",
        &rel(&f.cache),
        "--out",
        &s(&b),
        "--threads",
        "1",
    ]));
    assert!(!stderr(&o).contains("up to date"));
    let report = std::fs::read(a.join("report.json")).unwrap();
    assert_eq!(report, std::fs::read(b.join("report.json")).unwrap());

    let r = json(&a.join("report.json"));
    let mut all = Vec::new();
    strings(&r, &mut all);
    let root = s(root);
    for text in &all {
        assert!(
            !text.starts_with('/') && !text.contains(&root),
            "a path in report.json: {text}"
        );
    }
    assert_eq!(r["run"]["name"], "run");
    assert!(r["run"].get("dir").is_none() && r["cache"].get("dir").is_none());
    // The digest is the model file's, byte for byte.
    let model = std::fs::read(f.run.join("model.safetensors")).unwrap();
    assert_eq!(
        r["run"]["model_digest"].as_str(),
        Some(ballast_format::digest::of_bytes(&model).as_str())
    );
}
