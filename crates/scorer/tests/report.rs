//! What an engineer reads, end to end on the real binary: `--maps DIR` (a map PNG and a curve
//! SVG per photo) and `--html FILE` (one self-contained page), the page loaded in a real
//! headless Chromium.

mod common;

use std::path::{Path, PathBuf};

use ballast_testkit::images::{jpeg_bytes, texture, write};
use common::*;

/// A copy of the fixture's run, evaluated (so it has its calibration and novelty check).
fn evaluated_run(d: &Path) -> PathBuf {
    let run = d.join("run");
    copy_dir(&fixture().run, &run);
    ok(&[
        "eval",
        "--run",
        &s(&run),
        "--cache",
        &s(&fixture().cache),
        "--threads",
        "1",
    ]);
    run
}

#[test]
fn maps_and_a_page_that_loads_in_a_browser() {
    let f = fixture();
    let d = scratch("maps-html");
    let run = evaluated_run(&d);
    let inbox = d.join("photos");
    let mut photos: Vec<PathBuf> = val_photos().iter().map(|p| f.photos.join(p)).collect();
    // A texture never seen in training, and a file that is no photo.
    let odd = inbox.join("site <a> & \"b\".jpg");
    write(&odd, &jpeg_bytes(&texture(480, 320, 9)));
    photos.push(odd.clone());
    let broken = inbox.join("broken.jpg");
    write(&broken, b"not a jpeg");
    photos.push(broken.clone());

    let (maps, page, out) = (d.join("maps"), d.join("report.html"), d.join("scores.csv"));
    let mut args: Vec<String> = [
        "photos",
        "--run",
        &s(&run),
        "--class-map",
        &s(&fixture_photos().join("class-map.toml")),
        "--threads",
        "1",
        "--out",
        &s(&out),
        "--maps",
        &s(&maps),
        "--html",
        &s(&page),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(photos.iter().map(|p| s(p)));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&a);

    // One map and one curve per scored photo, none for the broken file.
    let mut names: Vec<String> = std::fs::read_dir(&maps)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let scored = photos.len() - 1;
    let pngs: Vec<&String> = names.iter().filter(|n| n.ends_with(".map.png")).collect();
    let svgs: Vec<&String> = names.iter().filter(|n| n.ends_with(".curve.svg")).collect();
    assert_eq!((pngs.len(), svgs.len()), (scored, scored), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("broken")), "{names:?}");
    for p in &pngs {
        let img = image::open(maps.join(p)).unwrap();
        // The photo (480×320, never upscaled) and a legend under it.
        assert_eq!(img.width(), 480, "{p}");
        assert!(img.height() > 320, "{p}: a legend below the photo");
    }
    for v in &svgs {
        let text = std::fs::read_to_string(maps.join(v)).unwrap();
        assert!(text.starts_with("<svg") || text.starts_with("<?xml"), "{v}");
        assert!(!text.contains("href=\"http"), "{v}: self-contained");
    }

    // The page: self-contained, every photo in it, the unseen texture flagged.
    let html = std::fs::read_to_string(&page).unwrap();
    for external in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "src=\"/",
        "src=\"file:",
    ] {
        assert!(!html.contains(external), "external reference {external}");
    }
    // The maps as JPEG (a compact page); the curves as SVG.
    assert_eq!(html.matches("data:image/jpeg;base64,").count(), scored);
    assert_eq!(html.matches("data:image/svg+xml;base64,").count(), scored);
    let loaded = ballast_testkit::browser::load(&page).expect("the page loads in Chromium");
    assert!(loaded.dom.contains("data-loaded=\"ok\""), "{}", loaded.dom);
    assert!(
        loaded.console_errors.is_empty(),
        "{:?}",
        loaded.console_errors
    );
    assert_eq!(
        loaded.dom.matches("class=\"photo").count(),
        photos.len(),
        "every photo has a section"
    );
    for p in &photos[..photos.len() - 2] {
        let name = s(p);
        assert!(loaded.dom.contains(&name), "{name} is shown");
    }
    assert!(
        loaded.dom.contains("site &lt;a&gt; &amp; \"b\".jpg"),
        "escaped name"
    );
    assert!(loaded.dom.contains("unlike-training"));
    assert!(loaded.dom.contains("not a jpeg") || loaded.dom.contains("broken.jpg"));

    // Same inputs, same bytes: the page and the maps are deterministic.
    let before = std::fs::read(&page).unwrap();
    let map0 = std::fs::read(maps.join(pngs[0])).unwrap();
    ok(&a);
    assert_eq!(std::fs::read(&page).unwrap(), before);
    assert_eq!(std::fs::read(maps.join(pngs[0])).unwrap(), map0);
}

#[test]
fn maps_must_be_a_folder() {
    let f = fixture();
    let d = scratch("maps-file");
    let file = d.join("maps");
    std::fs::write(&file, b"x").unwrap();
    let photo = s(&f.photos.join(&val_photos()[0]));
    fails_with(
        &["photos", "--run", &s(&f.run), "--maps", &s(&file), &photo],
        2,
        &["--maps", "not a folder"],
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x", "left as it was");
}

#[test]
fn html_needs_batch_mode() {
    let f = fixture();
    let d = scratch("html-watch");
    fails_with(
        &[
            "photos",
            "--run",
            &s(&f.run),
            "--watch",
            &s(&d),
            "--html",
            &s(&d.join("r.html")),
        ],
        2,
        &["--html"],
    );
}
