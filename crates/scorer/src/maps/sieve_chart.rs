//! The sieve chart SVG: the photo's expected sieve curve among the class curves and the
//! specification envelope on a log size axis, written by hand so the text is deterministic
//! and self-contained.

use std::fmt::Write as _;

use super::class_colour;
use crate::font;
use crate::gradation::{Curve, Envelope};

/// What the sieve chart shows.
#[derive(Clone, Copy, Debug)]
pub struct CurveChart<'a> {
    pub title: &'a str,
    pub classes: &'a [String],
    /// Per class, in class order (`None`: that class has no curve).
    pub class_curves: &'a [Option<Curve>],
    /// The photo's expected curve: sieve sizes (mm) and the passing % at each
    /// (`ClassMap::gradation(..).curve`'s fields); `None` values are gaps in the line.
    pub expected: Option<(&'a [f64], &'a [Option<f64>])>,
    pub envelope: Option<&'a Envelope>,
}

// Plot geometry (SVG user units): round numbers so coordinates can be checked by hand.
const PLOT_L: f64 = 64.0;
const PLOT_T: f64 = 48.0;
const PLOT_W: f64 = 450.0;
const PLOT_H: f64 = 320.0;
const LEGEND_X: f64 = PLOT_L + PLOT_W + 28.0;
const SVG_W: f64 = 780.0;
const LEGEND_PITCH: f64 = 18.0;
const SVG_NAME_CHARS: usize = 28;

/// XML-escapes text; control characters XML 1.0 cannot carry become `?`.
fn xml(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => s.push('?'),
            c => s.push(c),
        }
    }
    s
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// Label of the decade 10^k: "0.01", "1", "1000".
fn decade_label(k: i32) -> String {
    if k >= 0 {
        format!("{}", 10u64.pow(k.unsigned_abs()))
    } else {
        format!("{:.*}", k.unsigned_abs() as usize, 10f64.powi(k))
    }
}

/// The chart's x axis: whole decades around every size drawn.
struct XAxis {
    lo: i32,
    hi: i32,
}

impl XAxis {
    fn around(sizes: impl Iterator<Item = f64>) -> XAxis {
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for s in sizes.filter(|s| s.is_finite() && *s > 0.0) {
            min = min.min(s);
            max = max.max(s);
        }
        if !min.is_finite() {
            // Nothing to draw: a typical aggregate range, 0.1–100 mm.
            return XAxis { lo: -1, hi: 2 };
        }
        // Capped at 1 µm – 1 km so a stray value cannot squash the chart into a line.
        let lo = (min.log10().floor() as i32).clamp(-6, 5);
        let hi = (max.log10().ceil() as i32).clamp(lo + 1, 6);
        XAxis { lo, hi }
    }

    fn x(&self, size: f64) -> f64 {
        let t = (size.log10() - f64::from(self.lo)) / f64::from(self.hi - self.lo);
        PLOT_L + t.clamp(0.0, 1.0) * PLOT_W
    }
}

fn y_of(passing: f64) -> f64 {
    PLOT_T + (1.0 - passing.clamp(0.0, 100.0) / 100.0) * PLOT_H
}

fn valid(s: f64, p: f64) -> bool {
    s.is_finite() && s > 0.0 && p.is_finite()
}

/// What the chart draws, cleaned: only points with a finite size above 0 and a finite passing
/// value (the envelope's upper value finite too).
struct Series {
    /// Envelope points: size, lower, upper.
    envelope: Vec<(f64, f64, f64)>,
    /// Per class curve, in class order (empty: that class has no curve).
    curves: Vec<Vec<(f64, f64)>>,
    /// Expected points, `None` where undefined (a gap in the line).
    expected: Vec<Option<(f64, f64)>>,
}

