//! `scorer photos --html FILE`: one self-contained HTML5 page reporting the scored photos.
//!
//! The page opens from a USB stick with no server and no network: every image is embedded as a
//! `data:` URI (the map, JPEG or PNG, and the sieve-curve SVG, base64), all CSS is in one
//! `<style>`, and the only script is a small inline one that checks, on `load`, that every
//! image decoded (`document.body.dataset.loaded` = `"ok"` or `"broken:N"`) and records script
//! errors (`document.body.dataset.errors`), so a headless browser can tell a good page from a
//! bad one.
//!
//! Layout: a header (title, run, notes, counts), a summary table (one row per photo, its status
//! first, linking to its section; flagged and failed rows highlighted), then one
//! `<section class="photo">` per photo (status badge, predicted class, its cells, map and
//! curve, or its error).
//!
//! Everything given is escaped; control characters, which HTML forbids, become U+FFFD. The SVG
//! is embedded as an image rather than inline so that markup in it can neither break the page
//! nor run script. No timestamps: the same page gives the same bytes.

use std::fmt::Write as _;

/// What the page shows: see the module documentation.
pub struct Page<'a> {
    pub title: &'a str,
    /// Run folder / identity text shown at the top.
    pub run: &'a str,
    /// Who wrote the page, e.g. "ballast scorer 0.1.0".
    pub generated_by: &'a str,
    /// The summary table's header (after the page's own `#` column).
    pub columns: &'a [String],
    pub photos: &'a [PagePhoto],
    /// Free lines shown under the title (calibration, thresholds…).
    pub notes: &'a [String],
}

/// One photo of the page.
pub struct PagePhoto {
    pub name: String,
    /// One per column (rendered as given; a short row is padded with empty cells).
    pub cells: Vec<String>,
    /// "ok" / "unlike-training" / None (novelty check not fitted).
    pub flag: Option<String>,
    pub predicted: Option<String>,
    /// The map image, JPEG or PNG bytes (the type is read from the bytes).
    pub map_image: Option<Vec<u8>>,
    /// The sieve curve, an SVG document.
    pub curve_svg: Option<String>,
    /// Why the photo could not be scored.
    pub error: Option<String>,
}

/// How a photo's badge and row look.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    /// Any flag other than "ok" (e.g. "unlike-training").
    Alert,
    /// No flag: the novelty check was not fitted.
    Unchecked,
    Error,
}

impl Status {
    fn of(p: &PagePhoto) -> Status {
        match (&p.error, p.flag.as_deref()) {
            (Some(_), _) => Status::Error,
            (None, Some("ok")) => Status::Ok,
            (None, Some(_)) => Status::Alert,
            (None, None) => Status::Unchecked,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Alert => "alert",
            Status::Unchecked => "unchecked",
            Status::Error => "error",
        }
    }
}

/// The badge of `p`: its flag, "not checked" without one, "not scored" for an error.
fn badge(p: &PagePhoto) -> String {
    let status = Status::of(p);
    let text = match status {
        Status::Error => "not scored".to_string(),
        Status::Unchecked => "not checked".to_string(),
        Status::Ok | Status::Alert => esc(p.flag.as_deref().unwrap_or_default()),
    };
    format!("<span class=\"badge {}\">{text}</span>", status.class())
}

