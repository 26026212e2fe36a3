//! The `--html` page ([`ballast_scorer::html`]) loaded in a real headless Chromium: every image
//! decodes, no script error, one section per photo with its name, the flag badge shown; and a
//! page with a damaged image is caught (the check can fail). Chromium is required: without it
//! these tests fail (scripts/test.sh installs it and sets BALLAST_CHROMIUM).

use std::path::PathBuf;

use ballast_scorer::html::{Page, PagePhoto, render};
use ballast_testkit::browser;
use ballast_testkit::images::{png_bytes, texture};

const NAMES: [&str; 3] = ["a<b>&\"c\"'.jpg", "Île – grès 7.png", "broken & <bad>.tif"];

const CURVE: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="320" height="200" viewBox="0 0 320 200"><rect width="320" height="200" fill="white"/><polyline points="20,180 80,150 140,90 200,40 300,20" fill="none" stroke="#1f5ca0" stroke-width="2"/><text x="20" y="16" font-size="12">passing % &lt; size</text></svg>"##;

fn columns() -> Vec<String> {
    ["photo", "predicted", "flag", "ood_score"]
        .map(String::from)
        .to_vec()
}

fn photos(map_image: Vec<u8>) -> Vec<PagePhoto> {
    vec![
        PagePhoto {
            name: NAMES[0].into(),
            cells: vec![NAMES[0].into(), "sand".into(), "ok".into(), "0.42".into()],
            flag: Some("ok".into()),
            predicted: Some("sand".into()),
            map_image: Some(map_image),
            curve_svg: None,
            error: None,
        },
        PagePhoto {
            name: NAMES[1].into(),
            cells: vec![
                NAMES[1].into(),
                "gravel".into(),
                "unlike-training".into(),
                "1.73".into(),
            ],
            flag: Some("unlike-training".into()),
            predicted: Some("gravel".into()),
            map_image: None,
            curve_svg: Some(CURVE.into()),
            error: None,
        },
        PagePhoto {
            name: NAMES[2].into(),
            cells: vec![],
            flag: None,
            predicted: None,
            map_image: None,
            curve_svg: None,
            error: Some("not a TIFF: <unexpected> end of \"file\"".into()),
        },
    ]
}

/// Writes the page for `photos` into a fresh temporary folder (kept alive by the guard).
fn write_page(photos: &[PagePhoto]) -> (tempfile::TempDir, PathBuf) {
    let (columns, notes) = (
        columns(),
        vec!["threshold: ood_score > 1 & calibrated".into()],
    );
    let html = render(&Page {
        title: "ballast: field photo report",
        run: "runs/é <7>",
        generated_by: "ballast scorer test",
        columns: &columns,
        photos,
        notes: &notes,
    });
    let dir = tempfile::Builder::new()
        .prefix("html page é ")
        .tempdir()
        .unwrap();
    let path = dir.path().join("report <1>.html");
    std::fs::write(&path, html).unwrap();
    (dir, path)
}

#[test]
fn the_page_loads_in_chromium_with_every_image_and_photo() {
    let png = png_bytes(&texture(48, 32, 3));
    let photos = photos(png);
    let (_dir, path) = write_page(&photos);
    let loaded = browser::load(&path).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("chromium load: {:?}", loaded.elapsed);

    assert_eq!(
        loaded.body_data("loaded").as_deref(),
        Some("ok"),
        "every image decodes; DOM:\n{}",
        loaded.dom
    );
    assert_eq!(
        loaded.body_data("errors").as_deref(),
        Some(""),
        "no script error"
    );
    assert!(
        loaded.console_errors.is_empty(),
        "{:?}",
        loaded.console_errors
    );
    assert!(loaded.console.is_empty(), "console: {:?}", loaded.console);
    assert_eq!(loaded.attr("main", "data-photos").as_deref(), Some("3"));
    assert_eq!(loaded.dom.matches("class=\"photo\"").count(), 3);
    assert_eq!(loaded.attr_values("data-photo"), NAMES);
    // The flagged photo's section carries the red badge; the others do not.
    let sections: Vec<&str> = loaded
        .dom
        .split("<section class=\"photo\"")
        .skip(1)
        .collect();
    assert!(
        sections[1].contains("<span class=\"badge alert\">unlike-training</span>"),
        "{}",
        sections[1]
    );
    assert!(!sections[0].contains("badge alert") && !sections[2].contains("badge alert"));
    assert!(sections[0].contains("<span class=\"badge ok\">ok</span>"));
    // The error is shown, escaped; names are text, never markup.
    assert!(
        sections[2].contains("Could not be scored: not a TIFF: &lt;unexpected&gt; end of \"file\""),
        "{}",
        sections[2]
    );
    assert!(!loaded.dom.contains("<b>") && !loaded.dom.contains("<bad>"));
    assert!(
        loaded
            .dom
            .contains("<span class=\"name\">a&lt;b&gt;&amp;\"c\"'.jpg</span>")
    );
    assert_eq!(loaded.dom.matches("<img").count(), 2);
}

#[test]
fn a_damaged_image_is_reported_broken() {
    let mut photos = photos(b"\x89PNG\r\n\x1a\nthis is not a PNG".to_vec());
    photos[2].error = None;
    photos[2].cells = vec![NAMES[2].into(), "silt".into(), String::new(), String::new()];
    let (_dir, path) = write_page(&photos);
    let loaded = browser::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        loaded.body_data("loaded").as_deref(),
        Some("broken:1"),
        "{}",
        loaded.dom
    );
    assert_eq!(loaded.dom.matches("class=\"map broken\"").count(), 1);
}