impl Series {
    fn of(c: &CurveChart) -> Series {
        let envelope = c
            .envelope
            .map(|e| {
                e.sieve_mm
                    .iter()
                    .zip(&e.lower)
                    .zip(&e.upper)
                    .filter(|((s, lo), hi)| valid(**s, **lo) && hi.is_finite())
                    .map(|((&s, &lo), &hi)| (s, lo, hi))
                    .collect()
            })
            .unwrap_or_default();
        let curves = c
            .class_curves
            .iter()
            .map(|curve| {
                curve
                    .as_ref()
                    .map(|k| {
                        k.sieve_mm
                            .iter()
                            .zip(&k.passing)
                            .filter(|(s, p)| valid(**s, **p))
                            .map(|(&s, &p)| (s, p))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let expected = c
            .expected
            .map(|(sizes, passing)| {
                sizes
                    .iter()
                    .zip(passing)
                    .map(|(&s, p)| p.filter(|&p| valid(s, p)).map(|p| (s, p)))
                    .collect()
            })
            .unwrap_or_default();
        Series {
            envelope,
            curves,
            expected,
        }
    }

    /// The x axis around every size drawn.
    fn axis(&self) -> XAxis {
        XAxis::around(
            self.curves
                .iter()
                .flatten()
                .map(|p| p.0)
                .chain(self.expected.iter().flatten().map(|p| p.0))
                .chain(self.envelope.iter().map(|p| p.0)),
        )
    }

    fn has_expected(&self) -> bool {
        self.expected.iter().any(Option::is_some)
    }
}

/// The sieve chart as a self-contained SVG: log-scale size axis in mm with decade gridlines and
/// labels, passing 0–100 %, the envelope as a shaded band between dashed lower and upper lines,
/// each class curve thin in its class colour, the expected curve thick black with its points
/// marked (broken where undefined), and a legend on the right. Same input, same text.
pub fn curve_svg(c: &CurveChart) -> String {
    let data = Series::of(c);
    let axis = data.axis();

    let n_entries =
        1 + usize::from(!data.envelope.is_empty()) + c.classes.len().max(data.curves.len());
    let height = (PLOT_T + PLOT_H + 56.0).max(PLOT_T + 20.0 + n_entries as f64 * LEGEND_PITCH);

    // `write!` into a String cannot fail; here and in the helpers the results are ignored on
    // purpose.
    let mut s = String::with_capacity(16 * 1024);
    header(&mut s, c.title, height);
    grid(&mut s, &axis);
    axis_labels(&mut s, &axis);
    // Envelope band under the curves, its edges dashed above them.
    envelope_band(&mut s, &axis, &data.envelope);
    class_curves(&mut s, &axis, &data.curves);
    envelope_edges(&mut s, &axis, &data.envelope);
    expected_curve(&mut s, &axis, &data.expected);
    let _ = writeln!(
        s,
        r##"<rect x="{PLOT_L}" y="{PLOT_T}" width="{PLOT_W}" height="{PLOT_H}" fill="none" stroke="#333333"/>"##
    );
    legend(&mut s, c, &data);
    s.push_str("</svg>\n");
    s
}

/// The `<svg>` element's opening, its `<title>`, the white background and the visible title.
fn header(s: &mut String, title: &str, height: f64) {
    let title = xml(&font::truncate(title, 90));
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_W}" height="{height}" viewBox="0 0 {SVG_W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, "<title>{title}</title>");
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{SVG_W}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{PLOT_L}" y="26" font-size="15" font-weight="bold">{title}</text>"#
    );
}

/// Grid: decades strong, 2–9 × decade faint; passing every 10 %.
fn grid(s: &mut String, axis: &XAxis) {
    let (bottom, right) = (PLOT_T + PLOT_H, PLOT_L + PLOT_W);
    s.push_str(r##"<g stroke="#e4e4e4" stroke-width="1">"##);
    s.push('\n');
    for k in axis.lo..axis.hi {
        for m in 2..10 {
            let x = axis.x(f64::from(m) * 10f64.powi(k));
            let _ = writeln!(
                s,
                r#"<line x1="{x:.2}" y1="{PLOT_T}" x2="{x:.2}" y2="{bottom}"/>"#
            );
        }
    }
    s.push_str("</g>\n");
    s.push_str(r##"<g stroke="#bdbdbd" stroke-width="1">"##);
    s.push('\n');
    for k in axis.lo..=axis.hi {
        let x = axis.x(10f64.powi(k));
        let _ = writeln!(
            s,
            r#"<line x1="{x:.2}" y1="{PLOT_T}" x2="{x:.2}" y2="{bottom}"/>"#
        );
    }
    for p in (0..=100).step_by(10) {
        let y = y_of(f64::from(p));
        let _ = writeln!(
            s,
            r#"<line x1="{PLOT_L}" y1="{y:.2}" x2="{right}" y2="{y:.2}"/>"#
        );
    }
    s.push_str("</g>\n");
}

/// Axis labels: decades and the size axis' name below, passing every 20 % and its name left.
fn axis_labels(s: &mut String, axis: &XAxis) {
    let bottom = PLOT_T + PLOT_H;
    s.push_str(r#"<g text-anchor="middle">"#);
    s.push('\n');
    for k in axis.lo..=axis.hi {
        let x = axis.x(10f64.powi(k));
        let _ = writeln!(
            s,
            r#"<text x="{x:.2}" y="{:.2}">{}</text>"#,
            bottom + 16.0,
            decade_label(k)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.2}" y="{:.2}">Sieve size (mm, log scale)</text>"#,
        PLOT_L + PLOT_W / 2.0,
        bottom + 36.0
    );
    let (ly, lx) = (PLOT_T + PLOT_H / 2.0, 18.0);
    let _ = writeln!(
        s,
        r#"<text x="{lx}" y="{ly}" transform="rotate(-90 {lx} {ly})">Passing (%)</text>"#
    );
    s.push_str("</g>\n");
    s.push_str(r#"<g text-anchor="end">"#);
    s.push('\n');
    for p in (0..=100).step_by(20) {
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}">{p}</text>"#,
            PLOT_L - 6.0,
            y_of(f64::from(p)) + 4.0
        );
    }
    s.push_str("</g>\n");
}

/// Points (size mm, passing %) as an SVG `points` list.
fn points(axis: &XAxis, v: impl Iterator<Item = (f64, f64)>) -> String {
    v.map(|(sz, p)| format!("{:.2},{:.2}", axis.x(sz), y_of(p)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The envelope's shaded band (nothing without an envelope).
fn envelope_band(s: &mut String, axis: &XAxis, env: &[(f64, f64, f64)]) {
    if env.is_empty() {
        return;
    }
    let band = points(
        axis,
        env.iter()
            .map(|&(sz, lo, _)| (sz, lo))
            .chain(env.iter().rev().map(|&(sz, _, hi)| (sz, hi))),
    );
    let _ = writeln!(
        s,
        r##"<polygon class="envelope-band" points="{band}" fill="#7f7f7f" fill-opacity="0.18" stroke="none"/>"##
    );
}

/// Each class curve, thin in its class colour.
fn class_curves(s: &mut String, axis: &XAxis, curves: &[Vec<(f64, f64)>]) {
    for (i, curve) in curves.iter().enumerate() {
        if curve.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            r#"<polyline class="class-curve" points="{}" fill="none" stroke="{}" stroke-width="1.5" stroke-opacity="0.9"/>"#,
            points(axis, curve.iter().copied()),
            hex(class_colour(i))
        );
    }
}

/// The envelope's lower and upper lines, dashed.
fn envelope_edges(s: &mut String, axis: &XAxis, env: &[(f64, f64, f64)]) {
    if env.is_empty() {
        return;
    }
    for (name, pick) in [("lower", 1usize), ("upper", 2)] {
        let line = points(
            axis,
            env.iter()
                .map(|&(sz, lo, hi)| (sz, if pick == 1 { lo } else { hi })),
        );
        let _ = writeln!(
            s,
            r##"<polyline class="envelope-{name}" points="{line}" fill="none" stroke="#555555" stroke-width="1.2" stroke-dasharray="6 4"/>"##
        );
    }
}

/// The expected curve, thick black with its points marked: a new subpath after every
/// undefined point; nothing when no point is defined.
fn expected_curve(s: &mut String, axis: &XAxis, expected: &[Option<(f64, f64)>]) {
    if !expected.iter().any(Option::is_some) {
        return;
    }
    let mut d = String::new();
    let mut pen_down = false;
    for p in expected {
        match p {
            Some((sz, v)) => {
                let cmd = if pen_down { 'L' } else { 'M' };
                if !d.is_empty() {
                    d.push(' ');
                }
                let _ = write!(d, "{cmd} {:.2} {:.2}", axis.x(*sz), y_of(*v));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let _ = writeln!(
        s,
        r##"<path class="expected" d="{d}" fill="none" stroke="#000000" stroke-width="3" stroke-linejoin="round"/>"##
    );
    s.push_str(r##"<g fill="#000000">"##);
    s.push('\n');
    for (sz, v) in expected.iter().flatten() {
        let _ = writeln!(
            s,
            r#"<circle cx="{:.2}" cy="{:.2}" r="3"/>"#,
            axis.x(*sz),
            y_of(*v)
        );
    }
    s.push_str("</g>\n");
}

/// The legend right of the plot: the expected curve, the envelope (if any), one line per class.
fn legend(s: &mut String, c: &CurveChart, data: &Series) {
    let mut y = PLOT_T + 6.0;
    let expected_label = if data.has_expected() {
        "expected (this photo)"
    } else {
        "expected: undefined"
    };
    legend_sample(
        s,
        y,
        r##"stroke="#000000" stroke-width="3""##,
        expected_label,
    );
    y += LEGEND_PITCH;
    if !data.envelope.is_empty() {
        let _ = writeln!(
            s,
            r##"<rect x="{LEGEND_X}" y="{:.2}" width="24" height="10" fill="#7f7f7f" fill-opacity="0.18" stroke="#555555" stroke-dasharray="6 4"/>"##,
            y - 5.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}">specification envelope</text>"#,
            LEGEND_X + 30.0,
            y + 4.0
        );
        y += LEGEND_PITCH;
    }
    for (i, name) in c.classes.iter().enumerate() {
        let has_curve = data.curves.get(i).is_some_and(|k| !k.is_empty());
        let mut label = xml(&font::truncate(name, SVG_NAME_CHARS));
        if !has_curve {
            label.push_str(" (no curve)");
        }
        let style = format!(r#"stroke="{}" stroke-width="1.5""#, hex(class_colour(i)));
        legend_sample(s, y, &style, &label);
        y += LEGEND_PITCH;
    }
}

/// One legend entry at height `y`: a line sample in `style` and its (escaped) label.
fn legend_sample(s: &mut String, y: f64, style: &str, label: &str) {
    let _ = writeln!(
        s,
        r#"<line x1="{LEGEND_X}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" {style}/>"#,
        LEGEND_X + 24.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.2}" y="{:.2}">{label}</text>"#,
        LEGEND_X + 30.0,
        y + 4.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradation::Mixture;
    use crate::maps::test_util::names;

    /// Checks that tags nest and every `&` starts an entity: enough to catch what hand-written
    /// XML gets wrong.
    fn well_formed(svg: &str) {
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let text = &rest[..i];
            check_amps(text);
            let end = rest[i..].find('>').expect("unclosed tag") + i;
            let tag = &rest[i + 1..end];
            assert!(!tag.contains('<'), "{tag}");
            check_amps(tag);
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name.trim()), "closing {name}");
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap());
            }
            // Attribute quotes balance.
            assert_eq!(tag.matches('"').count() % 2, 0, "{tag}");
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
    }

    fn check_amps(s: &str) {
        for (i, _) in s.match_indices('&') {
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| s[i..].starts_with(e));
            assert!(ok, "bare & in {s}");
        }
    }

    #[test]
    fn svg_is_well_formed_escaped_and_on_a_log_axis() {
        let classes = names(&["a<b&\"c\"", "coarse", "none"]);
        let curves = vec![
            Some(Curve::new(vec![0.1, 1.0, 10.0], vec![5.0, 40.0, 100.0]).unwrap()),
            Some(Curve::new(vec![1.0, 100.0], vec![10.0, 90.0]).unwrap()),
            None,
        ];
        let expected = Mixture {
            sieve_mm: vec![0.1, 1.0, 10.0, 100.0],
            passing: vec![None, Some(50.0), Some(80.0), None],
        };
        let env = Envelope::new(vec![1.0, 10.0], vec![30.0, 70.0], vec![60.0, 100.0]).unwrap();
        let svg = curve_svg(&CurveChart {
            title: "IMG & <1>",
            classes: &classes,
            class_curves: &curves,
            expected: Some((&expected.sieve_mm, &expected.passing)),
            envelope: Some(&env),
        });
        well_formed(&svg);
        assert!(svg.contains("a&lt;b&amp;&quot;c&quot;"), "{svg}");
        assert!(svg.contains("IMG &amp; &lt;1&gt;"));
        assert!(!svg.contains("href"), "self-contained");
        assert_eq!(svg.matches(r#"<polyline class="class-curve""#).count(), 2);
        assert_eq!(svg.matches(r#"<path class="expected""#).count(), 1);
        assert_eq!(svg.matches("<polyline class=\"envelope-").count(), 2);
        assert!(svg.contains("none (no curve)"));
        // Axis 0.1–100 mm: 3 decades over 450 units, so 1 mm at 64 + 150, 10 mm at 64 + 300;
        // 50 % at 48 + 160, 80 % at 48 + 64.
        assert!(
            svg.contains(r#"d="M 214.00 208.00 L 364.00 112.00""#),
            "{svg}"
        );
        for label in [">0.1<", ">1<", ">10<", ">100<"] {
            assert!(svg.contains(label), "decade label {label}");
        }
        assert!(!svg.contains(">1000<"));
        // Same input, same text.
        let again = curve_svg(&CurveChart {
            title: "IMG & <1>",
            classes: &classes,
            class_curves: &curves,
            expected: Some((&expected.sieve_mm, &expected.passing)),
            envelope: Some(&env),
        });
        assert_eq!(svg, again);
    }

    #[test]
    fn svg_without_data_still_draws_axes() {
        let svg = curve_svg(&CurveChart {
            title: "",
            classes: &[],
            class_curves: &[],
            expected: None,
            envelope: None,
        });
        well_formed(&svg);
        assert!(svg.contains("expected: undefined"));
        assert!(svg.contains(">0.1<") && svg.contains(">100<"));
        // A gap splits the expected curve into subpaths.
        let m = Mixture {
            sieve_mm: vec![0.01, 0.1, 1.0, 10.0],
            passing: vec![Some(1.0), None, Some(40.0), Some(90.0)],
        };
        let svg = curve_svg(&CurveChart {
            title: "t",
            classes: &[],
            class_curves: &[],
            expected: Some((&m.sieve_mm, &m.passing)),
            envelope: None,
        });
        let d = svg.split(r#"class="expected" d=""#).nth(1).unwrap();
        let d = &d[..d.find('"').unwrap()];
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert!(svg.contains(">0.01<") && svg.contains(">10<"));
    }
}