const STYLE: &str = r#"
:root { color-scheme: light; --alert: #c62828; --ok: #2e7d32; --muted: #616161; --line: #d7d7d7; }
* { box-sizing: border-box; }
body { margin: 0; padding: 1.5rem; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1d1d1d; background: #fafafa; }
header, main, footer { max-width: 1200px; margin: 0 auto; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.2rem; margin: 0 0 .6rem; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .92em; overflow-wrap: anywhere; }
.run { margin: 0 0 .4rem; color: var(--muted); }
.notes { margin: .4rem 0; padding-left: 1.2rem; color: #333; }
.counts { margin: .6rem 0 1rem; font-weight: 600; }
.counts .alert-count { color: var(--alert); }
.counts .error-count { color: #7f0000; }
.table-wrap { overflow-x: auto; background: #fff; border: 1px solid var(--line); border-radius: 6px; margin-bottom: 1.5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; white-space: nowrap; }
td:nth-child(3) { white-space: normal; overflow-wrap: anywhere; min-width: 12em; }
th { background: #f0f0f0; position: sticky; top: 0; }
tr.alert td { background: #fdecea; }
tr.error td { background: #f6e3e3; color: #5a0000; }
td.num a { font-weight: 600; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .82rem; font-weight: 700; white-space: nowrap; border: 1px solid transparent; }
.badge.ok { background: #e7f4e8; color: var(--ok); border-color: #a5d6a7; }
.badge.alert { background: var(--alert); color: #fff; }
.badge.unchecked { background: #eee; color: var(--muted); border-color: #ccc; }
.badge.error { background: #7f0000; color: #fff; }
section.photo { background: #fff; border: 1px solid var(--line); border-left: 6px solid #9e9e9e; border-radius: 6px; padding: 1rem 1.2rem; margin: 0 0 1.2rem; }
section.photo[data-status="ok"] { border-left-color: var(--ok); }
section.photo[data-status="alert"] { border-left-color: var(--alert); }
section.photo[data-status="error"] { border-left-color: #7f0000; }
section.photo h2 { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; overflow-wrap: anywhere; }
section.photo h2 .num { color: var(--muted); font-weight: 400; }
.predicted { margin: 0 0 .6rem; }
.failure { margin: 0 0 .6rem; padding: .5rem .7rem; background: #f6e3e3; border-radius: 4px; color: #5a0000; white-space: pre-wrap; overflow-wrap: anywhere; }
dl.cells { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: 0 0 .8rem; }
dl.cells dt { color: var(--muted); }
dl.cells dd { margin: 0; overflow-wrap: anywhere; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; flex: 1 1 340px; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; image-rendering: auto; }
figure img.broken { min-height: 3rem; border: 2px dashed var(--alert); }
figcaption { color: var(--muted); font-size: .85rem; margin-top: .2rem; }
.back { margin: .6rem 0 0; font-size: .85rem; }
footer { color: var(--muted); font-size: .85rem; margin-top: 1.5rem; }
@media print { body { background: #fff; padding: 0; } section.photo { break-inside: avoid; } th { position: static; } .back { display: none; } }
"#;

/// Checks, on `load`, that every image decoded, and records uncaught errors, both on <body>.
const SCRIPT: &str = r#"
(function () {
  "use strict";
  var errors = [];
  function record(text) {
    errors.push(String(text));
    if (document.body) { document.body.dataset.errors = errors.join("\n"); }
  }
  window.onerror = function (message, source, line) {
    record(String(message) + (line ? " (line " + line + ")" : ""));
    return false;
  };
  window.addEventListener("unhandledrejection", function (e) {
    record("unhandled rejection: " + String(e.reason));
  });
  window.addEventListener("load", function () {
    var images = document.images, broken = 0;
    for (var i = 0; i < images.length; i++) {
      if (!(images[i].complete && images[i].naturalWidth > 0)) {
        broken++;
        images[i].classList.add("broken");
      }
    }
    document.body.dataset.errors = errors.join("\n");
    document.body.dataset.loaded = broken === 0 ? "ok" : "broken:" + broken;
  });
})();
"#;

/// Renders `page` as one self-contained HTML5 document.
pub fn render(page: &Page) -> String {
    let mut h = String::with_capacity(
        16 * 1024
            + page
                .photos
                .iter()
                .map(|p| {
                    p.map_image.as_ref().map_or(0, |b| b.len() * 4 / 3)
                        + p.curve_svg.as_ref().map_or(0, |s| s.len() * 4 / 3)
                        + 2048
                })
                .sum::<usize>(),
    );
    let title = esc(page.title);
    // Writing to a String cannot fail.
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"{}\">\n<title>{title}</title>\n\
         <style>{STYLE}</style>\n<script>{SCRIPT}</script>\n</head>\n<body>\n",
        esc(page.generated_by)
    );
    header(&mut h, page, &title);
    let _ = writeln!(
        h,
        "<main id=\"photos\" data-photos=\"{}\">",
        page.photos.len()
    );
    summary(&mut h, page);
    for (i, p) in page.photos.iter().enumerate() {
        section(&mut h, page, i + 1, p);
    }
    let _ = write!(
        h,
        "</main>\n<footer>\n<p>Generated by {}. A self-contained page: every image is embedded; \
         it needs no network.</p>\n</footer>\n</body>\n</html>\n",
        esc(page.generated_by)
    );
    h
}

fn header(h: &mut String, page: &Page, title: &str) {
    let _ = write!(
        h,
        "<header id=\"top\">\n<h1>{title}</h1>\n<p class=\"run\">Run: <code>{}</code></p>\n",
        esc(page.run)
    );
    if !page.notes.is_empty() {
        h.push_str("<ul class=\"notes\">\n");
        for n in page.notes {
            let _ = writeln!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>\n");
    }
    let count = |s: Status| page.photos.iter().filter(|p| Status::of(p) == s).count();
    let (ok, alert, unchecked, error) = (
        count(Status::Ok),
        count(Status::Alert),
        count(Status::Unchecked),
        count(Status::Error),
    );
    let n = page.photos.len();
    let _ = write!(
        h,
        "<p class=\"counts\">{n} photo{}",
        if n == 1 { "" } else { "s" }
    );
    if ok > 0 {
        let _ = write!(h, " · {ok} ok");
    }
    if alert > 0 {
        let _ = write!(h, " · <span class=\"alert-count\">{alert} flagged</span>");
    }
    if unchecked > 0 {
        let _ = write!(h, " · {unchecked} not checked");
    }
    if error > 0 {
        let _ = write!(
            h,
            " · <span class=\"error-count\">{error} could not be scored</span>"
        );
    }
    h.push_str("</p>\n</header>\n");
}

fn summary(h: &mut String, page: &Page) {
    h.push_str(
        "<section class=\"summary\">\n<h2>Results</h2>\n<div class=\"table-wrap\">\n<table>\n\
         <thead>\n<tr><th scope=\"col\">#</th><th scope=\"col\">Status</th>",
    );
    for c in page.columns {
        let _ = write!(h, "<th scope=\"col\">{}</th>", esc(c));
    }
    // The status comes first: on a narrow screen the table scrolls, and the flag must show.
    h.push_str("</tr>\n</thead>\n<tbody>\n");
    let width = page.columns.len();
    if page.photos.is_empty() {
        let _ = writeln!(h, "<tr><td colspan=\"{}\">No photos.</td></tr>", width + 2);
    }
    for (i, p) in page.photos.iter().enumerate() {
        let status = Status::of(p);
        let _ = write!(
            h,
            "<tr class=\"{}\"><td class=\"num\"><a href=\"#photo-{n}\" title=\"{}\">{n}</a></td>\
             <td>{}</td>",
            status.class(),
            esc(&p.name),
            badge(p),
            n = i + 1
        );
        match (&p.error, p.cells.is_empty()) {
            (Some(e), true) if width > 0 => {
                let _ = write!(
                    h,
                    "<td colspan=\"{width}\">{}: could not be scored: {}</td>",
                    esc(&p.name),
                    esc(e)
                );
            }
            _ => {
                for c in &p.cells {
                    let _ = write!(h, "<td>{}</td>", esc(c));
                }
                for _ in p.cells.len()..width {
                    h.push_str("<td></td>");
                }
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n</div>\n</section>\n");
}

fn section(h: &mut String, page: &Page, n: usize, p: &PagePhoto) {
    let name = esc(&p.name);
    let _ = write!(
        h,
        "<section class=\"photo\" id=\"photo-{n}\" data-photo=\"{name}\" data-status=\"{}\">\n\
         <h2><span class=\"num\">{n}.</span> <span class=\"name\">{name}</span> {}</h2>\n",
        Status::of(p).class(),
        badge(p)
    );
    if let Some(pred) = &p.predicted {
        let _ = writeln!(
            h,
            "<p class=\"predicted\">Predicted: <strong>{}</strong></p>",
            esc(pred)
        );
    }
    if let Some(e) = &p.error {
        let _ = writeln!(
            h,
            "<p class=\"failure\">Could not be scored: {}</p>",
            esc(e)
        );
    }
    if !p.cells.is_empty() {
        h.push_str("<dl class=\"cells\">\n");
        for (i, c) in p.cells.iter().enumerate() {
            let label = page.columns.get(i).map_or("", String::as_str);
            let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", esc(label), esc(c));
        }
        h.push_str("</dl>\n");
    }
    if p.map_image.is_some() || p.curve_svg.is_some() {
        h.push_str("<div class=\"figures\">\n");
        if let Some(img) = &p.map_image {
            // JPEG keeps a page of photo maps small; anything else is taken as PNG.
            let mime = if img.starts_with(&[0xFF, 0xD8, 0xFF]) {
                "image/jpeg"
            } else {
                "image/png"
            };
            let _ = writeln!(
                h,
                "<figure><img class=\"map\" src=\"data:{mime};base64,{}\" alt=\"Map of {name}\">\
                 <figcaption>Map</figcaption></figure>",
                base64(img)
            );
        }
        if let Some(svg) = &p.curve_svg {
            let _ = writeln!(
                h,
                "<figure><img class=\"curve\" src=\"data:image/svg+xml;base64,{}\" \
                 alt=\"Sieve curve of {name}\"><figcaption>Sieve curve</figcaption></figure>",
                base64(svg.as_bytes())
            );
        }
        h.push_str("</div>\n");
    }
    h.push_str("<p class=\"back\"><a href=\"#top\">Back to the summary</a></p>\n</section>\n");
}

/// Escapes text for HTML text and (double- or single-quoted) attribute values. Characters HTML
/// does not allow in a document (controls other than tab, line feed, form feed and carriage
/// return; noncharacters) become U+FFFD.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\x0C' | '\r' => out.push(c),
            c if c.is_control() || is_noncharacter(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn is_noncharacter(c: char) -> bool {
    let u = c as u32;
    (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (k, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if k <= chunk.len() {
                out.push(ALPHABET[((v >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent decoder (strict: the standard alphabet, padding only at the end).
    fn unbase64(s: &str) -> Vec<u8> {
        assert_eq!(s.len() % 4, 0, "base64 length {}", s.len());
        let val = |c: u8| -> u32 {
            match c {
                b'A'..=b'Z' => u32::from(c - b'A'),
                b'a'..=b'z' => u32::from(c - b'a') + 26,
                b'0'..=b'9' => u32::from(c - b'0') + 52,
                b'+' => 62,
                b'/' => 63,
                _ => panic!("not base64: {:?}", c as char),
            }
        };
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        for (i, q) in bytes.chunks(4).enumerate() {
            let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
            assert!(pad <= 2 && (pad == 0 || i == bytes.len() / 4 - 1));
            let mut v = 0u32;
            for &c in &q[..4 - pad] {
                v = (v << 6) | val(c);
            }
            v <<= 6 * pad as u32;
            let three = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
            out.extend_from_slice(&three[..3 - pad]);
        }
        out
    }

    const NASTY: &str = "a<b>&\"c\"'.jpg";

    fn png_like(seed: u8, n: usize) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        v.extend((0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
        v
    }

    fn photos() -> Vec<PagePhoto> {
        vec![
            PagePhoto {
                name: NASTY.to_string(),
                cells: vec![NASTY.to_string(), "sand".into(), "0.91".into()],
                flag: Some("ok".into()),
                predicted: Some("sand".into()),
                map_image: Some(png_like(1, 100)),
                curve_svg: Some(
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>".into(),
                ),
                error: None,
            },
            PagePhoto {
                name: "Île – grès 7.png".into(),
                cells: vec!["Île – grès 7.png".into(), "gravel".into(), "0.40".into()],
                flag: Some("unlike-training".into()),
                predicted: Some("gravel".into()),
                map_image: Some(png_like(2, 1001)),
                curve_svg: None,
                error: None,
            },
            PagePhoto {
                name: "broken & <bad>.tif".into(),
                cells: vec![],
                flag: None,
                predicted: None,
                map_image: None,
                curve_svg: None,
                error: Some("decode: <unexpected> end of \"file\"".into()),
            },
        ]
    }

    fn page_with<'a>(
        photos: &'a [PagePhoto],
        columns: &'a [String],
        notes: &'a [String],
    ) -> Page<'a> {
        Page {
            title: "Field photos <run 7>",
            run: "runs/a&b",
            generated_by: "ballast scorer 0.1.0",
            columns,
            photos,
            notes,
        }
    }

    fn cols() -> Vec<String> {
        vec!["photo".into(), "class".into(), "confidence".into()]
    }

    fn rendered() -> String {
        let (p, c, n) = (
            photos(),
            cols(),
            vec!["threshold > 0.5 & calibrated".to_string()],
        );
        render(&page_with(&p, &c, &n))
    }

    #[test]
    fn a_jpeg_map_is_embedded_as_jpeg() {
        let mut ps = photos();
        ps[0].map_image = Some(vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]);
        let page = Page {
            title: "t",
            run: "r",
            generated_by: "g",
            columns: &[],
            photos: &ps,
            notes: &[],
        };
        let h = render(&page);
        assert_eq!(h.matches("src=\"data:image/jpeg;base64,").count(), 1);
        assert_eq!(h.matches("src=\"data:image/png;base64,").count(), 1);
    }

    #[test]
    fn base64_matches_the_rfc_vectors_and_round_trips() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
            assert_eq!(unbase64(coded), plain.as_bytes());
        }
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for n in 0..all.len() {
            assert_eq!(unbase64(&base64(&all[..n])), &all[..n]);
        }
    }

    #[test]
    fn html_escapes_names_and_text_everywhere() {
        let h = rendered();
        assert!(!h.contains(NASTY), "the raw name appears");
        assert!(!h.contains("<b>"));
        assert!(!h.contains("<bad>") && !h.contains("<unexpected>") && !h.contains("<run 7>"));
        assert!(!h.contains("a&b") && !h.contains("> 0.5 & "));
        let escaped = "a&lt;b&gt;&amp;&quot;c&quot;&#39;.jpg";
        assert!(h.contains(&format!("data-photo=\"{escaped}\"")));
        assert!(h.contains(&format!("<span class=\"name\">{escaped}</span>")));
        assert!(h.contains(&format!("<td>{escaped}</td>")));
        assert!(h.contains("Field photos &lt;run 7&gt;"));
        // Non-ASCII passes through as UTF-8 (the page declares it).
        assert!(h.contains("data-photo=\"Île – grès 7.png\""));
        assert!(h.contains("<meta charset=\"utf-8\">"));
        // Characters HTML forbids never reach the page.
        assert_eq!(
            esc("a\u{0}b\u{1}c\u{7f}d\u{9f}e\u{FFFF}f\tg\nh"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}e\u{FFFD}f\tg\nh"
        );
    }

    #[test]
    fn html_has_one_section_per_photo_and_counts_them() {
        let h = rendered();
        assert_eq!(h.matches("class=\"photo\"").count(), 3);
        assert!(h.contains("data-photos=\"3\""));
        for i in 1..=3 {
            assert!(h.contains(&format!("href=\"#photo-{i}\"")));
            assert!(h.contains(&format!("id=\"photo-{i}\"")));
        }
        let none = render(&page_with(&[], &[], &[]));
        assert_eq!(none.matches("class=\"photo\"").count(), 0);
        assert!(none.contains("data-photos=\"0\"") && none.contains("No photos."));
    }

    #[test]
    fn html_embeds_images_as_base64_that_decode_to_the_given_bytes() {
        let ps = photos();
        let h = rendered();
        let pngs: Vec<Vec<u8>> = h
            .split("src=\"data:image/png;base64,")
            .skip(1)
            .map(|rest| unbase64(&rest[..rest.find('"').unwrap()]))
            .collect();
        assert_eq!(
            pngs,
            vec![
                ps[0].map_image.clone().unwrap(),
                ps[1].map_image.clone().unwrap()
            ]
        );
        let svgs: Vec<Vec<u8>> = h
            .split("src=\"data:image/svg+xml;base64,")
            .skip(1)
            .map(|rest| unbase64(&rest[..rest.find('"').unwrap()]))
            .collect();
        assert_eq!(svgs, vec![ps[0].curve_svg.clone().unwrap().into_bytes()]);
    }

    #[test]
    fn html_references_nothing_outside_the_page() {
        let h = rendered();
        for needle in [
            "http://", "https://", "src=\"/", "href=\"/", "url(", "@import", "//cdn", "file:",
        ] {
            assert!(!h.contains(needle), "{needle} in the page");
        }
        // Every src is a data: URI; every href an anchor in the page.
        for rest in h.split(" src=\"").skip(1) {
            assert!(
                rest.starts_with("data:image/"),
                "src={}",
                &rest[..40.min(rest.len())]
            );
        }
        for rest in h.split(" href=\"").skip(1) {
            let target = &rest[..rest.find('"').unwrap()];
            assert!(target.starts_with('#'), "href={target}");
            assert!(target == "#top" || h.contains(&format!("id=\"{}\"", &target[1..])));
        }
        assert_eq!(h.matches("<script").count(), 1, "one inline script");
        assert!(!h.contains("<script src") && !h.contains("<link"));
    }

    #[test]
    fn html_flags_and_errors_are_shown() {
        let h = rendered();
        let sections: Vec<&str> = h.split("<section class=\"photo\"").skip(1).collect();
        assert_eq!(sections.len(), 3);
        assert!(sections[0].contains("<span class=\"badge ok\">ok</span>"));
        assert!(!sections[0].contains("badge alert"));
        assert!(sections[1].contains("<span class=\"badge alert\">unlike-training</span>"));
        assert!(sections[1].contains("data-status=\"alert\""));
        assert!(
            h.contains("<tr class=\"alert\">"),
            "the flagged row is highlighted"
        );
        assert!(h.contains("1 flagged"));
        assert!(
            sections[2].contains(
                "Could not be scored: decode: &lt;unexpected&gt; end of &quot;file&quot;"
            )
        );
        assert!(sections[2].contains("<span class=\"badge error\">not scored</span>"));
        assert!(h.contains("<tr class=\"error\">"));
        assert!(h.contains("1 could not be scored"));
        assert!(h.contains("<li>threshold &gt; 0.5 &amp; calibrated</li>"));
        assert!(h.contains("Run: <code>runs/a&amp;b</code>"));
        assert!(h.contains("Generated by ballast scorer 0.1.0."));
        // An unfitted novelty check reads as such, not as "ok".
        let mut p = photos();
        p.truncate(1);
        p[0].flag = None;
        let c = cols();
        let h = render(&page_with(&p, &c, &[]));
        assert!(h.contains("<span class=\"badge unchecked\">not checked</span>"));
        assert!(h.contains("1 not checked"));
    }

    #[test]
    fn html_is_deterministic_and_well_formed_at_the_top() {
        let a = rendered();
        let b = rendered();
        assert_eq!(a, b);
        assert!(
            a.starts_with("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")
        );
        assert!(a.ends_with("</body>\n</html>\n"));
        assert_eq!(
            a.matches("<section").count(),
            a.matches("</section>").count()
        );
        assert_eq!(a.matches("<tr").count(), a.matches("</tr>").count());
        assert!(a.contains("document.body.dataset.loaded"));
        assert!(a.contains("naturalWidth > 0"));
        // Short rows are padded to the header's width.
        let mut p = photos();
        p[0].cells.truncate(1);
        let c = cols();
        let h = render(&page_with(&p, &c, &[]));
        let row = h.split("<tr class=\"ok\">").nth(1).unwrap();
        let row = &row[..row.find("</tr>").unwrap()];
        assert_eq!(row.matches("<td").count(), 1 + 3 + 1);
    }
}
